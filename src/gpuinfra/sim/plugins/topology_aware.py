"""TopologyAware (Score): keep a job's pods together, node first.

Contract: a pod whose job already has pods placed (a gang, a multi-pod training job) scores
higher on nodes that hold more of them: pods of one job on one node talk over NVLink/NVSwitch
instead of the network, and a job on fewer nodes has a smaller failure blast radius. Among
nodes with equally many of the job's pods, a node with room for the rest of the pod's gang
comes first, then the node whose free GPUs the pod fills most exactly (so a job does not
split a node another job needs whole). Between those, a multi-GPU pod asks the node's topology
(gpuinfra.models.topology / collectives) what its best free GPUs would cost: the score adds
100 x (all-reduce time on the node's best k GPUs when it is empty) / (the same on its best k
free GPUs now), so a node whose free GPUs are an NVLink pair or one PCIe switch beats one whose
free GPUs straddle sockets. ``comm_bytes`` (plugin arg, default 256 MiB) is the all-reduce size
asked about. Nodes without a known wiring count as one domain (score 100).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.models.collectives import best_devices, placement_cost
from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins.topology_devices import topology_of
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
        self._costs: dict = {}

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
        return together * 1000.0 + fits_rest * 500.0 + self._comm_score(pods, i, cluster, nodes) - left

    def _comm_score(self, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray) -> np.ndarray:
        k = int(pods.num_gpu[i])
        out = np.full(len(nodes), 100.0)
        if k < 2 or int(pods.gpu_milli[i]) != MILLI_PER_GPU:
            return out
        size = int(self.args.get("comm_bytes", 256 * 1024**2))
        for j, n in enumerate(nodes):
            topo = topology_of(cluster, int(n))
            if topo is None:
                continue
            free = tuple(int(d) for d in np.flatnonzero(cluster.dev_free[n] >= MILLI_PER_GPU))
            if len(free) < k:
                out[j] = 0.0
                continue
            ideal = self._cost(topo, tuple(range(len(topo.gpus))), k, size)
            out[j] = 100.0 * ideal / self._cost(topo, free, k, size)
        return out

    def _cost(self, topo, free: tuple[int, ...], k: int, size: int) -> float:
        key = (topo.name, free, k, size)
        hit = self._costs.get(key)
        if hit is None:
            devices, _ = best_devices(topo, free, k)
            hit = self._costs[key] = placement_cost(topo, devices, 1, size)
        return hit
