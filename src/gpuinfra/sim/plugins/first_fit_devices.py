"""FirstFitDevices (Reserve): pick the devices on the chosen node and reserve them.

Contract: whole-GPU pods take the lowest-index fully free devices; a shared-GPU pod takes the
lowest-index device with enough free milli. Reserve calls ``ClusterState.allocate`` (which
refuses any over-commit); Unreserve releases exactly what Reserve took.
"""

from __future__ import annotations

from gpuinfra.sim.cluster import Allocation, ClusterState
from gpuinfra.sim.framework import Code, CycleState, ReservePlugin, Status, register
from gpuinfra.sim.workload import PodTable


@register
class FirstFitDevices(ReservePlugin):
    name = "FirstFitDevices"

    def reserve(
        self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, node: int
    ) -> Allocation | Status:
        from gpuinfra.sim.plugins.node_resources_fit import effective_milli

        k = int(pods.num_gpu[i])
        m = effective_milli(cluster, node, k, int(pods.gpu_milli[i]))
        devices: tuple[int, ...] = ()
        if k:
            cand = [d for d, v in enumerate(cluster.dev_free[node].tolist()) if v >= m]
            if len(cand) < k:
                return Status(Code.ERROR, ("devices vanished between filter and reserve",), self.name)
            devices = tuple(cand[:k])
        alloc = Allocation(i, node, devices, m if k else 0, int(pods.cpu_milli[i]), int(pods.memory_mib[i]))
        cluster.allocate(alloc)
        return alloc
