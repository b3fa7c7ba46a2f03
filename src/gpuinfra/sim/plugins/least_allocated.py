"""LeastAllocated / MostAllocated (Score): spread or pack by the share of a node left free.

Contract: as kube-scheduler's NodeResourcesFit scoring strategies, the score is the mean over
CPU, memory and GPU (milli) of the free (LeastAllocated) or used (MostAllocated) fraction of the
node *after* placing the pod, times 100. Nodes without GPUs count only CPU and memory.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.workload import PodTable


def _free_fraction_after(pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray) -> np.ndarray:
    # NOTE: speed only: the same element-wise formula over every node's contiguous arrays, then
    # one gather of ``nodes`` (instead of gathering each input array first).
    cpu = (cluster.cpu_free - pods.cpu_milli[i]) / np.maximum(cluster.cpu_cap, 1)
    mem = (cluster.mem_free - pods.memory_mib[i]) / np.maximum(cluster.mem_cap, 1)
    gcap = cluster.node_gpu_cap.astype(np.float64)
    gpu = np.where(
        gcap > 0, (cluster.node_gpu_free - int(pods.num_gpu[i]) * int(pods.gpu_milli[i])) / np.maximum(gcap, 1), 0
    )
    dims = np.where(gcap > 0, 3.0, 2.0)
    out = (cpu + mem + gpu) / dims
    return out[nodes]


@register
class LeastAllocated(ScorePlugin):
    name = "LeastAllocated"
    class_pure = True  # reads the pod signature and the node class key only

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        return 100.0 * _free_fraction_after(pods, i, cluster, nodes)


@register
class MostAllocated(ScorePlugin):
    name = "MostAllocated"
    class_pure = True  # reads the pod signature and the node class key only

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        return 100.0 * (1.0 - _free_fraction_after(pods, i, cluster, nodes))
