"""NodeResourcesFit (Filter): CPU, memory, and GPUs, whole and milli, with per-GPU fit.

Contract: a node passes iff free CPU >= request, free memory >= request, and at least
``num_gpu`` of its *available* devices each have ``gpu_milli`` free (1000 for whole GPUs). A
shared-GPU pod must fit on one device: 600 milli free spread as 300 + 300 does not fit a 500
request. On a time-sliced pool (``timeslice_replicas`` R) a 1-GPU pod asks one replica, 1000 // R
milli of one GPU; larger and milli requests do not fit there (the device plugin advertises
replicas of whole GPUs only, failRequestsGreaterThanOne). Reasons use the resource names
Kubernetes prints ("Insufficient cpu", ...).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, FilterPlugin, FilterResult, register
from gpuinfra.sim.workload import PodTable


def replica_milli(cluster: ClusterState) -> np.ndarray:
    """Per node: the milli one time-slice replica holds (0 where time-slicing is off)."""
    return cluster.replica_milli


def effective_milli(cluster: ClusterState, node: int, num_gpu: int, milli: int) -> int:
    """The milli a pod's GPU request takes on ``node`` (a replica on time-sliced nodes)."""
    rm = int(replica_milli(cluster)[node])
    return rm if rm and num_gpu == 1 and milli == MILLI_PER_GPU else milli


@register
class NodeResourcesFit(FilterPlugin):
    name = "NodeResourcesFit"
    class_pure = True  # reads the pod signature and the node class key only

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self._timesliced = bool(replica_milli(cluster).any())  # replicas are fixed per pool

    def filter(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState) -> FilterResult:
        # the reason masks below are built from these arrays when the same cycle fails (diagnose)
        up = cluster.node_up
        cpu_ok = cluster.cpu_free >= pods.cpu_milli[i]
        mem_ok = cluster.mem_free >= pods.memory_mib[i]
        k = int(pods.num_gpu[i])
        down = "node(s) were unschedulable (down)"
        if k == 0:
            ok = cpu_ok & mem_ok & up
            # NOTE: speed only: the reason masks are built when a cycle fails, not every cycle
            return FilterResult(
                ok, lambda: ((down, ~up), ("Insufficient cpu", ~cpu_ok), ("Insufficient memory", ~mem_ok))
            )
        m = int(pods.gpu_milli[i])
        if k > cluster.max_gpus:
            gpu_ok = np.zeros(cluster.n_nodes, dtype=bool)
        else:
            rm = replica_milli(cluster)
            if self._timesliced:
                need = (
                    np.where(rm > 0, rm, m)
                    if (k == 1 and m == MILLI_PER_GPU)
                    else np.where(rm > 0, MILLI_PER_GPU + 1, m)
                )
                gpu_ok = cluster.dev_free_desc[:, k - 1] >= need
            else:
                gpu_ok = cluster.dev_free_desc[:, k - 1] >= m
        ok = cpu_ok & mem_ok & gpu_ok & up
        gpu_reason = "Insufficient nvidia.com/gpu" if m >= MILLI_PER_GPU else "Insufficient gpu-milli on a single GPU"
        return FilterResult(
            ok,
            lambda: (
                (down, ~up),
                ("Insufficient cpu", ~cpu_ok),
                ("Insufficient memory", ~mem_ok),
                (gpu_reason, ~gpu_ok),
            ),
        )

    def fits_node(self, pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        if len(idx) <= 8:  # NOTE: speed only: the few pending heads of a release, in plain Python
            return self._fits_node_few(pods, idx, cluster, node)
        ok = (pods.cpu_milli[idx] <= cluster.cpu_free[node]) & (pods.memory_mib[idx] <= cluster.mem_free[node])
        ok &= bool(cluster.node_up[node])
        row = cluster.dev_free[node]
        m = pods.gpu_milli[idx]
        rm = int(replica_milli(cluster)[node])
        if rm:
            whole1 = (pods.num_gpu[idx] == 1) & (m == MILLI_PER_GPU)
            m = np.where(whole1, rm, MILLI_PER_GPU + 1)
        fit_count = np.count_nonzero(row[None, :] >= m[:, None], axis=1)
        return ok & ((pods.num_gpu[idx] == 0) | (fit_count >= pods.num_gpu[idx]))

    @staticmethod
    def _fits_node_few(pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        """``fits_node`` for a handful of pods, with the same integer comparisons."""
        out = np.zeros(len(idx), dtype=bool)
        if not cluster.node_up[node]:
            return out
        cpu_free, mem_free = int(cluster.cpu_free[node]), int(cluster.mem_free[node])
        row = cluster.dev_free[node].tolist()
        rm = int(replica_milli(cluster)[node])
        for j, i in enumerate(idx.tolist()):
            if pods.cpu_milli[i] > cpu_free or pods.memory_mib[i] > mem_free:
                continue
            k = int(pods.num_gpu[i])
            if k == 0:
                out[j] = True
                continue
            m = int(pods.gpu_milli[i])
            if rm:
                m = rm if (k == 1 and m == MILLI_PER_GPU) else MILLI_PER_GPU + 1
            out[j] = sum(1 for v in row if v >= m) >= k
        return out
