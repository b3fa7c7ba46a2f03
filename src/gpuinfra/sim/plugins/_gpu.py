"""Helpers shared by GPU score plugins (not a plugin)."""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState


def gpu_free_total(cluster: ClusterState, nodes: np.ndarray) -> np.ndarray:
    return cluster.node_gpu_free[nodes]


def gpu_capacity(cluster: ClusterState, nodes: np.ndarray) -> np.ndarray:
    return cluster.node_gpu_cap[nodes]


def tightest_gpu_free(cluster: ClusterState, nodes: np.ndarray, milli: int) -> np.ndarray:
    """Per node, the least free milli among GPUs with >= ``milli`` free (2000 where none)."""
    f = cluster.dev_free[nodes]
    return np.where(f >= milli, f, 2 * MILLI_PER_GPU).min(axis=1)


def record_gpu_choice(state, nodes: np.ndarray, values: np.ndarray) -> None:
    """Tell the PolicyDevices reserve plugin which free-milli value of GPU to use on each node."""
    state.data["gpu_choice"] = (nodes, values)
