"""Tenants sharing GPUs, simulated request by request on the simulation kernel, and a fleet-level
comparison of sharing policies (whole GPU, time-slicing, MPS, MIG, and a mixed fleet).

A policy places every tenant on a GPU of a fleet (``plan_policy``); the fleet is a
:class:`~gpuinfra.sim.cluster.ClusterState` of 8-GPU nodes and every tenant holds its share as an
allocation there for the whole run: a whole GPU (1000 milli), a time-slicing or MPS replica
(1000 // replicas milli, as the device plugin advertises it), or a MIG instance
(floor(1000 x compute slices / 7) milli, as ``sim/plugins/mig`` counts it). A plan that would put
more on a device than it has fails at allocation (``OverCommitError``), and every run ends with
the cluster invariants checked (``sim/invariants``). All GPUs run on one :class:`Kernel`; each
tenant's request arrivals come from its own named stream of the run's :class:`Rngs`
(``sharing:<tenant>``), so two policies compared with one seed see the same requests.

The mode's rule for who runs when, per GPU:

- whole / MIG: every tenant runs on its own hardware; nothing it does changes anyone else;
- time-slicing: tenants with work take turns in round-robin slices of ``timeslice_s``; a switch
  between tenants costs ``switch_s``; a tenant alone with work runs without switching until
  another tenant's request arrives (its slice then starts counting);
- MPS: tenants with work run at once (processor sharing): each busy tenant's SM share is its
  thread cap, scaled down when the busy tenants' demands exceed the GPU, and busy tenants split
  the memory bandwidth equally.

Inference tenants serve Poisson requests FIFO, one at a time (no batching); training tenants
always have a step to run. Outputs per tenant: latency p50/p99 and SLO attainment (inference),
work done relative to running alone (training); per GPU: busy time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache

import numpy as np

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models import mig as migm
from gpuinfra.models.sharing import SWITCH_S, TIMESLICE_S, Share, Tenant, md1_within, mig_share, place_layout
from gpuinfra.rng import Rngs
from gpuinfra.sim.cluster import MILLI_PER_GPU, Allocation, ClusterState, NodePool
from gpuinfra.sim.invariants import Invariants, check_invariants, require
from gpuinfra.sim.kernel import PRIO_ARRIVAL, PRIO_END, PRIO_RELEASE, Event, Kernel
from gpuinfra.sim.recorder import Recorder

GPUS_PER_NODE = 8
"""The fleet's nodes are HGX-style 8-GPU nodes (the last node holds the remainder)."""
_EPS = 1e-9


@dataclass
class TenantResult:
    tenant: str
    kind: str
    share: str
    served: int = 0
    p50_s: float | None = None
    p99_s: float | None = None
    slo_attainment: float | None = None
    relative_throughput: float | None = None
    oom: bool = False


@dataclass
class GroupResult:
    mode: str
    tenants: list[TenantResult]
    busy_fraction: float
    gpus: float
    """GPUs this group occupies (a MIG instance counts its compute-slice share)."""
    invariants: Invariants | None = None


@dataclass(frozen=True)
class Seat:
    """One tenant's place in the fleet: which GPU, under which mode, with which share."""

    tenant: Tenant
    gpu: int
    mode: str
    """whole, timeslice, mps or mig"""
    share: Share
    milli: int
    """What the tenant's allocation holds of the GPU (milli-GPU)."""
    oom: bool = False
    """The tenant's process cannot start on this share (memory): it holds its seat, doing nothing."""


# -- the request-level simulation on the kernel --------------------------------------------------


class _Gpu:
    """One GPU's run state: which of its tenants have work, at what rate they progress."""

    def __init__(self, index: int, mode: str, members: list[int]) -> None:
        self.index = index
        self.mode = mode
        self.members = members
        self.gen = 0
        self.last_t = 0.0
        self.rates: dict[int, float] = {}
        self.busy_gpu_s = 0.0
        self.busy_weight = 1.0
        # time-slicing
        self.phase_end = float("inf")
        self.run_from = 0.0
        self.cur: int | None = None
        self.last_run: int | None = None
        self.pos: dict[int, int] = {}


class SharingRun:
    """A fleet of ``n_gpus`` GPUs of model ``gpu`` with tenants seated on it, run on one kernel.

    Args:
        gpu: the GPU model (catalog name).
        seats: where each tenant sits (``Seat``); ``seat.gpu`` in ``range(n_gpus)``.
        n_gpus: GPUs in the fleet.
        horizon_s: simulated seconds (> 0).
        seed: the run's seed (``Rngs``).
        replicas, timeslice_s, switch_s: the time-slicing / MPS parameters (models/sharing.py).

    ``run()`` returns the per-tenant results, the busy GPU-seconds and the invariants (raises
    ``InvariantError`` if a device was over-committed: a planning bug).
    """

    def __init__(
        self,
        gpu: str,
        seats: list[Seat],
        n_gpus: int,
        horizon_s: float,
        seed: int,
        *,
        replicas: int = 4,
        timeslice_s: float = TIMESLICE_S,
        switch_s: float = SWITCH_S,
    ) -> None:
        if horizon_s <= 0:
            raise UserError("the horizon must be positive", where="horizon_s", expected="seconds > 0")
        self.gpu, self.seats, self.horizon = gpu, seats, float(horizon_s)
        self.replicas, self.timeslice_s, self.switch_s = replicas, timeslice_s, switch_s
        self.rngs = Rngs(seed)
        model = gpu_model(gpu).name
        pools = []
        if n_gpus // GPUS_PER_NODE:
            pools.append(NodePool("sharing", model, GPUS_PER_NODE, 224_000, 2_048_000, n_gpus // GPUS_PER_NODE))
        if n_gpus % GPUS_PER_NODE:
            pools.append(NodePool("sharing-rest", model, n_gpus % GPUS_PER_NODE, 224_000, 2_048_000, 1))
        self.cluster = ClusterState.from_pools(pools)
        self.rec = Recorder(self.cluster, self.horizon, start_s=0.0)
        self.gpus = [_Gpu(g, "", []) for g in range(n_gpus)]
        for k, s in enumerate(seats):
            if not 0 <= s.gpu < n_gpus:
                raise ValueError(f"seat of {s.tenant.name} on GPU {s.gpu} of {n_gpus}")
            g = self.gpus[s.gpu]
            if g.mode and g.mode != s.mode:
                raise ValueError(f"GPU {s.gpu} runs {g.mode}, not {s.mode}")
            g.mode = s.mode
            g.pos[k] = len(g.members)
            g.members.append(k)
        self.queues: list[deque[float]] = [deque() for _ in seats]
        self.remaining: dict[int, float] = {}
        """seat -> remaining work of its job in service, in alone-seconds"""
        self.lat: list[list[float]] = [[] for _ in seats]
        self.work: list[float] = [0.0] * len(seats)
        """Alone-seconds of work each seat completed."""
        self.allocs: list[Allocation] = []
        self.alone = [s.tenant.alone_s for s in seats]
        self.arrival_at = [float("inf")] * len(seats)
        self._limit = self.horizon
        self.training = {k for k, s in enumerate(seats) if s.tenant.kind == "training"}
        """Each seat's next request arrival (already scheduled), inf when none."""
        self.rate = [s.tenant.alone_s / self._svc(k) for k, s in enumerate(seats)]
        """Alone-seconds of work per second on the seat's share when it runs (whole, MIG, a time slice)."""
        self.kernel = Kernel({"sh_arrival": self._on_arrival, "sh_tick": self._on_tick, "sh_end": self._on_end})

    def _node_dev(self, g: int) -> tuple[int, int]:
        return g // GPUS_PER_NODE, g % GPUS_PER_NODE

    def _svc(self, k: int) -> float:
        """Seconds one unit of the tenant's work takes on its share when it runs alone there."""
        s = self.seats[k]
        return s.tenant.time_on(s.share.sm_frac, s.share.bw_frac)

    # -- handlers --------------------------------------------------------------------------
    def _on_arrival(self, ev: Event) -> list[Event]:
        k, t = ev.ref, ev.t_s
        out = self._next_arrival(k, t)
        g = self.gpus[self.seats[k].gpu]
        self._advance(g, t)
        self.queues[k].append(t)
        if k not in self.remaining:
            self.remaining[k] = self.seats[k].tenant.alone_s
        return out + self._decide(g, t)

    def _on_tick(self, ev: Event) -> list[Event]:
        g = self.gpus[ev.ref]
        if ev.gen != g.gen:
            return []
        self._advance(g, ev.t_s)
        return self._decide(g, ev.t_s)

    def _on_end(self, ev: Event) -> list[Event]:
        for g in self.gpus:
            self._advance(g, ev.t_s)
        for a in self.allocs:
            self.cluster.release(a)
        self.rec.changed(None)
        self.rec.record(ev.t_s)
        return []

    def _next_arrival(self, k: int, t: float) -> list[Event]:
        tn = self.seats[k].tenant
        nxt = t + float(self.rngs.stream(f"sharing:{tn.name}").exponential(1.0 / tn.rate_per_s))
        if nxt >= self.horizon:
            self.arrival_at[k] = float("inf")
            return []
        self.arrival_at[k] = nxt
        return [Event(nxt, PRIO_ARRIVAL, "sh_arrival", k)]

    # -- progress --------------------------------------------------------------------------
    def _advance(self, g: _Gpu, t: float) -> None:
        """Progress every busy seat of ``g`` from its last event to ``t`` at the current rates."""
        if g.mode == "timeslice":
            # only the slice's owner runs, from the end of the context switch (run_from) on
            s0 = max(g.last_t, g.run_from)
            g.last_t = t
            k = g.cur
            if k is None or t <= s0 or k not in self.remaining:
                return
            dt = t - s0
            g.busy_gpu_s += dt
            self._progress(k, self.rate[k] * dt, t)
            return
        dt = t - g.last_t
        g.last_t = t
        if dt <= 0:
            return
        if g.rates:
            g.busy_gpu_s += dt * g.busy_weight
        for k, r in list(g.rates.items()):
            if r > 0 and k in self.remaining:
                self._progress(k, r * dt, t)

    def _progress(self, k: int, d: float, t: float) -> None:
        """Seat ``k`` did ``d`` alone-seconds of work up to ``t``. A training seat always has a step
        to run: steps that end inside ``d`` change nothing else, so they are counted in ``work``
        and the current step's remainder is kept (no decision needed). An inference request
        completes at ``t`` (the caller makes ``t`` its completion time)."""
        if self.seats[k].tenant.kind == "training":
            a = self.alone[k]
            self.work[k] += d
            self.remaining[k] = a - math.fmod(a - self.remaining[k] + d, a)
            return
        done = min(d, self.remaining[k])
        self.remaining[k] -= done
        self.work[k] += done
        if self.remaining[k] <= _EPS * max(1.0, self.alone[k]):
            self._finish(k, t)

    def _finish(self, k: int, t: float) -> None:
        tn = self.seats[k].tenant
        if tn.kind == "training":
            self.remaining[k] = tn.alone_s
            return
        a = self.queues[k].popleft()
        self.lat[k].append(t - a)
        if self.queues[k]:
            self.remaining[k] = tn.alone_s
        else:
            del self.remaining[k]

    def _decide(self, g: _Gpu, t: float) -> list[Event]:
        """Set the rates of ``g``'s seats from ``t`` on and schedule its next tick.

        Only its own tenants' arrivals (and the end of the run) change a GPU from outside, so
        decisions that fall before the next of those are taken here in turn, exactly as ticks
        would take them, and only the first decision at or after it becomes a ``sh_tick`` event
        (a time-sliced GPU makes hundreds of 2-ms decisions a second; same results, a small heap)."""
        g.gen += 1
        limit = self._limit = min([self.horizon, *(self.arrival_at[k] for k in g.members)])
        while True:
            dt = self._plan(g, t)
            if dt is None:
                return []
            nt = t + max(dt, 0.0)
            if nt >= limit:
                return [Event(nt, PRIO_RELEASE, "sh_tick", g.index, g.gen)]
            self._advance(g, nt)
            t = nt

    def _plan(self, g: _Gpu, t: float) -> float | None:
        """Set the rates of ``g``'s seats from ``t`` on; returns the time to the next decision (None: idle)."""
        active = [k for k in g.members if k in self.remaining]
        if g.mode in ("whole", "mig"):
            g.rates = {k: self.rate[k] for k in active}
            if g.mode == "mig":
                # busy GPU-time of a MIG GPU: each busy instance counts its compute slices / 7
                g.busy_weight = 0.0
                for k in active:
                    g.busy_weight += self._mig_weight(k)
            nxt = min(
                (self.remaining[k] / r for k, r in g.rates.items() if r > 0 and k not in self.training), default=None
            )
        elif g.mode == "mps":
            tenants = {k: self.seats[k].tenant for k in active}
            cap = 1.0 / self.replicas
            demands = {k: min(tn.sm_demand, cap) for k, tn in tenants.items()}
            tot = sum(demands.values())
            scale = 1.0 if tot <= 1.0 else 1.0 / tot
            g.rates = {}
            for k, tn in tenants.items():
                f = demands[k] * scale
                t_share = tn.time_on(max(f, 1e-9) if tn.sm_demand > f else tn.sm_demand, 1.0 / len(active))
                g.rates[k] = tn.alone_s / t_share
            nxt = min((self.remaining[k] / r for k, r in g.rates.items() if k not in self.training), default=None)
        else:
            nxt = self._decide_timeslice(g, t, active)
        return nxt

    def _mig_weight(self, k: int) -> float:
        p = migm.profile(self.gpu, self.seats[k].share.profile or "")
        return p.compute_slices / migm.COMPUTE_SLICES

    def _decide_timeslice(self, g: _Gpu, t: float, active: list[int]) -> float | None:
        """Round robin: returns the time to the next decision (None: the GPU is idle). A switch to
        another tenant costs ``switch_s`` before its slice runs (``run_from``)."""
        t0 = t
        if not active:
            g.cur, g.rates, g.phase_end = None, {}, float("inf")
            return None
        if g.cur is not None and g.cur in self.remaining and t < g.phase_end - _EPS:
            if len(active) > 1 and g.phase_end == float("inf"):
                g.phase_end = max(t, g.run_from) + self.timeslice_s  # contention: the lone runner's slice starts
        else:
            # the slice ended (or its owner ran out of work): the next seat with work, round robin
            order = g.members
            start = g.pos[g.cur] + 1 if g.cur is not None else 0
            n = len(order)
            nxt = next(order[(start + j) % n] for j in range(n) if order[(start + j) % n] in self.remaining)
            switch = g.last_run is not None and g.last_run != nxt and len(active) > 1
            if switch:
                t += self._skip_rounds(g, t, active)
            g.run_from = t + (self.switch_s if switch else 0.0)
            g.cur = g.last_run = nxt
            g.phase_end = g.run_from + self.timeslice_s if len(active) > 1 else float("inf")
            g.rates = {nxt: self.rate[nxt]}  # a whole GPU in its slice
        k = g.cur
        need = max(g.run_from - t0, 0.0) + (math.inf if k in self.training else self.remaining[k] / self.rate[k])
        nxt = min(need, g.phase_end - t0)
        return None if math.isinf(nxt) else nxt

    def _skip_rounds(self, g: _Gpu, t: float, active: list[int]) -> float:
        """Whole round-robin rounds that change nothing but progress, taken at once.

        At the start of a switch, with the same tenants active until the GPU's next outside event
        (``_limit``) and no inference request completing, every round is the same: each active
        tenant gets ``switch_s`` + ``timeslice_s`` and progresses rate x ``timeslice_s`` (a training
        step that ends mid-slice starts the next at once). Returns the time skipped (R rounds)."""
        ts = self.timeslice_s
        length = len(active) * (self.switch_s + ts)
        r = int((self._limit - t) / length) - 1
        for k in active:
            if self.seats[k].tenant.kind != "training":
                r = min(r, int(self.remaining[k] / (self.rate[k] * ts)) - 1)
        if r < 1:
            return 0.0
        for k in active:
            d = r * self.rate[k] * ts
            self.work[k] += d
            if self.seats[k].tenant.kind == "training":
                done = math.fmod(self.alone[k] - self.remaining[k] + d, self.alone[k])
                self.remaining[k] = self.alone[k] - done
            else:
                self.remaining[k] -= d
        g.busy_gpu_s += r * len(active) * ts
        return r * length

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> tuple[list[TenantResult], float, Invariants]:
        """Bind every seat, run to the horizon, release; returns (per-seat results, busy GPU-s, invariants)."""
        for k, s in enumerate(self.seats):
            node, dev = self._node_dev(s.gpu)
            a = Allocation(k, node, (dev,), s.milli, 0, 0)
            self.cluster.allocate(a)  # raises OverCommitError if the plan over-fills a GPU
            self.allocs.append(a)
        self.rec.changed(None)
        self.rec.record(0.0)
        for k, s in enumerate(self.seats):
            if s.oom:
                continue
            if s.tenant.kind == "training":
                self.remaining[k] = s.tenant.alone_s
            elif s.tenant.rate_per_s > 0:
                self.kernel.schedule_many(self._next_arrival(k, 0.0))
        for g in self.gpus:
            self.kernel.schedule_many(self._decide(g, 0.0))
        self.kernel.schedule(Event(self.horizon, PRIO_END, "sh_end"))
        self.kernel.run(until_s=self.horizon)
        inv = require(check_invariants(self.cluster, self.rec, self.horizon), "sharing")
        out = []
        for k, s in enumerate(self.seats):
            tn = s.tenant
            r = TenantResult(tn.name, tn.kind, s.share.profile or s.mode, oom=s.oom)
            if not s.oom:
                if tn.kind == "training":
                    r.relative_throughput = self.work[k] / self.horizon
                    r.served = int(self.work[k] / tn.alone_s + _EPS)
                else:
                    r.served = len(self.lat[k])
                    r.p50_s, r.p99_s, r.slo_attainment = _stats(self.lat[k], tn)
            out.append(r)
        return out, sum(g.busy_gpu_s for g in self.gpus), inv


def _stats(lat: list[float], t: Tenant) -> tuple[float | None, float | None, float | None]:
    if not lat:
        return None, None, None
    a = np.array(lat)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(np.mean(a <= t.slo_s)) if t.slo_s else None


def _cap_gib(gpu: str) -> float:
    m = gpu_model(gpu)
    return (m.memory_visible_mib or (m.memory_gib or 80) * 1024) / 1024


def simulate_isolated(tenant: Tenant, share: Share, horizon_s: float, seed: int, gpu: str = "H100-SXM") -> TenantResult:
    """A tenant alone on its hardware (a whole ``gpu``, or the MIG instance ``share`` of it):
    an M/D/1 queue for inference, a closed loop of steps for training. One GPU on the kernel."""
    oom = share.mem_limit_gib is not None and tenant.mem_gib > share.mem_limit_gib
    if share.mode == "mig" and share.profile:
        milli = MILLI_PER_GPU * migm.profile(gpu, share.profile).compute_slices // migm.COMPUTE_SLICES
        seat = Seat(tenant, 0, "mig", share, milli, oom)
    else:
        seat = Seat(tenant, 0, "whole", share, MILLI_PER_GPU, oom)
    res, _, _ = SharingRun(gpu, [seat], 1, horizon_s, seed).run()
    return res[0]


def _shared_seats(tenants: list[Tenant], mode: str, gpu: str, gpu_index: int, replicas: int) -> list[Seat]:
    """Seats of one time-sliced or MPS GPU; who cannot start for memory is marked OOM."""
    cap = _cap_gib(gpu)
    milli = MILLI_PER_GPU // replicas
    seats = []
    if mode == "timeslice":
        # no memory isolation: tenants start in order; the one that no longer fits OOMs
        used = 0.0
        for t in tenants:
            oom = used + t.mem_gib > cap
            used += 0.0 if oom else t.mem_gib
            seats.append(Seat(t, gpu_index, mode, Share("timeslice"), milli, oom))
    else:
        limit = cap / replicas
        for t in tenants:
            seats.append(
                Seat(
                    t,
                    gpu_index,
                    mode,
                    Share("mps", thread_cap=1 / replicas, mem_limit_gib=limit),
                    milli,
                    t.mem_gib > limit,
                )
            )
    return seats


def simulate_shared(
    tenants: list[Tenant],
    mode: str,
    gpu: str,
    horizon_s: float,
    seed: int,
    replicas: int = 4,
    timeslice_s: float = TIMESLICE_S,
    switch_s: float = SWITCH_S,
) -> GroupResult:
    """Tenants on one GPU under time-slicing or MPS (each holding a replica: 1000 // replicas milli)."""
    if mode not in ("timeslice", "mps"):
        raise UserError(f"simulate_shared runs timeslice or mps, not {mode}")
    if len(tenants) > replicas:
        raise UserError(f"{len(tenants)} tenants on one GPU of {replicas} replicas", where="replicas")
    seats = _shared_seats(tenants, mode, gpu, 0, replicas)
    res, busy, inv = SharingRun(
        gpu, seats, 1, horizon_s, seed, replicas=replicas, timeslice_s=timeslice_s, switch_s=switch_s
    ).run()
    return GroupResult(mode, res, min(busy / horizon_s, 1.0), 1.0, inv)


# -- fleet policies ------------------------------------------------------------------------------


@dataclass
class PolicyResult:
    policy: str
    gpus: float
    tenants: list[TenantResult]
    utilization: float
    inference_p50_s: float | None
    inference_p99_s: float | None
    slo_attainment: float | None
    """Request-weighted share of inference requests within their SLO (all tenants together)."""
    training_throughput: float | None
    blast_radius: float
    """Tenants a fatal fault of one tenant takes down, on average."""
    node_configs: int
    """Distinct GPU configurations the fleet needs."""
    oom_tenants: int
    groups: list[list[str]] = field(default_factory=list)
    min_tenant_slo: float | None = None
    """The worst inference tenant's SLO attainment (an OOM'd tenant counts 0)."""
    worst_tenant: str | None = None
    mig_layout: list[str] | None = None
    """The one MIG layout every MIG GPU of the inference pool carries (mig-parted ``devices: all``)."""
    training_mig_layout: list[str] | None = None
    """Under the ``mig`` policy (every GPU MIG-enabled): the layout of the GPUs given whole to one
    tenant (training, and services no smaller instance serves): the full-GPU instance."""
    invariants: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _pack(tenants: list[Tenant], cap: float, max_per: int) -> list[list[Tenant]]:
    groups: list[list[Tenant]] = []
    for t in sorted(tenants, key=lambda t: -t.mem_gib):
        for g in groups:
            if len(g) < max_per and sum(x.mem_gib for x in g) + t.mem_gib <= cap:
                g.append(t)
                break
        else:
            groups.append([t])
    return groups


MAX_RHO = 0.7
"""MIG sizing headroom: the instance keeps an inference tenant's utilization at or below 70 % (a
queueing headroom choice against bursts the Poisson model does not have, stated)."""
SLO_TARGET = 0.9
"""MIG sizing target: the instance is big enough when the M/D/1 model (models/sharing.md1_within)
puts at least 90 % of the tenant's requests within its SLO (a service-level choice, stated; lab 4
holds every policy to the same floor)."""


def serves(gpu: str, t: Tenant, p: migm.MigProfile) -> bool:
    """Whether instance profile ``p`` serves tenant ``t``: it holds the tenant's memory and, for
    inference, the utilization stays <= MAX_RHO and an M/D/1 queue on the instance answers at
    least SLO_TARGET of the requests within the SLO (a request alone must fit the SLO)."""
    if p.media_engines or p.memory_gib < t.mem_gib:
        return False
    if t.kind == "training":
        return True
    sh = mig_share(gpu, p.name)
    svc = t.time_on(sh.sm_frac, sh.bw_frac)
    if t.rate_per_s * svc > MAX_RHO:
        return False
    if not t.slo_s:
        return True
    within = md1_within(t.rate_per_s, svc, t.slo_s)
    return within is None or within >= SLO_TARGET


def profile_for(gpu: str, t: Tenant, full_ok: bool = False) -> migm.MigProfile | None:
    """The smallest MIG profile (compute, then memory slices) that serves the tenant (``serves``);
    training, and tenants only the whole GPU serves, get None (a whole GPU), or the full-GPU
    profile when ``full_ok``."""
    full = max(migm.mig_profiles(gpu), key=lambda p: p.compute_slices)
    if t.kind == "training":
        return full if full_ok else None
    ok = [p for p in migm.mig_profiles(gpu) if p.compute_slices < migm.COMPUTE_SLICES and serves(gpu, t, p)]
    if ok:
        return min(ok, key=lambda p: (p.compute_slices, p.memory_slices, p.name))
    return full if full_ok and serves(gpu, t, full) else None


@dataclass
class MigPlan:
    """A MIG deployment: one layout on every MIG GPU, and which tenant sits in which instance."""

    layout: list[str]
    seats: list[tuple[Tenant, int, str]]
    """(tenant, MIG GPU index, profile name)."""
    gpus: int
    unserved: list[Tenant]
    """Tenants no instance of the layout serves (they go to whole GPUs)."""


def _assign(gpu: str, tenants: list[Tenant], layout: list[str]) -> MigPlan:
    """Seat tenants (largest need first) in the smallest free instance of ``layout`` that serves
    them, opening another GPU of the same layout when none is free."""
    profs = sorted((migm.profile(gpu, n) for n in layout), key=lambda p: (p.compute_slices, p.memory_slices, p.name))
    free: list[list[migm.MigProfile]] = []
    seats: list[tuple[Tenant, int, str]] = []
    unserved: list[Tenant] = []

    def need(t: Tenant) -> tuple:
        p = profile_for(gpu, t, True)
        return (-(p.compute_slices if p else 9), -(p.memory_slices if p else 9), t.name)

    for t in sorted(tenants, key=need):
        if not any(serves(gpu, t, p) for p in profs):
            unserved.append(t)
            continue
        for gi, left in enumerate(free):
            cand = [p for p in left if serves(gpu, t, p)]
            if cand:
                left.remove(cand[0])
                seats.append((t, gi, cand[0].name))
                break
        else:
            left = list(profs)
            cand = next(p for p in left if serves(gpu, t, p))
            left.remove(cand)
            free.append(left)
            seats.append((t, len(free) - 1, cand.name))
    return MigPlan(list(layout), seats, len(free), unserved)


def plan_mig(gpu: str, tenants: list[Tenant], layout: list[str] | None = None) -> MigPlan:
    """The MIG deployment for ``tenants``: ``layout`` if given (checked to fit one GPU), else the
    maximal layout (models/mig.layouts) that seats them on the fewest GPUs, ties broken by fewer
    tenants left to whole GPUs and then by the layout's name (deterministic)."""
    if layout:
        if place_layout(gpu, list(layout)) is None:
            raise UserError(
                f"MIG layout {','.join(layout)} does not fit one {gpu_model(gpu).name} in any placement",
                where="layout",
                expected="profiles whose slices and start slots fit together (gpuinfra mig fit)",
            )
        return _assign(gpu, tenants, list(layout))
    return _best_plan(gpu, tuple(tenants))


@cache
def _layout_names(gpu: str) -> tuple[tuple[str, ...], ...]:
    """Every maximal MIG layout of ``gpu`` (models/mig.layouts) as profile names, largest first."""
    return tuple(
        tuple(sorted((i.profile.name for i in lay), key=lambda n: (-migm.profile(gpu, n).compute_slices, n)))
        for lay in migm.layouts(gpu)
    )


@lru_cache(maxsize=256)
def _best_plan(gpu: str, tenants: tuple[Tenant, ...]) -> MigPlan:
    best: tuple | None = None
    for names in _layout_names(gpu):
        plan = _assign(gpu, list(tenants), list(names))
        key = (plan.gpus + len(plan.unserved), len(plan.unserved), ",".join(names))
        if best is None or key < best[0]:
            best = (key, plan)
    assert best is not None
    return best[1]


def evaluate_policy(
    policy: str,
    tenants: list[Tenant],
    gpu: str,
    horizon_s: float = 120.0,
    seed: int = 0,
    replicas: int = 4,
    *,
    layout: list[str] | None = None,
    sizing: list[Tenant] | None = None,
) -> PolicyResult:
    """Seat ``tenants`` on a fleet under ``policy`` and simulate it for ``horizon_s`` seconds.

    ``layout``: the MIG layout of the MIG GPUs (default: chosen by :func:`plan_mig`).
    ``sizing``: the tenants (same names, e.g. at the reference load) the deployment is sized
    for; default ``tenants``. Holding ``sizing`` fixed while ``tenants``' rates change simulates
    one fixed deployment across loads, as a real fleet would run it.
    Raises ``UserError`` for an unknown policy or a layout that does not fit a GPU.
    """
    if policy not in POLICIES:
        raise UserError(f"unknown sharing policy '{policy}'", expected="whole, timeslice, mps, mig or mixed")
    if replicas < 1:
        raise UserError("replicas must be at least 1", where="replicas")
    by_name = {t.name: t for t in tenants}
    size = sizing or tenants
    if sorted(t.name for t in size) != sorted(by_name):
        raise ValueError("sizing tenants must be the same tenants as the simulated ones")
    cap = _cap_gib(gpu)
    seats: list[Seat] = []
    blast: dict[str, int] = {}
    configs: set = set()
    groups_out: list[list[str]] = []
    mig_layout: list[str] | None = None
    train_layout: list[str] | None = None
    n = 0

    def whole(ts: list[Tenant]) -> None:
        nonlocal n
        for t in ts:
            seats.append(Seat(by_name[t.name], n, "whole", Share("whole"), MILLI_PER_GPU))
            blast[t.name] = 1
            groups_out.append([t.name])
            n += 1
        if ts:
            configs.add("whole")

    if policy == "whole":
        whole(size)
    elif policy in ("timeslice", "mps"):
        if policy == "mps":
            limit = cap / replicas
            whole([t for t in size if t.mem_gib > limit])
            groups = _pack([t for t in size if t.mem_gib <= limit], cap, replicas)
        else:
            groups = _pack(size, cap, replicas)
        for g in groups:
            seats += _shared_seats([by_name[t.name] for t in g], policy, gpu, n, replicas)
            for t in g:
                blast[t.name] = len(g)
            groups_out.append([t.name for t in g])
            n += 1
        if groups:
            configs.add(f"{policy}-x{replicas}")
    else:
        inference = [t for t in size if t.kind == "inference"]
        training = [t for t in size if t.kind == "training"]
        plan = plan_mig(gpu, inference, layout)
        mig_layout = plan.layout
        big = plan.unserved
        full = max(migm.mig_profiles(gpu), key=lambda p: p.compute_slices)
        if policy == "mig" and (training or big):
            # every GPU MIG-enabled: training, and services no smaller instance serves, on the
            # full-GPU instance (one per GPU); whoever even that does not hold gets a whole GPU
            on_full = training + [t for t in big if full.memory_gib >= t.mem_gib]
            big = [t for t in big if full.memory_gib < t.mem_gib]
            train_layout = [full.name]
            for t in on_full:
                sh = mig_share(gpu, full.name)
                seats.append(Seat(by_name[t.name], n, "mig", sh, MILLI_PER_GPU, t.mem_gib > sh.mem_limit_gib))
                blast[t.name] = 1
                groups_out.append([t.name])
                n += 1
            configs.add(tuple(train_layout))
        else:
            big = big + training
        whole(big)
        base = n
        per_gpu: dict[int, list[str]] = {}
        for t, gi, prof in plan.seats:
            sh = mig_share(gpu, prof)
            milli = MILLI_PER_GPU * migm.profile(gpu, prof).compute_slices // migm.COMPUTE_SLICES
            seats.append(Seat(by_name[t.name], base + gi, "mig", sh, milli, t.mem_gib > (sh.mem_limit_gib or 0)))
            blast[t.name] = 1
            per_gpu.setdefault(gi, []).append(t.name)
        n += plan.gpus
        groups_out += [per_gpu[g] for g in sorted(per_gpu)]
        if plan.gpus:
            configs.add(tuple(sorted(plan.layout)))
    results, busy, inv = SharingRun(gpu, seats, n, horizon_s, seed, replicas=replicas).run()
    inf = [r for r in results if r.kind == "inference" and not r.oom and r.p50_s is not None]
    tr = [r for r in results if r.kind == "training" and not r.oom]
    w = [r.served for r in inf]

    def wavg(vals):
        return float(np.average(vals, weights=w)) if inf and sum(w) > 0 else None

    per_tenant = {
        r.tenant: (0.0 if r.oom else r.slo_attainment)
        for r in results
        if r.kind == "inference" and (r.oom or r.slo_attainment is not None)
    }
    worst = min(per_tenant, key=lambda k: (per_tenant[k], k)) if per_tenant else None
    return PolicyResult(
        policy,
        float(n),
        results,
        busy / (n * horizon_s) if n else 0.0,
        wavg([r.p50_s for r in inf]),
        wavg([r.p99_s for r in inf]),
        wavg([r.slo_attainment if r.slo_attainment is not None else 1.0 for r in inf]),
        float(np.mean([r.relative_throughput for r in tr])) if tr else None,
        float(np.mean([blast[s.tenant.name] for s in seats])) if seats else 0.0,
        len(configs),
        sum(r.oom for r in results),
        groups_out,
        per_tenant[worst] if worst else None,
        worst,
        mig_layout,
        train_layout,
        inv.as_dict(),
    )


def mixed_workload(gpu: str = "H100-SXM", load: float = 1.0) -> list[Tenant]:
    """The package's mixed workload: LLM decode services of two sizes, a small embedding service,
    and fine-tuning jobs. Work per request from the roofline on ``gpu`` (a whole GPU):
    - a 7B decode request: 64 tokens at batch 1, each token streams the 14 GB bf16 weights (memory-bound);
    - a 1B-parameter embedding request: a batch of 32 sequences of 256 tokens (2 x 1e9 x 8192 FLOPs), kernels fill ~30 % of SMs;
    - a fine-tuning step of a 1.3B model: 6 x 1.3e9 x 16k tokens FLOPs, compute-bound.
    Rates and SLOs are scenario choices; ``load`` scales every arrival rate."""
    m = gpu_model(gpu)
    bw = float(m.mem_bw_bytes_per_s or 1)
    peak = float(m.fp16_tensor_dense_flops or m.fp32_flops or 1)
    decode = {"compute_s": 64 * 2 * 7e9 / peak, "memory_s": 64 * 14e9 / bw, "sm_demand": 1.0, "slo_s": 1.0}
    embedding = {"compute_s": 2 * 1e9 * 8192 / peak / 0.3, "memory_s": 2e9 / bw, "sm_demand": 0.3, "slo_s": 0.25}
    finetune = {"compute_s": 6 * 1.3e9 * 16384 / peak, "memory_s": 20e9 / bw, "sm_demand": 1.0}
    table = [
        ("chat-7b", "inference", 16.0, decode, 1.0),
        ("assist-7b", "inference", 16.0, decode, 0.5),
        ("embed-1b", "inference", 6.0, embedding, 6.0),
        ("rerank-1b", "inference", 6.0, embedding, 3.0),
        ("finetune-a", "training", 30.0, finetune, 0.0),
        ("finetune-b", "training", 30.0, finetune, 0.0),
    ]
    return [Tenant(name, kind, mem, rate_per_s=rate * load, **work) for name, kind, mem, work, rate in table]


POLICIES = ("whole", "timeslice", "mps", "mig", "mixed")


def reconfigurations_per_day(gpu: str, day: list[Tenant], night: list[Tenant]) -> dict:
    """MIG deployments sized for a day and a night demand (``plan_mig``, inference tenants); when
    the layout differs every MIG GPU is drained and repartitioned twice a day, otherwise only the
    GPUs added or removed are (models/sharing.MIG_RECONFIGURE_S each, the GPU serving nothing)."""
    from gpuinfra.models.sharing import MIG_RECONFIGURE_S

    a = plan_mig(gpu, [t for t in day if t.kind == "inference"])
    b = plan_mig(gpu, [t for t in night if t.kind == "inference"])
    changed = max(a.gpus, b.gpus) if sorted(a.layout) != sorted(b.layout) else abs(a.gpus - b.gpus)
    per_day = 2 * changed
    return {
        "day_layout": a.layout,
        "day_gpus": a.gpus,
        "night_layout": b.layout,
        "night_gpus": b.gpus,
        "day_whole_gpus": len(a.unserved),
        "night_whole_gpus": len(b.unserved),
        "reconfigurations_per_day": per_day,
        "gpu_hours_per_day": per_day * MIG_RECONFIGURE_S / 3600,
    }
