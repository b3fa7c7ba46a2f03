"""The FGD paper's six policies as its artifact computes them (facts/scheduling.md 2.2), by hand.

Every expected score below is worked out in the comment beside it from the artifact's rules, on a
cluster small enough to follow; none is read back from the code under test.
"""

import numpy as np
import pytest

from gpuinfra.sim.cluster import Allocation
from gpuinfra.sim.fill import policy_profile
from gpuinfra.sim.framework import CycleState
from gpuinfra.sim.plugins._gpu import go_div, go_normalize
from gpuinfra.sim.plugins.gpu_packing import packing_scores
from gpuinfra.sim.scheduler import Framework
from tests.conftest import cluster, pod, table

ALL = np.arange(4)


def _fw(c, pods, policy, seed=0):
    return Framework(policy_profile(policy), c, pods, np.random.default_rng(seed))


def _scores(fw, pods, i, c, nodes=ALL):
    return [int(x) for x in fw.scores[0][0].score(CycleState(), pods, i, c, nodes)]


# -- 03-GpuClustering ------------------------------------------------------------------------


@pytest.fixture
def clustered():
    # four 8-GPU nodes; s = 25 * (8000 - left) / 8000, integer
    c = cluster(("n", "G2", 8, 96000, 65536, 4))
    c.allocate(Allocation(0, 0, (0,), 500, 1000, 0))  # node0: one share pod; left 7500 -> s = 12500 // 8000 = 1
    c.allocate(Allocation(1, 1, (0,), 300, 1000, 0))  # node1: a share pod ...
    c.allocate(Allocation(2, 1, (1,), 1000, 1000, 0))  # ... and a 1-gpu pod; left 6700 -> s = 32500 // 8000 = 4
    c.allocate(Allocation(3, 2, (), 0, 4000, 0))  # node2: CPU-only pod only: empty map; left 8000 -> s = 0
    c.allocate(Allocation(4, 3, (0, 1), 1000, 2000, 0))  # node3: one 2-gpu pod; left 6000 -> s = 50000 // 8000 = 6
    pods = table(
        pod("share800", milli=800),
        pod("one", gpus=1, milli=1000),
        pod("two", gpus=2, milli=1000),
        pod("cpu", gpus=0, milli=0),
        pod("four", gpus=4, milli=1000),
    )
    return c, pods, _fw(c, pods, "clustering")


def test_clustering_share_is_a_category_not_a_milli_value(clustered):
    c, pods, fw = clustered
    # an 800-milli pod has affinity "share" like node0's 500-milli pod:
    # node0 only-share 75 + 1; node1 share among others 50 + 4; node2 empty map 25 + 0; node3 other only 0 + 6
    assert _scores(fw, pods, 0, c) == [76, 54, 25, 6]
    assert fw.schedule(0).alloc.node == 0


def test_clustering_k_gpu_tiers(clustered):
    c, pods, fw = clustered
    # 1-gpu: node0 other 1; node1 has 1-gpu among 2 categories 50 + 4; node2 empty 25; node3 other 6
    assert _scores(fw, pods, 1, c) == [1, 54, 25, 6]
    # 2-gpu: node3 holds only 2-gpu pods: 75 + 6
    assert _scores(fw, pods, 2, c) == [1, 4, 25, 81]
    # 4-gpu: nobody has it; the node with no GPU pod (CPU pods do not count) is the 25 tier
    assert _scores(fw, pods, 4, c) == [1, 4, 25, 6]


def test_clustering_cpu_only_pod_scores_zero_everywhere(clustered):
    c, pods, fw = clustered
    assert _scores(fw, pods, 3, c) == [0, 0, 0, 0]
    # so it lands on the feasible node ranked first in the run's seeded permutation
    first = int(ALL[np.argmin(fw.rank[ALL])])
    assert fw.schedule(3).alloc.node == first


def test_clustering_integer_steps_of_320_milli():
    # one node, one share pod of m milli on it: left = 8000 - m
    # m = 319: 25 * 319 = 7975 < 8000 -> s = 0; m = 320: 8000 / 8000 -> s = 1; m = 639 -> 15975 // 8000 = 1
    for m, s in ((319, 0), (320, 1), (639, 1), (640, 2)):
        c = cluster(("n", "G2", 8, 96000, 65536, 1))
        c.allocate(Allocation(0, 0, (0,), m, 0, 0))
        pods = table(pod("p", milli=100))
        assert _scores(_fw(c, pods, "clustering"), pods, 0, c, np.array([0])) == [75 + s], m


def test_clustering_map_follows_allocations_made_after_setup():
    c = cluster(("n", "G2", 8, 96000, 65536, 2))
    pods = table(pod("a", milli=500), pod("b", milli=500))
    fw = _fw(c, pods, "clustering")
    assert _scores(fw, pods, 1, c, np.array([0, 1])) == [25, 25]  # both idle: 25 + 0
    r = fw.schedule(0)
    # the node that took a: only-share 75 + 25 * 500 // 8000 = 75 + 1; the other still 25
    got = _scores(fw, pods, 1, c, np.array([0, 1]))
    assert got[r.alloc.node] == 76 and got[1 - r.alloc.node] == 25
    fw.unreserve(r.alloc)
    assert _scores(fw, pods, 1, c, np.array([0, 1])) == [25, 25]


# -- 04-GpuPacking ---------------------------------------------------------------------------


def test_packing_idle_nodes_smaller_first_with_its_cap():
    # all GPUs free: max(33 - ff, ff): 2 GPUs 31, 4 GPUs 29, 8 GPUs 25; 20 GPUs: max(13, 20) = 20 (the cap)
    for n, want in ((2, 31), (4, 29), (8, 25), (20, 20)):
        free = np.full((1, n), 1000)
        assert packing_scores(free, np.array([n]), 1, 500).tolist() == [want], n


def test_packing_fully_free_gpus_of_a_used_node_with_its_cap():
    # 8-GPU node, one GPU used: a 4-GPU pod takes 4 fully free GPUs: 50 - 4 = 46
    free = np.array([[0, 1000, 1000, 1000, 1000, 1000, 1000, 1000]])
    assert packing_scores(free, np.array([8]), 4, 1000).tolist() == [46]
    # a 500-milli pod where the only partly used GPU has 200 left: it must open a fresh GPU: 50 - 1
    free = np.array([[200, 1000, 1000, 1000]])
    assert packing_scores(free, np.array([4]), 1, 500).tolist() == [49]
    # 20-GPU node, one GPU used, an 18-GPU pod: max(50 - 18, 33) = 33 (the cap)
    free = np.array([[0] + [1000] * 19])
    assert packing_scores(free, np.array([20]), 18, 1000).tolist() == [33]


def test_packing_shared_gpus_with_integer_steps_and_its_cap():
    # 300-milli pod; least free GPU that fits first: 400 -> 400 * 100 // 1000 = 40 -> 40 // 10 = 4 -> 96
    free = np.array([[1000, 1000, 600, 400]])
    assert packing_scores(free, np.array([4]), 1, 300).tolist() == [96]
    # 459 free -> 45 -> 4 -> 96 (truncation); 999 free -> 99 -> 9 -> 91; a 150 GPU is too small, skipped
    assert packing_scores(np.array([[150, 459, 1000]]), np.array([3]), 1, 300).tolist() == [96]
    assert packing_scores(np.array([[150, 999, 1000]]), np.array([3]), 1, 300).tolist() == [91]
    # cap: 8 GPUs of 500 asked on 8 used GPUs with 999 free: 8 x 99 = 792 -> 79 -> max(100 - 79, 50) = 50
    assert packing_scores(np.full((1, 8), 999), np.array([8]), 8, 500).tolist() == [50]


def test_packing_policy_on_a_cluster():
    # node0 idle, 4 GPUs (29); node1 idle, 2 GPUs (31); node2 free (1000, 1000, 1000, 700); node3 (.., 500)
    c = cluster(("a", "T4", 4, 32000, 65536, 1), ("b", "T4", 2, 32000, 65536, 1), ("c", "T4", 4, 32000, 65536, 2))
    c.allocate(Allocation(0, 2, (3,), 300, 0, 0))
    c.allocate(Allocation(1, 3, (3,), 500, 0, 0))
    pods = table(pod("s", milli=400), pod("w", gpus=2, milli=1000), pod("cpu", gpus=0, milli=0))
    fw = _fw(c, pods, "packing")
    # 400-milli pod: node2's 700 GPU -> 70 // 10 = 7 -> 93; node3's 500 -> 50 // 10 = 5 -> 95: node3 wins
    assert _scores(fw, pods, 0, c) == [29, 31, 93, 95]
    # 2 whole GPUs: idle nodes 29 and 31; used nodes must open 2 fresh GPUs: 50 - 2 = 48
    assert _scores(fw, pods, 1, c) == [29, 31, 48, 48]
    assert _scores(fw, pods, 2, c) == [0, 0, 0, 0]
    r = fw.schedule(0)
    assert (r.alloc.node, r.alloc.devices) == (3, (3,))  # the GPU: least free that fits ("best")


# -- 01-Random -------------------------------------------------------------------------------


def test_random_scores_one_node_100_and_draws_uniformly():
    c = cluster(("n", "T4", 4, 32000, 65536, 4))
    pods = table(pod("p", milli=1000))
    fw = _fw(c, pods, "random", seed=3)
    counts = np.zeros(4)
    for _ in range(4000):
        s = _scores(fw, pods, 0, c)
        assert sorted(s) == [0, 0, 0, 100]
        counts[int(np.argmax(s))] += 1
    # uniform: each node 1000 +- 5 standard deviations (sqrt(4000 x 1/4 x 3/4) = 27)
    assert np.all(np.abs(counts - 1000) < 5 * 27.4)


def test_random_puts_a_shared_pod_on_a_random_gpu_that_fits():
    # one node, free (1000, 600, 400, 100); a 300-milli pod fits on the first three GPUs
    c = cluster(("n", "T4", 4, 32000, 65536, 1))
    for d, used in ((1, 400), (2, 600), (3, 900)):
        c.allocate(Allocation(90 + d, 0, (d,), used, 0, 0))
    pods = table(pod("p", milli=300))
    fw = _fw(c, pods, "random", seed=5)
    seen = []
    for _ in range(300):
        r = fw.schedule(0)
        seen.append(r.alloc.devices[0])
        fw.unreserve(r.alloc)
    counts = np.bincount(seen, minlength=4)
    assert counts[3] == 0  # 100 free: too small
    assert np.all(counts[:3] > 60)  # each of the three about 100 times
    # the other baselines take the least free GPU that fits ("best"): device 2 (400 free)
    for policy in ("clustering", "packing", "bestfit", "dotprod"):
        r = _fw(c, pods, policy).schedule(0)
        assert r.alloc.devices == (2,), policy
        c.release(r.alloc)


def test_random_is_reproducible_per_seed():
    pods = table(*[pod(f"p{i}", milli=300) for i in range(20)])

    def placements(seed):
        c = cluster(("n", "T4", 4, 32000, 65536, 6))
        fw = _fw(c, pods, "random", seed)
        return [(r.alloc.node, r.alloc.devices) for r in (fw.schedule(i) for i in range(20))]

    assert placements(1) == placements(1) and placements(1) != placements(2)


# -- 05-BestFit and 02-DotProd ---------------------------------------------------------------


def _two_nodes():
    # node0: 32 cores and 2 GPUs free; node1: 8 cores and 4 GPUs free (T4, 8 GPUs each)
    c = cluster(("n", "T4", 8, 96000, 65536, 2))
    c.allocate(Allocation(0, 0, (0, 1, 2, 3, 4, 5), 1000, 64000, 0))
    c.allocate(Allocation(1, 1, (0, 1, 2, 3), 1000, 88000, 0))
    return c, table(pod("p", gpus=1, milli=1000, cpu=4000))


def test_bestfit_by_hand():
    # leftover = 0.5 (cpu_free - 4000) / 128000 + 0.5 (gpu_free - 1000) / 8000
    # node0: 0.5 x 28000/128000 + 0.5 x 1000/8000 = 0.109375 + 0.0625 = 0.171875 -> int(82.8125) = 82
    # node1: 0.5 x 4000/128000 + 0.5 x 3000/8000 = 0.015625 + 0.1875 = 0.203125 -> int(79.6875) = 79
    # normalised: (82 - 79) x 100 / 3 = 100 and 0
    c, pods = _two_nodes()
    fw = _fw(c, pods, "bestfit")
    assert _scores(fw, pods, 0, c, np.array([0, 1])) == [100, 0]
    assert fw.schedule(0).alloc.node == 0


def test_dotprod_by_hand():
    # dot = (cpu_free / 128000)(4000 / 128000) + (gpu_free / 8000)(1000 / 8000); score = int(100 (1 - dot / 2))
    # node0: 0.25 x 0.03125 + 0.25 x 0.125 = 0.0390625 -> 100 x (1 - 0.01953125) = 98.05 -> 98
    # node1: 0.0625 x 0.03125 + 0.5 x 0.125 = 0.064453125 -> 100 x (1 - 0.0322265625) = 96.78 -> 96
    c, pods = _two_nodes()
    fw = _fw(c, pods, "dotprod")
    assert _scores(fw, pods, 0, c, np.array([0, 1])) == [98, 96]
    assert fw.schedule(0).alloc.node == 0


def test_go_integer_helpers():
    assert go_div(np.array([7, -7, 0]), 2).tolist() == [3, -3, 0]  # toward zero, unlike numpy's //
    assert go_normalize(np.array([79, 82, 80])).tolist() == [0, 100, 33]
    assert go_normalize(np.array([5, 5])).tolist() == [0, 0]


# -- the tie-break -----------------------------------------------------------------------------


def test_ties_go_to_the_first_node_of_the_seeded_permutation():
    # eight identical idle nodes: every paper policy ties on all of them; the winner is the node
    # ranked first in the run's permutation, which depends on the seed
    pods = table(pod("p", milli=500))
    for policy in ("clustering", "packing", "bestfit", "dotprod", "fgd"):
        winners = set()
        for seed in range(6):
            c = cluster(("n", "T4", 4, 32000, 65536, 8))
            fw = _fw(c, pods, policy, seed)
            assert fw.schedule(0).alloc.node == int(np.argmin(fw.rank)), policy
            winners.add(int(np.argmin(fw.rank)))
        assert len(winners) > 1, policy


# -- 06-FGD's GPU choice -----------------------------------------------------------------------


def test_fgd_shared_pod_takes_the_lowest_index_gpu_with_the_best_integer_score():
    # one T4 node; the only typical class is the pod itself (500 milli). Before: both GPUs fit a
    # 500 pod, F = 0. A 500 pod on GPU0 (605 free) strands 105: score int(100 / (1 + e^0.105)) = 47;
    # on GPU1 (600 free) it strands 100: int(100 / (1 + e^0.1)) = int(47.50) = 47. Same integer
    # score, so the artifact keeps the first GPU by index (GPU0), not the smaller delta (GPU1).
    for used0, used1, want in ((395, 400, 0), (400, 395, 0)):
        c = cluster(("n", "T4", 2, 16000, 65536, 1))
        c.allocate(Allocation(90, 0, (0,), used0, 0, 0))
        c.allocate(Allocation(91, 0, (1,), used1, 0, 0))
        pods = table(pod("p", milli=500, cpu=0, mem=0))
        r = _fw(c, pods, "fgd").schedule(0)
        assert r.alloc.devices == (want,)
    # with a clear winner the better GPU is taken whatever its index: free (600, 1000); on GPU0 the pod
    # leaves (100, 1000), F 0 -> 100, score 47; on GPU1 (600, 500), F stays 0, score 50: GPU1
    c = cluster(("n", "T4", 2, 16000, 65536, 1))
    c.allocate(Allocation(91, 0, (0,), 400, 0, 0))
    pods = table(pod("p", milli=500, cpu=0, mem=0))
    assert _fw(c, pods, "fgd").schedule(0).alloc.devices == (1,)


def test_packing_fast_paths_equal_the_general_walk():
    # the whole-GPU and one-shared-GPU shortcuts give what walking the GPUs gives (k GPUs of m milli
    # with m just below 1000 behave like the general case); random feasible nodes
    rng = np.random.default_rng(0)
    free = rng.choice([-1, 0, 100, 250, 400, 500, 700, 999, 1000, 1000, 1000], size=(400, 8))
    n = np.count_nonzero(free >= 0, axis=1)
    for k, m in ((1, 1000), (2, 1000), (4, 1000), (1, 300), (1, 500), (1, 999)):
        ok = np.count_nonzero(free >= m, axis=1) >= k
        fast = packing_scores(free[ok], n[ok], k, m)
        # the general walk, written out per node
        slow = []
        for row, gpus in zip(free[ok], n[ok], strict=True):
            ff = int(np.count_nonzero(row == 1000))
            if ff == gpus:
                slow.append(max(33 - ff, ff))
                continue
            chosen = [v for v in sorted(row) if v >= m][:k]
            ff_use = sum(1 for v in chosen if v == 1000)
            slow.append(max(50 - ff_use, 33) if ff_use else max(100 - sum(v * 100 // 1000 for v in chosen) // 10, 50))
        assert fast.tolist() == slow, (k, m)
