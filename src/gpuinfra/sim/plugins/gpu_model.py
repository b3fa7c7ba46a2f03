"""GpuModel (Filter): a pod that names GPU models runs only on nodes with one of them.

Contract: pods with no GPU, or no model constraint, pass everywhere; others pass exactly on
nodes whose GPU model is in the pod's list (as the Alibaba trace's ``gpu_spec`` and a
``nvidia.com/gpu.product`` node selector do).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, FilterPlugin, FilterResult, register
from gpuinfra.sim.workload import PodTable


@register
class GpuModel(FilterPlugin):
    name = "GpuModel"
    class_pure = True  # reads the pod signature and the node class key only

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self._allowed: dict[tuple[str, ...], np.ndarray] = {}
        self._model_ok: dict[tuple[str, ...], np.ndarray] = {}
        for models in set(pods.gpu_models):
            if not models:
                continue
            allowed = np.array([m in models for m in cluster.models] + [False], dtype=bool)
            self._model_ok[models] = allowed  # index -1 (no GPU) maps to the trailing False
            self._allowed[models] = allowed[cluster.node_model]
        self._all = np.ones(cluster.n_nodes, dtype=bool)

    def filter(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState) -> FilterResult:
        models = pods.gpu_models[i]
        if not models or pods.num_gpu[i] == 0:
            return FilterResult(self._all)
        ok = self._allowed[models]
        return FilterResult(ok, (("node(s) didn't match the pod's GPU model", ~ok),))

    def fits_node(self, pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        nm = int(cluster.node_model[node])
        out = np.ones(len(idx), dtype=bool)
        for j, i in enumerate(idx):
            models = pods.gpu_models[int(i)]
            if models and pods.num_gpu[int(i)] > 0:
                out[j] = bool(self._model_ok[models][nm])
        return out
