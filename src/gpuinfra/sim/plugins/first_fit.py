"""FirstFit (Score): prefer the feasible node that comes first in the cluster's node order.

Contract: raw score = -node index, so with this score alone the cycle places a pod on the
lowest-index feasible node (deterministic, no randomness), the classic first-fit baseline.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.workload import PodTable


@register
class FirstFit(ScorePlugin):
    name = "FirstFit"
    lowest_index = True  # -node index: the lowest-index feasible node wins, whatever the tie rule

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray) -> np.ndarray:
        return -nodes.astype(np.float64)
