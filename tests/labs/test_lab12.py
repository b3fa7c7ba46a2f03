"""Labs 1 and 2 compute their conclusions from the runs they make."""

import json

import pytest

from gpuinfra.labs import lab1, lab2, registry
from gpuinfra.models.memory import format_size


@pytest.fixture(scope="module")
def l1(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab1")
    lab1.run(out)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


@pytest.fixture(scope="module")
def l2(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab2")
    lab2.run(out)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_lab1_runs_every_activity(l1):
    s, html = l1
    assert {1, 2} <= set(registry())
    for heading in ("1. Analyze", "2. Explain", "3. Design", "4. Compare"):
        assert heading in html
    h = s["history"]
    assert h["knee_year"] == 2004 and h["clock_cagr_before"] > 0.2 > abs(h["clock_cagr_after"])
    assert f"{h['chip_peak_growth_after']:.0f}x" in html
    c = s["contrasts"]
    assert c["peak_ratio"] > c["bw_ratio"] > 1  # GPUs gained more in compute than in bandwidth
    assert f"{c['gemm_speedup']:.0f}x" in html
    assert [d["result"] for d in s["faster_cpu_design"]][0] == "OOM"


def test_lab2_runs_every_activity(l2):
    s, html = l2
    for heading in ("1. Explain", "2. Analyze", "3. Reproduce", "4. Design", "(2.4)", "(2.5)"):
        assert heading in html
    vb = s["fragmentation"]["variable-batch"]
    assert vb["(defaults)"]["oom"] and not vb["expandable_segments:True"]["oom"]
    assert format_size(vb["(defaults)"]["cached_free"]) in html
    misled = [v for v in s["monitoring"]["verdicts"] if v["misled"]]
    assert f"wrong in {len(misled)} of" in html
    assert not s["pressure"]["real"]["ran"]


def test_lab2_conclusions_follow_the_models(l2):
    s, _ = l2
    rows = {r["gpu"]: r for r in s["constraints"]["rows"]}
    assert rows["H100-SXM"]["decode GEMV 1x8192x8192"] == "memory"
    assert rows["H100-SXM"]["training GEMM 8192^3"] == "compute"
    assert not rows["T4"]["trains_alone"]["llama2-7b"]
    idle = [r["gpu_idle_fraction"] for r in s["feeding"]["workers"]]
    assert idle == sorted(idle, reverse=True)
