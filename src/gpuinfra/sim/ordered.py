"""Queue disciplines that respect queue order: strict FIFO and EASY backfill.

kube-scheduler's queue (the engine's default, ``queue_mode: kube``) lets any pod that fits run,
whatever waits before it: a big job can starve behind a stream of small ones. Batch schedulers
(Slurm, Volcano's ``sla``/backfill) offer two other disciplines, modelled here for single pods
(gangs keep their own path):

- ``strict_fifo``: only the head of the queue (queue-sort order) may start; when it does not
  fit, nothing behind it starts. No starvation, idle GPUs.
- ``backfill`` (EASY, Lifka 1995): the head gets a reservation: the earliest time at which it
  would fit on some node if running pods end when they are due to (their durations are known
  to the simulator: perfect estimates, an assumption real schedulers do not get). A pod behind
  the head may start now if it ends before that time or does not land on the reserved node.

Cost: one pass over the pending pods per event (O(pending)), unlike the kube mode's hints.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

import numpy as np

from gpuinfra.sim.framework import CycleState
from gpuinfra.sim.kernel import Event

if TYPE_CHECKING:
    from gpuinfra.sim.subsystem import PodRuntime

RESOURCE_FILTERS = ("NodeResourcesFit", "KueueQuota")


class OrderedQueue:
    def __init__(self, rt: PodRuntime, mode: str) -> None:
        self.e = rt
        self.mode = mode
        self.keys: list[tuple] = []
        self.items: list[int] = []
        self.reservation: tuple[float, int] | None = None
        """(time, node) of the head's reservation in backfill mode, for reports and tests."""

    def push(self, i: int) -> None:
        k = self.e.fw.sort_key(i)
        j = bisect.bisect(self.keys, k)
        self.keys.insert(j, k)
        self.items.insert(j, i)

    def _drop(self, j: int) -> None:
        del self.keys[j]
        del self.items[j]

    def _clean(self) -> None:
        keep = [(k, i) for k, i in zip(self.keys, self.items) if self.e.state[i] == 0]  # PENDING
        self.keys = [k for k, _ in keep]
        self.items = [i for _, i in keep]

    def end_of(self, i: int, t: float) -> float:
        end = t + float(self.e.pods.duration_s[i])
        d = float(self.e.pods.delete_s[i])
        return min(end, d) if not math.isnan(d) else end

    def head_reservation(self, head: int, t: float) -> tuple[float, int]:
        """Earliest (time, node) at which ``head`` fits if running pods end when due."""
        e, c, pods = self.e, self.e.cluster, self.e.pods
        static = np.ones(c.n_nodes, dtype=bool)
        for f in e.fw.filters:
            if f.name not in RESOURCE_FILTERS:
                static &= f.filter(CycleState(), pods, head, c).ok
        cpu, mem = int(pods.cpu_milli[head]), int(pods.memory_mib[head])
        k, m = int(pods.num_gpu[head]), int(pods.gpu_milli[head])
        best = (math.inf, -1)
        for n in np.flatnonzero(static):
            n = int(n)
            free_cpu, free_mem = int(c.cpu_free[n]), int(c.mem_free[n])
            dev = c.dev_free[n].astype(np.int64).copy()
            ends = sorted(((self.e_end(a.pod), a) for a in c.node_allocs[n].values()), key=lambda x: (x[0], x[1].pod))
            when = t
            for end, a in [(t, None), *ends]:
                if a is not None:
                    free_cpu += a.cpu_milli
                    free_mem += a.memory_mib
                    for d in a.devices:
                        dev[d] += a.milli_per_device
                    when = end
                if when >= best[0]:
                    break
                if free_cpu >= cpu and free_mem >= mem and (k == 0 or np.count_nonzero(dev >= m) >= k):
                    best = (when, n)
                    break
        return best

    def e_end(self, pod: int) -> float:
        """When a running pod is due to end."""
        return self.end_of(pod, float(self.e.start_s[pod]))

    def run_pass(self, t: float) -> list[Event]:
        e = self.e
        self._clean()
        out: list[Event] = []
        while self.items:
            head = self.items[0]
            r = e.fw.schedule(head)
            if r.alloc is None:
                e.reason[head] = r.status.message()
                break
            self._drop(0)
            e.n_pending -= 1
            out += e.start(head, r.alloc, t)
        self.reservation = None
        if self.mode != "backfill" or len(self.items) < 2:
            return out
        head = self.items[0]
        shadow, rnode = self.head_reservation(head, t)
        self.reservation = (shadow, rnode)
        j = 1
        while j < len(self.items):
            i = self.items[j]
            r = e.fw.schedule(i)
            if r.alloc is None:
                e.reason[i] = r.status.message()
                j += 1
                continue
            if self.end_of(i, t) <= shadow or r.alloc.node != rnode:
                self._drop(j)
                e.n_pending -= 1
                out += e.start(i, r.alloc, t)
            else:
                e.fw.unreserve(r.alloc)
                e.reason[i] = (
                    f"backfill: would delay {e.pods.names[head]}'s reservation on "
                    f"{e.cluster.node_names[rnode]} at t={shadow:.0f}"
                )
                j += 1
        return out
