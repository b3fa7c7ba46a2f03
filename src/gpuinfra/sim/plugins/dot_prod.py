"""DotProd (Score): the FGD paper's 02-DotProd (Tetris alignment), as its artifact computes it.

Source: hkust-adsl/kubernetes-scheduler-simulator ``pkg/simulator/plugin/dot_product_score.go``
with the paper's run options ``-gpusel best -dimext merge -norm max``
(``experiments/run_scripts/generate_run_scripts.py``) and ``GenerateSchedulingMatchGroups``
(pkg/utils). GPU dimensions merged into one (total free milli), both vectors normalised by the
artifact's constants MaxSpecCpu = 128000 and MaxSpecGpu = 8000:

    dot   = (free CPU / 128000) x (pod CPU / 128000) + (free GPU milli / 8000) x (pod GPU milli / 8000)
    score = int64(100 x (1 - dot / 2))   (float64 in this order, truncated toward zero)

so a node with less left in the dimensions the pod uses scores higher; 0 where the CPU does not
fit. No normalisation; ties go to the framework's tie rule. The GPU on the chosen node is the
reserve plugin's choice (``best``: least free milli that fits, which PolicyDevices does).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import MAX_NODE_SCORE, MAX_SPEC_CPU, MAX_SPEC_GPU
from gpuinfra.sim.workload import PodTable


def dot_prod_scores(cpu_free: np.ndarray, gpu_free: np.ndarray, cpu_req: int, gpu_req: int) -> np.ndarray:
    dot = (cpu_free / MAX_SPEC_CPU) * (cpu_req / MAX_SPEC_CPU)
    dot = dot + (gpu_free / MAX_SPEC_GPU) * (gpu_req / MAX_SPEC_GPU)
    s = np.trunc(MAX_NODE_SCORE * (1.0 - dot / 2)).astype(np.int64)
    return np.where(cpu_free < cpu_req, 0, s)


@register
class DotProd(ScorePlugin):
    name = "DotProd"
    normalize = False

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        gpu_req = int(pods.num_gpu[i]) * int(pods.gpu_milli[i])
        return dot_prod_scores(cluster.cpu_free[nodes], cluster.node_gpu_free[nodes], int(pods.cpu_milli[i]), gpu_req)
