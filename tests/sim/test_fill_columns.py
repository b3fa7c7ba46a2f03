"""The fill's faster paths (issue 19) against the per-pod paths they replaced: the tuned workload
built as columns, pod classes counted on columns, and FGD's whole-GPU delta without a re-sort."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gpuinfra.io.traces import openb_node_list, openb_pod_list, read_openb_nodes, read_openb_static
from gpuinfra.models.fragmentation import PodClass, typical_pods
from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.kernel import Rngs
from gpuinfra.sim.plugins.fgd import FGD, pod_classes
from gpuinfra.sim.workload import Pod, PodTable, Toleration, tune_to_load, tune_to_load_table
from tests.sim.test_workload_columns import assert_same


@pytest.fixture(scope="module")
def base() -> list[Pod]:
    return read_openb_static(openb_pod_list("default"))


@pytest.mark.parametrize("load", [0.3, 1.3, 2.0])
@pytest.mark.parametrize("seed", [1, 42])
def test_tuned_table_equals_the_pod_list(base, load, seed):
    """Same draws, same pods, same order: the column build against PodTable(list of Pods)."""
    fast = tune_to_load_table(base, 6212, load, Rngs(seed)["workload"])
    ref = PodTable(tune_to_load(base, 6212, load, Rngs(seed)["workload"]))
    assert_same(fast, ref)


def test_tuned_table_copies_drop_selectors_and_gangs_as_the_list_does():
    """Resampled copies keep the request but not the selector, tolerations, gang or MIG profile;
    the originals keep theirs (both paths agree on a workload that has all of them)."""
    tol = (Toleration("gpu", "Exists"),)
    pods = [
        Pod("a", 0.0, 5.0, 1000, 10, 1, 500, ("T4",), 3, "LS", "o", job="j", node_selector=(("k", "v"),)),
        Pod("b", 1.0, 5.0, 2000, 10, 2, 1000, tolerations=tol, gang_size=2, job="g"),
        Pod("c", 2.0, 5.0, 500, 10, 1, 1000, mig_profile="1g.10gb"),
        Pod("d", 3.0, 5.0, 500, 10, 0, 0),
    ]
    for seed in range(5):
        fast = tune_to_load_table(pods, 4, 3.0, Rngs(seed)["workload"])
        ref = PodTable(tune_to_load(pods, 4, 3.0, Rngs(seed)["workload"]))
        assert_same(fast, ref)
        assert any("~" in n for n in fast.names)


def test_pod_classes_count_what_a_per_pod_count_gives(base):
    t = PodTable(base)
    classes = pod_classes(t)
    per_pod = [
        PodClass(int(t.cpu_milli[i]), int(t.gpu_milli[i]), int(t.num_gpu[i]), t.gpu_models[i] if t.num_gpu[i] else ())
        for i in range(len(t))
    ]
    assert list(classes) == per_pod
    assert classes.counts == Counter(per_pod)
    first_seen = list(dict.fromkeys(per_pod))
    assert classes.distinct == first_seen
    assert classes.index.tolist() == [first_seen.index(c) for c in per_pod]
    assert typical_pods(classes) == typical_pods(list(per_pod))  # counts read, or counted again: same


def test_fgd_whole_gpu_delta_equals_the_resorted_state():
    """For a whole-GPU class, the state after placing is the free list without its first k entries
    plus k zeros; the re-sort of the list with k 1000s replaced by zeros gives the same tuple and
    the same delta on every node state a fill reaches."""
    from gpuinfra.sim.fill import policy_profile
    from gpuinfra.sim.scheduler import Framework

    pools = read_openb_nodes(openb_node_list("gpu_node"))
    base = read_openb_static(openb_pod_list("default"))
    c = ClusterState.from_pools(pools)
    t = tune_to_load_table(base, c.n_gpus, 0.8, Rngs(3)["workload"])
    rngs = Rngs(3)
    fw = Framework(policy_profile("fgd"), c, t, rngs["scheduler"])
    placed = sum(fw.schedule(i).alloc is not None for i in range(len(t)))
    assert placed > 1000
    plugin = fw.scores[0][0]
    assert isinstance(plugin, FGD)
    plugin.tracker.sync()
    idx = plugin.tracker.index
    whole = [k for k, cls in enumerate(plugin.class_list) if cls.gpu_milli >= 1000 and cls.num_gpu]
    assert whole
    checked = 0
    for sid, (model, cpu, free) in enumerate(list(idx.keys)):
        for cid in whole:
            k = plugin.class_list[cid].num_gpu
            if sum(1 for f in free if f == 1000) < k:
                continue
            after = list(free)
            for _ in range(k):
                after.remove(1000)
                after.append(0)
            want = plugin.tracker.f_of_key((model, cpu - plugin.class_list[cid].cpu_milli, tuple(sorted(after)[::-1])))
            assert plugin.delta(sid, cid)[0] == want - plugin.tracker.f_of_state(sid)
            checked += 1
    assert checked > 0


def test_cpu_only_pods_with_models_are_one_class():
    """A CPU-only pod's allowed models do not make a class (it uses no GPU): two such pods that
    differ only there are one class, counted together, at the place of the first."""
    pods = [
        Pod("a", 0.0, 1.0, 100, 1, 0, 0, ("T4",)),
        Pod("b", 1.0, 1.0, 200, 1, 1, 1000, ("T4",)),
        Pod("c", 2.0, 1.0, 100, 1, 0, 0, ("V100-32GB",)),
        Pod("d", 3.0, 1.0, 100, 1, 0, 0),
    ]
    classes = pod_classes(PodTable(pods))
    cpu_only = PodClass(100, 0, 0, ())
    assert classes.distinct == [cpu_only, PodClass(200, 1000, 1, ("T4",))]
    assert classes.index.tolist() == [0, 1, 0, 0]
    assert classes.counts == {cpu_only: 3, PodClass(200, 1000, 1, ("T4",)): 1}


def test_fragmentation_of_a_state_no_node_is_in_is_not_interned():
    """FGD asks F_n of every state a placement would lead to; those stay out of the node-state
    index (its size drives FGD's per-class arrays) and give the same value once a node gets there."""
    from gpuinfra.models.fragmentation import FragmentationModel
    from gpuinfra.sim.cluster import Allocation
    from gpuinfra.sim.nodestate import FragmentationTracker

    pools = read_openb_nodes(openb_node_list("gpu_node"))
    c = ClusterState.from_pools(pools)
    typ = typical_pods(pod_classes(PodTable(read_openb_static(openb_pod_list("default")))))
    tr = FragmentationTracker(c, typ)
    n = int(np.flatnonzero(c.gpu_count >= 2)[0])
    model_id, cpu, free = tr.index.key_of(n)
    after = (model_id, cpu - 4000, (500, *free[1:]))
    states = len(tr.index.keys)
    want = FragmentationModel(typ)(c.models[model_id], cpu - 4000, tuple(sorted(after[2], reverse=True)))
    assert tr.f_of_key((model_id, cpu - 4000, tuple(sorted(after[2], reverse=True)))) == want
    assert len(tr.index.keys) == states
    c.allocate(Allocation(0, n, (0,), 500, 4000, 0))
    tr.sync()
    assert tr.index.key_of(n) == (model_id, cpu - 4000, tuple(sorted(after[2], reverse=True)))
    assert tr.f_of_state(int(tr.index.node_state[n])) == want
    assert tr.total == pytest.approx(tr.recompute())
