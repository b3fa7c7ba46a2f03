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
    state.data.pop("gpu_choice_sets", None)


def record_gpu_choice_sets(state, nodes: np.ndarray, set_ids: np.ndarray, sets: list[tuple[int, ...]]) -> None:
    """Tell PolicyDevices which free-milli values are acceptable on each node: ``sets[set_ids[j]]``
    for ``nodes[j]`` (-1: no choice); it takes the lowest-index GPU whose free milli is one of them."""
    state.data["gpu_choice"] = (nodes, set_ids)
    state.data["gpu_choice_sets"] = sets


# The FGD artifact's normalisation constants (hkust-adsl/kubernetes-scheduler-simulator,
# pkg/type/open-gpu-share/utils/const.go: MaxSpecCpu = 128000 milli-CPU, MaxSpecGpu = 8000
# milli-GPU, i.e. the largest node the artifact expects: 128 cores, 8 GPUs). Used by the paper's
# DotProd, GpuClustering and BestFit scores, whatever the node's own size.
MAX_SPEC_CPU = 128_000
MAX_SPEC_GPU = 8_000
MAX_NODE_SCORE = 100
"""kube-scheduler's framework.MaxNodeScore."""


def go_div(a: np.ndarray, b: int) -> np.ndarray:
    """Integer division truncated toward zero, as Go's ``/`` on int64 (numpy's ``//`` floors)."""
    a = np.asarray(a, dtype=np.int64)
    q = np.abs(a) // abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def go_normalize(scores: np.ndarray) -> np.ndarray:
    """The artifact's NormalizeScore (pkg/simulator/plugin/plugin_utils.go): integer min-max to
    [0, 100], ``(s - lowest) * 100 / (highest - lowest)`` truncated; all 0 when every score is equal."""
    s = np.asarray(scores, dtype=np.int64)
    if len(s) == 0:
        return s
    lo, hi = int(s.min()), int(s.max())
    if hi == lo:
        return np.zeros_like(s)
    return (s - lo) * MAX_NODE_SCORE // (hi - lo)


def record_one_gpu_choice(state, node: int, value: int) -> None:
    """Like :func:`record_gpu_choice` for a single node."""
    record_gpu_choice(state, np.array([node], dtype=np.int64), np.array([value], dtype=np.int64))
