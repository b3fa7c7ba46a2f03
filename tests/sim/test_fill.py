import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.io.traces import openb_node_list, openb_pod_list, read_openb_nodes, read_openb_static
from gpuinfra.models.fragmentation import FragmentationModel, PodClass, TypicalPods, node_fragmentation, typical_pods
from gpuinfra.sim.cluster import Allocation, NodePool
from gpuinfra.sim.fill import POLICIES, policy_profile, run_fill, tune_pods
from gpuinfra.sim.framework import CycleState
from gpuinfra.sim.nodestate import FragmentationTracker
from gpuinfra.sim.scheduler import Framework
from tests.conftest import cluster, pod, table

TYP = TypicalPods(
    (PodClass(1000, 500, 1), PodClass(0, 0, 0), PodClass(2000, 1000, 2), PodClass(0, 1000, 1, ("V100-32GB",))),
    (0.4, 0.2, 0.2, 0.2),
    1.0,
)


def test_node_fragmentation_by_hand():
    # free (1000, 600, 300, 0), 4000 mCPU, idle 1900:
    #  500-milli class fits: only the 300 + 0 GPUs are too small -> 0.4 x 300 = 120
    #  CPU-only class: all idle -> 0.2 x 1900 = 380
    #  2 x 1000 class: one whole GPU free only -> all idle -> 0.2 x 1900 = 380
    #  V100-only class on a T4 node: no access -> all idle -> 0.2 x 1900 = 380
    assert node_fragmentation("T4", 4000, (1000, 600, 300, 0), TYP) == pytest.approx(1260)
    # on a V100-32GB node the last class fits (one whole GPU free): GPUs < 1000 -> 600 + 300
    assert node_fragmentation("V100-32GB", 4000, (1000, 600, 300, 0), TYP) == pytest.approx(120 + 380 + 380 + 180)
    # not enough CPU for the 500-milli class (Q4): all idle counts
    assert node_fragmentation("T4", 500, (1000, 600, 300, 0), TYP) == pytest.approx(0.4 * 1900 + 3 * 380)
    assert node_fragmentation("T4", 4000, (0, 0), TYP) == 0


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["T4", "V100-32GB", None]),
    st.integers(0, 5000),
    st.lists(st.integers(0, 1000), min_size=0, max_size=8),
)
def test_fast_fragmentation_equals_definition(model, cpu, free):
    free = tuple(sorted(free, reverse=True))
    assert FragmentationModel(TYP)(model, cpu, free) == pytest.approx(node_fragmentation(model, cpu, free, TYP))


def test_typical_pods_threshold_and_renormalisation():
    a, b, c, d = PodClass(1, 1000, 1), PodClass(2, 500, 1), PodClass(3, 0, 0), PodClass(4, 1000, 8)
    t = typical_pods([a] * 5 + [b] * 3 + [c] + [d], threshold=0.8)
    assert t.classes == (a, b) and t.weights == pytest.approx((5 / 8, 3 / 8)) and t.coverage == pytest.approx(0.8)


def test_openb_default_typical_pods_match_the_reference():
    # facts/scheduling.md 2.6: "35 specs cover 95.26 %"
    from gpuinfra.sim.plugins.fgd import pod_classes
    from gpuinfra.sim.workload import PodTable

    t = typical_pods(pod_classes(PodTable(read_openb_static(openb_pod_list("default")))))
    assert len(t.classes) == 35
    assert t.coverage == pytest.approx(0.9526, abs=5e-5)


def _fw(c, pods, policy):
    return Framework(policy_profile(policy), c, pods, np.random.default_rng(0))


def test_fgd_picks_the_gpu_that_strands_least():
    # one node, free (600, 1000); a 500-milli pod; the only typical class is that pod.
    # on the 600 GPU: (1000, 100) strands 100 milli -> delta +100; on the 1000 GPU: (600, 500) -> 0
    c = cluster(("n", "T4", 2, 16000, 65536, 1))
    c.allocate(Allocation(99, 0, (0,), 400, 0, 0))
    pods = table(pod("p", milli=500, cpu=0, mem=0))
    fgd = _fw(c, pods, "fgd")
    r = fgd.schedule(0)
    assert r.alloc.devices == (1,)
    c.release(r.alloc)
    packing = _fw(c, pods, "packing")
    assert packing.schedule(0).alloc.devices == (0,)  # GpuPacking fills the partly used GPU


def test_fgd_prefers_the_node_whose_fragmentation_grows_least():
    # node0 free (300, 1000), node1 free (1000, 1000); a whole-GPU pod; typical = {500-milli: 1}.
    # node0 after: (300, 0): F 300 -> 300, delta 0 ... node1 after (1000, 0): F 0 -> 0, delta 0: tie.
    # with a 250-milli pod instead, node0's 300 GPU can take it: F 300 -> 50 (delta -250), node1 delta 0
    c = cluster(("n", "T4", 2, 16000, 65536, 2))
    c.allocate(Allocation(99, 0, (0,), 700, 0, 0))
    pods = table(pod("w", milli=500), pod("s", milli=250))
    fw = _fw(c, pods, "fgd")
    st_ = CycleState()
    scores = fw.scores[0][0].score(st_, pods, 1, c, np.array([0, 1]))
    assert scores[0] > scores[1]
    assert fw.schedule(1).alloc.node == 0


def test_bestfit_and_dotprod_choose_the_tighter_node():
    c = cluster(("n", "T4", 4, 32000, 65536, 2))
    c.allocate(Allocation(99, 0, (0, 1), 1000, 16000, 0))
    pods = table(pod("p", gpus=1, cpu=4000, mem=0))
    for policy, node in (("bestfit", 0), ("dotprod", 0), ("packing", 0), ("mostallocated", 0), ("spread", 1)):
        fw = _fw(c, pods, policy)
        r = fw.schedule(0)
        assert r.alloc.node == node, policy
        fw.unreserve(r.alloc)


def test_gpu_clustering_by_milli_tiers():
    # gpuinfra's own variant: the type is the exact milli request (the paper's GpuClustering lumps
    # 250 and 500 as "share"; tests/sim/test_paper_policies.py)
    c = cluster(("n", "T4", 4, 64000, 65536, 3))
    pods = table(pod("a", milli=500), pod("b", milli=250), pod("x", milli=500), pod("y", milli=250))
    c.allocate(Allocation(0, 0, (0,), 500, 1000, 1024))  # node0 runs only 500-milli pods
    c.allocate(Allocation(1, 1, (0,), 250, 1000, 1024))  # node1 runs a 250 ...
    c.allocate(Allocation(2, 1, (1,), 500, 1000, 1024))  # ... and a 500: mixed
    fw = _fw(c, pods, "clustering-milli")
    assert fw.schedule(2).alloc.node == 0  # a 500 pod goes where only 500s run
    assert fw.schedule(3).alloc.node == 1  # a 250 pod: node1 (mixed, includes 250) beats idle node2


def test_tune_pods_reaches_target_and_keeps_originals():
    base = [pod(f"p{i}", gpus=1, milli=500) for i in range(10)]
    rng = np.random.default_rng(1)
    tuned = tune_pods(base, capacity_gpus=10, load=1.3, rng=rng)
    total = sum(p.gpu_milli_total for p in tuned)
    assert 13000 <= total < 13000 + 500
    assert {p.name for p in base} <= {p.name for p in tuned}
    assert [p.submit_s for p in tuned] == list(range(len(tuned)))


@pytest.fixture(scope="module")
def openb():
    return read_openb_nodes(openb_node_list("gpu_node")), read_openb_static(openb_pod_list("default"))


@pytest.mark.parametrize("policy", list(POLICIES))
def test_fill_run_invariants_on_the_real_trace(openb, policy):
    pools, base = openb
    small = [p for p in pools if p.gpu_model in ("T4", "V100-32GB", "P100")]  # 428 nodes: fast
    r = run_fill(small, base[:1000], policy, 7, load=1.3, check_every=97)
    assert [row["arrived_pct"] for row in r.rows] == list(range(1, 131))
    assert r.placed + sum(r.failed.values()) == r.pods
    for row in r.rows:
        assert row["alloc_pct"] + row["unalloc_pct"] == pytest.approx(100)
        assert 0 <= row["frag_amount_pct"] <= row["unalloc_pct"] + 1e-9
    assert r.max_frag_check_error < 1e-6  # incremental fragmentation == recomputed from scratch
    again = run_fill(small, base[:1000], policy, 7, load=1.3)
    assert again.rows == r.rows


def _pool(n):
    return [NodePool("g", "T4", 4, 32000, 65536, n)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1, 1, 2]), st.sampled_from([100, 300, 500, 1000]), st.sampled_from([1000, 8000])),
        min_size=1,
        max_size=60,
    )
)
def test_property_fragmentation_tracker_is_exact(specs):
    c = cluster(("g", "T4", 4, 32000, 65536, 3))
    pods = table(*[pod(f"p{i}", gpus=g, milli=m if g == 1 else 1000, cpu=cpu) for i, (g, m, cpu) in enumerate(specs)])
    fw = _fw(c, pods, "fgd")
    tr = FragmentationTracker(c, fw.scores[0][0].typical)
    for i in range(len(pods)):
        fw.schedule(i)
        assert tr.sync() == pytest.approx(tr.recompute())


@pytest.mark.parametrize("policy", ["bestfit", "fgd"])
def test_fill_without_diagnosis_and_without_node_classes_places_the_same_pods(openb, policy, monkeypatch):
    # the fill skips kube-scheduler's FitError message (explain=False) and BestFit may run over
    # node classes; neither may change a placement
    from gpuinfra.sim import scheduler

    pools, base = openb
    small = [p for p in pools if p.gpu_model in ("T4", "V100-32GB", "P100")]
    fast = run_fill(small, base[:1000], policy, 3, load=1.3)
    orig = Framework.schedule
    monkeypatch.setattr(Framework, "schedule", lambda self, i, explain=True: orig(self, i, True))
    monkeypatch.setattr(scheduler, "EQUIVALENCE", False)
    full = run_fill(small, base[:1000], policy, 3, load=1.3)
    assert sum(fast.failed.values()) > 0  # failures happened, so the skipped diagnosis mattered
    assert (fast.rows, fast.placed, fast.failed) == (full.rows, full.placed, full.failed)


def test_an_unexplained_failure_names_the_same_first_filter_as_the_diagnosis():
    from gpuinfra.sim.fill import policy_profile as prof
    from gpuinfra.sim.kernel import Rngs

    c = cluster(("g", "T4", 1, 4000, 8192, 2))
    pods = table(pod("big", gpus=2))
    fw = Framework(prof("bestfit"), c, pods, Rngs(0)["scheduler"])
    quiet, loud = fw.schedule(0, explain=False), fw.schedule(0)
    assert quiet.alloc is None and loud.alloc is None
    assert quiet.status.code == loud.status.code and quiet.status.plugin == loud.status.plugin != ""
    assert "0/2 nodes are available" in loud.status.message()
