"""DotProd (Score): Tetris-style alignment (FGD paper's 02-DotProd baseline).

Contract: with each dimension normalised by the node's own capacity, score = -(free_cpu .
req_cpu + free_gpu . req_gpu), GPU dimensions merged into one (milli). A smaller product (the
pod fits a node with less left over in the dimensions it uses) scores higher. A shared-GPU pod
goes on the node's tightest GPU that fits.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import gpu_capacity, gpu_free_total
from gpuinfra.sim.workload import PodTable


@register
class DotProd(ScorePlugin):
    name = "DotProd"

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        cpu_cap = np.maximum(cluster.cpu_cap[nodes], 1)
        gcap = np.maximum(gpu_capacity(cluster, nodes), 1)
        cpu = (cluster.cpu_free[nodes] / cpu_cap) * (pods.cpu_milli[i] / cpu_cap)
        gpu = (gpu_free_total(cluster, nodes) / gcap) * (int(pods.num_gpu[i]) * int(pods.gpu_milli[i]) / gcap)
        return -(cpu + gpu)
