"""Node states interned as integers, so per-state work (fragmentation, FGD deltas) is done once.

A node's state for GPU-placement purposes is (GPU model, free CPU, the multiset of free milli
of its available GPUs). Early in a run nearly every node is in the empty state of its shape,
and later many nodes share states, so a cache keyed by state id turns the FGD paper's
O(nodes x classes x GPUs) per pod into a handful of lookups (facts/scheduling.md 2.6, item 1).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.models.fragmentation import FragmentationModel, TypicalPods
from gpuinfra.sim.cluster import ClusterState

StateKey = tuple[int, int, tuple[int, ...]]


class NodeStateIndex:
    def __init__(self, cluster: ClusterState) -> None:
        self.cluster = cluster
        self.keys: list[StateKey] = []
        self._ids: dict[StateKey, int] = {}
        self.node_state = np.array([self.intern(self.key_of(n)) for n in range(cluster.n_nodes)], dtype=np.int64)
        self._pos = len(cluster.changes)

    def key_of(self, n: int) -> StateKey:
        c = self.cluster
        free = tuple(v for v in c.dev_free_desc[n].tolist() if v >= 0)
        return (int(c.node_model[n]), int(c.cpu_free[n]), free)

    def intern(self, key: StateKey) -> int:
        sid = self._ids.get(key)
        if sid is None:
            sid = len(self.keys)
            self._ids[key] = sid
            self.keys.append(key)
        return sid

    def sync(self) -> list[tuple[int, int, int]]:
        """Re-read the nodes changed since the last sync; returns (node, old id, new id)."""
        nodes, self._pos = self.cluster.nodes_changed_since(self._pos)
        changed = []
        for n in nodes:
            old = int(self.node_state[n])
            new = self.intern(self.key_of(n))
            if new != old:
                self.node_state[n] = new
                changed.append((n, old, new))
        return changed


class FragmentationTracker:
    """The cluster's FGD fragmentation, kept up to date incrementally (O(changed nodes))."""

    def __init__(self, cluster: ClusterState, typical: TypicalPods) -> None:
        self.cluster = cluster
        self.typical = typical
        self.model = FragmentationModel(typical)
        self.index = NodeStateIndex(cluster)
        self._f: dict[int, float] = {}
        self._f_key: dict[StateKey, float] = {}
        self.total = float(sum(self.f_of_state(int(s)) for s in self.index.node_state))

    def f_of_state(self, sid: int) -> float:
        f = self._f.get(sid)
        if f is None:
            key = self.index.keys[sid]
            f = self._f_key.pop(key, None)  # evaluated earlier as a state after a placement
            if f is None:
                f = self._evaluate(key)
            self._f[sid] = f
        return f

    def f_of_key(self, key: StateKey) -> float:
        """F_n of a node state given by its key; a state no node is in yet is not interned (FGD asks
        for every state a placement would lead to, most of which no node ever reaches)."""
        sid = self.index._ids.get(key)
        if sid is not None:
            return self.f_of_state(sid)
        f = self._f_key.get(key)
        if f is None:
            f = self._f_key[key] = self._evaluate(key)
        return f

    def _evaluate(self, key: StateKey) -> float:
        model_id, cpu, free = key
        return self.model(self.cluster.models[model_id] if model_id >= 0 else None, cpu, free)

    def sync(self) -> float:
        for _, old, new in self.index.sync():
            self.total += self.f_of_state(new) - self.f_of_state(old)
        return self.total

    def recompute(self) -> float:
        """From scratch (for checks): sum of F_n over nodes."""
        return float(sum(self.f_of_state(int(s)) for s in self.index.node_state))
