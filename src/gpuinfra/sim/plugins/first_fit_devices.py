"""FirstFitDevices (Reserve): pick the devices on the chosen node and reserve them.

Contract: whole-GPU pods take the lowest-index fully free devices; a shared-GPU pod takes the
lowest-index device with enough free milli. Reserve calls ``ClusterState.allocate`` (which
refuses any over-commit); Unreserve releases exactly what Reserve took.
"""

from __future__ import annotations

from gpuinfra.sim.cluster import MILLI_PER_GPU, Allocation, ClusterState
from gpuinfra.sim.framework import Code, CycleState, ReservePlugin, Status, register
from gpuinfra.sim.workload import PodTable


@register
class FirstFitDevices(ReservePlugin):
    name = "FirstFitDevices"

    def setup(self, cluster: ClusterState, pods: PodTable, rng) -> None:
        # NOTE: speed only: per-pod requests and per-node replica milli as Python lists
        self._k = pods.num_gpu.tolist()
        self._m = pods.gpu_milli.tolist()
        self._cpu = pods.cpu_milli.tolist()
        self._mem = pods.memory_mib.tolist()
        self._rm = cluster.replica_milli.tolist()

    def reserve(
        self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, node: int
    ) -> Allocation | Status:
        k = self._k[i]
        m = self._m[i]
        rm = self._rm[node]
        if rm and k == 1 and m == MILLI_PER_GPU:  # a time-slice replica (effective_milli)
            m = rm
        devices: tuple[int, ...] = ()
        if k:
            cand = [d for d, v in enumerate(cluster.dev_free[node].tolist()) if v >= m]
            if len(cand) < k:
                return Status(Code.ERROR, ("devices vanished between filter and reserve",), self.name)
            devices = tuple(cand[:k])
        alloc = Allocation(i, node, devices, m if k else 0, self._cpu[i], self._mem[i])
        cluster.allocate(alloc)
        return alloc
