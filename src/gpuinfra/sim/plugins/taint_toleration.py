"""TaintToleration (Filter): a node's NoSchedule and NoExecute taints must be tolerated.

Contract: as kube-scheduler's TaintToleration filter, a pod passes a node iff every taint with
effect NoSchedule or NoExecute is matched by one of its tolerations (PreferNoSchedule is a
preference, not a filter). With ``extended_resource_toleration`` (default true) a pod that asks
for GPUs also tolerates ``nvidia.com/gpu`` NoSchedule taints, as the ExtendedResourceToleration
admission controller adds that toleration (facts/cost-lifecycle-security.md 4.5), so tainting
GPU nodes keeps CPU-only pods off them without touching GPU pods.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, FilterPlugin, FilterResult, register
from gpuinfra.sim.workload import PodTable, Toleration

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = Toleration(GPU_RESOURCE, "Exists", "", "NoSchedule")


@register
class TaintToleration(FilterPlugin):
    name = "TaintToleration"
    class_pure = True  # reads the pod signature and the node class key only

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.cluster = cluster
        self.ert = bool(self.args.get("extended_resource_toleration", True))
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _tolerations(self, pods: PodTable, i: int) -> tuple[Toleration, ...]:
        t = pods.tolerations[i]
        if self.ert and pods.num_gpu[i] > 0:
            t = (*t, GPU_TOLERATION)
        return t

    def _pool_ok(self, tols: tuple[Toleration, ...]) -> tuple[np.ndarray, np.ndarray]:
        got = self._cache.get(tols)
        if got is None:
            ok = np.array(
                [
                    all(
                        any(t.tolerates(x.key, x.value, x.effect) for t in tols)
                        for x in pool.taints
                        if x.effect in ("NoSchedule", "NoExecute")
                    )
                    for pool in self.cluster.pools
                ],
                dtype=bool,
            )
            got = self._cache[tols] = (ok, ok[self.cluster.node_pool])
        return got

    def filter(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState) -> FilterResult:
        _, ok = self._pool_ok(self._tolerations(pods, i))
        return FilterResult(ok, (("node(s) had untolerated taint", ~ok),))

    def fits_node(self, pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        pool = int(cluster.node_pool[node])
        return np.array([bool(self._pool_ok(self._tolerations(pods, int(i)))[0][pool]) for i in idx], dtype=bool)
