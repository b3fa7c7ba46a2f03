"""Execution semantics on the one simulator: restart policies, checkpoint resume, gang restarts,
shards, phases, the trace, invariants and determinism."""

from __future__ import annotations

import json
import math

import pytest

from gpuinfra.models.lifecycle import Timeline
from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.execution import ExecutionSpec, KindSpec, job_pods
from gpuinfra.sim.faults import FaultClass
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.workload import PodTable


def run(kind: KindSpec, pods, nodes=4, faults=None, seed=0, horizon=None):
    c = ClusterState.from_pools([NodePool("a", "H100-SXM", 8, 192000, 2097152, nodes)])
    e = ReplayEngine(
        c,
        PodTable(pods),
        Profile(),
        seed,
        horizon_s=horizon,
        fault_classes=faults,
        subsystem_options={"execution": ExecutionSpec(kinds=[kind])},
        track_fragmentation=False,
    )
    r = e.run()
    assert r.invariants.ok
    return r, e.subsystems["execution"]


def test_timeline_hand_computed():
    tl = Timeline(100, 50, 1000, 300, 10, 5, 20)
    assert tl.checkpoints == 3 and tl.total_s == 100 + 50 + 1000 + 3 * 10 + 20
    assert tl.work_at(450) == 300 and tl.saved_at(464) == 0 and tl.saved_at(465) == 300
    names = [p[0] for p in tl.phases()]
    assert names == ["startup", "warm-up", "steady", "checkpoint"] * 1 + ["steady", "checkpoint"] * 2 + [
        "steady",
        "teardown",
    ]


def test_an_application_bug_under_each_restart_policy():
    base = dict(owner="o", kind="batch", fails_after_s=100.0, image_gb=0.0, warmup_s=0.0, teardown_s=0.0)
    pods = job_pods("j", "o", 1, 1, 1000.0)
    r, ex = run(KindSpec(**base, restart_policy="Never"), pods)
    job = ex.jobs_table()[0]
    assert job["attempts"] == 1 and job["outcome"] == "failed" and r.outcome[0] == "failed"
    r, ex = run(KindSpec(**base, restart_policy="OnFailure", backoff_limit=3), pods)
    job = ex.jobs_table()[0]
    assert job["attempts"] == 4 and job["outcome"].startswith("failed (BackoffLimitExceeded)")
    # back-offs 10, 20, 40 s between attempts of 100 s: the last attempt ends at 4 x 100 + 70
    assert r.end_s[0] == pytest.approx(470.0)
    r, ex = run(KindSpec(**base, restart_policy="Always"), pods, horizon=3600.0)
    job = ex.jobs_table()[0]
    assert job["attempts"] > 6 and job["outcome"] == "unfinished"  # CrashLoopBackOff: never gives up
    assert all(g == pytest.approx(100 / 3600) for g in job["gpu_hours_per_attempt"])


def test_training_resumes_from_its_last_checkpoint():
    kind = KindSpec(
        owner="t",
        kind="training",
        checkpoint_interval_s=600.0,
        image_gb=0.0,
        warmup_s=0.0,
        teardown_s=0.0,
        restart_policy="OnFailure",
    )
    pods = job_pods("llm", "t", 1, 8, 3600.0)
    # one node fault at a fixed time is hard to inject; a reboot class with a high rate on 1 node
    fc = [FaultClass("node", 8.0, "reboot_node", 60.0, scope="node")]
    r, ex = run(kind, pods, nodes=1, faults=fc, seed=3, horizon=5 * 86400)
    job = ex.jobs_table()[0]
    atts = ex.attempts[0]
    assert job["outcome"] == "completed" and job["failures"] >= 1
    for a in atts[:-1]:  # every killed attempt kept whole checkpoint intervals only
        assert a["work_kept_s"] % 600.0 == pytest.approx(0.0, abs=1e-6) and a["work_kept_s"] <= a["work_done_s"]
    assert sum(a["work_kept_s"] for a in atts) == pytest.approx(3600.0)
    lost = job["gpu_hours_by_phase"]["lost work"]
    assert lost == pytest.approx(sum(a["work_done_s"] - a["work_kept_s"] for a in atts) * 8 / 3600)


def test_a_gang_restarts_around_a_replaced_rank_and_stays_deterministic():
    kind = KindSpec(owner="t", kind="training", checkpoint_interval_s=1800.0, restart_policy="Always", load_gb=1.0)
    pods = job_pods("llm", "t", 4, 8, 2 * 86400.0)
    fc = [FaultClass("node", 0.5, "reboot_node", 3600.0, scope="node")]
    r1, ex1 = run(kind, pods, nodes=6, faults=fc, seed=11, horizon=4 * 86400)
    r2, ex2 = run(kind, pods, nodes=6, faults=fc, seed=11, horizon=4 * 86400)
    j1, j2 = ex1.jobs_table()[0], ex2.jobs_table()[0]
    assert json.dumps(j1, sort_keys=True) == json.dumps(j2, sort_keys=True)
    assert j1["failures"] >= 1 and j1["outcome"] == "completed" and j1["progress"] == pytest.approx(1.0)
    assert j1["gpu_hours_by_phase"].get("waiting for a replacement", 0) > 0
    assert sum(j1["gpu_hours_by_phase"].values()) >= 2 * 24 * 32 - 1e-6  # at least the work itself


def test_batch_shards_are_retried_alone():
    kind = KindSpec(owner="b", kind="batch", image_gb=0.0, warmup_s=0.0, teardown_s=0.0)
    pods = job_pods("inf", "b", 16, 1, 3600.0, gang=False)
    fc = [FaultClass("gpu", 2.0, "restart_app", 0.0, scope="gpu")]
    r, ex = run(kind, pods, nodes=2, faults=fc, seed=2, horizon=86400)
    job = ex.jobs_table()[0]
    assert job["outcome"] == "completed" and job["failures"] >= 1
    assert job["attempts"] == 16 + job["failures"]  # only the failed shards ran again


def test_service_completion_is_its_slo():
    kind = KindSpec(owner="s", kind="service", image_gb=0.0, warmup_s=0.0, teardown_s=0.0, slo_availability=0.5)
    pods = job_pods("svc", "s", 1, 1, 86400.0, gang=False)
    r, ex = run(kind, pods, nodes=1, horizon=2 * 86400)
    assert ex.jobs_table()[0]["outcome"] == "served at SLO"


def test_chrome_trace_has_nodes_as_pids_and_gpus_as_tids():
    kind = KindSpec(owner="t", kind="training", checkpoint_interval_s=600.0)
    r, ex = run(kind, job_pods("llm", "t", 2, 8, 3600.0), nodes=2)
    tr = ex.chrome_trace()
    xs = [e for e in tr["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in xs} == {0, 1} and {e["tid"] for e in xs} == set(range(8))
    assert {"startup", "warm-up", "steady", "checkpoint", "teardown"} <= {e["name"] for e in xs}
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in xs)
    json.dumps(tr)


def test_scenario_execution_block_runs():
    from gpuinfra.io.scenario import parse_scenario
    from gpuinfra.run import simulate

    text = """
name: exec
seed: 1
cluster:
  pools: [{name: a, gpu_model: H100-SXM, gpus_per_node: 8, cpu_milli: 192000, memory_mib: 2097152, count: 2}]
workload:
  generator: {jobs: 5, arrival_rate_per_hour: 10, duration_median_s: 600, owners: {train: 1.0}}
execution:
  kinds: [{owner: train, kind: training, checkpoint_interval_s: 300, fails_after_s: 400, restart_policy: Never}]
"""
    out = simulate(parse_scenario(text, "exec.yaml"), None)
    jobs = out.run.subsystems["execution"]["jobs"]
    assert len(jobs) == 5 and all(math.isfinite(j["gpu_hours"]) for j in jobs)
    assert any(j["outcome"] == "failed" for j in jobs)


def test_a_rack_fault_replaces_several_ranks_before_the_gang_restarts():
    kind = KindSpec(owner="t", kind="training", checkpoint_interval_s=1800.0, restart_policy="Always")
    pods = job_pods("llm", "t", 8, 8, 2 * 86400.0)
    fc = [FaultClass("rack", 2.0, "reboot_node", 3600.0, scope="rack", rack_nodes=2)]
    r, ex = run(kind, pods, nodes=12, faults=fc, seed=5, horizon=6 * 86400)
    j = ex.jobs_table()[0]
    assert j["failures"] >= 2 and j["outcome"] == "completed" and j["progress"] == pytest.approx(1.0)
    # every attempt ran all 8 ranks: GPU-hours of an attempt are 64 GPUs x its length
    for a in ex.attempts[0]:
        assert a["gpu_hours"] == pytest.approx(64 * (a["end_s"] - a["start_s"]) / 3600)


@pytest.mark.parametrize(("stall", "lag"), [(60.0, 0.0), (2.0, 300.0)])
def test_simulated_ettr_matches_the_closed_form(stall, lag):
    """The execution subsystem on the engine against models/checkpoint.ettr (sync, then async)."""
    from gpuinfra.models.checkpoint import ettr
    from gpuinfra.models.lifecycle import NCCL_INIT_FIXED_S, NCCL_INIT_PER_RANK_S

    nodes, rate, work, horizon, warm = 16, 0.25, 60 * 86400.0, 12 * 86400.0, 120.0
    kind = KindSpec(
        owner="t",
        kind="training",
        checkpoint_interval_s=1800.0,
        checkpoint_stall_s=stall,
        checkpoint_lag_s=lag,
        image_gb=0.0,
        warmup_s=warm,
        teardown_s=0.0,
        restart_policy="Always",
    )
    fc = [FaultClass("node", rate, "reboot_node", 600.0, scope="node")]
    sims = []
    for seed in range(4):
        r, ex = run(kind, job_pods("llm", "t", nodes, 8, work), nodes=nodes + 3, faults=fc, seed=seed, horizon=horizon)
        sims.append(ex.jobs_table()[0]["progress"] * work / horizon)
    restart = NCCL_INIT_FIXED_S + NCCL_INIT_PER_RANK_S * nodes * 8 + warm
    closed = ettr(1800.0, stall, lag, nodes * rate / 86400.0, 0.0, 10.0, restart).ettr
    assert sum(sims) / len(sims) == pytest.approx(closed, abs=0.01)


def test_failures_by_phase_follow_the_time_spent_in_each():
    tl = Timeline(100, 50, 1000, 300, 10, 5, 20)
    assert [tl.phase_at(x) for x in (0, 120, 200, 455, 1170, 1190)] == [
        "startup",
        "warm-up",
        "steady",
        "checkpoint",
        "steady",
        "teardown",
    ]
    kind = KindSpec(
        owner="t", kind="training", checkpoint_interval_s=600.0, checkpoint_stall_s=60.0, restart_policy="Always"
    )
    fc = [FaultClass("node", 4.0, "reboot_node", 600.0, scope="node")]
    r, ex = run(kind, job_pods("llm", "t", 1, 8, 5 * 86400.0), nodes=3, faults=fc, seed=9, horizon=20 * 86400)
    j = ex.jobs_table()[0]
    fp = j["failures_by_phase"]
    assert sum(fp.values()) == j["failures"]
    assert fp.get("steady", 0) > fp.get("checkpoint", 0)  # 600 s of steady work per 60 s stall


def test_progress_never_exceeds_the_work_and_waiting_ranks_do_no_work():
    kind = KindSpec(owner="t", kind="training", checkpoint_interval_s=900.0, restart_policy="Always", backoff_s=3600.0)
    fc = [FaultClass("node", 1.0, "reboot_node", 3600.0, scope="node")]
    for seed in range(4):
        for horizon in (0.5 * 86400, 1.7 * 86400):
            r, ex = run(kind, job_pods("llm", "t", 4, 8, 86400.0), nodes=5, faults=fc, seed=seed, horizon=horizon)
            j = ex.jobs_table()[0]
            assert 0.0 <= j["progress"] <= 1.0
            # work kept can never exceed the time the gang has been up
            assert j["progress"] * 86400.0 <= horizon


def test_a_service_pays_failures_as_unserved_time_inside_its_window():
    kind = KindSpec(owner="s", kind="service", image_gb=0.0, warmup_s=300.0, teardown_s=0.0, load_gb=0.0)
    fc = [FaultClass("node", 2.0, "reboot_node", 3600.0, scope="node")]
    r, ex = run(
        kind, job_pods("svc", "s", 1, 8, 2 * 86400.0, gang=False), nodes=3, faults=fc, seed=1, horizon=3 * 86400
    )
    j = ex.jobs_table()[0]
    assert j["failures"] >= 1
    # every start pays the 300-s warm-up before serving, and every failure a 10-s back-off at least
    assert j["progress"] <= 1 - (j["failures"] + 1) * 300.0 / (2 * 86400.0) + 1e-9
    assert j["progress"] > 0.9
