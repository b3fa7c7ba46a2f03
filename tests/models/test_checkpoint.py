"""Checkpoint model: closed forms (Young, Daly, half-interval lost work), hand-computed cases,
the ETTR closed form against the Monte Carlo of models/reliability, and bad input."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.checkpoint import (
    CheckpointJob,
    cost,
    daly_interval,
    evaluate,
    expected_lost_s,
    layout,
    mean_detect_s,
    plan,
    young_interval,
)
from gpuinfra.models.reliability import JobSpec, simulate
from gpuinfra.sim.kernel import Rngs

H = 3600.0


def test_young_matches_the_worked_examples_of_the_facts():
    # facts 3.6 [D]: at Llama 3's MTTI 3.1 h, delta 6.3 s -> 6.2 min and 148.8 s -> 30 min
    assert young_interval(6.3, 3.1 * H) / 60 == pytest.approx(6.2, abs=0.05)
    assert young_interval(148.8, 3.1 * H) / 60 == pytest.approx(30.0, abs=0.5)


def test_daly_tends_to_young_and_caps_at_mtbf():
    m = 10 * H
    for delta in (0.1, 1.0, 10.0):
        assert daly_interval(delta, m) == pytest.approx(young_interval(delta, m), rel=0.02)
    assert daly_interval(3 * m, m) == m
    # higher-order terms: Daly below Young by about delta at small delta/M
    assert daly_interval(60.0, m) < young_interval(60.0, m)


def test_lost_work_is_half_an_interval_when_failures_are_rare():
    assert expected_lost_s(600.0, 1e-9) == pytest.approx(300.0, rel=1e-5)
    # and the exact memoryless form agrees with sampling X mod c
    rng = Rngs(7).stream("test")
    lam, c = 1 / 5000.0, 3000.0
    x = rng.exponential(1 / lam, 200_000)
    assert expected_lost_s(c, lam) == pytest.approx(float((x % c).mean()), rel=0.01)
    assert expected_lost_s(c, lam) < c / 2  # failures come sooner rather than later


def test_state_layouts_are_zero_accounting():
    lay = layout("bf16-mixed", "adam")
    assert lay.resident_bytes_per_param == 16  # ZeRO: 2 + 2 + 12
    assert lay.saved_bytes_per_param == 14  # gradients are not saved
    assert layout("bf16", "none").saved_bytes_per_param == 2


def test_hand_computed_cost_on_local_nvme():
    job = CheckpointJob(params=7e9, gpus=8, storage="local-nvme", mode="sync", pinned_staging=True)
    c = cost(job)
    size = 7e9 * 14
    assert c.size_bytes == size and c.node_shard_bytes == size
    # one writer per node at 5 GB/s (the drive's write rate) with 0.1 ms first byte
    assert c.persist_s == pytest.approx(0.0001 + size / 5e9, rel=1e-9)
    assert c.blocking_s == pytest.approx(c.d2h_s + c.persist_s)
    # local NVMe does not outlive a replaced node: durable once 10 parallel S3 uploads of 9.8 GB are done
    part = size / 10
    upload = part / (0.15 + part / 87.5e6) * 10
    assert c.durable_lag_s == pytest.approx(size / upload)
    assert c.load_s == pytest.approx(size / (part / (0.15 + part / 87.5e6) * 10))
    a = cost(replace(job, mode="async"))
    assert a.blocking_s == pytest.approx(a.d2h_s) and a.durable_lag_s == pytest.approx(c.persist_s + c.durable_lag_s)
    n = cost(replace(job, storage="ebs-io2"))
    assert n.durable_lag_s == 0.0  # a network volume is durable by itself
    with pytest.raises(UserError, match="durable tier"):
        cost(replace(job, replicate_to="host-dram"))


def test_shared_filesystem_persist_slows_with_nodes():
    small = cost(CheckpointJob(params=70e9, gpus=64, storage="nfs-flash"))
    big = cost(CheckpointJob(params=70e9 * 64, gpus=64 * 64, storage="nfs-flash"))
    # same bytes per node, 64x the writers on one aggregate ceiling
    assert big.node_shard_bytes == pytest.approx(small.node_shard_bytes)
    assert big.persist_s > small.persist_s and big.persist_bound_by == "aggregate"


def test_fractions_sum_to_one_and_plan_is_the_best_point():
    for mode in ("sync", "async"):
        p = plan(CheckpointJob(mode=mode, interval_s=3600))
        for e in [*p.curve, p.recommended, p.fixed]:
            parts = e.ettr + e.stalls + e.lost_work + e.detection + e.requeue + e.restart
            assert parts == pytest.approx(1.0, abs=1e-12)
            assert 0 <= e.ettr < 1
        assert all(p.recommended.ettr >= e.ettr - 1e-12 for e in p.curve)


def test_sync_optimum_is_near_daly():
    p = plan(CheckpointJob(mode="sync", storage="nfs-flash"))
    assert p.recommended.interval_s == pytest.approx(p.daly_s, rel=0.05)


def test_closed_form_ettr_agrees_with_the_monte_carlo():
    job = CheckpointJob(params=70e9, gpus=1024, storage="nfs-flash", mode="sync", interval_s=1800)
    c = cost(job)
    e = evaluate(job, 1800.0, c)
    spec = JobSpec(
        nodes=job.nodes,
        days=60,
        checkpoint_interval_s=1800,
        checkpoint_stall_s=c.blocking_s,
        restart_s=c.restart_s,
        spares=10_000,
        rate_per_1000_node_days=job.rate_per_1000_node_days,
    )
    sims = [simulate(spec, seed=s).ettr for s in range(8)]
    assert sum(sims) / len(sims) == pytest.approx(e.ettr, abs=0.01)


def test_detection_default_is_the_fleet_mean():
    job = CheckpointJob()
    e = evaluate(job, 1800.0)
    assert e.detection == pytest.approx(mean_detect_s() / (e.mtbf_s + mean_detect_s() + cost(job).restart_s))


def test_bad_input_names_the_numbers():
    with pytest.raises(UserError, match=r"5\.67 TB.*2\.20 TB"):
        cost(CheckpointJob(params=405e9, gpus=8))
    with pytest.raises(UserError, match="mode"):
        cost(CheckpointJob(mode="lazy"))
    with pytest.raises(UserError, match="storage tier"):
        cost(CheckpointJob(storage="floppy"))
    with pytest.raises(UserError, match="cannot sustain"):
        cost(CheckpointJob(gpus=16384, storage="nfs-flash", writers_per_node=8))
    assert math.isfinite(plan(CheckpointJob(gpus=16384, storage="s3", writers_per_node=8)).recommended.ettr)
