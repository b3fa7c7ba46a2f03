"""TopologyAware (Score): keep a job's pods together, node first.

Contract: a pod whose job already has pods placed (a gang, a multi-pod training job) scores
higher on nodes that hold more of them: pods of one job on one node talk over NVLink/NVSwitch
instead of the network, and a job on fewer nodes has a smaller failure blast radius. Among
nodes with equally many of the job's pods, a node with room for the rest of the pod's gang
comes first, then the node whose free GPUs the pod fills most exactly (so a job does not
split a node another job needs whole). Within a node, GPU topology (NVLink pairs on PCIe
servers) is the topology issue's to model; here every GPU of a node counts as one domain,
which holds for HGX/DGX NVSwitch nodes.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.workload import PodTable


@register
class TopologyAware(ScorePlugin):
    name = "TopologyAware"
    normalize = False

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.cluster = cluster
        self.pods = pods
        self.job_nodes: dict[str, dict[int, int]] = {}
        self._seen: list[set[int]] = [set() for _ in range(cluster.n_nodes)]
        self._pos = 0

    def _sync(self) -> None:
        changed, self._pos = self.cluster.nodes_changed_since(self._pos)
        for n in changed:
            now = {p for p in self.cluster.node_allocs[n] if p >= 0}
            for p in self._seen[n] - now:
                d = self.job_nodes[self.pods.jobs[p]]
                d[n] -= 1
                if not d[n]:
                    del d[n]
            for p in now - self._seen[n]:
                d = self.job_nodes.setdefault(self.pods.jobs[p], {})
                d[n] = d.get(n, 0) + 1
            self._seen[n] = now

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        self._sync()
        together = np.zeros(len(nodes))
        placed = self.job_nodes.get(pods.jobs[i])
        if placed:
            pos = {int(n): j for j, n in enumerate(nodes)}
            for n, cnt in placed.items():
                if n in pos:
                    together[pos[n]] = cnt
        req = int(pods.num_gpu[i]) * int(pods.gpu_milli[i])
        left = (cluster.node_gpu_free[nodes] - req) / MILLI_PER_GPU
        # a gang's first pods go where the rest of the gang fits too (its pods ask alike, as a job's workers do)
        rest = max(int(pods.gang_size[i]) - sum(placed.values()) if placed else int(pods.gang_size[i]), 1)
        fits_rest = cluster.node_gpu_free[nodes] >= rest * req
        return together * 1000.0 + fits_rest * 500.0 - left
