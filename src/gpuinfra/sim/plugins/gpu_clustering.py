"""GpuClustering (Score): the FGD paper's 03-GpuClustering, as its artifact computes it.

Source: hkust-adsl/kubernetes-scheduler-simulator ``pkg/simulator/plugin/gpu_clustering_score.go``
and ``pkg/type/open-gpu-share/utils/pod.go`` (GetGpuAffinityFromPodAnnotation); summarised in
facts/scheduling.md 2.2.

A pod's *GPU affinity* is a category, not its milli request: ``share`` (1 GPU, < 1000 milli,
whatever the milli), ``k-gpu`` (k whole GPUs), or none (CPU-only). A node's affinity map counts
the GPU pods on it by category; CPU-only pods are not counted. With ``left`` the node's total
free GPU milli and ``s = 25 * (8000 - left) / 8000`` in integer arithmetic (Go's ``/``, so steps
of 320 milli), the score (0-100, no normalisation) is:

- 75 + s: the node's map holds only the pod's category;
- 50 + s: the map holds the pod's category and others;
- 25 + s: the map is empty (no GPU pod on the node, even if CPU-only pods run there);
- s: the map holds other categories only;
- 0 on every node for a CPU-only pod (so it goes to the first feasible node in the tie order).

Ties (many, by the integer steps) go to the framework's tie rule; the artifact's is one seeded
node permutation (``tie_break: random``). The GPU on the chosen node is the reserve plugin's
choice (the artifact's ``best``: least free milli that fits, which PolicyDevices does).

A time-sliced 1-GPU pod (charged 1000 // replicas milli) counts as ``share`` here: the map is
read from allocations, which carry what the pod holds.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import MAX_NODE_SCORE, MAX_SPEC_GPU, go_div
from gpuinfra.sim.workload import PodTable

SHARE = 0
"""Column of the ``share`` category; column k (1..max GPUs per node) is ``k-gpu``."""


def affinity_column(num_gpu: int, milli: int) -> int:
    """The affinity category's column: -1 for none (CPU-only), 0 for share, k for k-gpu."""
    if num_gpu == 0:
        return -1
    if num_gpu == 1 and milli < MILLI_PER_GPU:
        return SHARE
    return num_gpu


@register
class GpuClustering(ScorePlugin):
    name = "GpuClustering"
    normalize = False

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        width = max(int(cluster.max_gpus), int(pods.num_gpu.max()) if len(pods) else 0) + 1
        self.counts = np.zeros((cluster.n_nodes, width), dtype=np.int32)
        self.n_categories = np.zeros(cluster.n_nodes, dtype=np.int32)
        self._pos = len(cluster.changes)
        for n in range(cluster.n_nodes):
            self._reread(cluster, n)

    def _reread(self, cluster: ClusterState, n: int) -> None:
        row = self.counts[n]
        row[:] = 0
        for a in cluster.node_allocs[n].values():
            col = affinity_column(len(a.devices), a.milli_per_device)
            if col >= 0:
                row[col] += 1
        self.n_categories[n] = int(np.count_nonzero(row))

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        col = affinity_column(int(pods.num_gpu[i]), int(pods.gpu_milli[i]))
        if col < 0:
            return np.zeros(len(nodes), dtype=np.int64)
        changed, self._pos = cluster.nodes_changed_since(self._pos)
        for n in changed:
            self._reread(cluster, n)
        left = cluster.node_gpu_free[nodes]
        s = go_div((MAX_NODE_SCORE // 4) * (MAX_SPEC_GPU - left), MAX_SPEC_GPU)
        has = self.counts[nodes, col] > 0
        k = self.n_categories[nodes]
        tier = np.where(
            has,
            np.where(k == 1, MAX_NODE_SCORE * 3 // 4, MAX_NODE_SCORE * 2 // 4),
            np.where(k == 0, MAX_NODE_SCORE // 4, 0),
        )
        return s + tier
