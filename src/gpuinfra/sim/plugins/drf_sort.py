"""DRF (QueueSort): weighted Dominant Resource Fairness between owners (Ghodsi et al., NSDI '11).

Contract: among pending pods of equal priority, the pod whose owner has the smallest weighted
dominant share goes first; an owner's dominant share is the largest of its shares of the
cluster's GPU (milli), CPU and memory held by its running pods, divided by its weight (args
``weights``: owner -> weight, default 1). Ties: arrival order. The key is read when the queue
is consulted, so it follows usage as pods start and finish (pods of one owner keep their
arrival order among themselves).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import QueueSortPlugin, register
from gpuinfra.sim.workload import PodTable


@register
class DRF(QueueSortPlugin):
    name = "DRF"

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.cluster = cluster
        self.pods = pods
        self.weights = {str(k): float(v) for k, v in dict(self.args.get("weights", {})).items()}
        self.cap = np.array(
            [
                max(float(cluster.capacity_milli.sum()), 1.0),
                max(float(cluster.cpu_cap.sum()), 1.0),
                max(float(cluster.mem_cap.sum()), 1.0),
            ]
        )
        self.usage: dict[str, np.ndarray] = {}
        self._seen: list[dict[int, np.ndarray]] = [{} for _ in range(cluster.n_nodes)]
        self._pos = 0

    def _sync(self) -> None:
        changed, self._pos = self.cluster.nodes_changed_since(self._pos)
        for n in changed:
            for pod, v in self._seen[n].items():
                self.usage[self.pods.owners[pod]] -= v
            now = {}
            for pod, a in self.cluster.node_allocs[n].items():
                if pod < 0:
                    continue
                v = np.array([a.gpu_milli_total, a.cpu_milli, a.memory_mib], dtype=np.float64)
                now[pod] = v
                o = self.pods.owners[pod]
                self.usage[o] = self.usage.get(o, np.zeros(3)) + v
            self._seen[n] = now

    def dominant_share(self, owner: str) -> float:
        self._sync()
        u = self.usage.get(owner)
        if u is None:
            return 0.0
        return float((u / self.cap).max()) / self.weights.get(owner, 1.0)

    def key(self, pods: PodTable, i: int) -> tuple:
        return (-int(pods.priority[i]), self.dominant_share(pods.owners[i]), float(pods.submit_s[i]), i)
