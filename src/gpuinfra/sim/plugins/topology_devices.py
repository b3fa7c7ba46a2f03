"""TopologyDevices (Reserve): for a multi-GPU pod, the free GPUs of the node that talk fastest.

Contract: on a node whose wiring gpuinfra knows (a built-in topology for its GPU model and GPU
count, :func:`gpuinfra.models.topology.node_topology`), a pod asking k > 1 whole GPUs gets the k
fully free GPUs whose ring has the highest per-rank bandwidth (NVLink pairs before PCIe pairs,
one socket before two), ties to the lowest indices: the preferred allocation a topology-aware
device plugin makes. Every other pod, and nodes without a known wiring, get FirstFitDevices'
choice. Reserve allocates through ``ClusterState.allocate`` (over-commit refused).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.models.collectives import best_devices
from gpuinfra.models.topology import node_topology
from gpuinfra.sim.cluster import MILLI_PER_GPU, Allocation, ClusterState
from gpuinfra.sim.framework import CycleState, Status, register
from gpuinfra.sim.plugins.first_fit_devices import FirstFitDevices
from gpuinfra.sim.workload import PodTable


def topology_of(cluster: ClusterState, node: int):
    m = int(cluster.node_model[node])
    if m < 0:
        return None
    return node_topology(cluster.models[m], int(cluster.gpu_count[node]))


@register
class TopologyDevices(FirstFitDevices):
    name = "TopologyDevices"

    def reserve(
        self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, node: int
    ) -> Allocation | Status:
        k = int(pods.num_gpu[i])
        m = int(pods.gpu_milli[i])
        topo = topology_of(cluster, node) if k > 1 and m == MILLI_PER_GPU else None
        if topo is None:
            return super().reserve(state, pods, i, cluster, node)
        free = tuple(int(d) for d in np.flatnonzero(cluster.dev_free[node] >= MILLI_PER_GPU))
        if len(free) < k:
            return super().reserve(state, pods, i, cluster, node)
        devices, _ = best_devices(topo, free, k)
        alloc = Allocation(i, node, devices, m, int(pods.cpu_milli[i]), int(pods.memory_mib[i]))
        cluster.allocate(alloc)
        return alloc
