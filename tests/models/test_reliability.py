"""Failure mix, detection signals, the job reliability model, GPU vs CPU OOM and incidents."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.incidents import INCIDENTS
from gpuinfra.models.oom import OomSetup, compare
from gpuinfra.models.reliability import (
    LLAMA3_RATE_PER_1000_NODE_DAYS,
    POLICIES,
    JobSpec,
    expected_ettr,
    failure_mix,
    signals,
    simulate,
)


def test_failure_mix_is_llama3_table5():
    mix = failure_mix()
    assert len(mix) == 18 and sum(c.share for c in mix) == pytest.approx(1.0)
    gpu = sum(c.share for c in mix if c.component.startswith(("Faulty GPU", "GPU ", "Silent")))
    assert gpu == pytest.approx((148 + 72 + 19 + 17 + 6 + 6) / 419)
    assert pytest.approx(3.79, abs=0.01) == LLAMA3_RATE_PER_1000_NODE_DAYS  # facts 3.1: 3.8 per 1,000 node-days
    assert all(c.signal in signals() for c in mix)
    assert signals()["xid_log"].mean_s == 15 and signals()["nccl_watchdog"].mean_s == 600


def test_failures_reproduce_the_configured_rate():
    spec = JobSpec(nodes=512, days=60, spares=10_000, restart_s=0.0, checkpoint_interval_s=60)
    n = [simulate(spec, seed=s).failures for s in range(8)]
    expect = 512 * 60 * LLAMA3_RATE_PER_1000_NODE_DAYS / 1000  # ~116 per run (downtime removes a little)
    mean = float(np.mean(n))
    assert abs(mean - expect) < 4 * math.sqrt(expect / len(n)) + 0.02 * expect


def test_closed_form_when_repairs_never_hold_the_job():
    spec = JobSpec(nodes=256, days=60, spares=10_000)
    sim = np.mean([simulate(spec, seed=s).ettr for s in range(12)])
    assert sim == pytest.approx(expected_ettr(spec), abs=0.004)


def test_policies_order_as_they_must():
    ettr = {
        p: np.mean(
            [
                simulate(JobSpec(nodes=256, days=30, policy=p, spares=8, lemon_fraction=0.02), seed=s).ettr
                for s in range(6)
            ]
        )
        for p in POLICIES
    }
    assert ettr["naive"] < ettr["cordon"] < ettr["spares"]
    naive = simulate(JobSpec(nodes=64, days=30, policy="naive"), seed=1)
    assert naive.crash_loops > 0 and naive.lost_gpu_hours["crash_loops"] > 0
    spares = simulate(JobSpec(nodes=64, days=30, policy="spares", spares=100), seed=1)
    assert spares.lost_gpu_hours["waiting_for_repair"] == 0 and spares.crash_loops == 0


def test_lost_gpu_hours_add_up():
    out = simulate(JobSpec(nodes=32, days=20, policy="cordon"), seed=3)
    downtime = out.wall_s - out.productive_s
    assert out.total_lost_gpu_hours == pytest.approx(downtime * 32 * 8 / 3600, rel=0.02)
    with pytest.raises(UserError, match="unknown remediation policy"):
        simulate(JobSpec(policy="pray"))


def test_gpu_oom_is_abrupt_cpu_oom_degrades():
    o = compare(OomSetup(capacity_gib=80, start_fraction=0.8, end_fraction=1.3, ramp_min=30, minutes=60))
    assert o.gpu_oom_at_min == pytest.approx(12.0, abs=0.5)  # demand crosses capacity at 0.2/0.5 x 30 min
    assert o.gpu_progress[-1] == o.gpu_progress[len(o.gpu_progress) // 2]  # no progress after death
    assert o.cpu_work_min > o.gpu_work_min and o.cpu_killed_at_min is None
    tight = compare(OomSetup(swap_gib=4))
    assert tight.cpu_killed_at_min is not None and tight.cpu_killed_at_min > tight.gpu_oom_at_min


@pytest.mark.parametrize("name", list(INCIDENTS))
def test_incident_postmortems_equal_the_simulation(name):
    fn, (hurried, safer) = INCIDENTS[name]
    a, b = fn(hurried), fn(safer)
    for inc in (a, b):
        pm = inc.postmortem()
        assert pm["impact"]["gpu_hours_lost"] == pytest.approx(
            sum(1 - m.step_rate for m in inc.minutes) * inc.gpus / 60, abs=1e-3
        )
        assert pm["impact"]["time_to_detect_min"] >= 0 and pm["debugging_path"] and pm["timeline"]
        assert "# Postmortem" in inc.postmortem_markdown()
    assert b.gpu_hours_lost < a.gpu_hours_lost  # the safer action is cheaper


def test_closed_form_ettr_stays_in_unit_interval_at_extreme_failure_rates():
    # 2,000 nodes at 50 failures per 1,000 node-days fail every ~14 minutes: the half-interval rule
    # (1 - lambda T / 2) would go negative; the exact form keeps ETTR in (0, 1]
    from dataclasses import replace

    from gpuinfra.models.reliability import JobSpec, expected_ettr, failure_mix, signals

    e = expected_ettr(replace(JobSpec(), nodes=2000, rate_per_1000_node_days=50.0))
    assert 0.0 < e < 0.2
    # and for rare failures it is the half-interval rule, to first order
    small = replace(JobSpec(), nodes=8, rate_per_1000_node_days=1.0)
    lam = small.nodes * small.rate_per_1000_node_days / 1000 / 86400
    d = sum(c.share * signals()[c.signal].mean_s for c in failure_mix())
    rule = (1 - lam * small.checkpoint_interval_s / 2) / (1 + lam * (d + small.restart_s))
    assert abs(expected_ettr(small) - rule) < 1e-4
