"""MigFit (Filter) and MigDevices (Reserve): MIG instances as Kubernetes schedules them with the
device plugin's mixed strategy (``nvidia.com/mig-<profile>`` resources, facts/gpu.md 2.5 [P]).

Contract: a pool with a ``mig_layout`` runs MIG on every GPU (mig-parted ``devices: all``); its GPUs
are not advertised as ``nvidia.com/gpu``, so whole-GPU and shared (milli) GPU pods do not pass
there. A pod with ``mig_profile`` passes only on nodes of its GPU model whose layout has a free
instance of that profile; it holds ``gpu_milli`` = floor(1000 x compute slices / 7) of the GPU
that hosts the instance, so GPU-time accounting counts an instance by its compute share.
MigDevices gives it the lowest-index GPU with a free instance of its profile (other pods go to
FirstFitDevices' choice). CPU-only pods pass everywhere.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.models.mig import mig_milli  # noqa: F401  (re-exported: the accounting unit of MIG pods)
from gpuinfra.sim.cluster import Allocation, ClusterState
from gpuinfra.sim.framework import Code, CycleState, FilterPlugin, FilterResult, Status, register
from gpuinfra.sim.plugins.first_fit_devices import FirstFitDevices
from gpuinfra.sim.workload import PodTable


def _layout(cluster: ClusterState, node: int) -> tuple[str, ...]:
    return cluster.pools[cluster.node_pool[node]].mig_layout


def gpu_layout(cluster: ClusterState, node: int, dev: int) -> tuple[str, ...]:
    """The instances on one GPU: the pool's layout unless the MIG manager repartitioned it."""
    got = cluster.mig_gpu_layout.get((node, dev))
    return got if got is not None else _layout(cluster, node)


def set_gpu_layout(cluster: ClusterState, node: int, dev: int, layout: tuple[str, ...]) -> None:
    cluster.mig_gpu_layout[(node, dev)] = tuple(layout)


def free_instances(cluster: ClusterState, pods: PodTable, node: int, profile: str) -> list[int]:
    """GPUs of ``node`` with a free instance of ``profile`` (one entry per free instance)."""
    if not _layout(cluster, node):
        return []
    n_dev = int(cluster.gpu_count[node])
    used = [0] * n_dev
    for a in cluster.node_allocs[node].values():
        if a.pod >= 0 and pods.mig_profile[a.pod] == profile:
            for d in a.devices:
                used[d] += 1
    out = []
    for d in range(n_dev):
        if cluster.dev_available[node, d]:
            out += [d] * max(gpu_layout(cluster, node, d).count(profile) - used[d], 0)
    return out


@register
class MigFit(FilterPlugin):
    name = "MigFit"

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.is_mig = np.array([bool(_layout(cluster, n)) for n in range(cluster.n_nodes)], dtype=bool)
        self._all = np.ones(cluster.n_nodes, dtype=bool)
        self.pods = pods

    def _ok(self, pods: PodTable, i: int, cluster: ClusterState, node: int) -> bool:
        prof = pods.mig_profile[i]
        if pods.num_gpu[i] == 0:
            return True
        if not prof:
            return not self.is_mig[node]
        return bool(self.is_mig[node]) and bool(free_instances(cluster, pods, node, prof))

    def filter(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState) -> FilterResult:
        if pods.num_gpu[i] == 0 or (not pods.mig_profile[i] and not self.is_mig.any()):
            return FilterResult(self._all)
        if not pods.mig_profile[i]:
            ok = ~self.is_mig
            return FilterResult(ok, (("node(s) run MIG: whole GPUs are not advertised (MigFit)", ~ok),))
        ok = np.zeros(cluster.n_nodes, dtype=bool)
        for n in np.flatnonzero(self.is_mig):
            ok[n] = self._ok(pods, i, cluster, int(n))
        return FilterResult(ok, (("Insufficient nvidia.com/mig-" + pods.mig_profile[i], ~ok),))

    def fits_node(self, pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        return np.array([self._ok(pods, int(i), cluster, node) for i in idx], dtype=bool)


@register
class MigDevices(FirstFitDevices):
    name = "MigDevices"

    def reserve(
        self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, node: int
    ) -> Allocation | Status:
        prof = pods.mig_profile[i]
        if not prof:
            return super().reserve(state, pods, i, cluster, node)
        free = free_instances(cluster, pods, node, prof)
        m = int(pods.gpu_milli[i])
        free = [d for d in free if cluster.dev_free[node, d] >= m]
        if not free:
            return Status(Code.ERROR, ("MIG instance vanished between filter and reserve",), self.name)
        alloc = Allocation(i, node, (free[0],), m, int(pods.cpu_milli[i]), int(pods.memory_mib[i]))
        cluster.allocate(alloc)
        return alloc
