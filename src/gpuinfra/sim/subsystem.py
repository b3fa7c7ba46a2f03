"""The contract between the simulation kernel and its subsystems.

A *subsystem* is anything that acts on the cluster over time besides arrivals and finishes:
fault injection, the MIG manager, gang admission, ordered queues (today); checkpointing,
lifecycle phases, storage, serving replicas, autoscalers, upgrade controllers (next). Each one

1. declares a ``name`` and the event kinds it handles (:meth:`Subsystem.handlers`);
2. is built from the run's configuration by a factory registered in :data:`REGISTRY`
   (one line per subsystem, in ``sim/subsystems.py``), which returns ``None`` when the run
   does not use it;
3. receives a narrow :class:`View` at construction: the clock, the cluster state (the only
   place GPUs are held), the pod runtime (start, evict, requeue, retry: the operations the
   engine exposes, declared by :class:`PodRuntime`), its own seeded random stream and the
   recorder. It never imports the engine;
4. returns follow-up events from its handlers, as Vidur's and SimPy's handlers do, and a
   JSON-able :meth:`Subsystem.summary` that lands in the run's results under its name;
5. takes nodes down and devices out of service under its own name
   (``cluster.set_node_up(n, False, self.name)``) and gives back only what it took: holds are
   counted per owner, so a node two subsystems hold (a reboot during an upgrade's drain) comes
   back only when both have released it.

The engine is the composition: it builds every registered subsystem, routes each event kind to
the one subsystem that declared it (two subsystems declaring the same kind is a bug, refused),
and checks the cluster invariants at the end of every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from gpuinfra.sim.cluster import Allocation, ClusterState
from gpuinfra.sim.kernel import Event, Handler

if TYPE_CHECKING:
    from gpuinfra.sim.framework import Status
    from gpuinfra.sim.recorder import Recorder
    from gpuinfra.sim.scheduler import Framework
    from gpuinfra.sim.workload import PodTable

# Pod lifecycle states in the runtime's ``state`` array (int8).
PENDING, RUNNING, DONE, WITHDRAWN, NOT_ARRIVED = 0, 1, 2, 3, 4


class PodRuntime(Protocol):
    """What a subsystem may read and do to pods. The replay engine implements it.

    Arrays are indexed by pod (``len(pods)``): ``state`` (int8, the constants above),
    ``start_s``/``end_s`` (float64 seconds, NaN when not set), ``gen`` (int64, bumped on each
    start so stale finish events are ignored); ``allocs`` maps running pods to their
    :class:`Allocation`; ``outcome``/``reason`` are per-pod strings.
    """

    pods: PodTable
    cluster: ClusterState
    fw: Framework
    state: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    gen: np.ndarray
    allocs: dict[int, Allocation]
    outcome: list[str]
    reason: list[str]
    n_pending: int
    rec: Recorder
    remaining_s: np.ndarray
    """float64 per pod: run time the pod needs at its next start (initially its duration); a
    subsystem may lower it after an eviction (work resumed from a checkpoint) or raise it (start-up)."""
    restart_at_s: np.ndarray
    """float64 per pod, read when the pod is evicted: <= now, it queues again at once (the default);
    later, it waits until then (a restart back-off); inf, it fails for good (outcome ``failed``)."""

    def start(self, i: int, alloc: Allocation, t: float) -> list[Event]:
        """Bind pod ``i`` to ``alloc`` (already reserved in the cluster) at ``t``; returns its finish event."""
        ...

    def evict(self, victims: Iterable[Allocation], by: int | None, t: float, why: str) -> None:
        """Kill running pods: their GPU work since start is lost; they queue again."""
        ...

    def restart_in_place(self, pods: list[int], t: float, run: bool = True) -> list[Event]:
        """Restart running pods on their allocations at ``t`` for their ``remaining_s`` (``run`` False:
        hold their GPUs without an end); returns their new finish events and the start hooks' events."""
        ...

    def push_pending(self, i: int, status: Status, t: float) -> None:
        """Put pod ``i`` in the unschedulable queue with ``status`` as its reason."""
        ...

    def retry_nodes(self, nodes: Iterable[int], t: float) -> list[Event]:
        """Nodes freed capacity: give the pending pods that may fit them a scheduling cycle."""
        ...

    def retry_pods(self, pods: Iterable[int], t: float) -> list[Event]:
        """A full scheduling cycle for pods just put back in the queue."""
        ...

    def mark_dirty(self, node: int) -> None:
        """Node ``node`` changed outside an allocate/release (availability, MIG layout)."""
        ...

    def touch(self, t: float) -> None:
        """Record the cluster's levels at ``t`` after a change (call once per handler)."""
        ...

    def log(self, t: float, kind: str, i: int, **kw: Any) -> None:
        """Append a pod event to the run's event log (``events.jsonl``)."""
        ...


@dataclass
class View:
    """The narrow view a subsystem gets: clock, cluster, pods, its own random stream, recorder."""

    clock: Callable[[], float]
    """The kernel's current time in seconds (simulated)."""
    cluster: ClusterState
    runtime: PodRuntime
    rng: np.random.Generator
    """This subsystem's own stream, spawned from the run's seed by name (``Rngs.stream``)."""
    recorder: Recorder
    log: list[dict] = field(default_factory=list)
    """Where the subsystem writes its own event records (reported in its summary)."""
    stream: Callable[[str], np.random.Generator] | None = None
    """Another named stream of the run's seed (``Rngs.stream``; None where the host gives none): for
    draws a subsystem keeps apart from its own stream, so that adding them shifts none of its others."""


class Subsystem:
    """Base class of a subsystem: override ``handlers``; optionally ``first_events`` and ``summary``."""

    name: ClassVar[str] = ""

    def __init__(self, view: View) -> None:
        self.view = view

    def handlers(self) -> dict[str, Handler]:
        """Event kind -> handler. Kinds must be unique across the run's subsystems."""
        return {}

    def first_events(self, t0: float) -> list[Event]:
        """Events to schedule before the run starts (``t0`` is the run's start time)."""
        return []

    def summary(self) -> dict[str, Any] | None:
        """JSON-able results of this subsystem for the run's summary, or None."""
        return None

    # Optional pod hooks: the engine calls them only for subsystems that override them.
    def on_pod_start(self, i: int, alloc: Allocation, t: float, gen: int) -> list[Event]:
        """Pod ``i`` was bound at ``t`` (run generation ``gen``); return follow-up events."""
        return []

    def on_pod_end(self, i: int, alloc: Allocation, t: float, outcome: str) -> list[Event]:
        """Pod ``i`` released ``alloc`` at ``t``: ``completed``, ``ended_by_owner`` or ``evicted``."""
        return []


@dataclass(frozen=True)
class RunConfig:
    """What a subsystem factory may read to decide whether and how its subsystem runs."""

    profile: Any
    """The scheduler profile (``sim.framework.Profile``)."""
    horizon_s: float | None
    until_s: float
    """The last time anything is expected to happen (horizon, or last submit + duration)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Per-subsystem configuration by name (e.g. ``{"faults": [FaultClass, ...]}``)."""


Factory = Callable[[RunConfig, Callable[[str], View]], "Subsystem | None"]
"""``factory(config, make_view)``: build the subsystem (``make_view(name)`` gives its view) or None."""

REGISTRY: list[tuple[str, Factory]] = []
"""(name, factory) in registration order; the order events of equal time and priority are
scheduled in follows it, so it is part of a run's determinism."""


def register(name: str) -> Callable[[Factory], Factory]:
    """Decorator: register a subsystem factory under ``name`` (unique)."""

    def deco(fn: Factory) -> Factory:
        if any(n == name for n, _ in REGISTRY):
            raise TypeError(f"subsystem {name!r} registered twice")
        REGISTRY.append((name, fn))
        return fn

    return deco


def route(subsystems: Iterable[Subsystem], base: dict[str, Handler]) -> dict[str, Handler]:
    """Merge handlers into one routing table; an event kind claimed twice is a bug (TypeError)."""
    table = dict(base)
    for s in subsystems:
        for kind, h in s.handlers().items():
            if kind in table:
                raise TypeError(f"event kind {kind!r} of subsystem {s.name!r} is already handled")
            table[kind] = h
    return table
