"""BestFit (Score): least weighted leftover after placement (FGD paper's 05-BestFit baseline).

Contract: leftover = 0.5 x free CPU after / CPU capacity + 0.5 x free GPU milli after / GPU
capacity (nodes without GPUs: CPU term only); score = -leftover, so the tightest node wins.
A shared-GPU pod goes on the node's tightest GPU that fits.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import gpu_capacity, gpu_free_total
from gpuinfra.sim.workload import PodTable


@register
class BestFit(ScorePlugin):
    name = "BestFit"

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        cpu = (cluster.cpu_free[nodes] - pods.cpu_milli[i]) / np.maximum(cluster.cpu_cap[nodes], 1)
        gcap = gpu_capacity(cluster, nodes)
        gleft = gpu_free_total(cluster, nodes) - int(pods.num_gpu[i]) * int(pods.gpu_milli[i])
        gpu = np.where(gcap > 0, gleft / np.maximum(gcap, 1), 0.0)
        w_cpu = np.where(gcap > 0, 0.5, 1.0)
        return -(w_cpu * cpu + 0.5 * gpu)
