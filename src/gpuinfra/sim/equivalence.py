"""Node equivalence classes: nodes in the same state answer every state-pure plugin the same way.

kube-scheduler once had an equivalence-class cache (an alpha feature of 1.x): predicates were
evaluated once per class of equivalent pods and reused. This is the dual idea over nodes, made
exact for this simulator. A node's *class* is its key

    (node pool, free milli-CPU, free memory MiB, up, free milli per device sorted descending)

where the pool fixes everything static a plugin may read (GPU model, capacities, labels, taints,
time-slice replicas) and the sorted row carries availability (-1 for an absent or unavailable
device). A plugin that declares ``class_pure`` answers Filter and Score for a node as a function
of the pod's signature and this key alone, so a scheduling cycle can evaluate one representative
per class (cached per (signature, class)) instead of every node.

The tie-break is kept exactly: each class keeps its members in a min-heap by node index (or by
rank in the run's seeded permutation), so "the lowest-index (lowest-rank) node among the best"
is the minimum over the best classes of their heap tops.
"""

from __future__ import annotations

import heapq

import numpy as np

from gpuinfra.sim.cluster import ClusterState


class NodeClasses:
    """Nodes of ``cluster`` grouped by state key, kept in step with ``cluster.changes``.

    Args:
        cluster: the cluster state (read only).
        order: per node, the value the tie-break minimises (its rank), or None for the node index.

    ``alive`` maps each class id with at least one node to None (a dict used as an ordered set);
    ``count[cid]`` is its number of nodes; :meth:`first` its member with the least order.
    """

    def __init__(self, cluster: ClusterState, order: np.ndarray | None = None) -> None:
        self.cluster = cluster
        n = cluster.n_nodes
        self.order: list[int] = order.tolist() if order is not None else list(range(n))
        self._ids: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.count: list[int] = []
        self.heaps: list[list[tuple[int, int]]] = []
        self.alive: dict[int, None] = {}
        self.node_cid: list[int] = [-1] * n
        for node in range(n):
            self._place(node, self._intern(self.key_of(node)))
        self._pos = len(cluster.changes)

    def key_of(self, n: int) -> tuple:
        """The node's class key, as the cluster keeps it (``ClusterState.state_key``)."""
        return self.cluster.state_key[n]

    def _intern(self, key: tuple) -> int:
        cid = self._ids.get(key)
        if cid is None:
            cid = len(self.keys)
            self._ids[key] = cid
            self.keys.append(key)
            self.count.append(0)
            self.heaps.append([])
        return cid

    def _place(self, node: int, cid: int) -> None:
        self.node_cid[node] = cid
        c = self.count[cid] + 1
        self.count[cid] = c
        if c == 1:
            self.alive[cid] = None
        h = self.heaps[cid]
        heapq.heappush(h, (self.order[node], node))
        if len(h) > 2 * c + 32:  # drop entries of nodes that left (amortised)
            h[:] = sorted({e for e in h if self.node_cid[e[1]] == cid})

    def sync(self) -> None:
        """Re-read the nodes changed since the last sync."""
        log = self.cluster.changes
        pos = self._pos
        if pos == len(log):
            return
        key_of = self.cluster.state_key
        for node in set(log[pos:]):
            new = self._intern(key_of[node])
            old = self.node_cid[node]
            if new == old:
                continue
            c = self.count[old] - 1
            self.count[old] = c
            if c == 0:
                del self.alive[old]
                self.heaps[old] = []
            self._place(node, new)
        self._pos = len(log)

    def first(self, cid: int) -> int:
        """The member of class ``cid`` with the least order (node index or rank)."""
        h = self.heaps[cid]
        node_cid = self.node_cid
        while node_cid[h[0][1]] != cid:
            heapq.heappop(h)
        return h[0][1]
