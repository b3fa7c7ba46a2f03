"""FGD (Score): Fragmentation Gradient Descent (Weng et al., USENIX ATC '23).

Contract: for each feasible node, delta = F_n(after placing the pod) - F_n(before), with F the
expected fragmented GPU milli under the typical-pod distribution of the run's own workload
(models/fragmentation.py); score = int(sigmoid(-delta / 1000) x 100), the artifact's formula
and integer truncation (many ties, broken by the framework's tie rule). For a shared-GPU pod
every GPU with room is tried and, as the artifact's calculateGpuShareFragExtendScore does
(pkg/simulator/plugin/fgd_score.go), the node scores the best *integer* score among them and the
pod goes on the lowest-index GPU that reaches it (not the smallest float delta); that set of
acceptable free-milli values is passed to the PolicyDevices reserve plugin.

Speed: deltas are cached per (node state, pod class); node states are interned
(sim/nodestate.py), so a pod costs a few lookups instead of nodes x classes x GPUs work.
Args: ``typical_threshold`` (default 0.95).
"""

from __future__ import annotations

import math

import numpy as np

from gpuinfra.models.fragmentation import PodClass, PodClassList, typical_pods
from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.framework import CycleState, ScorePlugin, register
from gpuinfra.sim.nodestate import FragmentationTracker
from gpuinfra.sim.plugins._gpu import record_gpu_choice_sets
from gpuinfra.sim.workload import PodTable


def pod_classes(pods: PodTable) -> PodClassList:
    """The FGD pod class of every pod (CPU, milli per GPU, GPUs, allowed models; a CPU-only pod
    has no models), as a list of shared :class:`PodClass` objects that also carries each class's
    count (``typical_pods`` reads it instead of hashing every pod). Grouped on whole columns."""
    ids, first = pods.group(("cpu_milli", "gpu_milli", "num_gpu", "gpu_models"))
    groups = [
        PodClass(
            int(pods.cpu_milli[i]),
            int(pods.gpu_milli[i]),
            int(pods.num_gpu[i]),
            pods.gpu_models[i] if pods.num_gpu[i] else (),
        )
        for i in first.tolist()
    ]
    out = PodClassList(map(groups.__getitem__, ids.tolist()))
    # groups that differ only in the models of a CPU-only pod are one class
    where: dict[PodClass, int] = {}
    to_distinct = np.array([where.setdefault(g, len(where)) for g in groups], dtype=np.int64)
    out.distinct = list(where)
    out.index = to_distinct[ids] if len(ids) else np.zeros(0, dtype=np.int64)
    for g, n in zip(groups, np.bincount(ids, minlength=len(groups)).tolist(), strict=True):
        out.counts[g] = out.counts.get(g, 0) + n
    return out


@register
class FGD(ScorePlugin):
    name = "FGD"
    normalize = False

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        classes = pod_classes(pods)
        self.typical = typical_pods(classes, float(self.args.get("typical_threshold", 0.95)))
        self.tracker = FragmentationTracker(cluster, self.typical)
        # class ids in order of first appearance
        self.class_list: list[PodClass] = classes.distinct
        self.class_of = classes.index
        self._n_classes = len(self.class_list)
        self._delta: dict[int, tuple[float, int]] = {}
        # sets of free-milli values a shared pod may take on a node (the GPUs with the best integer score)
        self._sets: list[tuple[int, ...]] = []
        self._set_id: dict[tuple[int, ...], int] = {}
        # per class: score and chosen GPU set by state id (NaN = not computed yet), grown as states appear
        self._sv: dict[int, np.ndarray] = {}
        self._gv: dict[int, np.ndarray] = {}

    @staticmethod
    def _score_of(d: float) -> int:
        # Go: int64(sigmoid((before - after) / 1000) * 100), sigmoid(x) = 1 / (1 + exp(-x))
        return int((1.0 / (1.0 + math.exp(d / 1000.0))) * 100.0)

    def delta(self, sid: int, cid: int) -> tuple[float, int]:
        """(F after - F before, id of the set of free-milli values the pod may take, or -1) for a
        pod of class ``cid`` on a node in state ``sid``. For a shared pod the delta is the
        smallest among the GPUs whose integer score is the best."""
        key = sid * self._n_classes + cid
        got = self._delta.get(key)
        if got is not None:
            return got
        cls = self.class_list[cid]
        t = self.tracker
        model, cpu, free = t.index.keys[sid]
        before = t.f_of_state(sid)
        cpu_after = cpu - cls.cpu_milli
        if cls.num_gpu == 0:
            got = (t.f_of_key((model, cpu_after, free)) - before, -1)
        elif cls.gpu_milli >= MILLI_PER_GPU:
            k = cls.num_gpu
            if k <= len(free) and free[k - 1] == MILLI_PER_GPU:
                # free milli is descending: the k whole GPUs taken are its first k entries, and the
                # rest stays descending with k zeros after it
                after_desc = free[k:] + (0,) * k
            else:
                after = list(free)
                for _ in range(k):
                    after.remove(MILLI_PER_GPU)
                    after.append(0)
                after_desc = tuple(sorted(after, reverse=True))
            got = (t.f_of_key((model, cpu_after, after_desc)) - before, -1)
        else:
            by_value: dict[int, float] = {}
            for v in sorted({f for f in free if f >= cls.gpu_milli}):
                after = list(free)
                after.remove(v)
                after.append(v - cls.gpu_milli)
                by_value[v] = t.f_of_key((model, cpu_after, tuple(sorted(after, reverse=True)))) - before
            if not by_value:
                got = (0.0, -1)
            else:
                top = max(self._score_of(d) for d in by_value.values())
                ok = tuple(v for v, d in by_value.items() if self._score_of(d) == top)
                sid_ = self._set_id.get(ok)
                if sid_ is None:
                    sid_ = self._set_id[ok] = len(self._sets)
                    self._sets.append(ok)
                got = (min(by_value[v] for v in ok), sid_)
        self._delta[key] = got
        return got

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray):
        self.tracker.sync()
        cid = int(self.class_of[i])
        cls = self.class_list[cid]
        ids = self.tracker.index.node_state[nodes]
        n_states = len(self.tracker.index.keys)
        sv, gv = self._sv.get(cid), self._gv.get(cid)
        if sv is None or len(sv) < n_states:
            size = max(2 * n_states, 1024)
            new_s, new_g = np.full(size, np.nan), np.full(size, -1, dtype=np.int64)
            if sv is not None:
                new_s[: len(sv)], new_g[: len(gv)] = sv, gv
            sv, gv = self._sv[cid], self._gv[cid] = new_s, new_g
        out = sv[ids]
        missing = np.isnan(out)
        if missing.any():
            new = np.unique(ids[missing])
            delta = np.empty(len(new))
            for k, u in enumerate(new.tolist()):
                delta[k], gv[u] = self.delta(u, cid)
            # the score of a state, once: an elementwise formula, so the same float as over all nodes
            sv[new] = np.floor((1.0 / (1.0 + np.exp(delta / 1000.0))) * 100.0)
            out = sv[ids]
        if cls.num_gpu == 1 and cls.gpu_milli < MILLI_PER_GPU:
            record_gpu_choice_sets(state, nodes, gv[ids], self._sets)
        return out
