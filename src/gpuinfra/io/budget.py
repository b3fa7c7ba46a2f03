"""Budgets before work: refuse a run this machine cannot finish, before spending hours or GiB on it.

A scenario can ask for far more than it means to (``sample_interval_s: 0.000001``, a submit time
of 1e15 s, a fault rate of 1e9 per GPU-day, a generator of fifty million jobs). Each of these is
estimated from the scenario and the pods before the replay starts, and refused with the estimate,
the limit and how to shrink the run.

The limits are sized for the machine this project runs on (2 cores, 24 GiB; docs/benchmarks.md)
from measured costs, with headroom:

- events: the replay processes 11,000-21,000 events/s there (docs/benchmarks.md, replay table);
  :data:`MAX_EVENTS` of 20 million is about half an hour at the slow end;
- pods: 2.11 events per pod (17,201 events for the 8,152 openb pods; 275,209 for 130,432) and
  about 1.4 KiB of peak memory per pod (159 MiB at 8,152 pods, 322 MiB at 130,432: 163 MiB for
  122,280 more pods); :data:`MAX_MEMORY_BYTES` is half the machine's 24 GiB;
- accounting intervals: the recorder integrates every interval into 4 values per GPU model plus 3
  (sim/recorder.py) and the metrics table has one row per interval; :data:`MAX_INTERVALS` of one
  million is a year at 30-second resolution.

These are estimates (queueing lengthens a run beyond its last submit + duration), so the check
refuses only what is far out of reach; it never changes what a run computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpuinfra.errors import UserError

MACHINE = "2 cores, 24 GiB"
MAX_EVENTS = 20_000_000
MAX_MEMORY_BYTES = 12 * 1024**3
MAX_INTERVALS = 1_000_000
MAX_NODES = 200_000
"""Nodes in one cluster: 10x the largest benchmarked (19,408 nodes, docs/benchmarks.md)."""
EVENTS_PER_POD = 2.11
BYTES_PER_POD = 1400
FAULT_EVENTS = 3
"""Events per injected fault (the fault, its repair, and a detection or a crash)."""


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to need."""

    pods: int
    events: float
    memory_bytes: float
    intervals: float


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x < 1e9 else f"{x:.2g}"


def check_pods(n_pods: int, where: str, how: str) -> None:
    """Refuse ``n_pods`` pods when their events or memory exceed the budget (before creating them)."""
    events = n_pods * EVENTS_PER_POD
    mem = n_pods * BYTES_PER_POD
    if events > MAX_EVENTS or mem > MAX_MEMORY_BYTES:
        most = int(min(MAX_EVENTS / EVENTS_PER_POD, MAX_MEMORY_BYTES / BYTES_PER_POD))
        raise UserError(
            f"{_fmt(n_pods)} pods would need about {_fmt(events)} events and {mem / 1024**3:,.1f} GiB; "
            f"this machine ({MACHINE}) is budgeted for {_fmt(MAX_EVENTS)} events and "
            f"{MAX_MEMORY_BYTES / 1024**3:.0f} GiB",
            where=where,
            expected=f"at most about {most:,} pods",
            fix=how,
        )


def check_nodes(n_nodes: int, where: str) -> None:
    """Refuse a cluster of more than :data:`MAX_NODES` nodes."""
    if n_nodes > MAX_NODES:
        raise UserError(
            f"the cluster has {_fmt(n_nodes)} nodes; this machine ({MACHINE}) is budgeted for {MAX_NODES:,}",
            where=where,
            fix="lower the pools' count or cluster.replicate",
        )


def run_span_s(submit_s: list[float] | tuple[float, ...], end_s: list[float], horizon_s: float | None) -> float:
    """Simulated seconds from the first submit to the horizon (or the last submit + duration)."""
    if not submit_s:
        return 0.0
    t0 = min(submit_s)
    end = horizon_s if horizon_s is not None else max(end_s)
    return max(end - t0, 0.0)


def check_intervals(span_s: float, interval_s: float, where: str, latest: str | None = None) -> None:
    """Refuse more than :data:`MAX_INTERVALS` accounting intervals."""
    n = span_s / interval_s if interval_s > 0 else math.inf
    if n > MAX_INTERVALS:
        lo = span_s / MAX_INTERVALS
        raise UserError(
            f"the run spans {span_s:.3g} s, which at sample_interval_s {interval_s:g} is about {_fmt(n)} accounting "
            f"intervals; this machine ({MACHINE}) is budgeted for {MAX_INTERVALS:,}"
            + (f" (the run ends with {latest})" if latest else ""),
            where=where,
            expected=f"sample_interval_s of at least {lo:.3g} s for this span",
            fix="raise sample_interval_s, set horizon_s to the part you need, or check the trace's times",
        )


def fault_events(rate_per_day: float, units: float, span_s: float) -> float:
    """Expected fault events: rate per unit-day x units x days x :data:`FAULT_EVENTS`."""
    return rate_per_day * units * span_s / 86400.0 * FAULT_EVENTS


def check_events(pod_events: float, faults: list[tuple[str, float]], where_of: dict[str, str]) -> None:
    """Refuse when pod events plus fault events (``faults``: (field path, expected events)) exceed
    :data:`MAX_EVENTS`; the message names the largest contributor."""
    total = pod_events + sum(e for _, e in faults)
    if total <= MAX_EVENTS:
        return
    field, biggest = max(faults, key=lambda x: x[1]) if faults else ("workload", pod_events)
    if biggest < pod_events:
        field, biggest = "workload", pod_events
    raise UserError(
        f"the run would process about {_fmt(total)} events ({_fmt(biggest)} from {field}); this machine "
        f"({MACHINE}) is budgeted for {_fmt(MAX_EVENTS)}",
        where=where_of.get(field, field),
        fix="lower rate_per_day, shorten horizon_s, or use fewer pods (workload.limit)"
        if field.startswith("faults")
        else "use fewer pods (workload.limit, a smaller scale or generator.jobs) or a shorter horizon_s",
    )
