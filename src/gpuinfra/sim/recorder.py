"""The recorder: integrates cluster levels over time into fixed intervals.

Levels are piecewise constant between events, so integrating them exactly is cheap: before
every state change the engine calls :meth:`Recorder.advance` with the current time, and the
recorder adds ``level x elapsed`` to each interval it crosses. Three GPU levels are read from
three different places, so their sum being capacity x time is a real check:

- allocated milli-GPU from the cluster's running totals (and, separately, the pod ledger);
- idle milli-GPU by summing the free milli of every available device (``dev_free``);
- unavailable milli-GPU from the device availability mask.
"""

from __future__ import annotations

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState


class Recorder:
    def __init__(self, cluster: ClusterState, interval_s: float, start_s: float = 0.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.cluster = cluster
        self.interval_s = float(interval_s)
        self.start_s = float(start_s)
        self.t_s = float(start_s)
        nm = len(cluster.models)
        self.nm = nm
        self._node_model = np.where(cluster.node_model >= 0, cluster.node_model, nm)
        # current levels
        self.queue_len = 0
        self.running = 0
        self._refresh_gpu_levels()
        # per-interval integrals (lists of arrays, grown as time advances)
        self.alloc_ms: list[np.ndarray] = []
        self.idle_ms: list[np.ndarray] = []
        self.unavail_ms: list[np.ndarray] = []
        self.busy_dev_s: list[np.ndarray] = []
        self.queue_s: list[float] = []
        self.running_s: list[float] = []
        self.queue_max: list[int] = []
        self.counts: list[dict[str, int]] = []
        self._open_bucket()

    def _open_bucket(self) -> None:
        self.alloc_ms.append(np.zeros(self.nm))
        self.idle_ms.append(np.zeros(self.nm))
        self.unavail_ms.append(np.zeros(self.nm))
        self.busy_dev_s.append(np.zeros(self.nm))
        self.queue_s.append(0.0)
        self.running_s.append(0.0)
        self.queue_max.append(self.queue_len)
        self.counts.append({"arrivals": 0, "starts": 0, "finishes": 0, "withdrawals": 0})

    def _refresh_gpu_levels(self) -> None:
        """Recompute the idle and unavailable levels of every node from the device arrays."""
        c = self.cluster
        self._node_free = np.where(c.dev_free > 0, c.dev_free, 0).sum(axis=1).astype(np.int64)
        self._node_unav = (c.dev_exists & ~c.dev_available).sum(axis=1).astype(np.int64) * MILLI_PER_GPU
        self.idle_level = np.bincount(self._node_model, weights=self._node_free, minlength=self.nm + 1)[: self.nm]
        self.unavail_level = np.bincount(self._node_model, weights=self._node_unav, minlength=self.nm + 1)[: self.nm]
        self.alloc_level = c.alloc_milli.astype(np.float64)
        self.busy_level = c.busy_devices.astype(np.float64)

    def _refresh_node(self, n: int) -> None:
        """Re-read one node's devices (the only node a placement or release touched)."""
        c = self.cluster
        row = c.dev_free[n]
        free = int(row[row > 0].sum())
        unav = int(np.count_nonzero(c.dev_exists[n] & ~c.dev_available[n])) * MILLI_PER_GPU
        m = self._node_model[n]
        if m < self.nm:
            self.idle_level[m] += free - self._node_free[n]
            self.unavail_level[m] += unav - self._node_unav[n]
        self._node_free[n] = free
        self._node_unav[n] = unav
        self.alloc_level = c.alloc_milli.astype(np.float64)
        self.busy_level = c.busy_devices.astype(np.float64)

    def advance(self, t_s: float) -> None:
        """Integrate the current levels from the last time up to ``t_s``."""
        if t_s < self.t_s:
            raise RuntimeError(f"recorder went back in time: {t_s} < {self.t_s}")
        while t_s > self.t_s:
            b = len(self.queue_s) - 1
            bucket_end = self.start_s + (b + 1) * self.interval_s
            step_end = min(t_s, bucket_end)
            dt = step_end - self.t_s
            if dt > 0:
                self.alloc_ms[b] += self.alloc_level * dt
                self.idle_ms[b] += self.idle_level * dt
                self.unavail_ms[b] += self.unavail_level * dt
                self.busy_dev_s[b] += self.busy_level * dt
                self.queue_s[b] += self.queue_len * dt
                self.running_s[b] += self.running * dt
            self.t_s = step_end
            if step_end == bucket_end and t_s > bucket_end:
                self._open_bucket()

    def changed(self, nodes: list[int] | None = None) -> None:
        """Call after the cluster or queue changed: ``nodes`` are the nodes that changed
        (None re-reads every node)."""
        if nodes is None:
            self._refresh_gpu_levels()
        else:
            for n in nodes:
                self._refresh_node(n)
        b = len(self.queue_s) - 1
        if self.queue_len > self.queue_max[b]:
            self.queue_max[b] = self.queue_len

    def count(self, what: str) -> None:
        self.counts[-1][what] += 1

    # -- results ---------------------------------------------------------------------------
    def totals(self) -> dict[str, float]:
        """Whole-run integrals in milli-GPU-seconds."""
        return {
            "allocated": float(np.sum(self.alloc_ms)),
            "idle": float(np.sum(self.idle_ms)),
            "unavailable": float(np.sum(self.unavail_ms)),
        }

    def per_model_totals(self) -> dict[str, np.ndarray]:
        return {
            "allocated": np.sum(self.alloc_ms, axis=0) if self.alloc_ms else np.zeros(self.nm),
            "idle": np.sum(self.idle_ms, axis=0) if self.idle_ms else np.zeros(self.nm),
            "unavailable": np.sum(self.unavail_ms, axis=0) if self.unavail_ms else np.zeros(self.nm),
        }
