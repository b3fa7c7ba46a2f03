"""End to end: a slice of the real openb trace replayed on the real cluster, invariants and
determinism (same scenario and seed, same bytes in every output file)."""

import json

import pandas as pd
import pytest

from gpuinfra.io.scenario import parse_scenario
from gpuinfra.run import simulate, write_run_dir

SLICE = """\
name: openb-slice
seed: 11
cluster: {openb: gpu_node}
workload: {trace: "openb:default", limit: 2500, scale: 2}
scheduler:
  scores: [{name: MostAllocated}, {name: LeastAllocated, weight: 0.5}]
  tie_break: random
horizon_s: 10900000
prices:
  overrides:
    G1: {same_as: V100-32GB, source: test}
    G2: {same_as: V100-32GB, source: test}
    G3: {same_as: V100-32GB, source: test}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    sc = parse_scenario(SLICE, "slice.yaml")
    dirs = []
    for k in range(2):
        out = simulate(sc, None)
        d = tmp_path_factory.mktemp(f"run{k}")
        write_run_dir(out, d)
        dirs.append((out, d))
    return dirs


def test_invariants_hold_on_the_real_trace(runs):
    out, d = runs[0]
    s = out.summary
    assert s["invariants"]["gpu_time_balance"]["ok"], s["invariants"]
    assert s["invariants"]["no_overcommit"]["ok"]
    assert s["invariants"]["no_overcommit"]["peak_device_used_milli"] <= 1000
    g = s["gpu_time"]
    assert g["allocated_gpu_hours"] + g["idle_gpu_hours"] + g["unavailable_gpu_hours"] == pytest.approx(
        g["capacity_gpu_hours"], rel=1e-9
    )
    assert s["workload"]["pods"] == 5000
    assert sum(s["pods"]["outcomes"].values()) == 5000
    # the ledger and the metrics agree with the summary
    led = pd.read_parquet(d / "pods.parquet")
    assert led["gpu_hours"].sum() == pytest.approx(g["allocated_gpu_hours"], rel=1e-9)
    m = pd.read_parquet(d / "metrics.parquet")
    dt = m["t_end_s"] - m["t_start_s"]
    assert (m["allocated_gpus"] * dt).sum() / 3600 == pytest.approx(g["allocated_gpu_hours"], rel=1e-9)
    assert (m["allocated_gpus"] <= m["capacity_gpus"] + 1e-9).all()


def test_same_seed_same_bytes(runs):
    (_, a), (_, b) = runs
    for name in ("summary.json", "metrics.parquet", "pods.parquet", "events.jsonl", "scenario.yaml", "report.html"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_other_seed_changes_random_choices():
    sc = parse_scenario(SLICE, "slice.yaml")
    a = simulate(sc, None, seed=11).ledger
    b = simulate(sc, None, seed=12).ledger
    assert not a["node"].equals(b["node"])


def test_event_log_is_consistent_with_ledger(runs):
    _, d = runs[0]
    events = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    binds = sum(e["event"] == "bind" for e in events)
    led = pd.read_parquet(d / "pods.parquet")
    assert binds == led["start_s"].notna().sum()
    assert [e["t_s"] for e in events] == sorted(e["t_s"] for e in events)
