"""BestFit (Score): the FGD paper's 05-BestFit, as its artifact computes it.

Source: hkust-adsl/kubernetes-scheduler-simulator ``pkg/simulator/plugin/best_fit_score.go``
(getBestFitScore, NormalizeScore in plugin_utils.go). With the artifact's constants
MaxSpecCpu = 128000 and MaxSpecGpu = 8000 (not the node's own capacity):

    leftover = 0.5 x (free CPU - pod CPU) / 128000 + 0.5 x (free GPU milli - pod GPU milli) / 8000
    score    = int64((1 - leftover) x 100)   (float64 in this order, truncated toward zero)

then the artifact's integer min-max normalisation to 0-100 (order-preserving). The tightest
node wins; ties go to the framework's tie rule. The GPU on the chosen node is the reserve
plugin's choice (the artifact's ``best``: least free milli that fits, which PolicyDevices does).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import MAX_NODE_SCORE, MAX_SPEC_CPU, MAX_SPEC_GPU, go_normalize
from gpuinfra.sim.workload import PodTable


def best_fit_raw(cpu_free: np.ndarray, gpu_free: np.ndarray, cpu_req: int, gpu_req: int) -> np.ndarray:
    """The artifact's score before normalisation (int64 per node)."""
    left = (cpu_free - cpu_req) / MAX_SPEC_CPU * 0.5
    left = left + (gpu_free - gpu_req) / MAX_SPEC_GPU * 0.5
    return np.trunc((1.0 - left) * MAX_NODE_SCORE).astype(np.int64)


@register
class BestFit(ScorePlugin):
    name = "BestFit"
    normalize = False
    class_pure = True  # reads the pod signature and the node's free CPU and GPU milli: its class key

    def raw_score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        gpu_req = int(pods.num_gpu[i]) * int(pods.gpu_milli[i])
        return best_fit_raw(cluster.cpu_free[nodes], cluster.node_gpu_free[nodes], int(pods.cpu_milli[i]), gpu_req)

    def normalize_raw(self, raw: np.ndarray) -> np.ndarray:
        # integer min-max: (s - lo) * 100 // (hi - lo) is 100 exactly where s == hi (all 0 when hi == lo),
        # so the top set is the raw one's, as raw_score requires
        return go_normalize(raw)

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        return go_normalize(self.raw_score(state, pods, i, cluster, nodes))
