"""GpuPacking (Score): the FGD paper's 04-GpuPacking, as its artifact computes it.

Source: hkust-adsl/kubernetes-scheduler-simulator ``pkg/simulator/plugin/gpu_packing_score.go``
(getPackingScore); summarised in facts/scheduling.md 2.2.

A CPU-only pod scores 0 on every node. For a GPU pod asking k GPUs of m milli each, on a node
with n GPUs of which ``ff`` are fully free, walk the node's GPUs from least to most free milli
and take the first k with at least m free; ``ff_use`` of them are fully free. Scores are
integers (Go ``int64``), no normalisation; a higher case always beats a lower one:

1. all n GPUs of the node are free: ``max(33 - ff, ff)`` (a smaller idle node first);
2. some fully free GPU must be used: ``max(50 - ff_use, 33)``;
3. only already used GPUs are needed: ``max(100 - sum(floor(free_milli * 100 / 1000)) / 10, 50)``
   over the chosen GPUs (each division truncated).

Ties go to the framework's tie rule (the artifact's: one seeded node permutation). The GPU on the
chosen node is the reserve plugin's choice (the artifact's ``best``: least free milli that fits,
which PolicyDevices does).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import MAX_NODE_SCORE
from gpuinfra.sim.workload import PodTable


def packing_scores(free: np.ndarray, n_gpus: np.ndarray, k: int, m: int) -> np.ndarray:
    """Scores for a pod of ``k`` GPUs x ``m`` milli on nodes whose per-GPU free milli is ``free``
    ([nodes, slots] in any order, -1 for a slot without a usable GPU) and whose usable GPU count
    is ``n_gpus``; every node must fit the pod (the filters' job)."""
    ff = np.count_nonzero(free == MILLI_PER_GPU, axis=1)
    idle_node = np.maximum(MAX_NODE_SCORE // 3 - ff, ff)
    if m >= MILLI_PER_GPU:
        # whole GPUs: only fully free GPUs fit, so all k chosen are fully free (ff_use = k)
        other = np.full(len(ff), max(MAX_NODE_SCORE // 2 - k, MAX_NODE_SCORE // 3), dtype=np.int64)
    elif k == 1:
        # one shared GPU: the least free GPU that fits; fully free -> ff_use = 1, else case 3
        t = np.where(free >= m, free, 2 * MILLI_PER_GPU).min(axis=1).astype(np.int64)
        shared = np.maximum(MAX_NODE_SCORE - (t * 100 // MILLI_PER_GPU) // 10, MAX_NODE_SCORE // 2)
        other = np.where(t == MILLI_PER_GPU, max(MAX_NODE_SCORE // 2 - 1, MAX_NODE_SCORE // 3), shared)
    else:
        # the general walk: least free first, take the first k GPUs that fit
        asc = np.sort(free, axis=1)
        fit = asc >= m
        chosen = fit & (np.cumsum(fit, axis=1) <= k)
        ff_use = np.count_nonzero(chosen & (asc == MILLI_PER_GPU), axis=1)
        ratio = np.where(chosen, asc.astype(np.int64) * 100 // MILLI_PER_GPU, 0).sum(axis=1)
        other = np.where(
            ff_use > 0,
            np.maximum(MAX_NODE_SCORE // 2 - ff_use, MAX_NODE_SCORE // 3),
            np.maximum(MAX_NODE_SCORE - ratio // 10, MAX_NODE_SCORE // 2),
        )
    return np.where(ff == n_gpus, idle_node, other).astype(np.int64)


@register
class GpuPacking(ScorePlugin):
    name = "GpuPacking"
    normalize = False

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        k, m = int(pods.num_gpu[i]), int(pods.gpu_milli[i])
        if k == 0 or m <= 0:
            return np.zeros(len(nodes), dtype=np.int64)
        return packing_scores(cluster.dev_free[nodes], cluster.node_gpu_cap[nodes] // MILLI_PER_GPU, k, m)
