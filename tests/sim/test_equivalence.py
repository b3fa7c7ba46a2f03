"""The per-class scheduling path (sim/equivalence.py) against the full path over every node.

Both paths must give the same run to the byte: the same event log (every bind names its node and
devices), the same start/end times, outcomes and reasons, and the same recorded levels. The
workloads cover what a class key must capture: shared and whole GPUs, time-sliced nodes, taints
and tolerations, node selectors, GPU models, CPU-only pods and nodes, priorities with
preemption, owner deletions, GPU and node faults (devices out of service, nodes down), random
tie-breaks and several score combinations (one score, a weighted normalised sum, FirstFit, none).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.sim import scheduler
from gpuinfra.sim.cluster import ClusterState, NodePool, Taint
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.equivalence import NodeClasses
from gpuinfra.sim.framework import Profile, ScoreSpec
from gpuinfra.sim.workload import Pod, PodTable, Toleration

FILTERS = ("NodeResourcesFit", "GpuModel", "TaintToleration", "NodeAffinity")
SCORES = {
    "none": (),
    "first": (ScoreSpec("FirstFit"),),
    "most": (ScoreSpec("MostAllocated"),),
    "least": (ScoreSpec("LeastAllocated", 2.0),),
    "mixed": (ScoreSpec("MostAllocated", 2.0), ScoreSpec("LeastAllocated", 1.0)),
    # BestFit normalises inside its score (the artifact's integer min-max, which merges close raw
    # values): alone, the class path picks among the best raw values; weighted with another
    # score, it normalises the cached raw values over the feasible classes
    "bestfit": (ScoreSpec("BestFit"),),
    "bestfit-mixed": (ScoreSpec("BestFit", 3.0), ScoreSpec("LeastAllocated", 1.0)),
}


def _cluster() -> ClusterState:
    return ClusterState.from_pools(
        [
            NodePool("a", "A100-80GB", 8, 64000, 262144, 3, labels=(("zone", "a"),)),
            NodePool("t", "T4", 2, 32000, 65536, 4, taints=(Taint("dedicated", "infer"),)),
            NodePool("ts", "T4", 2, 32000, 65536, 2, timeslice_replicas=4),
            NodePool("h", "H100-SXM", 8, 192000, 2097152, 2, labels=(("zone", "b"),)),
            NodePool("cpu", None, 0, 64000, 262144, 2),
        ]
    )


@st.composite
def pod_specs(draw):
    n = draw(st.integers(5, 70))
    pods = []
    for i in range(n):
        g = draw(st.sampled_from([0, 1, 1, 1, 2, 4, 8]))
        pods.append(
            Pod(
                f"p{i}",
                float(draw(st.integers(0, 60))),
                float(draw(st.integers(1, 40))),
                draw(st.sampled_from([1000, 8000, 30000])),
                draw(st.sampled_from([1024, 65536])),
                g,
                (draw(st.sampled_from([250, 500, 1000])) if g == 1 else 1000) if g else 0,
                draw(st.sampled_from([(), (), ("T4",), ("A100-80GB", "H100-SXM")])) if g else (),
                draw(st.integers(0, 2)),
                owner=draw(st.sampled_from(["x", "y"])),
                delete_s=draw(st.sampled_from([math.nan, math.nan, float(draw(st.integers(0, 80)))])),
                node_selector=draw(st.sampled_from([(), (), (("zone", "a"),), (("zone", "b"),)])),
                tolerations=draw(st.sampled_from([(), (Toleration("dedicated", "Equal", "infer", "NoSchedule"),)])),
            )
        )
    return pods


def _replay(pods: list[Pod], profile: Profile, equivalence: bool, **kw):
    eng = ReplayEngine(_cluster(), PodTable(pods), profile, seed=11, **kw)
    eng.fw.equivalence = equivalence
    return eng, eng.run()


def _same(a, b) -> None:
    assert a.events == b.events  # every bind, unschedulable reason, eviction, in order
    for x, y in ((a.start_s, b.start_s), (a.end_s, b.end_s), (a.node, b.node)):
        assert np.array_equal(x, y, equal_nan=True)
    assert a.devices == b.devices and a.outcome == b.outcome and a.reason == b.reason
    assert a.cycles == b.cycles and a.events_processed == b.events_processed
    ra, rb = a.recorder, b.recorder
    for k in ("alloc_ms", "idle_ms", "unavail_ms", "busy_dev_s", "queue_s", "running_s", "frag_ms", "queue_max"):
        assert getattr(ra, k).tobytes() == getattr(rb, k).tobytes(), k


@settings(max_examples=60, deadline=None)
@given(
    pod_specs(),
    st.sampled_from(sorted(SCORES)),
    st.sampled_from(["first", "random"]),
    st.booleans(),
)
def test_class_path_equals_full_path(pods, score, tie, preemption):
    profile = Profile(filters=FILTERS, scores=SCORES[score], tie_break=tie, preemption=preemption)
    eng, fast = _replay(pods, profile, True, sample_interval_s=7)
    _, full = _replay(pods, profile, False, sample_interval_s=7)
    assert eng.fw._eq is not None  # the class path did run
    _same(fast, full)
    c = eng.cluster  # the keys kept incrementally equal the keys computed from the arrays
    assert c.desc_key == [tuple(r) for r in c.dev_free_desc.tolist()]
    assert c.state_key == [
        (int(c.node_pool[n]), int(c.cpu_free[n]), int(c.mem_free[n]), bool(c.node_up[n]), c.desc_key[n])
        for n in range(c.n_nodes)
    ]


@pytest.mark.parametrize(
    "score,tie", [("most", "random"), ("mixed", "first"), ("first", "random"), ("bestfit-mixed", "random")]
)
def test_class_path_equals_full_path_under_gpu_and_node_faults(score, tie):
    from gpuinfra.sim.faults import FaultClass

    pods = [
        Pod(f"p{k}", k * 600.0, 3600.0 * (1 + k % 5), 8000, 65536, [1, 2, 8, 1][k % 4], [1000, 1000, 1000, 500][k % 4])
        for k in range(400)
    ]
    classes = [
        FaultClass("xid48", 0.2, "reset_gpu", 600.0),
        FaultClass("xid79", 0.3, "reboot_node", 1800.0, "node"),
        FaultClass("xid13", 0.2, "restart_app", 0.0),
    ]
    profile = Profile(filters=FILTERS, scores=SCORES[score], tie_break=tie)
    _, fast = _replay(pods, profile, True, fault_classes=classes, sample_interval_s=3600)
    _, full = _replay(pods, profile, False, fault_classes=classes, sample_interval_s=3600)
    assert fast.faults["gpu_transitions"] > 0
    _same(fast, full)


def test_class_path_equals_full_path_with_an_upgrade_and_spot_reclaims(tmp_path, monkeypatch):
    from gpuinfra import api

    ex = Path(__file__).resolve().parents[2] / "examples"
    d = yaml.safe_load((ex / "upgrade.yaml").read_text())
    d["spot"] = {"pools": ["gpu"], "reclaim_rate_per_node_day": 0.5, "source": "test rate"}
    shutil.copy(ex / "upgrade-jobs.csv", tmp_path / "upgrade-jobs.csv")
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    fast = api.simulate(api.scenario(p))._output.run
    monkeypatch.setattr(scheduler, "EQUIVALENCE", False)
    full = api.simulate(api.scenario(p))._output.run
    assert fast.subsystems["upgrade"]["nodes_done"] == 5
    _same(fast, full)


def test_profiles_with_a_non_pure_plugin_keep_the_full_path():
    from gpuinfra.sim.kernel import Rngs
    from gpuinfra.sim.scheduler import Framework

    c, pods = _cluster(), PodTable([Pod("p", 0.0, 1.0, 1000, 1024, 1, 1000)])
    rng = Rngs(0)["scheduler"]
    assert Framework(Profile(scores=(ScoreSpec("Random"),)), c, pods, rng)._eq_mode is None
    assert Framework(Profile(scores=(ScoreSpec("DotProd"),)), c, pods, rng)._eq_mode is None
    assert Framework(Profile(scores=(ScoreSpec("BestFit"),)), c, pods, rng)._eq_mode == "single"
    assert Framework(Profile(scores=(ScoreSpec("FirstFit"), ScoreSpec("MostAllocated"))), c, pods, rng)._eq_mode is None
    assert Framework(Profile(), c, pods, rng)._eq_mode == "index"
    assert Framework(Profile(scores=SCORES["mixed"]), c, pods, rng)._eq_mode == "multi"


def test_node_classes_follow_allocations_and_keep_the_lowest_index_first():
    from gpuinfra.sim.cluster import Allocation

    c = ClusterState.from_pools([NodePool("a", "T4", 2, 8000, 8192, 4)])
    eq = NodeClasses(c)
    assert len(eq.alive) == 1 and eq.first(eq.node_cid[0]) == 0
    a = Allocation(0, 0, (1,), 1000, 1000, 1024)
    c.allocate(a)
    eq.sync()
    assert len(eq.alive) == 2 and eq.first(eq.node_cid[1]) == 1 and eq.count[eq.node_cid[0]] == 1
    c.release(a)
    eq.sync()
    assert len(eq.alive) == 1 and eq.first(eq.node_cid[3]) == 0
    c.allocate(Allocation(1, 2, (0,), 500, 0, 0))
    c.allocate(Allocation(2, 0, (1,), 500, 0, 0))  # same multiset of free milli as node 2: same class
    eq.sync()
    assert eq.node_cid[0] == eq.node_cid[2] and eq.first(eq.node_cid[2]) == 0


def test_class_path_suspended_and_rebuilt_when_classes_outnumber_its_limit(monkeypatch):
    # a limit of 7 classes (the cluster starts with 5): the path switches off and on again about
    # 50 times during the run (its caches start over with each rebuilt index), and the run stays
    # the full path's
    monkeypatch.setattr(scheduler, "EQ_RETRY_CYCLES", 5)
    pods = [
        Pod(f"p{k}", k * 5.0, 40.0 + k % 7, [1000, 8000, 30000][k % 3], 1024, [0, 1, 2, 1][k % 4], 1000)
        for k in range(300)
    ]
    profile = Profile(filters=FILTERS, scores=SCORES["mixed"], tie_break="random")
    eng = ReplayEngine(_cluster(), PodTable(pods), profile, seed=11)
    eng.fw._eq_limit = 7
    fast = eng.run()
    _, full = _replay(pods, profile, False)
    _same(fast, full)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.integers(-2, 2), st.integers(0, 30)), st.none()), max_size=80))
def test_sig_queue_pops_in_the_order_of_one_heap(ops):
    # None pops; (priority, time) pushes an entry (key, pod) with a unique pod index
    import heapq

    from gpuinfra.sim.engine import SigQueue

    q, h = SigQueue(), []
    for k, op in enumerate(ops):
        if op is None:
            if h:
                assert q.top() == h[0] and q.pop() == heapq.heappop(h)
        else:
            e = ((op[0], float(op[1]), k), k)
            q.push(e)
            heapq.heappush(h, e)
        assert len(q) == len(h)
    while h:
        assert q.pop() == heapq.heappop(h)
