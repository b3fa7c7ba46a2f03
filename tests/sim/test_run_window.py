"""A run window never ends before it starts: a horizon before every arrival is refused by the scenario
builder, clamped by the engine, and never passes the invariant check (negative GPU-time is a bug)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.analysis.accounting import RunMeta, ledger, summarize
from gpuinfra.errors import UserError
from gpuinfra.io.scenario_build import build
from gpuinfra.io.scenario_load import parse_scenario
from gpuinfra.models.cost import PriceBook
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.invariants import InvariantError, check_invariants, require
from gpuinfra.sim.recorder import Recorder
from tests.conftest import cluster, pod, table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _late_scenario(tmp_path: Path, submit: float, horizon: float) -> str:
    (tmp_path / "late.csv").write_text(f"job_id,submit_time_s,duration_s,num_gpu\nj1,{submit:g},100,1\n")
    text = (EXAMPLES / "small-cluster.yaml").read_text().replace("trace: jobs.csv", "trace: late.csv")
    return text.replace("seed: 1\n", f"seed: 1\nhorizon_s: {horizon:g}\n")


def test_scenario_with_every_pod_after_the_horizon_is_refused_at_horizon_line(tmp_path: Path) -> None:
    sc = parse_scenario(_late_scenario(tmp_path, 5000, 1000), "late.yaml")
    with pytest.raises(UserError) as e:
        build(sc, tmp_path)
    msg = str(e.value)
    assert msg.startswith("late.yaml:4 (horizon_s): no pod arrives before horizon_s=1000 s")
    assert "'j1' (late.csv:2), is submitted at 5000 s" in msg
    assert "raise horizon_s above 5000" in msg


def test_scenario_with_an_arrival_before_the_horizon_builds(tmp_path: Path) -> None:
    built = build(parse_scenario(_late_scenario(tmp_path, 500, 1000), "late.yaml"), tmp_path)
    assert len(built.pods) == 1


def _generator(rate: str) -> str:
    return (
        (EXAMPLES / "execution.yaml").read_text().replace("arrival_rate_per_hour: 2", f"arrival_rate_per_hour: {rate}")
    )


@pytest.mark.parametrize("rate", ["1e-300", "0.00001"])
def test_generator_rate_whose_span_exceeds_100_years_is_refused_at_its_line(rate: str) -> None:
    with pytest.raises(UserError) as e:
        build(parse_scenario(_generator(rate), "g.yaml"), None)
    msg = str(e.value)
    assert msg.startswith("g.yaml:15 (workload.generator.arrival_rate_per_hour):")
    assert "100 years" in msg


def test_generator_arriving_after_the_horizon_is_refused() -> None:
    with pytest.raises(UserError) as e:
        build(parse_scenario(_generator("0.0001"), "g.yaml"), None)
    assert str(e.value).startswith("g.yaml:7 (horizon_s): no pod arrives before horizon_s=259200 s")


@settings(max_examples=30, deadline=None)
@given(submit=st.floats(0, 1e6), horizon=st.floats(1, 1e6), gap=st.floats(0, 1e5))
def test_engine_window_never_negative(submit: float, horizon: float, gap: float) -> None:
    """Whatever the horizon and arrivals, the engine's window and every GPU-time figure are >= 0."""
    c = cluster(("n", "T4", 2, 64000, 65536, 1))
    r = ReplayEngine(c, table(pod("a", submit, 50), pod("b", submit + gap, 50)), Profile(), seed=1, horizon_s=horizon)
    res = r.run()
    assert res.horizon_s >= res.recorder.start_s
    assert res.invariants.ok
    assert res.invariants.capacity_x_time_gpu_hours >= 0
    led = ledger(res, PriceBook({"T4": 1.0}, {"T4": "test"}, "on_demand"))
    s = summarize(
        res, PriceBook({"T4": 1.0}, {"T4": "test"}, "on_demand"), RunMeta("t", 1, "t", ()), led, _metrics(res)
    )
    assert s["horizon"]["duration_s"] >= 0
    assert s["gpu_time"]["capacity_gpu_hours"] >= 0
    assert s["invariants"]["gpu_time_balance"]["ok"]


def _metrics(res):
    from gpuinfra.analysis.accounting import interval_metrics

    return interval_metrics(res)


def test_invariant_check_refuses_a_window_that_ends_before_it_starts() -> None:
    c = cluster(("n", "T4", 2, 64000, 65536, 1))
    rec = Recorder(c, 300.0, start_s=5000.0)
    inv = check_invariants(c, rec, 1000.0)
    assert not inv.gpu_time_balance
    assert not inv.ok
    with pytest.raises(InvariantError):
        require(inv)
