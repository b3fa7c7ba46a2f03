"""Lab 10 computes its conclusions from the files it builds and the rollouts it simulates."""

import json

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab10, registry
from tests.labs.report_checks import figure_problems, figures
from tests.labs.test_lab_reports import test_no_physically_impossible_number as _numbers


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("l10")
    lab10.run(out, quick=True)
    return out, json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_every_activity_and_figures(quick):
    out, s, html = quick
    assert 10 in registry()
    for h in ("1. Explain", "2. Analyze compatibility", "3. Package the same model", "4. Quantization", "5. Design"):
        assert h in html
    assert (out / "artifacts" / "mlp-malicious.pt").exists()
    assert "xaxis" in html and "yaxis" in html


def test_claims_are_read_off_the_runs(quick):
    _, s, html = quick
    mal = next(r for r in s["artifacts"]["inspected"] if r["file"] == "mlp-malicious.pt")
    assert mal["scan"]["verdict"] == "unsafe"
    ro = s["rollout"]["results"]
    assert ro["bluegreen"]["none"]["peak_gpus"] == 16 and ro["rolling"]["none"]["peak_gpus"] == 9
    best = s["design"]["strongest_baseline"]
    bw = sum(v["wrong"] + v["refused"] for v in ro[best].values())
    assert f"({bw:,.0f})" in html
    assert all(v["invariants_ok"] for r in ro.values() for v in r.values())
    sw = s["rollout"]["weight_sweep"]
    assert [x["weight"] for x in sw] == sorted(x["weight"] for x in sw)
    assert all(0 <= x["caught_by_canary"] <= x["runs"] for x in sw)


def test_design_is_used_and_bad_design_refused(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("strategy: rolling\nbake_s: 0\nfailure: {bad_fraction: 0.5, error_fraction: 0.5}\n")
    lab10.run(tmp_path / "o", design=d, quick=True)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["design"]["spec"]["strategy"] == "rolling" and "design-failure" in s["rollout"]["results"]["design"]
    d.write_text("strategy: teleport\n")
    with pytest.raises(UserError, match="strategy"):
        lab10.run(tmp_path / "p", design=d, quick=True)


def test_report_checks(quick):
    _, s, html = quick
    assert figures(html) and figure_problems(html) == []
    _numbers({10: (s, html)}, 10)
