"""The recorder: a change log of cluster levels, integrated exactly into fixed intervals.

Levels are piecewise constant between events. After every change the engine calls
:meth:`Recorder.record` with the current time; the recorder appends the new levels. At the end
:meth:`Recorder.finalize` integrates the log into intervals in one vectorised pass: the running
integral F(t) is piecewise linear, so F at interval edges is exact by linear interpolation, and
an interval's GPU-time is F(end) - F(start).

Three GPU levels come from three different places, so their sum being capacity x time is a
real check:

- allocated milli-GPU from the cluster's running totals (and, separately, the pod ledger);
- idle milli-GPU from the free milli of each node's available devices (re-read per node from
  the device row the cluster last wrote);
- unavailable milli-GPU from the device availability (devices that exist less the available ones).
"""

from __future__ import annotations

from array import array

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.nodestate import FragmentationTracker

COUNTS = ("arrivals", "starts", "finishes", "withdrawals")


class Recorder:
    def __init__(
        self, cluster: ClusterState, interval_s: float, start_s: float = 0.0, frag: FragmentationTracker | None = None
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.cluster = cluster
        self.frag = frag
        self.interval_s = float(interval_s)
        self.start_s = float(start_s)
        nm = len(cluster.models)
        self.nm = nm
        self._node_model = np.where(cluster.node_model >= 0, cluster.node_model, nm)
        self._node_model_list: list[int] = self._node_model.tolist()
        self._dev_milli: list[int] = (cluster.dev_exists.sum(axis=1) * MILLI_PER_GPU).tolist()
        self._node_pool = np.asarray(cluster.node_pool, dtype=np.int64)
        self._node_pool_list: list[int] = self._node_pool.tolist()
        # unavailable milli-GPU per node pool: changes only when devices go out of or back into service
        # (faults, reimages, reclaims), so it has its own sparse log, a row only when it changed
        self._pool_unav_times: list[float] = []
        self._pool_unav_rows: list[list[float]] = []
        self.queue_len = 0
        self.running = 0
        self._refresh_gpu_levels()
        self._times: list[float] = []
        # the change log's level rows, in one growing float64 block (a row per record time):
        # a million-pod replay keeps ~2M rows, 8 bytes per value instead of an object each
        self._width = 3 * nm + len(cluster.busy_devices) + 3
        self._log = array("d")
        self._count_times: dict[str, list[float]] = {k: [] for k in COUNTS}
        self.finalized = False
        self.record(self.start_s)

    # -- levels ----------------------------------------------------------------------------
    def _refresh_gpu_levels(self) -> None:
        """Recompute the idle and unavailable levels of every node from the device arrays."""
        c = self.cluster
        self._node_free = np.where(c.dev_free > 0, c.dev_free, 0).sum(axis=1).astype(np.int64).tolist()
        self._node_unav = ((c.dev_exists & ~c.dev_available).sum(axis=1) * MILLI_PER_GPU).astype(np.int64).tolist()
        nm = self.nm
        # Python floats (the same values the float64 arrays held): per-event updates stay cheap
        self.idle_level = np.bincount(self._node_model, weights=self._node_free, minlength=nm + 1)[:nm].tolist()
        self.unavail_level = np.bincount(self._node_model, weights=self._node_unav, minlength=nm + 1)[:nm].tolist()
        npool = len(c.pools)
        self.pool_unavail_level = np.bincount(self._node_pool, weights=self._node_unav, minlength=npool)[
            :npool
        ].tolist()
        self._pool_unav_dirty = True

    def _refresh_node(self, n: int) -> None:
        """Re-read one node's devices (the only node a placement or release touched)."""
        c = self.cluster
        # the node's device row as the cluster last wrote it (``desc_key``: its free milli per
        # device, -1 for an absent or unavailable device), and its available-device capacity
        free = sum(v for v in c.desc_key[n] if v > 0)
        unav = self._dev_milli[n] - int(c.node_gpu_cap[n])
        m = self._node_model_list[n]
        if m < self.nm:
            self.idle_level[m] += free - self._node_free[n]
            self.unavail_level[m] += unav - self._node_unav[n]
        if unav != self._node_unav[n]:
            self.pool_unavail_level[self._node_pool_list[n]] += unav - self._node_unav[n]
            self._pool_unav_dirty = True
        self._node_free[n] = free
        self._node_unav[n] = unav

    def changed(self, nodes: list[int] | None = None) -> None:
        """Re-read the nodes that changed (None: every node). Call :meth:`record` after."""
        if nodes is None:
            self._refresh_gpu_levels()
        else:
            for n in nodes:
                self._refresh_node(n)

    def record(self, t_s: float) -> None:
        """Append the current levels, valid from ``t_s`` until the next record."""
        times = self._times
        if times and t_s < times[-1]:
            raise RuntimeError(f"recorder went back in time: {t_s} < {times[-1]}")
        c = self.cluster
        frag = self.frag.sync() if self.frag is not None else 0.0
        row = c.alloc_milli.tolist()
        row += self.idle_level
        row += self.unavail_level
        row += c.busy_devices.tolist()
        row += (self.queue_len, self.running, frag)
        if times and times[-1] == t_s:
            self._log[-self._width :] = array("d", row)
        else:
            self._log.extend(row)
            times.append(t_s)
        if self._pool_unav_dirty:
            if self._pool_unav_times and self._pool_unav_times[-1] == t_s:
                self._pool_unav_rows[-1] = list(self.pool_unavail_level)
            else:
                self._pool_unav_times.append(t_s)
                self._pool_unav_rows.append(list(self.pool_unavail_level))
            self._pool_unav_dirty = False

    def count(self, what: str, t_s: float) -> None:
        self._count_times[what].append(t_s)

    # -- integration -----------------------------------------------------------------------
    def finalize(self, horizon_s: float) -> None:
        """Integrate the log up to ``horizon_s`` into intervals of ``interval_s``."""
        nm = self.nm
        t = np.asarray(self._times, dtype=np.float64)
        levels = np.array(self._log, dtype=np.float64).reshape(len(self._times), self._width)
        end = max(float(horizon_s), self.start_s)
        keep = t <= end
        t, levels = t[keep], levels[keep]
        seg_end = np.append(t[1:], end)
        dt = seg_end - t
        F = np.vstack((np.zeros(levels.shape[1]), np.cumsum(levels * dt[:, None], axis=0)))
        knots = np.append(t, end)
        nb = max(1, int(np.ceil((end - self.start_s) / self.interval_s - 1e-12)))
        edges = np.minimum(self.start_s + self.interval_s * np.arange(nb + 1), end)
        Fe = np.column_stack([np.interp(edges, knots, F[:, j]) for j in range(levels.shape[1])])
        per = np.diff(Fe, axis=0)
        self.edges = edges
        self.alloc_ms = per[:, 0:nm]
        self.idle_ms = per[:, nm : 2 * nm]
        self.unavail_ms = per[:, 2 * nm : 3 * nm]
        self.busy_dev_s = per[:, 3 * nm : 4 * nm]
        self.queue_s = per[:, 4 * nm]
        self.running_s = per[:, 4 * nm + 1]
        self.frag_ms = per[:, 4 * nm + 2]
        # max queue length over the segments that overlap each interval
        first = np.searchsorted(t, edges[:-1], side="right") - 1
        last = np.searchsorted(t, edges[1:], side="left") - 1
        last = np.maximum(last, first)
        q = levels[:, 4 * nm]
        self.queue_max = (
            np.array([q[a : b + 1].max() for a, b in zip(first, last)], dtype=np.int64)
            if len(q)
            else np.zeros(nb, dtype=np.int64)
        )
        self.counts = {
            k: np.histogram(np.asarray(v), bins=edges)[0] if len(edges) > 1 else np.zeros(0)
            for k, v in self._count_times.items()
        }
        # per node pool: the sparse log of unavailable levels, integrated the same way up to the end
        tp = np.asarray(self._pool_unav_times, dtype=np.float64)
        lp = np.asarray(self._pool_unav_rows, dtype=np.float64).reshape(len(tp), len(self.cluster.pools))
        kp = tp <= end
        tp, lp = tp[kp], lp[kp]
        self.pool_unavail_ms = (lp * (np.append(tp[1:], end) - tp)[:, None]).sum(axis=0)
        """Unavailable milli-GPU-seconds per node pool (``cluster.pools`` order) over the whole run."""
        self.finalized = True

    def totals(self) -> dict[str, float]:
        """Whole-run integrals in milli-GPU-seconds."""
        return {
            "allocated": float(self.alloc_ms.sum()),
            "idle": float(self.idle_ms.sum()),
            "unavailable": float(self.unavail_ms.sum()),
        }

    def per_pool_totals(self) -> dict[str, np.ndarray]:
        """Whole-run unavailable milli-GPU-seconds per node pool (``cluster.pools`` order): the same
        device availability as the per-model level, kept per pool so that pools of one GPU model bought
        differently (on-demand, spot) can be priced apart. Per pool they sum to the per-model total."""
        return {"unavailable": self.pool_unavail_ms}

    def per_model_totals(self) -> dict[str, np.ndarray]:
        return {
            "allocated": self.alloc_ms.sum(axis=0),
            "idle": self.idle_ms.sum(axis=0),
            "unavailable": self.unavail_ms.sum(axis=0),
        }
