"""Labs 7 and 8 compute their conclusions from the runs they make, and use --design."""

from __future__ import annotations

import json

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab7, registry


@pytest.fixture(scope="module")
def l7(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab7")
    lab7.run(out, quick=True)
    return out, json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_lab7_every_activity_with_computed_claims(l7):
    out, s, html = l7
    assert 7 in registry()
    for h in (
        "1. Training vs inference",
        "2. Retry behaviour",
        "3. Design",
        "4. Batch jobs vs long-running",
        "5. Execution phases",
    ):
        assert h in html
    bug = s["retries"]["cases"]["batch job with a bug (exits 1 after 10 min)"]
    assert bug["Always"]["attempts"] > bug["OnFailure"]["attempts"] > bug["Never"]["attempts"]
    assert f"{bug['Always']['gpu_hours']:,.0f} GPU-hours burned" in html
    st = s["checkpoint"]["strategies"]
    assert st["no checkpoints"]["finish_days"] > max(v["finish_days"] for k, v in st.items() if k != "no checkpoints")
    best = s["checkpoint"]["best_baseline"]
    assert f"{st[best]['ettr_simulated']:.4f}" in html and "design: async-local-nvme" in st
    for v in st.values():
        assert 0 < v["ettr_simulated"] <= 1


def test_lab7_trace_opens_as_chrome_trace(l7):
    out, s, _ = l7
    tr = json.loads((out / "trace.json").read_text())
    xs = [e for e in tr["traceEvents"] if e["ph"] == "X"]
    assert xs and all({"ts", "dur", "pid", "tid", "name"} <= set(e) for e in xs)
    assert s["phases"]["events"] == len(tr["traceEvents"])


def test_lab7_figures_have_axis_titles(l7):
    _, _, html = l7
    for t in ("checkpoint interval (minutes)", "fraction of wall time", "GPU-hours", "failure rate (x Llama"):
        assert t in html


def test_lab7_uses_the_design(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("name: hourly-sync-s3\ncheckpoint: {storage: s3, mode: sync, interval: 60}\n")
    s = lab7.checkpoint_design(lab7.load_model(d, lab7.CheckpointFile), 16, 2.0, [0])
    v = s["strategies"]["design: hourly-sync-s3"]
    assert v["interval_min"] == 60 and v["blocking_s"] > 1
    d.write_text("checkpoint: {storage: s3, mode: lazy}\n")
    with pytest.raises(UserError, match=r"d\.yaml:1.*checkpoint\.mode"):
        lab7.run(tmp_path / "o", design=d, quick=True)


@pytest.fixture(scope="module")
def l8(tmp_path_factory):
    from gpuinfra.labs import lab8

    out = tmp_path_factory.mktemp("lab8")
    lab8.run(out, quick=True)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_lab8_every_activity_with_computed_claims(l8):
    s, html = l8
    assert 8 in registry()
    for h in (
        "1. Why data access",
        "2. How storage latency",
        "2b. Checkpoints, artifacts",
        "3. Profile",
        "4. Redesign",
    ):
        assert h in html
    for v in s["data_kinds"].values():  # the pick is the fastest tier that meets the durability need
        ok = {t: x["s"] for t, x in v["times"].items() if x["durable"] or not v["needs_durability"]}
        assert v["best"] == min(ok, key=ok.get)
    ex = s["explain"]["rows"]
    assert ex[-1]["compute_only"] / ex[0]["compute_only"] > ex[-1]["achieved"] / ex[0]["achieved"]
    d = s["idle"]["differential"]
    assert d["compute_only"] >= d["fully_cached"] >= d["cold"] and 0 <= d["prep_stall"] + d["fetch_stall"] <= 1
    assert s["idle"]["idle_gpu_hours"] > 0 and f"{s['idle']['idle_gpu_hours']:,.0f} GPU-hours idle" in html
    rd = s["redesign"]
    best = rd["design"][rd["best_design"]]
    assert f"{best['achieved_per_gpu']:,.0f} against {rd['levers'][rd['best_lever']]['achieved_per_gpu']:,.0f}" in html
    for r in s["storage"]["tiers"]:
        assert 0 <= r["util"] <= 1
    for t in ("images/s per GPU", "GPU utilization (fraction)", "nodes reading the dataset"):
        assert t in html


def test_lab8_uses_the_design(tmp_path):
    from gpuinfra.labs import lab8

    d = tmp_path / "p.yaml"
    d.write_text("pipeline: {storage: local-nvme, nodes: 2}\nredesigns:\n  more workers: {workers_per_gpu: 16}\n")
    lab8.run(tmp_path / "o", design=d, quick=True)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["pipeline"]["storage"] == "local-nvme" and list(s["redesign"]["design"]) == ["more workers"]
    d.write_text("pipeline: {workers_per_gpu: 0}\n")
    with pytest.raises(UserError, match="0 CPU workers"):
        lab8.run(tmp_path / "o2", design=d, quick=True)
