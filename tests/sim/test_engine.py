import heapq
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.framework import Profile, ScoreSpec
from gpuinfra.sim.scheduler import Framework
from tests.conftest import cluster, pod, table

DEFAULT = Profile()


def run(c, pods, profile=DEFAULT, **kw):
    return ReplayEngine(c, pods, profile, seed=1, **kw).run()


def test_fifo_wait_times_by_hand():
    c = cluster(("n", "A100-80GB", 2, 64000, 65536, 1))
    pods = table(pod("a", 0, 10, gpus=2), pod("b", 1, 5), pod("c", 2, 5))
    r = run(c, pods)
    assert list(r.start_s) == [0.0, 10.0, 10.0]
    assert list(r.end_s) == [10.0, 15.0, 15.0]
    assert r.outcome == ["completed"] * 3
    assert r.reason[1] == "0/1 nodes are available: 1 Insufficient nvidia.com/gpu (NodeResourcesFit)."


def test_priority_jumps_the_queue():
    c = cluster(("n", "T4", 1, 64000, 65536, 1))
    pods = table(pod("a", 0, 10), pod("b", 1, 5, prio=0), pod("c", 2, 5, prio=5))
    r = run(c, pods)
    assert list(r.start_s) == [0.0, 15.0, 10.0]


def test_small_pods_are_not_blocked_by_a_big_one_ahead():
    # not strict head-of-line: like kube-scheduler, a pod that fits runs even if an older one cannot
    c = cluster(("n", "T4", 2, 64000, 65536, 1))
    pods = table(pod("a", 0, 10), pod("big", 1, 5, gpus=2), pod("small", 2, 5))
    r = run(c, pods)
    assert list(r.start_s) == [0.0, 10.0, 2.0]  # big waits for both GPUs (free at 10)


def test_owner_deletion_withdraws_pending_and_ends_running():
    c = cluster(("n", "T4", 1, 64000, 65536, 1))
    pods = table(pod("a", 0, 100, delete=30), pod("b", 1, 5, delete=20), pod("c", 2, 5))
    r = run(c, pods)
    assert r.outcome == ["ended_by_owner", "withdrawn", "completed"]
    assert r.end_s[0] == 30 and r.end_s[1] == 20 and r.start_s[2] == 30


def test_accounting_by_hand():
    from gpuinfra.analysis.accounting import RunMeta, interval_metrics, ledger, summarize
    from gpuinfra.models.cost import PriceBook

    c = cluster(("n", "T4", 1, 64000, 65536, 1))
    pods = table(pod("a", 0, 10, owner="x"), pod("b", 1, 5, owner="y"), pod("c", 2, 5, milli=500, owner="x"))
    r = run(c, pods, sample_interval_s=7)
    prices = PriceBook({"T4": 2.0}, {"T4": "test"}, "on_demand")
    led = ledger(r, prices)
    m = interval_metrics(r)
    s = summarize(r, prices, RunMeta("t", 1, "t"), led, m)
    # a 0-10 whole, then b (1000) 10-15 and c (500) 15-20: b cannot share with c? c fits beside b? no: b takes all
    assert list(r.start_s) == [0, 10, 15]
    assert s["horizon"]["duration_s"] == 20
    assert s["gpu_time"]["allocated_gpu_hours"] == pytest.approx((10 + 5 + 2.5) / 3600)
    assert s["gpu_time"]["idle_gpu_hours"] == pytest.approx(2.5 / 3600)
    assert s["gpu_time"]["busy_device_hours"] == pytest.approx(20 / 3600)
    assert s["cost"]["by_owner"]["x"]["cost_usd"] == pytest.approx(round(12.5 / 3600 * 2.0, 2))
    assert s["invariants"]["gpu_time_balance"]["ok"] and s["invariants"]["no_overcommit"]["ok"]
    # intervals of 7 s: [0,7) [7,14) [14,20)
    assert list(m["t_start_s"]) == [0, 7, 14]
    assert m["allocated_gpus"].tolist() == pytest.approx([1.0, 1.0, (1 * 1 + 0.5 * 5) / 6])
    assert m["queue_len_max"].tolist() == [2, 2, 1]


def reference_replay(c, pods, profile):
    """The obvious algorithm: on every release, retry every pending pod in queue order."""
    fw = Framework(profile, c, pods, np.random.default_rng(0))
    heap, seq = [], 0
    for i in range(len(pods)):
        heap.append((float(pods.submit_s[i]), 1, seq, "arrival", i))
        seq += 1
    heapq.heapify(heap)
    pending, allocs, start = [], {}, {}
    while heap:
        t, _, _, kind, i = heapq.heappop(heap)
        placed = []
        if kind == "arrival":
            r = fw.schedule(i)
            if r.alloc is not None:
                placed.append((i, r.alloc))
            else:
                pending.append(i)
        else:
            fw.unreserve(allocs.pop(i))
            for j in sorted(pending, key=fw.sort_key):
                r = fw.schedule(j)
                if r.alloc is not None:
                    pending.remove(j)
                    placed.append((j, r.alloc))
        for j, a in placed:
            allocs[j] = a
            start[j] = (t, a.node, a.devices)
            heapq.heappush(heap, (t + float(pods.duration_s[j]), 0, seq, "finish", j))
            seq += 1
    return start


@st.composite
def workloads(draw):
    n = draw(st.integers(1, 60))
    pods = []
    for i in range(n):
        g = draw(st.sampled_from([0, 1, 1, 1, 2, 4, 8]))
        milli = draw(st.sampled_from([200, 500, 1000])) if g == 1 else 1000
        pods.append(
            pod(
                f"p{i}",
                float(draw(st.integers(0, 50))),
                float(draw(st.integers(1, 30))),
                gpus=g,
                milli=milli,
                cpu=draw(st.sampled_from([1000, 8000, 30000])),
                prio=draw(st.integers(0, 2)),
                models=draw(st.sampled_from([(), (), ("T4",), ("A100-80GB",)])) if g else (),
            )
        )
    score = draw(st.sampled_from(["FirstFit", "MostAllocated", "LeastAllocated"]))
    return pods, score


@settings(max_examples=80, deadline=None)
@given(workloads())
def test_queueing_hint_engine_equals_retry_everything_reference(w):
    pods, score = w
    shape = (("a", "A100-80GB", 8, 64000, 65536, 2), ("t", "T4", 2, 32000, 65536, 3))
    profile = Profile(scores=(ScoreSpec(score),), preemption=False)
    r = run(cluster(*shape), table(*pods), profile)
    ref = reference_replay(cluster(*shape), table(*pods), profile)
    got = {
        i: (float(r.start_s[i]), int(r.node[i]), r.devices[i]) for i in range(len(pods)) if not math.isnan(r.start_s[i])
    }
    assert got == ref


def test_same_seed_same_result_and_horizon_cut():
    c1 = cluster(("n", "T4", 2, 64000, 65536, 2))
    pods = [pod(f"p{i}", i * 3.0, 20.0 + i) for i in range(20)]
    a = run(c1, table(*pods), horizon_s=40)
    b = run(cluster(("n", "T4", 2, 64000, 65536, 2)), table(*pods), horizon_s=40)
    assert a.events == b.events
    assert "running_at_horizon" in a.outcome and "not_arrived" in a.outcome
    assert a.horizon_s == 40


def test_preemption_evicts_the_documented_victims():
    # one node with 4 GPUs: three low-priority pods (prio 0, 1, 1) hold 1 GPU each; a prio-5 pod asks 3.
    # Removing all three frees 4; reprieve most important first: keep prio-1 started earlier (b),
    # then prio-1 c no longer leaves room for 3 GPUs -> victims are c and a (prio 0).
    from gpuinfra.analysis.accounting import RunMeta, interval_metrics, ledger, summarize
    from gpuinfra.models.cost import PriceBook

    c = cluster(("n", "T4", 4, 64000, 65536, 1))
    pods = table(
        pod("a", 0, 100, prio=0), pod("b", 1, 100, prio=1), pod("c", 2, 100, prio=1), pod("hi", 10, 50, gpus=3, prio=5)
    )
    r = run(c, pods)
    assert r.preemptions == 1
    assert list(r.preempted_times) == [1, 0, 1, 0]
    assert r.start_s[3] == 10  # the preemptor runs at once
    # victims restart from scratch after hi finishes at 60 (c has the higher priority, so it goes first)
    assert r.start_s[2] == 60 and r.start_s[0] == 60
    assert r.end_s[0] == 160 and r.end_s[2] == 160
    assert sorted(r.lost_runs) == [(0, 0, 1000 * 10.0), (2, 0, 1000 * 8.0)]
    prices = PriceBook({"T4": 1.0}, {"T4": "t"}, "on_demand")
    led = ledger(r, prices)
    s = summarize(r, prices, RunMeta("t", 1, "t"), led, interval_metrics(r))
    assert s["preemption"] == {
        "preemptions": 1,
        "victims": 2,
        "pods_preempted": 2,
        "lost_gpu_hours": pytest.approx(18 / 3600),
        # a out 10..60, c out 10..60
        "requeued_wait_s": {"total": 100.0, "mean": 50.0, "max": 50.0},
    }
    assert s["invariants"]["gpu_time_balance"]["ok"]  # lost runs are in the ledger too
    # the scheduling wait is submit to the first bind: a 0, b 0, c 0, hi 0; preemption is not a wait
    assert led["wait_s"].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert led["requeued_wait_s"].tolist() == [50.0, 0.0, 50.0, 0.0]


def _notebook_run(horizon_s=None):
    """One 1-GPU T4 node. Notebook nb-a (priority 0) arrives at 0 and runs 10,000 s; batch b (priority 1)
    arrives at 3,800 and runs 600 s: b preempts nb-a at 3,800, nb-a binds again when b ends at 4,400."""
    from gpuinfra.analysis.accounting import RunMeta, interval_metrics, ledger, summarize
    from gpuinfra.models.cost import PriceBook

    c = cluster(("n", "T4", 1, 64000, 65536, 1))
    pods = table(pod("nb-a", 0, 10_000, prio=0), pod("b", 3_800, 600, prio=1))
    r = run(c, pods, horizon_s=horizon_s)
    prices = PriceBook({"T4": 2.0}, {"T4": "t"}, "on_demand")
    led = ledger(r, prices)
    return r, led, summarize(r, prices, RunMeta("t", 1, "t"), led, interval_metrics(r))


def test_preempted_pod_waited_zero_and_was_requeued_600_s():
    r, led, s = _notebook_run()
    a = led.set_index("name").loc["nb-a"]
    assert (a["first_start_s"], a["start_s"], a["end_s"]) == (0.0, 4_400.0, 14_400.0)
    assert a["wait_s"] == 0.0  # first bind at submit: no scheduling wait
    assert a["requeued_wait_s"] == 600.0  # evicted at 3,800, bound again at 4,400
    # the thrown-away run: 1 GPU x 3,800 s; the surviving run 10,000 s; b 600 s
    assert a["lost_gpu_hours"] == pytest.approx(3_800 / 3600)
    assert a["gpu_hours"] == pytest.approx(13_800 / 3600)
    assert s["pods"]["waited"] == 0 and s["pods"]["wait_s"]["max"] == 0.0
    p = s["preemption"]
    assert (p["preemptions"], p["victims"], p["pods_preempted"]) == (1, 1, 1)
    assert p["lost_gpu_hours"] == pytest.approx(3_800 / 3600)
    assert p["requeued_wait_s"] == {"total": 600.0, "mean": 600.0, "max": 600.0}


def test_requeued_wait_of_a_pod_still_out_at_the_horizon_is_a_lower_bound():
    # the horizon at 4,000: nb-a was evicted at 3,800 and has not bound again
    r, led, s = _notebook_run(horizon_s=4_000)
    a = led.set_index("name").loc["nb-a"]
    assert a["outcome"] == "pending_at_horizon"
    assert a["wait_s"] == 0.0 and a["requeued_wait_s"] == 200.0
    assert s["pods"]["started"] == 2  # nb-a did start once


def test_no_preemption_when_disabled_or_no_lower_priority():
    c = cluster(("n", "T4", 1, 64000, 65536, 1))
    pods = table(pod("a", 0, 100, prio=5), pod("b", 1, 10, prio=5))
    assert run(c, pods).preemptions == 0
    c = cluster(("n", "T4", 1, 64000, 65536, 1))
    pods = table(pod("a", 0, 100, prio=0), pod("b", 1, 10, prio=5))
    r = run(c, pods, Profile(preemption=False))
    assert r.preemptions == 0 and r.start_s[1] == 100


@settings(max_examples=40, deadline=None)
@given(workloads())
def test_property_preemption_keeps_the_invariants(w):
    from gpuinfra.analysis.accounting import RunMeta, interval_metrics, ledger, summarize
    from gpuinfra.io.scenario import _impossible
    from gpuinfra.models.cost import PriceBook

    pods, score = w
    c = cluster(("a", "A100-80GB", 8, 64000, 65536, 2), ("t", "T4", 2, 32000, 65536, 3))
    never = {i for i, _ in _impossible(c, pods)}  # the scenario builder refuses these up front
    pods = [p for i, p in enumerate(pods) if i not in never]
    if not pods:
        return
    r = run(c, table(*pods), Profile(scores=(ScoreSpec(score),)))
    prices = PriceBook({"A100-80GB": 1.0, "T4": 0.5}, {}, "on_demand")
    led = ledger(r, prices)
    s = summarize(r, prices, RunMeta("t", 1, "t"), led, interval_metrics(r))
    assert s["invariants"]["gpu_time_balance"]["ok"] and s["invariants"]["no_overcommit"]["ok"]
    assert s["preemption"]["victims"] == int(sum(r.preempted_times))
    # every pod eventually runs to completion: preemption delays work, it never drops it
    assert set(r.outcome) == {"completed"}
    for e in r.events:
        if e["event"] == "preempted":
            victim = r.pods.names.index(e["pod"])
            by = r.pods.names.index(e["by"])
            assert r.pods.priority[victim] < r.pods.priority[by]


def test_gang_starts_all_at_once_or_not_at_all():
    # 2 nodes x 4 GPUs; a long pod holds 2 GPUs of node 0 until t=50.
    # A gang of 4 pods x 2 GPUs (8 GPUs) arrives at t=1..4: by count 6 GPUs are free, so no pod of it
    # may start alone; all four start together at t=50. A single 2-GPU pod arriving at t=5 runs at once.
    c = cluster(("n", "A100-80GB", 4, 64000, 65536, 2))
    g = [pod(f"w{k}", 1 + k, 30, gpus=2, job="train", gang=4) for k in range(4)]
    pods = table(pod("hold", 0, 50, gpus=2), *g, pod("solo", 5, 10, gpus=2))
    r = run(c, pods)
    names = r.pods.names
    starts = {names[i]: r.start_s[i] for i in range(len(names))}
    assert [starts[f"w{k}"] for k in range(4)] == [50.0] * 4
    assert starts["solo"] == 5.0
    assert "gang train: " in r.reason[names.index("w0")]


def test_gang_timeout_withdraws_the_whole_gang():
    c = cluster(("n", "A100-80GB", 4, 64000, 65536, 1))
    g = [pod(f"w{k}", 1, 30, gpus=4, job="big", gang=2) for k in range(2)]  # needs 8 GPUs, node has 4
    r = run(c, table(pod("hold", 0, 100, gpus=1), *g), Profile(gang_timeout_s=20))
    assert r.outcome[1:] == ["gang_timeout", "gang_timeout"]
    assert list(r.end_s[1:]) == [21.0, 21.0]


@st.composite
def gang_workloads(draw):
    pods = []
    for j in range(draw(st.integers(1, 8))):
        size = draw(st.integers(1, 4))
        g = draw(st.sampled_from([1, 2, 4]))
        t = float(draw(st.integers(0, 40)))
        for k in range(size):
            pods.append(
                pod(
                    f"j{j}-{k}",
                    t + k,
                    float(draw(st.integers(1, 30))),
                    gpus=g,
                    job=f"j{j}",
                    gang=size,
                    prio=draw(st.integers(0, 2)),
                )
            )
    for k in range(draw(st.integers(0, 15))):
        pods.append(
            pod(
                f"s{k}",
                float(draw(st.integers(0, 40))),
                float(draw(st.integers(1, 30))),
                gpus=draw(st.sampled_from([0, 1, 2])),
                prio=draw(st.integers(0, 2)),
            )
        )
    return pods


@settings(max_examples=60, deadline=None)
@given(gang_workloads())
def test_property_gang_all_or_nothing(pods):
    c = cluster(("a", "A100-80GB", 4, 64000, 65536, 3))
    r = run(c, table(*pods))
    by_job: dict[str, list[int]] = {}
    for i in range(len(r.pods)):
        if r.pods.gang_size[i] > 1:
            by_job.setdefault(r.pods.jobs[i], []).append(i)
    for _job, idx in by_job.items():
        starts = {repr(float(r.start_s[i])) for i in idx}
        assert len(starts) == 1  # every pod of a gang starts at the same instant (or none: {'nan'})
        if sum(int(r.pods.num_gpu[i]) for i in idx) <= 12:  # a gang that fits the empty cluster does run
            assert starts != {"nan"}


def _quota_profile(**kw):
    queues = [
        {"name": "a", "cohort": "c", "nominal_gpus": 4},
        {"name": "b", "cohort": "c", "nominal_gpus": 4},
        {"name": "solo", "cohort": "x", "nominal_gpus": 1, "borrowing_limit_gpus": 0},
    ]
    return Profile(
        filters=("NodeResourcesFit", "GpuModel", "KueueQuota"), plugin_args={"KueueQuota": {"queues": queues, **kw}}
    )


def test_quota_borrowing_and_reclaim():
    # 8 GPUs, a cohort of two queues with nominal 4 each. Team a borrows b's idle quota (6 pods run);
    # when b's pods arrive, b is within its nominal quota, so Kueue reclaims from the borrower a.
    c = cluster(("n", "A100-80GB", 8, 64000, 65536, 1))
    pods = [pod(f"a{k}", 0, 100, owner="a") for k in range(6)] + [pod(f"b{k}", 10, 50, owner="b") for k in range(4)]
    r = run(c, table(*pods), _quota_profile())
    names = r.pods.names
    assert all(r.start_s[names.index(f"a{k}")] == 0 or r.preempted_times[names.index(f"a{k}")] for k in range(6))
    assert [r.start_s[names.index(f"b{k}")] for k in range(4)] == [10.0] * 4
    assert int(r.preempted_times.sum()) == 2  # a gives back exactly what it borrowed
    # the two reclaimed a-pods wait for b to finish and restart from scratch
    lost = sorted(names[p] for p, _, _ in r.lost_runs)
    assert len(lost) == 2 and all(n.startswith("a") for n in lost)


def test_quota_blocks_with_kueue_reason_and_no_reclaim_when_disabled():
    c = cluster(("n", "A100-80GB", 8, 64000, 65536, 1))
    pods = [pod("s0", 0, 100, owner="solo"), pod("s1", 1, 10, owner="solo")]
    r = run(c, table(*pods), _quota_profile())
    assert r.start_s[1] == 100  # solo may not borrow: its second pod waits for the first
    assert "ClusterQueue solo: borrowing 1 GPUs would exceed its borrowing limit of 0" in r.reason[1]
    # 16 GPUs but a cohort quota of 8: a borrowed b's 4, so b0 is blocked by quota, not by GPUs
    c = cluster(("n", "A100-80GB", 8, 64000, 65536, 2))
    pods = [pod(f"a{k}", 0, 100, owner="a") for k in range(8)] + [pod("b0", 10, 50, owner="b")]
    r = run(c, table(*pods), _quota_profile(reclaim=False))
    assert r.start_s[8] == 100 and int(r.preempted_times.sum()) == 0
    assert "lent to borrowing queues" in r.reason[8]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "solo", "free"]),
            st.integers(0, 40),
            st.integers(1, 30),
            st.sampled_from([1, 2, 4]),
            st.integers(0, 1),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_property_quota_never_exceeded_except_by_declared_borrowing(specs):
    from gpuinfra.analysis.accounting import RunMeta, interval_metrics, ledger, summarize
    from gpuinfra.models.cost import PriceBook

    c = cluster(("n", "A100-80GB", 4, 64000, 65536, 3))
    pods = [pod(f"p{k}", float(t), float(d), gpus=g, owner=o, prio=pr) for k, (o, t, d, g, pr) in enumerate(specs)]
    r = run(c, table(*pods), _quota_profile())
    # replay the ledger as intervals and check every queue's usage at every start
    runs = [
        (r.start_s[i], r.end_s[i], r.pods.owners[i], int(r.pods.num_gpu[i]))
        for i in range(len(r.pods))
        if not np.isnan(r.start_s[i])
    ]
    for t0, _, _, _ in runs:
        use = {"a": 0, "b": 0, "solo": 0}
        for s, e, o, g in runs:
            if o in use and s <= t0 < e:
                use[o] += g
        assert use["solo"] <= 1  # nominal 1, may not borrow
        assert use["a"] + use["b"] <= 8  # the cohort never holds more than its nominal quota
    led = ledger(r, PriceBook({"A100-80GB": 1.0}, {}, "on_demand"))
    s = summarize(r, PriceBook({"A100-80GB": 1.0}, {}, "on_demand"), RunMeta("t", 1, "t"), led, interval_metrics(r))
    assert s["invariants"]["gpu_time_balance"]["ok"]


def test_drf_serves_the_owner_with_the_smaller_dominant_share_first():
    # 4 GPUs. Owner "big" holds 3 GPUs until t=100, "small" holds 1 until t=50. When small's GPU frees
    # at 50, big's and small's pending pods (both submitted at 1 and 2) compete: FIFO picks big's (older),
    # DRF picks small's (small's dominant share is 0 then, big's is 3/4).
    c1 = cluster(("n", "A100-80GB", 4, 64000, 65536, 1))
    pods = [
        pod("b-run", 0, 100, gpus=3, owner="big"),
        pod("s-run", 0, 50, owner="small"),
        pod("b-wait", 1, 10, owner="big"),
        pod("s-wait", 2, 10, owner="small"),
    ]
    fifo = run(c1, table(*pods), Profile(queue_sort="FIFO"))
    assert fifo.start_s[2] == 50 and fifo.start_s[3] == 60
    drf = run(cluster(("n", "A100-80GB", 4, 64000, 65536, 1)), table(*pods), Profile(queue_sort="DRF"))
    assert drf.start_s[3] == 50 and drf.start_s[2] == 60
    # weights: with both running, big's share 0.75 weighted 10x (0.075) is below small's 0.25
    from gpuinfra.sim.scheduler import Framework

    c2 = cluster(("n", "A100-80GB", 4, 64000, 65536, 1))
    fw = Framework(
        Profile(queue_sort="DRF", plugin_args={"DRF": {"weights": {"big": 10}}}),
        c2,
        table(*pods),
        np.random.default_rng(0),
    )
    fw.schedule(0)
    fw.schedule(1)
    assert fw.queue_sort.dominant_share("big") == pytest.approx(0.75 / 10)
    assert fw.queue_sort.dominant_share("small") == pytest.approx(0.25)
    assert fw.sort_key(2) < fw.sort_key(3)


def _hol_pods():
    # t=0 A holds 2 of 4 GPUs until 100; t=1 B wants all 4 (the head); t=2 C 1 GPU for 10 s; t=3 D 1 GPU for 200 s
    return table(pod("A", 0, 100, gpus=2), pod("B", 1, 10, gpus=4), pod("C", 2, 10), pod("D", 3, 200))


def test_queue_modes_kube_strict_fifo_and_easy_backfill():
    shape = ("n", "A100-80GB", 4, 64000, 65536, 1)
    kube = run(cluster(shape), _hol_pods(), Profile(queue_mode="kube", preemption=False))
    assert list(kube.start_s) == [0, 203, 2, 3]  # C and D jump the queue; B waits until D ends at 203
    strict = run(cluster(shape), _hol_pods(), Profile(queue_mode="strict_fifo"))
    assert list(strict.start_s) == [0, 100, 110, 110]  # nothing passes the head
    easy = run(cluster(shape), _hol_pods(), Profile(queue_mode="backfill"))
    # C ends (12) before B's reservation (100): backfilled. D would hold a GPU past 100 on the reserved node
    assert list(easy.start_s) == [0, 100, 2, 110]
    cut = run(cluster(shape), _hol_pods(), Profile(queue_mode="backfill"), horizon_s=50)
    assert cut.outcome[3] == "pending_at_horizon"
    assert cut.reason[3] == "backfill: would delay B's reservation on n-0000 at t=100"


@settings(max_examples=30, deadline=None)
@given(workloads(), st.sampled_from(["strict_fifo", "backfill"]))
def test_property_ordered_modes_keep_the_invariants(w, mode):
    from gpuinfra.analysis.accounting import RunMeta, interval_metrics, ledger, summarize
    from gpuinfra.io.scenario import _impossible
    from gpuinfra.models.cost import PriceBook

    pods, _ = w
    c = cluster(("a", "A100-80GB", 8, 64000, 65536, 2), ("t", "T4", 2, 32000, 65536, 3))
    never = {i for i, _ in _impossible(c, pods)}
    pods = [p for i, p in enumerate(pods) if i not in never]
    if not pods:
        return
    r = run(c, table(*pods), Profile(queue_mode=mode))
    prices = PriceBook({"A100-80GB": 1.0, "T4": 0.5}, {}, "on_demand")
    led = ledger(r, prices)
    s = summarize(r, prices, RunMeta("t", 1, "t"), led, interval_metrics(r))
    assert s["invariants"]["gpu_time_balance"]["ok"] and s["invariants"]["no_overcommit"]["ok"]
    assert set(r.outcome) == {"completed"}
    if mode == "strict_fifo":  # no pod starts while a pod ahead of it in queue order waits
        key = [(-int(r.pods.priority[i]), float(r.pods.submit_s[i]), i) for i in range(len(r.pods))]
        for p in range(len(r.pods)):
            t = r.start_s[p]
            for q in range(len(r.pods)):
                if key[q] < key[p] and r.pods.submit_s[q] < t < r.start_s[q]:
                    raise AssertionError(f"{r.pods.names[p]} started at {t} while {r.pods.names[q]} waited")


def test_topology_aware_keeps_a_gang_on_one_node():
    # 3 nodes x 8 GPUs, node 0 and 1 partly used. A gang of 4 pods x 2 GPUs fits node 2 whole;
    # spreading puts it on three nodes, TopologyAware on one.
    c_shape = ("n", "A100-80GB", 8, 64000, 65536, 3)
    pods = table(
        pod("x", 0, 100, gpus=2),
        pod("y", 0, 100, gpus=2),
        *[pod(f"g{k}", 1, 10, gpus=2, job="g", gang=4) for k in range(4)],
    )
    spread = run(cluster(c_shape), pods, Profile(scores=(ScoreSpec("LeastAllocated"),)))
    topo = run(cluster(c_shape), pods, Profile(scores=(ScoreSpec("TopologyAware"),)))
    assert len({int(spread.node[i]) for i in range(2, 6)}) > 1
    assert len({int(topo.node[i]) for i in range(2, 6)}) == 1


def test_faults_reproduce_their_rate_and_keep_the_invariants():
    from gpuinfra.analysis.accounting import RunMeta, interval_metrics, ledger, summarize
    from gpuinfra.models.cost import PriceBook
    from gpuinfra.sim.faults import FaultClass

    # 10 nodes x 8 GPUs for 100 days of a steady stream of jobs; a GPU fault at 0.01 per GPU-day
    # is expected 0.01 x 80 x 100 = 80 times; a node fault at 0.02 per node-day 20 times.
    c = cluster(("n", "H100-SXM", 8, 192000, 2097152, 10))
    pods = table(*[pod(f"p{k}", k * 3600.0, 7200.0, gpus=[1, 2, 8][k % 3]) for k in range(2400)])
    classes = [
        FaultClass("xid48", 0.01, "reset_gpu", 600.0),
        FaultClass("xid79", 0.02, "reboot_node", 1800.0, "node"),
        FaultClass("xid13", 0.01, "restart_app", 0.0),
    ]
    r = ReplayEngine(c, pods, Profile(), seed=3, fault_classes=classes, sample_interval_s=86400).run()
    f = r.faults
    days = 2400 * 3600 / 86400
    for name, expected in (("xid48", 0.01 * 80 * days), ("xid79", 0.02 * 10 * days), ("xid13", 0.01 * 80 * days)):
        n = f["by_class"][name]
        assert abs(n - expected) < 4 * expected**0.5 + 2, (name, n, expected)  # Poisson: within 4 sigma
    assert f["pods_killed"] > 0 and f["gpu_transitions"] > 0
    prices = PriceBook({"H100-SXM": 2.0}, {}, "on_demand")
    led = ledger(r, prices)
    s = summarize(r, prices, RunMeta("t", 3, "t"), led, interval_metrics(r))
    assert s["invariants"]["gpu_time_balance"]["ok"] and s["invariants"]["no_overcommit"]["ok"]
    assert s["gpu_time"]["unavailable_gpu_hours"] > 0  # repairs took GPUs out of service
    assert set(r.outcome) == {"completed"}  # killed pods were retried elsewhere and finished


def test_a_multi_gpu_pod_dies_when_one_of_its_gpus_does():
    from gpuinfra.sim.faults import FaultClass

    c = cluster(("n", "H100-SXM", 8, 192000, 2097152, 1))
    pods = table(pod("big", 0, 1000, gpus=8))
    # one GPU fault at a huge rate is certain to strike while the pod runs; repair after 100 s
    r = ReplayEngine(
        c, pods, Profile(), seed=1, fault_classes=[FaultClass("x", 50.0, "reset_gpu", 100.0)], horizon_s=5000
    ).run()
    assert any(p == 0 for p, _, _ in r.lost_runs)  # its run was lost (and it was retried)
    assert any(e["event"] == "killed" for e in r.events)
    assert r.preempted_times[0] == 0  # a fault is not a preemption


def test_slow_detection_lets_a_poisoned_gpu_eat_retries():
    from gpuinfra.sim.faults import FaultClass

    # one node, 1 GPU, a queue of jobs. A GPU fault at t~0 poisons the GPU; undetected for 600 s, the
    # (first-fit) scheduler keeps putting jobs on it and each crashes after 60 s.
    def go(detect_s):
        c = cluster(("n", "H100-SXM", 1, 192000, 2097152, 1))
        pods = table(*[pod(f"p{k}", float(k), 3000.0) for k in range(5)])
        fc = FaultClass("xid48", 1e6, "reset_gpu", 300.0, detect_s=detect_s, crash_s=60.0)
        eng = ReplayEngine(c, pods, Profile(), seed=2, fault_classes=[fc], horizon_s=1.0)
        eng.faults.until_s = 0.5  # one fault only (the rate is huge so it lands at once)
        eng.horizon_s = None
        return eng.run()

    fast, slow = go(0.0), go(600.0)
    assert fast.faults["crashes_on_poisoned_gpus"] == 0
    # 600 s undetected: nine 60-s runs crash, the tenth is cut at detection; all 600 s are burned
    assert slow.faults["crashes_on_poisoned_gpus"] == 9
    assert abs(slow.faults["burned_gpu_hours"] * 3600 - 600) < 1.0  # the fault lands at a random t < 0.5 s
    # the same jobs finish later when detection is slow: the poisoned GPU ate the time
    assert slow.horizon_s > fast.horizon_s


def test_rack_faults_lemons_and_signal_delays():
    from gpuinfra.sim.faults import FaultClass

    c = cluster(("n", "H100-SXM", 8, 192000, 2097152, 16))
    pods = table(*[pod(f"p{k}", k * 3600.0, 7200.0, gpus=8) for k in range(1200)])
    days = 1200 * 3600 / 86400
    rack = FaultClass("tor-switch", 0.05, "drain_and_replace", 3600.0, "rack", rack_nodes=4)
    lemon = FaultClass("gpu", 0.005, "reset_gpu", 600.0, signal="dcgm_health", lemon_fraction=0.25, lemon_factor=8.0)
    r = ReplayEngine(c, pods, Profile(), seed=5, fault_classes=[rack, lemon], sample_interval_s=86400).run()
    log = r.faults["log"]
    # a rack fault strikes 4 consecutive nodes at the same instant
    by_t: dict[float, set[str]] = {}
    for e in log:
        if e["fault"] == "tor-switch":
            by_t.setdefault(e["t_s"], set()).add(e["node"])
    assert by_t and max(len(v) for v in by_t.values()) == 4
    expected_racks = 0.05 * (16 / 4) * days
    assert abs(len(by_t) - expected_racks) < 4 * expected_racks**0.5 + 2
    # lemon nodes take far more than their share of GPU faults
    eng = ReplayEngine(c, pods, Profile(), seed=5, fault_classes=[rack, lemon], sample_interval_s=86400)
    lemons = {c.node_names[n] for n in np.flatnonzero(eng.faults.node_weight[1] > 1)}
    hits = [e["node"] for e in log if e["fault"] == "gpu"]
    share = sum(h in lemons for h in hits) / max(len(hits), 1)
    assert lemons and share > 2 * len(lemons) / 16
