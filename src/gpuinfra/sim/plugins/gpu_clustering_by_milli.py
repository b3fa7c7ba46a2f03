"""GpuClusteringByMilli (Score): keep pods of the same milli request together (gpuinfra's own
variant of the FGD paper's 03-GpuClustering, which is ``GpuClustering``).

Where it goes beyond the paper: a pod's type is its exact per-GPU milli request (a 300-milli
and an 800-milli pod are different types; the artifact lumps both as ``share``), CPU-only pods
(type 0) are clustered too instead of scoring 0 everywhere, and within a tier the exact free
milli decides instead of the artifact's 320-milli integer steps.

Contract, in tiers by "GPU affinity" with the pod's type (its per-GPU milli request; 0 for
CPU-only pods): 4 a node running only pods of that type; 3 a node running several types
including it; 2 an idle node; 1 any other node. Within a tier, less free GPU milli wins.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import gpu_free_total
from gpuinfra.sim.workload import PodTable


@register
class GpuClusteringByMilli(ScorePlugin):
    name = "GpuClusteringByMilli"
    normalize = False

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        types = sorted({int(m) for m in pods.gpu_milli})
        self.col = {t: j for j, t in enumerate(types)}
        self.counts = np.zeros((cluster.n_nodes, len(types)), dtype=np.int32)
        self.n_types = np.zeros(cluster.n_nodes, dtype=np.int32)
        self.n_pods = np.zeros(cluster.n_nodes, dtype=np.int32)
        self.pods = pods
        self._pos = len(cluster.changes)
        for n in range(cluster.n_nodes):
            self._reread(cluster, n)

    def _reread(self, cluster: ClusterState, n: int) -> None:
        row = np.zeros(self.counts.shape[1], dtype=np.int32)
        for pod in cluster.node_allocs[n]:
            row[self.col[int(self.pods.gpu_milli[pod])]] += 1
        self.counts[n] = row
        self.n_types[n] = int(np.count_nonzero(row))
        self.n_pods[n] = int(row.sum())

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        changed, self._pos = cluster.nodes_changed_since(self._pos)
        for n in changed:
            self._reread(cluster, n)
        has = self.counts[nodes, self.col[int(pods.gpu_milli[i])]] > 0
        nt = self.n_types[nodes]
        tier = np.where(has & (nt == 1), 4, np.where(has, 3, np.where(self.n_pods[nodes] == 0, 2, 1)))
        return tier * 1e5 - gpu_free_total(cluster, nodes) / MILLI_PER_GPU
