"""Random (Score): a uniformly random feasible node (FGD paper's 01-Random baseline).

Contract: scores are draws from the run's seeded scheduler generator, so a run is reproducible
and each seed gives a different placement.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.workload import PodTable


@register
class Random(ScorePlugin):
    name = "Random"

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.rng = rng

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        return self.rng.random(len(nodes))
