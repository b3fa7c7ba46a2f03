"""NodeAffinity (Filter): a pod's node selector must match the node's labels.

Contract: every ``key=value`` of the pod's node selector must be a label of the node (the
``nodeSelector`` / required node affinity with ``In`` of one value). Pods without a selector
pass everywhere. Node labels come from the node pool (scenario ``labels``, plus
``nvidia.com/gpu.product`` and ``nvidia.com/gpu.count`` as GPU Feature Discovery sets them).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, FilterPlugin, FilterResult, register
from gpuinfra.sim.workload import PodTable


@register
class NodeAffinity(FilterPlugin):
    name = "NodeAffinity"
    class_pure = True  # reads the pod signature and the node class key only

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.cluster = cluster
        self._all = np.ones(cluster.n_nodes, dtype=bool)
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _pool_ok(self, sel: tuple[tuple[str, str], ...]) -> tuple[np.ndarray, np.ndarray]:
        got = self._cache.get(sel)
        if got is None:
            ok = np.array([all(dict(p.labels).get(k) == v for k, v in sel) for p in self.cluster.pools], dtype=bool)
            got = self._cache[sel] = (ok, ok[self.cluster.node_pool])
        return got

    def filter(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState) -> FilterResult:
        sel = pods.node_selector[i]
        if not sel:
            return FilterResult(self._all)
        _, ok = self._pool_ok(sel)
        return FilterResult(ok, (("node(s) didn't match Pod's node affinity/selector", ~ok),))

    def fits_node(self, pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        pool = int(cluster.node_pool[node])
        return np.array(
            [not pods.node_selector[int(i)] or bool(self._pool_ok(pods.node_selector[int(i)])[0][pool]) for i in idx],
            dtype=bool,
        )
