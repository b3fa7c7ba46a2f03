"""Random (Score): the FGD paper's 01-Random, as its artifact computes it.

Source: hkust-adsl/kubernetes-scheduler-simulator ``pkg/simulator/plugin/random_score.go``
(PreScore draws one feasible node uniformly; it scores 100, every other node 0) and the run
scripts' ``-gpusel random`` (``experiments/run_scripts/generate_run_scripts.py``): on that node a
shared-GPU pod goes on a GPU drawn uniformly among those with room for it. Summarised in
facts/scheduling.md 2.2.

Both draws come from the run's seeded scheduler stream, so a run is reproducible and each seed
gives other placements. The chosen GPU is passed to the PolicyDevices reserve plugin (as the
free milli of the drawn GPU; GPUs with equal free milli are interchangeable for every measure).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.plugins._gpu import MAX_NODE_SCORE, record_one_gpu_choice
from gpuinfra.sim.workload import PodTable


@register
class Random(ScorePlugin):
    name = "Random"
    normalize = False

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.rng = rng

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        out = np.zeros(len(nodes), dtype=np.int64)
        j = int(self.rng.integers(len(nodes)))
        out[j] = MAX_NODE_SCORE
        k, m = int(pods.num_gpu[i]), int(pods.gpu_milli[i])
        if k == 1 and 0 < m < MILLI_PER_GPU:
            node = int(nodes[j])
            row = cluster.dev_free[node]
            fits = np.flatnonzero(row >= m)
            if len(fits):
                record_one_gpu_choice(state, node, int(row[fits[int(self.rng.integers(len(fits)))]]))
        return out
