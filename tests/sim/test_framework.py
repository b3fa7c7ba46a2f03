import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.sim.cluster import Allocation
from gpuinfra.sim.framework import Code, Profile, ScoreSpec
from gpuinfra.sim.scheduler import Framework
from tests.conftest import cluster, pod, table

RNG = np.random.default_rng(0)


def fw(c, pods, **kw):
    return Framework(Profile(**kw), c, pods, RNG)


def test_shared_gpu_must_fit_on_one_device():
    c = cluster(("n", "T4", 2, 8000, 8192, 1))
    c.allocate(Allocation(99, 0, (0,), 700, 0, 0))
    c.allocate(Allocation(98, 0, (1,), 700, 0, 0))
    # 600 milli free in all, 300 + 300: a 500-milli pod does not fit, a 300 does
    pods = table(pod("big", milli=500), pod("small", milli=300))
    f = fw(c, pods)
    res = f.schedule(0)
    assert res.status.code == Code.UNSCHEDULABLE
    assert (
        res.status.message() == "0/1 nodes are available: 1 Insufficient gpu-milli on a single GPU (NodeResourcesFit)."
    )
    ok = f.schedule(1)
    assert ok.status.ok and ok.alloc.devices == (0,)


def test_reasons_are_charged_to_the_first_rejecting_filter():
    c = cluster(("a", "A100-80GB", 8, 64000, 65536, 2), ("t", "T4", 2, 8000, 8192, 3))
    pods = table(pod("p", gpus=4, cpu=32000, models=("A100-80GB",)))
    c.allocate(Allocation(90, 0, (0, 1, 2, 3, 4, 5), 1000, 0, 0))  # a-0000: 2 GPUs left
    hog = Allocation(91, 1, (), 0, 40000, 0)  # a-0001: 24 cores left
    c.allocate(hog)
    f = fw(c, pods)
    res = f.schedule(0)
    # like kube-scheduler, a node rejected for two reasons counts under both
    assert res.status.message() == (
        "0/5 nodes are available: 4 Insufficient cpu (NodeResourcesFit), "
        "4 Insufficient nvidia.com/gpu (NodeResourcesFit)."
    )
    assert res.status.plugin == "NodeResourcesFit"
    c.release(hog)
    res = f.schedule(0)
    assert res.status.ok and res.alloc.node == 1 and res.alloc.devices == (0, 1, 2, 3)
    # with resources free everywhere, the T4 nodes are now rejected by the model filter
    c2 = cluster(("t", "T4", 8, 64000, 65536, 2))
    r2 = fw(c2, pods).schedule(0)
    assert r2.status.message() == "0/2 nodes are available: 2 node(s) didn't match the pod's GPU model (GpuModel)."


def test_gpu_model_filter():
    c = cluster(("t", "T4", 2, 8000, 8192, 2), ("v", "V100-32GB", 8, 64000, 65536, 1))
    pods = table(pod("p", models=("V100-32GB",)), pod("any"), pod("cpu", gpus=0))
    f = fw(c, pods)
    assert f.schedule(0).alloc.node == 2
    assert f.schedule(1).alloc.node == 0  # first fit
    r = f.schedule(2)
    assert r.alloc.node == 0 and r.alloc.devices == ()


def test_least_and_most_allocated_choose_as_computed_by_hand():
    # node 0 has 6 of 8 GPUs taken, node 1 is empty; same CPU and memory use
    c = cluster(("a", "A100-80GB", 8, 64000, 65536, 2))
    c.allocate(Allocation(90, 0, tuple(range(6)), 1000, 0, 0))
    pods = table(pod("p", gpus=1, cpu=0, mem=0))
    spread = fw(c, pods, scores=(ScoreSpec("LeastAllocated"),))
    pack = fw(c, pods, scores=(ScoreSpec("MostAllocated"),))
    # after placing: node0 free gpu 1/8 -> score (1 + 1 + 1/8)/3; node1 (1 + 1 + 7/8)/3
    assert spread.select(None, 0, np.array([0, 1])) == 1
    assert pack.select(None, 0, np.array([0, 1])) == 0


def test_random_tie_break_is_seeded():
    c = cluster(("a", "A100-80GB", 8, 64000, 65536, 20))
    pods = table(pod("p"))
    prof = dict(scores=(ScoreSpec("LeastAllocated"),), tie_break="random")
    picks1 = [
        Framework(Profile(**prof), c, pods, np.random.default_rng(5)).select(None, 0, np.arange(20)) for _ in range(1)
    ]
    picks2 = [
        Framework(Profile(**prof), c, pods, np.random.default_rng(5)).select(None, 0, np.arange(20)) for _ in range(1)
    ]
    assert picks1 == picks2


def test_unknown_plugin_is_a_user_error_with_suggestion():
    c = cluster(("a", "A100-80GB", 8, 64000, 65536, 1))
    with pytest.raises(UserError) as e:
        fw(c, table(pod("p")), scores=(ScoreSpec("MostAlocated"),))
    assert "Did you mean 'MostAllocated'" in str(e.value)


@st.composite
def pod_ops(draw):
    n = draw(st.integers(1, 40))
    specs = []
    for _ in range(n):
        gpus = draw(st.sampled_from([0, 1, 1, 1, 2, 4]))
        milli = draw(st.sampled_from([100, 250, 500, 1000])) if gpus == 1 else 1000
        specs.append((gpus, milli, draw(st.integers(0, 20000)), draw(st.integers(0, 40000))))
    releases = draw(st.lists(st.integers(0, n - 1), max_size=n))
    return specs, releases


@settings(max_examples=60, deadline=None)
@given(pod_ops())
def test_property_no_overcommit_and_unreserve_restores_state(ops):
    specs, releases = ops
    c = cluster(("a", "A100-80GB", 4, 32000, 65536, 2), ("t", "T4", 2, 16000, 32768, 2))
    pods = table(*[pod(f"p{i}", gpus=g, milli=m, cpu=cpu, mem=mem) for i, (g, m, cpu, mem) in enumerate(specs)])
    f = fw(c, pods)
    start = (c.cpu_free.copy(), c.mem_free.copy(), c.dev_free.copy())
    allocs = {}
    for i in range(len(pods)):
        r = f.schedule(i)
        if r.alloc is not None:
            allocs[i] = r.alloc
        assert (c.dev_free[c.dev_exists] >= 0).all() and (c.dev_free <= 1000).all()
        assert (c.cpu_free >= 0).all() and (c.mem_free >= 0).all()
        # the milli the cluster says is allocated equals what the allocations hold
        assert c.alloc_milli.sum() == sum(a.gpu_milli_total for a in allocs.values())
    for i in releases:
        if i in allocs:
            f.unreserve(allocs.pop(i))
    for a in list(allocs.values()):
        f.unreserve(a)
    assert (c.cpu_free == start[0]).all() and (c.mem_free == start[1]).all() and (c.dev_free == start[2]).all()
    assert c.alloc_milli.sum() == 0 and c.busy_devices.sum() == 0


def test_gpu_taint_keeps_cpu_pods_off_gpu_nodes_but_not_gpu_pods():
    from gpuinfra.sim.cluster import ClusterState, NodePool, Taint
    from gpuinfra.sim.workload import Toleration

    gpu_taint = (Taint("nvidia.com/gpu", "present", "NoSchedule"),)
    c = ClusterState.from_pools(
        [NodePool("gpu", "A100-80GB", 8, 64000, 65536, 1, taints=gpu_taint), NodePool("cpu", None, 0, 64000, 65536, 1)]
    )
    import dataclasses

    tolerant = dataclasses.replace(pod("cpu-tolerant", gpus=0), tolerations=(Toleration("nvidia.com/gpu", "Exists"),))
    pods = table(pod("cpu-job", gpus=0), pod("gpu-job"), tolerant)
    f = fw(c, pods)
    assert f.schedule(0).alloc.node == 1  # CPU pod: the GPU node's taint is not tolerated
    assert f.schedule(1).alloc.node == 0  # GPU pod: ExtendedResourceToleration tolerates it
    assert f.schedule(2).alloc.node == 0  # explicit toleration
    c2 = ClusterState.from_pools([NodePool("gpu", "A100-80GB", 8, 64000, 65536, 1, taints=gpu_taint)])
    r = fw(c2, table(pod("cpu-job", gpus=0))).schedule(0)
    assert r.status.message() == "0/1 nodes are available: 1 node(s) had untolerated taint (TaintToleration)."
    noert = Framework(
        Profile(plugin_args={"TaintToleration": {"extended_resource_toleration": False}}),
        c2,
        table(pod("gpu-job")),
        RNG,
    )
    assert noert.schedule(0).alloc is None


def test_node_selector():
    import dataclasses

    from gpuinfra.sim.cluster import ClusterState, NodePool

    c = ClusterState.from_pools(
        [
            NodePool("a", "H100-SXM", 8, 64000, 65536, 1, labels=(("zone", "a"),)),
            NodePool("b", "H100-SXM", 8, 64000, 65536, 1, labels=(("zone", "b"),)),
        ]
    )
    p = dataclasses.replace(pod("p"), node_selector=(("zone", "b"),))
    q = dataclasses.replace(pod("q"), node_selector=(("zone", "c"),))
    f = fw(c, table(p, q))
    assert f.schedule(0).alloc.node == 1
    assert "2 node(s) didn't match Pod's node affinity/selector (NodeAffinity)" in f.schedule(1).status.message()


def test_topology_devices_picks_the_nvlink_pair():
    """On 4x A100 PCIe nodes with NVLink bridge pairs (0-1, 2-3), with GPU 0 busy a 2-GPU pod gets
    the bridged pair 2-3; first fit would take 1-2 across sockets."""
    c = cluster(("a", "A100-80GB", 4, 64000, 65536, 1))
    c.allocate(Allocation(99, 0, (0,), 1000, 0, 0))
    pods = table(pod("p", gpus=2))
    assert fw(c, pods).schedule(0).alloc.devices == (1, 2)
    c2 = cluster(("a", "A100-80GB", 4, 64000, 65536, 1))
    c2.allocate(Allocation(99, 0, (0,), 1000, 0, 0))
    assert fw(c2, pods, reserve="TopologyDevices").schedule(0).alloc.devices == (2, 3)


def test_topology_aware_scores_the_node_whose_free_gpus_talk_fastest():
    def busy():
        c = cluster(("a", "A100-80GB", 4, 64000, 65536, 2))
        c.allocate(Allocation(1, 0, (0, 3), 1000, 0, 0))  # node 0: free 1, 2 (across sockets)
        c.allocate(Allocation(2, 1, (0, 1), 1000, 0, 0))  # node 1: free 2, 3 (NVLink pair)
        return c

    pods = table(pod("p", gpus=2), pod("busy0", gpus=2), pod("busy1", gpus=2))
    res = fw(busy(), pods, scores=(ScoreSpec("TopologyAware"),), reserve="TopologyDevices").schedule(0)
    assert res.alloc.node == 1 and res.alloc.devices == (2, 3)
    # without the topology term both nodes tie and the first wins
    assert fw(busy(), pods, scores=(ScoreSpec("LeastAllocated"),)).schedule(0).alloc.node == 0
