"""Lab 15 computes its conclusions from the telemetry it simulates, on the one simulator."""

import json

import numpy as np
import pytest

from gpuinfra.labs import lab15, registry
from gpuinfra.obs.export import write_openmetrics
from gpuinfra.obs.simulate import simulate_telemetry


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab15")
    lab15.run(out, quick=True)
    return out, json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_lab15_every_activity_and_computed_claims(quick):
    tmp_path, s, html = quick
    assert 15 in registry()
    for h in ("1. Explain", "2. Analyze", "3. Correlate", "4. Design"):
        assert h in html
    nv, ds = s["evaluations"]["naive"], s["evaluations"]["designed"]
    assert f"{nv['pages_per_day']:.0f} times a day" in html and f"{ds['pages_per_day']:.0f} times a day" in html
    assert ds["precision"] > nv["precision"]
    for f in ("metrics.om", "rules-designed.yml", "rules-naive.yml"):
        assert (tmp_path / f).stat().st_size > 0
    if s["promtool"]["ran"]:
        assert s["promtool"]["designed"]["test_ok"] and s["promtool"]["naive"]["test_ok"]


def test_lab15_run_checks_the_cluster_invariants(quick):
    _, s, _ = quick
    inv = s["invariants"]
    assert inv["ok"] and inv["no_overcommit"] and inv["peak_device_used_milli"] <= 1000
    assert s["correlate"]["allocated_gpu_hours"] <= s["cluster"]["gpus"] * s["cluster"]["hours"] + 1e-9


@pytest.mark.parametrize("args", [dict(nodes=4, hours=6.0, seed=7), dict(nodes=1, gpus_per_node=4, hours=2.0, seed=7)])
def test_no_node_ever_holds_more_gpus_than_it_has(args):
    # the bug this catches: a notebook placed on a GPU a job still held (9 GPUs on an 8-GPU node)
    tel = simulate_telemetry(**args)
    cap = {dict(k)["node"]: v for k, v in tel.series["kube_node_status_capacity"].items()}
    per_node: dict[str, np.ndarray] = {}
    for k, v in tel.series["kube_pod_container_resource_requests"].items():
        n = dict(k)["node"]
        per_node[n] = per_node.get(n, 0) + np.nan_to_num(v)
    for n, held in per_node.items():
        assert (held <= cap[n]).all(), (n, held.max(), cap[n][0])
    # and a GPU reports at most one pod at a time
    seen: dict[tuple[str, str], np.ndarray] = {}
    for k, v in tel.series["DCGM_FI_DEV_GPU_UTIL"].items():
        d = dict(k)
        if "pod" in d:
            key = (d["Hostname"], d["gpu"])
            seen[key] = seen.get(key, 0) + (~np.isnan(v)).astype(int)
    assert all((x <= 1).all() for x in seen.values())


def test_same_seed_same_bytes(tmp_path):
    for k in range(2):
        write_openmetrics(simulate_telemetry(nodes=1, gpus_per_node=4, hours=2.0, seed=3), tmp_path / f"m{k}.om")
    assert (tmp_path / "m0.om").read_bytes() == (tmp_path / "m1.om").read_bytes()
    write_openmetrics(simulate_telemetry(nodes=1, gpus_per_node=4, hours=2.0, seed=4), tmp_path / "m2.om")
    assert (tmp_path / "m0.om").read_bytes() != (tmp_path / "m2.om").read_bytes()


def test_minutes_to_detect_never_negative_and_never_fired_says_so(quick):
    _, s, html = quick
    for name in ("naive", "designed"):
        for sc in s["evaluations"][name]["scores"]:
            assert sc["mean_ttd_s"] is None or sc["mean_ttd_s"] >= 0
    assert lab15._ttd({"episodes": 0, "mean_ttd_s": None}) == "never fired"
    assert lab15._ttd({"episodes": 3, "mean_ttd_s": None}) == "caught none"
    assert lab15._ttd({"episodes": 1, "mean_ttd_s": 90.0}) == "1.5"


def test_every_figure_has_units_and_a_legend(quick):
    out, _, _ = quick
    figs = lab15.correlate_figures(_full_summary(out))
    assert len(figs) == 4
    for fig in figs.values():
        lay = fig.layout
        for title in (lay.xaxis.title.text, lay.yaxis.title.text):
            assert title and "(" in title and ")" in title  # a unit in parentheses
        if len(fig.data) > 1:
            assert lay.showlegend is not False and all(t.name for t in fig.data)
        assert len(fig.data) <= 8


def _full_summary(out):
    """The summary with the correlate series (summary.json keeps only the scalars): rerun correlate."""
    tel = simulate_telemetry(nodes=2, hours=3.0, seed=7)
    s = json.loads((out / "summary.json").read_text())
    s["correlate"] = lab15.correlate(tel, s["usd_per_gpu_hour"])
    return s
