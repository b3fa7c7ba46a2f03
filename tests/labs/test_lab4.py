"""Lab 4 computes its conclusions from the runs it makes; its design is the one simulated and exported."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from gpuinfra.errors import UserError
from gpuinfra.labs import lab4, registry


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab4")
    lab4.run(out, quick=True)
    return out, json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_lab4_every_activity(quick):
    tmp_path, s, html = quick
    assert 4 in registry()
    for h in ("1. Explain", "2. Compare isolation", "3. Design", "4. Evaluate"):
        assert h in html
    pol = s["isolation"]["policies"]
    assert f"{pol['timeslice']['gpus']:g} GPUs" in html
    assert s["design"]["exported"]["validated"] and (tmp_path / "configs" / "mig-parted-config.yaml").exists()
    slo = {p: [x["slo_attainment"] for x in v] for p, v in s["evaluate"]["sweep"].items()}
    assert slo["timeslice"][-1] < slo["timeslice"][0]  # sharing by time hurts latency as load grows
    for r in [*pol.values(), s["design"]["result"]]:
        assert r["invariants"]["ok"]


def _pol(gpus, slo, worst, oom=0, blast=1.0, configs=1):
    return {
        "gpus": gpus,
        "slo_attainment": slo,
        "min_tenant_slo": worst,
        "oom_tenants": oom,
        "blast_radius": blast,
        "node_configs": configs,
    }


def test_recommendation_needs_every_tenant_above_the_floor():
    # the case the issue found: 83.4 % of all requests within SLO while one tenant gets 0 %
    pol = {"mixed": _pol(4, 0.834, 0.0), "mps": _pol(3, 0.98, 0.92, blast=3.0), "whole": _pol(6, 1.0, 1.0)}
    rec = lab4.recommend(pol, 0.9)
    assert rec["policy"] == "mps" and rec["meets_floor"] and "mixed" not in rec["qualifying"]
    # nobody meets it: the best worst tenant, said plainly
    rec2 = lab4.recommend({"a": _pol(2, 0.9, 0.1), "b": _pol(3, 0.8, 0.5)}, 0.9)
    assert rec2 == {"policy": "b", "meets_floor": False, "qualifying": [], "floor": 0.9}
    assert lab4.dominating(pol, pol["mixed"]) == ["mps"]
    assert lab4.dominating(pol, pol["mps"]) == []
    # a full tie goes to the design's own policy
    tie = {"mig": _pol(4, 0.95, 0.93, configs=2), "mixed": _pol(4, 0.95, 0.93, configs=2)}
    assert lab4.recommend(tie, 0.9)["policy"] == "mig" and lab4.recommend(tie, 0.9, "mixed")["policy"] == "mixed"


def test_report_names_a_better_baseline_and_the_worst_tenant(quick):
    _, s, html = quick
    d = s["design"]
    r = d["result"]
    assert f"{r['min_tenant_slo']:.1%}" in html and r["worst_tenant"] in html
    if d["dominated_by"]:
        assert "does better on every count in the same run" in html
    else:
        assert "No policy of the same run does better" in html
    rec = s["recommendation"]
    chosen = d["baselines"][rec["policy"]]
    if rec["meets_floor"]:
        assert chosen["min_tenant_slo"] >= s["slo_floor"]
    assert f"Recommended: {rec['policy']}" in html


def test_mig_and_mixed_rows_are_explained_when_equal(quick):
    _, s, html = quick
    pol = s["isolation"]["policies"]
    if lab4.same_numbers(pol["mig"], pol["mixed"]):
        assert "measure the same because they run the same hardware" in html
        assert pol["mig"]["training_mig_layout"] == ["7g.80gb"]
    assert pol["mig"]["node_configs"] == 2  # the inference layout and the training GPUs' full instance


def test_mig_layout_is_held_across_loads(quick):
    _, s, html = quick
    sweep = s["evaluate"]["sweep"]
    for p in ("mig", "mixed"):
        layouts = {tuple(x["mig_layout"]) for x in sweep[p]}
        assert len(layouts) == 1
        gpus = {x["gpus"] for x in sweep[p]}
        assert len(gpus) == 1
        slo = [x["slo_attainment"] for x in sweep[p]]
        assert all(a >= b for a, b in zip(slo, slo[1:]))  # fixed deployment: more load, never better
    assert "held fixed as load rises" in html


def test_every_figure_has_units_and_a_legend(quick):
    _, s, _ = quick
    for name, fig in lab4.figures(s).items():
        lay = fig.layout
        for title in (lay.xaxis.title.text, lay.yaxis.title.text):
            assert title and "(" in title and ")" in title, (name, title)
            assert title != "value"
        if len(fig.data) > 1:
            assert lay.showlegend is not False and all(t.name for t in fig.data)


def _exported_layout(cfg_dir: Path) -> list[str]:
    cm = yaml.safe_load((cfg_dir / "mig-parted-config.yaml").read_text())
    inner = yaml.safe_load(cm["data"]["config.yaml"])
    name = yaml.safe_load((cfg_dir / "node-labels.yaml").read_text())["metadata"]["labels"]["nvidia.com/mig.config"]
    (entry,) = inner["mig-configs"][name]
    return [p for p, n in entry["mig-devices"].items() for _ in range(n)]


def test_exported_mig_config_is_the_simulated_layout(quick):
    out, s, _ = quick
    assert Counter(_exported_layout(out / "configs")) == Counter(s["design"]["result"]["mig_layout"])


def test_a_users_layout_is_simulated_and_exported(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("policy: mixed\nlayout: [3g.40gb, 3g.40gb]\n")
    lab4.run(tmp_path / "o", design=d, quick=True)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["design"]["result"]["mig_layout"] == ["3g.40gb", "3g.40gb"]
    assert Counter(_exported_layout(tmp_path / "o" / "configs")) == Counter({"3g.40gb": 2})
    # the services sit in 3g.40gb instances of that layout, except chat-7b, which no 3g.40gb serves
    # (an M/D/1 queue there answers 74 % within its SLO, below the 90 % target: tests/sim) and runs whole
    shares = {t["tenant"]: t["share"] for t in s["design"]["result"]["tenants"] if t["kind"] == "inference"}
    assert shares == {"chat-7b": "whole", "assist-7b": "3g.40gb", "embed-1b": "3g.40gb", "rerank-1b": "3g.40gb"}


def test_lab4_design_file(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("policy: timeslice\nreplicas: 2\n")
    lab4.run(tmp_path / "o", design=d, quick=True)
    assert (tmp_path / "o" / "configs" / "device-plugin-config.yaml").exists()
    d.write_text("policy: teleport\n")
    with pytest.raises(UserError, match="unknown policy"):
        lab4.run(tmp_path / "p", design=d, quick=True)


@pytest.mark.parametrize(
    "text, field",
    [
        ("replicas: 0\n", "replicas"),
        ("replicas: four\n", "replicas"),
        ("replicas: 2.5\n", "replicas"),
        ("policy: mps\nlayout: [3g.40gb]\n", "layout"),
        ("layout: [4g.40gb, 4g.40gb]\n", "layout"),
        ("colour: blue\n", "colour"),
    ],
)
def test_bad_designs_are_refused_naming_the_field(tmp_path, text, field):
    d = tmp_path / "d.yaml"
    d.write_text(text)
    with pytest.raises(UserError) as e:
        lab4.load_design(d)
    assert e.value.where == f"{d}: {field}"


def test_bad_design_exits_2_with_one_message(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("replicas: four\n")
    env = {**os.environ, "PYTHONPATH": str(Path(lab4.__file__).parents[2])}
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "lab", "run", "4", "--quick", "--design", str(d), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2
    assert "replicas" in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_shipped_design_loads_and_is_packaged():
    spec, label = lab4.load_design(lab4.DESIGN)
    assert lab4.DESIGN.name.startswith("lab4-") and spec["policy"] in ("whole", "timeslice", "mps", "mig", "mixed")
    assert spec["layout"] == ["3g.40gb", "3g.40gb"]


def test_same_seed_same_bytes():
    a, b = (json.dumps(lab4.isolation(10.0, 1.0), sort_keys=True) for _ in range(2))
    assert a == b
