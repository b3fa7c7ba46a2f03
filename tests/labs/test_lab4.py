"""Lab 4 computes its conclusions from the runs it makes; its design writes valid configs."""

import json

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab4, registry


def test_lab4_every_activity(tmp_path):
    lab4.run(tmp_path, quick=True)
    s = json.loads((tmp_path / "summary.json").read_text())
    html = (tmp_path / "report.html").read_text()
    assert 4 in registry()
    for h in ("1. Explain", "2. Compare isolation", "3. Design", "4. Evaluate"):
        assert h in html
    pol = s["isolation"]["policies"]
    assert f"{pol['timeslice']['gpus']:g} GPUs" in html
    assert s["design"]["exported"]["validated"] and (tmp_path / "configs" / "mig-parted-config.yaml").exists()
    slo = {p: [x["slo_attainment"] for x in v] for p, v in s["evaluate"]["sweep"].items()}
    assert slo["timeslice"][-1] < slo["timeslice"][0]  # sharing by time hurts latency as load grows


def test_lab4_design_file(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("policy: timeslice\nreplicas: 2\n")
    lab4.run(tmp_path / "o", design=d, quick=True)
    assert (tmp_path / "o" / "configs" / "device-plugin-config.yaml").exists()
    d.write_text("policy: teleport\n")
    with pytest.raises(UserError, match="unknown policy"):
        lab4.run(tmp_path / "p", design=d, quick=True)
