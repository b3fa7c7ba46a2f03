"""A small discrete-event kernel in the shape of SimPy's: a heap of (time, priority, seq, event).

The sequence number makes ties pop in insertion order, so every replay is exact. Handlers are
plain functions that take an event and return the follow-up events; all state lives in plain
data objects owned by the caller, so a run can be snapshotted (the heap is a list of tuples).
Randomness comes only from :class:`Rngs` (``gpuinfra/rng.py``): one named stream per subsystem.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import NamedTuple

from gpuinfra.rng import SUBSYSTEMS, Rngs

__all__ = [
    "Event",
    "Handler",
    "Kernel",
    "Rngs",
    "SUBSYSTEMS",
    "PRIO_RELEASE",
    "PRIO_ARRIVAL",
    "PRIO_SAMPLE",
    "PRIO_END",
]

# Event priorities: lower pops first at equal time. Capacity is released before new arrivals
# try to use it, and samples see the state after every change at their instant.
PRIO_RELEASE = 0
PRIO_ARRIVAL = 1
PRIO_SAMPLE = 8
PRIO_END = 9


class Event(NamedTuple):
    """One event: immutable, compared by value. (A NamedTuple rather than a frozen dataclass:
    a replay creates two or more per pod, and a tuple is built about three times faster.)"""

    t_s: float
    priority: int
    kind: str
    ref: int = -1
    """What the event is about (a pod index), or -1."""
    gen: int = 0
    """Generation of ``ref`` the event belongs to (a preempted pod's old finish event is stale)."""


Handler = Callable[[Event], Iterable[Event] | None]


class Kernel:
    """Clock plus event heap. ``run`` pops events in (time, priority, seq) order."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.now_s = 0.0
        self._heap: list[tuple[float, int, int, Event]] = []
        self._seq = 0
        self.events_processed = 0

    def schedule(self, ev: Event) -> None:
        if ev.t_s < self.now_s:
            raise RuntimeError(f"event {ev} scheduled in the past (now={self.now_s})")
        heapq.heappush(self._heap, (ev.t_s, ev.priority, self._seq, ev))
        self._seq += 1

    def schedule_many(self, evs: Iterable[Event]) -> None:
        for ev in evs:
            self.schedule(ev)

    def __len__(self) -> int:
        return len(self._heap)

    def peek_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run(self, until_s: float | None = None) -> None:
        heap, handlers = self._heap, self.handlers
        pop, push = heapq.heappop, heapq.heappush
        while heap:
            if until_s is not None and heap[0][0] > until_s:
                break
            t, _, _, ev = pop(heap)
            self.now_s = t
            follow = handlers[ev.kind](ev)
            self.events_processed += 1
            if follow:
                for f in follow:  # schedule(f), inlined
                    if f.t_s < t:
                        raise RuntimeError(f"event {f} scheduled in the past (now={t})")
                    push(heap, (f.t_s, f.priority, self._seq, f))
                    self._seq += 1
        if until_s is not None and until_s > self.now_s:
            self.now_s = until_s

    def snapshot(self) -> tuple[float, int, list[tuple[float, int, int, Event]]]:
        """A copy of the kernel's state (clock, sequence, pending events)."""
        return self.now_s, self._seq, list(self._heap)
