"""PolicyDevices (Reserve): the devices a score policy chose, else the tightest that fit.

Contract: whole-GPU pods take the lowest-index fully free devices. A shared-GPU pod takes the
lowest-index device whose free milli equals the value its score plugin chose for this node
(Random, GpuPackingTightest) or is one of the values it accepts (FGD), or otherwise the device
with the least free milli that still fits (ties: lowest index), the FGD artifact's ``best`` GPU
selection. Unreserve releases exactly what Reserve took.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, Allocation, ClusterState
from gpuinfra.sim.framework import Code, CycleState, ReservePlugin, Status, register
from gpuinfra.sim.workload import PodTable


@register
class PolicyDevices(ReservePlugin):
    name = "PolicyDevices"

    def reserve(
        self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, node: int
    ) -> Allocation | Status:
        k, m = int(pods.num_gpu[i]), int(pods.gpu_milli[i])
        devices: tuple[int, ...] = ()
        row = cluster.dev_free[node]
        if k:
            if m >= MILLI_PER_GPU or k > 1:
                cand = np.flatnonzero(row >= m)[:k]
            else:
                want = -1
                choice = state.data.get("gpu_choice")
                if choice is not None:
                    nodes, values = choice
                    j = int(np.searchsorted(nodes, node))
                    if j < len(nodes) and nodes[j] == node:
                        want = int(values[j])
                sets = state.data.get("gpu_choice_sets")
                if sets is not None:
                    ok = {v for v in sets[want] if v >= m} if want >= 0 else set()
                    first = next((d for d, v in enumerate(row.tolist()) if v in ok), None)
                    hit = np.array([first] if first is not None else [], dtype=np.int64)
                else:
                    hit = np.flatnonzero(row == want) if want >= m else np.empty(0, dtype=np.int64)
                if len(hit):
                    cand = hit[:1]
                else:
                    ok = np.flatnonzero(row >= m)
                    cand = ok[np.argsort(row[ok], kind="stable")][:1]
            if len(cand) < k:
                return Status(Code.ERROR, ("devices vanished between filter and reserve",), self.name)
            devices = tuple(int(d) for d in cand)
        alloc = Allocation(i, node, devices, m if k else 0, int(pods.cpu_milli[i]), int(pods.memory_mib[i]))
        cluster.allocate(alloc)
        return alloc
