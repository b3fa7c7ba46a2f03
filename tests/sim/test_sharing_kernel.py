"""The sharing simulation runs on the kernel and holds GPUs through ClusterState: the invariants
hold on every policy, an over-full GPU is refused where it would happen, runs are deterministic."""

from __future__ import annotations

import json
import math

import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.sharing import Share, Tenant, md1_within, mig_share
from gpuinfra.sim.cluster import OverCommitError
from gpuinfra.sim.sharing import (
    POLICIES,
    Seat,
    SharingRun,
    evaluate_policy,
    mixed_workload,
    plan_mig,
    simulate_isolated,
    simulate_shared,
)

GPU = "H100-SXM"


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_checks_the_invariants(policy):
    r = evaluate_policy(policy, mixed_workload(GPU, 1.0), GPU, 20.0, 3)
    inv = r.invariants
    assert inv["ok"] and inv["peak_device_used_milli"] <= 1000
    # every GPU of the fleet exists for the whole run: capacity x time = GPUs x 20 s
    assert inv["capacity_x_time_gpu_hours"] >= r.gpus * 20 / 3600 - 1e-12


def test_allocated_gpu_time_is_the_seats_by_hand():
    # whole: 6 tenants x 1 GPU x 20 s; time-slicing x4: 6 replicas of 250 milli x 20 s
    w = evaluate_policy("whole", mixed_workload(GPU), GPU, 20.0, 0).invariants
    assert w["allocated_gpu_hours"] == pytest.approx(6 * 20 / 3600)
    t = evaluate_policy("timeslice", mixed_workload(GPU), GPU, 20.0, 0, replicas=4).invariants
    assert t["allocated_gpu_hours"] == pytest.approx(6 * 0.25 * 20 / 3600)
    # MIG 3g.40gb holds floor(1000 x 3 / 7) = 428 milli
    tn = Tenant("x", "training", 10, 0.1, 0.01)
    run = SharingRun(GPU, [Seat(tn, 0, "mig", mig_share(GPU, "3g.40gb"), 428)], 1, 10.0, 0)
    _, _, inv = run.run()
    assert inv.allocated_gpu_hours == pytest.approx(0.428 * 10 / 3600)


def test_an_over_full_gpu_is_refused_where_it_happens():
    tn = [Tenant(f"t{k}", "training", 1, 0.1, 0.01) for k in range(5)]
    with pytest.raises(OverCommitError):
        SharingRun(GPU, [Seat(t, 0, "timeslice", Share("timeslice"), 250) for t in tn], 1, 5.0, 0).run()
    with pytest.raises(UserError, match="replicas"):
        simulate_shared(tn, "timeslice", GPU, 5.0, 0, replicas=4)


def test_same_seed_same_bytes_and_seeds_matter():
    def dump(seed):
        return json.dumps(evaluate_policy("mps", mixed_workload(GPU), GPU, 30.0, seed).as_dict(), sort_keys=True)

    assert dump(4) == dump(4)
    assert dump(4) != dump(5)


def test_isolated_training_runs_at_the_share_rate_exactly():
    t = Tenant("ft", "training", 30, compute_s=0.2, memory_s=0.05)
    sh = mig_share(GPU, "3g.40gb")
    r = simulate_isolated(t, sh, 30.0, 0)
    assert r.relative_throughput == pytest.approx(t.alone_s / t.time_on(sh.sm_frac, sh.bw_frac))


def test_md1_queue_by_hand():
    # requests of 0.1 s at 1 per second: at this low load most requests wait for nobody
    t = Tenant("q", "inference", 1, compute_s=0.1, memory_s=0.01, rate_per_s=1.0, slo_s=0.1 + 1e-9)
    r = simulate_isolated(t, Share("whole"), 2000.0, 1)
    # P(no wait) for M/D/1 = 1 - rho = 0.9; a request within SLO is exactly one that did not wait
    assert r.slo_attainment == pytest.approx(0.9, abs=0.02)
    assert r.p50_s == pytest.approx(0.1)


def test_mig_layout_is_one_layout_held_for_every_mig_gpu():
    ts = [t for t in mixed_workload(GPU, 1.0) if t.kind == "inference"]
    plan = plan_mig(GPU, ts)
    for _, gi, prof in plan.seats:
        assert prof in plan.layout and 0 <= gi < plan.gpus
    user = plan_mig(GPU, ts, ["3g.40gb", "3g.40gb"])
    # by hand: chat-7b's request streams 64 x 14 GB at half the bandwidth (0.535 s) at 1 request/s:
    # P(W <= 1 - 0.535) = (1 - 0.535) e^(0.465) = 0.74 < 0.9, so no 3g.40gb serves it (whole GPU);
    # assist-7b (0.5/s): (1 - 0.267) e^(0.5 x 0.465) = 0.92, served; the embeddings fit too: one GPU
    assert user.layout == ["3g.40gb", "3g.40gb"] and user.gpus == 2
    assert [t.name for t in user.unserved] == ["chat-7b"]


def test_md1_closed_form_by_hand_and_against_the_simulation():
    # x < D: P(W <= x) = (1 - rho) e^(lambda x); D > SLO: never; rho >= 1: never
    assert md1_within(1.0, 0.5, 0.8) == pytest.approx(0.5 * math.exp(0.3))
    assert md1_within(1.0, 1.5, 1.0) == 0.0 and md1_within(2.0, 0.6, 5.0) == 0.0
    # x in [D, 2D): (1 - rho)(e^(lambda x) - lambda (x - D) e^(lambda (x - D)))
    lam, d, slo = 0.5, 0.4, 1.0
    x = slo - d
    assert md1_within(lam, d, slo) == pytest.approx(
        (1 - lam * d) * (math.exp(lam * x) - lam * (x - d) * math.exp(lam * (x - d)))
    )
    t = Tenant("q", "inference", 1, compute_s=0.2, memory_s=0.01, rate_per_s=2.0, slo_s=0.5)
    r = simulate_isolated(t, Share("whole"), 4000.0, 2)
    assert r.slo_attainment == pytest.approx(md1_within(2.0, 0.2, 0.5), abs=0.02)
