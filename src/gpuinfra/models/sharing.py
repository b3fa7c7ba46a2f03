"""GPU sharing modes as device models: whole GPU, time-slicing, MPS and MIG (seed section 4).

What each mode gives a tenant (facts/gpu.md sections 2-3 [P]; modelling choices stated):

| mode | compute | memory bandwidth | memory capacity | fault domain |
|---|---|---|---|---|
| whole | the GPU | the GPU | the GPU | the tenant alone |
| time-slicing | all SMs, in turns (round robin, ``TIMESLICE_S`` slices, ``SWITCH_S`` per context switch) | in turns | shared, not isolated: the sum must fit or someone OOMs | every tenant on the GPU ("if one workload crashes, they all do") |
| MPS | concurrent; each client capped at its active-thread percentage (100/replicas) | shared with no QoS (equal split among busy clients: an assumption) | per-client pinned-memory limit (total/replicas), enforced at allocation | every client of the MPS server |
| MIG | the instance's SMs (lgip SM count) | the instance's memory slices / 8 (memory controllers and L2 are partitioned with the slices) | the instance's memory, hard | the instance |

A tenant's work is described by its roofline parts when alone on a whole GPU: ``compute_s`` (at
its own SM demand ``sm_demand``, the fraction of SMs its kernels can fill) and ``memory_s``. On a
share with SM fraction f and bandwidth fraction g it takes
``max(compute_s x max(1, sm_demand / f), memory_s / g)``.

Time-slice length and context-switch cost are not published by NVIDIA for datacenter GPUs:
``TIMESLICE_S`` = 2 ms and ``SWITCH_S`` = 50 us are assumptions, stated and configurable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models import mig as migm

TIMESLICE_S = 2e-3
SWITCH_S = 50e-6
MPS_MAX_CLIENTS = 48
"""MIG user guide's concurrency table: MPS max partitions 48 [P]."""
MIG_RECONFIGURE_S = 60.0
"""Destroying and creating GPU instances on an idle GPU: order of a minute with the MIG manager
(node label update, mig-parted apply, device-plugin restart) [assumption]."""


@dataclass(frozen=True)
class Tenant:
    name: str
    kind: str
    """inference or training"""
    mem_gib: float
    compute_s: float
    memory_s: float
    sm_demand: float = 1.0
    rate_per_s: float = 0.0
    """Inference: requests per second (Poisson)."""
    slo_s: float = 0.0

    @property
    def alone_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    def time_on(self, sm_frac: float, bw_frac: float) -> float:
        if sm_frac <= 0 or bw_frac <= 0:
            return float("inf")
        return max(self.compute_s * max(1.0, self.sm_demand / sm_frac), self.memory_s / bw_frac)


@dataclass(frozen=True)
class Share:
    """What one tenant gets on one GPU."""

    mode: str
    sm_frac: float = 1.0
    bw_frac: float = 1.0
    mem_limit_gib: float | None = None
    thread_cap: float = 1.0
    profile: str | None = None


def mig_share(gpu: str, profile: str) -> Share:
    m = gpu_model(gpu)
    p = migm.profile(gpu, profile)
    sm = p.sm_count / (m.sm_count or 1) if p.sm_count else p.compute_slices / 7 * 0.93
    return Share("mig", sm, p.memory_slices / migm.MEMORY_SLICES, p.memory_gib, 1.0, p.name)


def smallest_profile(gpu: str, t: Tenant) -> migm.MigProfile | None:
    """The smallest MIG profile (memory first, then SMs) that holds the tenant's memory and
    gives it at least its SM demand; None if only the whole GPU does."""
    m = gpu_model(gpu)
    cands = []
    for p in migm.mig_profiles(gpu):
        if p.media_engines or p.memory_gib < t.mem_gib:
            continue
        sm = p.sm_count / (m.sm_count or 1) if p.sm_count else p.compute_slices / 7
        cands.append((p.memory_slices, p.compute_slices, sm >= min(t.sm_demand, 0.99), p))
    ok = [c for c in cands if c[2]] or cands
    return min(ok, key=lambda c: (c[0], c[1]))[3] if ok else None


MD1_MAX_TERMS = 60
"""Beyond this many service times in the SLO the alternating sum of :func:`md1_within` loses
precision; there the caller's utilization headroom decides instead."""


def md1_within(rate_per_s: float, service_s: float, slo_s: float) -> float | None:
    """Share of requests answered within ``slo_s`` by an M/D/1 queue: Poisson arrivals at
    ``rate_per_s``, one server, a fixed ``service_s`` per request, FIFO.

    P(response <= T) = P(W <= T - D) with Erlang's waiting-time distribution (Erlang 1909,
    Crommelin 1932): P(W <= x) = (1 - rho) sum_{k=0}^{floor(x/D)} [lambda(kD - x)]^k / k!
    e^{-lambda(kD - x)}, rho = lambda D < 1. Returns 0 when rho >= 1 or D > T, and None when
    T / D exceeds ``MD1_MAX_TERMS`` (the sum is numerically unreliable there)."""
    d, lam = service_s, rate_per_s
    if d > slo_s or lam * d >= 1.0:
        return 0.0
    if lam <= 0:
        return 1.0
    x = slo_s - d
    n = int(math.floor(x / d))
    if n > MD1_MAX_TERMS:
        return None
    total = 0.0
    for k in range(n + 1):
        u = lam * (k * d - x)
        total += u**k / math.factorial(k) * math.exp(-u)
    return min(max((1.0 - lam * d) * total, 0.0), 1.0)


def place_layout(gpu: str, layout: list[str]) -> list[migm.Instance] | None:
    """Place the instances of ``layout`` on one GPU (largest first, as the MIG guide recommends),
    searching the start slots so that, e.g., 3-2-1-1 lands as 0:1, 1:1, 2:2, 4:4; None when no
    placement fits. Unknown profiles raise ``UserError``."""
    profs = sorted((migm.profile(gpu, n) for n in layout), key=lambda p: (-p.memory_slices, -p.compute_slices, p.name))

    def place(built: list[migm.Instance], rest: list[migm.MigProfile]) -> list[migm.Instance] | None:
        if not rest:
            return built
        for s in migm.placements(built, rest[0]):
            got = place([*built, migm.Instance(rest[0], s)], rest[1:])
            if got is not None:
                return got
        return None

    return place([], profs)


# -- what the device plugin advertises ----------------------------------------------------------


def advertised(
    gpus: int,
    mode: str,
    *,
    replicas: int = 1,
    rename: bool = False,
    mig_strategy: str = "mixed",
    layout: list[str] | None = None,
) -> dict[str, int]:
    """Extended resources a node of ``gpus`` GPUs advertises to Kubernetes (k8s-device-plugin
    README, facts/gpu.md 2.5 and 3.1-3.2 [P])."""
    if mode == "whole":
        return {"nvidia.com/gpu": gpus}
    if mode in ("timeslice", "mps"):
        if replicas < 1:
            raise UserError("replicas must be at least 1", where="--replicas")
        if mode == "mps" and replicas > MPS_MAX_CLIENTS:
            raise UserError(f"MPS allows at most {MPS_MAX_CLIENTS} clients per GPU", where="--replicas")
        return {("nvidia.com/gpu.shared" if rename else "nvidia.com/gpu"): gpus * replicas}
    if mode == "mig":
        layout = layout or []
        if mig_strategy == "single":
            if len(set(layout)) > 1:
                raise UserError(
                    "the single strategy needs every GPU in one profile",
                    where="--mig-strategy",
                    expected="one profile, or the mixed strategy",
                )
            return {"nvidia.com/gpu": gpus * len(layout)}
        out: dict[str, int] = {}
        for p in layout:
            out[f"nvidia.com/mig-{p}"] = out.get(f"nvidia.com/mig-{p}", 0) + gpus
        return out
    raise UserError(f"unknown sharing mode '{mode}'", expected="whole, timeslice, mps or mig")


# -- MIG reconfiguration policy ------------------------------------------------------------------


@dataclass
class GpuState:
    index: int
    instances: list[migm.Instance] = field(default_factory=list)
    busy: set[int] = field(default_factory=set)
    """Indices into ``instances`` that run work."""
    busy_hours: dict[int, float] = field(default_factory=dict)
    """Work since the last checkpoint per busy instance (lost if the instance is drained)."""


@dataclass
class ReconfigPlan:
    placed: list[tuple[str, int, int]]
    """(profile, gpu, start) for each pending request that got an instance."""
    repartitioned: list[int]
    drained: list[int]
    drained_gpu_hours: float
    reconfigure_s: float
    unplaced: list[str]


def reconfigure(gpu: str, gpus: list[GpuState], pending: list[str], allow_drain: bool = True) -> ReconfigPlan:
    """Fit pending MIG requests: first into free slots as they are; then repartition idle GPUs
    (all their instances free) largest-first; then, if allowed, drain the GPU whose running work
    is cheapest to lose. Reconfiguring needs the GPU empty (MIG guide: 'reconfigure when idle')."""
    placed: list[tuple[str, int, int]] = []
    repart: list[int] = []
    drained: list[int] = []
    lost = 0.0
    todo = sorted(pending, key=lambda n: -migm.profile(gpu, n).memory_slices)
    left: list[str] = []
    for name in todo:
        p = migm.profile(gpu, name)
        for g in gpus:
            starts = migm.placements(g.instances, p)
            if starts:
                g.instances.append(migm.Instance(p, starts[0]))
                g.busy.add(len(g.instances) - 1)
                placed.append((name, g.index, starts[0]))
                break
        else:
            left.append(name)

    def try_fresh(g: GpuState, names: list[str]) -> list[str]:
        free_idx = [i for i in range(len(g.instances)) if i not in g.busy]
        keep = [g.instances[i] for i in range(len(g.instances)) if i in g.busy]
        g.instances = keep
        g.busy = set(range(len(keep)))
        rest = []
        for name in names:
            p = migm.profile(gpu, name)
            starts = migm.placements(g.instances, p)
            if starts:
                g.instances.append(migm.Instance(p, starts[0]))
                g.busy.add(len(g.instances) - 1)
                placed.append((name, g.index, starts[0]))
            else:
                rest.append(name)
        del free_idx
        return rest

    for g in sorted(gpus, key=lambda g: len(g.busy)):
        if not left:
            break
        if g.busy:
            continue
        repart.append(g.index)
        left = try_fresh(g, left)
    if left and allow_drain:
        for g in sorted((g for g in gpus if g.busy), key=lambda g: sum(g.busy_hours.get(i, 0.0) for i in g.busy)):
            if not left:
                break
            lost += sum(g.busy_hours.get(i, 0.0) for i in g.busy)
            drained.append(g.index)
            g.instances, g.busy = [], set()
            repart.append(g.index)
            left = try_fresh(g, left)
    return ReconfigPlan(placed, repart, drained, lost, MIG_RECONFIGURE_S * len(repart), left)
