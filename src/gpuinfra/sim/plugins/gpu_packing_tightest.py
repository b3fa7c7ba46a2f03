"""GpuPackingTightest (Score): pack shared GPUs first, tightest first (gpuinfra's own variant of
the FGD paper's 04-GpuPacking, which is ``GpuPacking``).

Where it goes beyond the paper: within each tier the exact free milli decides (the tightest
partly used GPU in the whole cluster, then the fullest node), where the artifact caps its
scores in integer steps (so many nodes tie and the seeded permutation picks); CPU-only pods are
packed onto used nodes too instead of scoring 0 everywhere.

Contract, in tiers (a higher tier always wins):
3. a shared-GPU pod on an already partly used GPU that fits it (least free such GPU first);
2. fully free GPUs on a node that is already partly used;
1. an entirely idle node.
Within tiers 2 and 1 the node with less free GPU milli wins. The chosen GPU is passed to the
PolicyDevices reserve plugin.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import gpu_capacity, gpu_free_total, record_gpu_choice
from gpuinfra.sim.workload import PodTable


@register
class GpuPackingTightest(ScorePlugin):
    name = "GpuPackingTightest"
    normalize = False

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        m, k = int(pods.gpu_milli[i]), int(pods.num_gpu[i])
        free = gpu_free_total(cluster, nodes)
        used_node = free < gpu_capacity(cluster, nodes)
        score = np.where(used_node, 2.0, 1.0) * 1e5 - free / MILLI_PER_GPU
        if k == 1 and m < MILLI_PER_GPU:
            f = cluster.dev_free[nodes]
            partial = np.where((f >= m) & (f < MILLI_PER_GPU), f, 2 * MILLI_PER_GPU).min(axis=1)
            has = partial < 2 * MILLI_PER_GPU
            score = np.where(has, 3e5 - partial, score)
            full_or_tight = np.where(has, partial, MILLI_PER_GPU)
            record_gpu_choice(state, nodes, full_or_tight)
        return score
