"""Tenants sharing GPUs, simulated request by request, and a fleet-level comparison of sharing
policies (whole GPU, time-slicing, MPS, MIG, and a mixed fleet).

One GPU group is simulated at a time: its tenants, the share each gets (models/sharing.py), and
the mode's rule for who runs when:
- whole / MIG: every tenant runs on its own hardware; nothing it does changes anyone else;
- time-slicing: tenants with work take turns in round-robin slices; a switch between tenants
  costs ``SWITCH_S``; a tenant alone with work runs without switching;
- MPS: tenants with work run at once (processor sharing): each busy tenant's SM share is its
  thread cap, scaled down when the busy tenants' demands exceed the GPU, and busy tenants split
  the memory bandwidth equally.

Inference tenants serve Poisson requests FIFO, one at a time (no batching); training tenants
always have a step to run. Outputs per tenant: latency p50/p99 and SLO attainment (inference),
steps per second relative to running alone (training); per GPU: busy time.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field

import numpy as np

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models import mig as migm
from gpuinfra.models.sharing import SWITCH_S, TIMESLICE_S, Share, Tenant, mig_share


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


def _arrivals(rng: np.random.Generator, rate: float, horizon: float) -> list[float]:
    if rate <= 0:
        return []
    n = int(rng.poisson(rate * horizon * 1.2)) + 10
    t = np.cumsum(rng.exponential(1 / rate, size=n))
    return [float(x) for x in t if x < horizon]


def _stats(lat: list[float], t: Tenant) -> tuple[float | None, float | None, float | None]:
    if not lat:
        return None, None, None
    a = np.array(lat)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(np.mean(a <= t.slo_s)) if t.slo_s else None


def simulate_isolated(tenant: Tenant, share: Share, horizon_s: float, seed: int) -> TenantResult:
    """A tenant alone on its hardware (whole GPU or MIG instance): an M/D/1 queue for inference."""
    rng = np.random.default_rng(seed)
    svc = tenant.time_on(share.sm_frac, share.bw_frac)
    r = TenantResult(tenant.name, tenant.kind, share.profile or share.mode)
    if share.mem_limit_gib is not None and tenant.mem_gib > share.mem_limit_gib:
        r.oom = True
        return r
    if tenant.kind == "training":
        r.relative_throughput = tenant.alone_s / svc
        r.served = int(horizon_s / svc)
        return r
    free_at, lat = 0.0, []
    for a in _arrivals(rng, tenant.rate_per_s, horizon_s):
        start = max(a, free_at)
        free_at = start + svc
        lat.append(free_at - a)
    r.served = len(lat)
    r.p50_s, r.p99_s, r.slo_attainment = _stats(lat, tenant)
    return r


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
    """Tenants on one GPU under time-slicing or MPS."""
    if mode not in ("timeslice", "mps"):
        raise UserError(f"simulate_shared runs timeslice or mps, not {mode}")
    m = gpu_model(gpu)
    cap_gib = (m.memory_visible_mib or (m.memory_gib or 80) * 1024) / 1024
    rng = np.random.default_rng(seed)
    res = {t.name: TenantResult(t.name, t.kind, mode) for t in tenants}
    alive = list(tenants)
    if mode == "timeslice":
        # no memory isolation: tenants start in order; the one that no longer fits OOMs
        used = 0.0
        alive = []
        for t in tenants:
            if used + t.mem_gib > cap_gib:
                res[t.name].oom = True
                continue
            used += t.mem_gib
            alive.append(t)
    else:
        limit = cap_gib / replicas
        alive = [t for t in tenants if t.mem_gib <= limit]
        for t in tenants:
            if t.mem_gib > limit:
                res[t.name].oom = True
    queues: dict[str, list[float]] = {t.name: [] for t in alive}
    arr: list[tuple[float, str]] = []
    for k, t in enumerate(alive):
        if t.kind == "inference":
            for a in _arrivals(np.random.default_rng(rng.integers(1 << 30) + k), t.rate_per_s, horizon_s):
                arr.append((a, t.name))
    heapq.heapify(arr)
    by = {t.name: t for t in alive}
    remaining: dict[str, float] = {}
    """tenant -> remaining work of its job in service, in alone-seconds"""
    start_of: dict[str, float] = {}
    lat: dict[str, list[float]] = {t.name: [] for t in alive}
    steps: dict[str, float] = {t.name: 0.0 for t in alive}
    for t in alive:
        if t.kind == "training":
            remaining[t.name] = t.alone_s
    now, busy = 0.0, 0.0
    rr = [t.name for t in alive]
    last_run: str | None = None
    ptr = 0

    def admit(until: float) -> None:
        while arr and arr[0][0] <= until:
            a, name = heapq.heappop(arr)
            queues[name].append(a)
            if name not in remaining:
                remaining[name] = by[name].alone_s
                start_of[name] = queues[name][0]

    def finish(name: str, t_end: float) -> None:
        tn = by[name]
        if tn.kind == "training":
            steps[name] += 1
            remaining[name] = tn.alone_s
            return
        a = queues[name].pop(0)
        lat[name].append(t_end - a)
        del remaining[name]
        if queues[name]:
            remaining[name] = tn.alone_s

    while now < horizon_s:
        admit(now)
        active = [n for n in rr if n in remaining]
        if not active:
            if not arr:
                break
            now = arr[0][0]
            continue
        if mode == "timeslice":
            # next tenant with work, round robin
            for _ in range(len(rr)):
                name = rr[ptr % len(rr)]
                ptr += 1
                if name in remaining:
                    break
            if last_run is not None and last_run != name and len(active) > 1:
                now += switch_s
            last_run = name
            tn = by[name]
            svc = tn.time_on(1.0, 1.0)  # a whole GPU in its slice
            need = remaining[name] * svc / tn.alone_s
            nxt_arrival = arr[0][0] if arr else float("inf")
            run = min(timeslice_s if len(active) > 1 else need, need)
            if len(active) == 1:
                run = min(run, max(nxt_arrival - now, 1e-9))  # re-decide when someone arrives
            remaining[name] -= run * tn.alone_s / svc
            now += run
            busy += run
            if remaining[name] <= 1e-12:
                finish(name, now)
        else:
            demands = {n: min(by[n].sm_demand, 1.0 / replicas) for n in active}
            tot = sum(demands.values())
            scale = 1.0 if tot <= 1.0 else 1.0 / tot
            rates = {}
            for n in active:
                f = demands[n] * scale
                t_share = by[n].time_on(max(f, 1e-9) if by[n].sm_demand > f else by[n].sm_demand, 1.0 / len(active))
                rates[n] = by[n].alone_s / t_share  # alone-seconds of work per second
            # time to the next completion or arrival
            dt = min(remaining[n] / rates[n] for n in active)
            if arr:
                dt = min(dt, max(arr[0][0] - now, 0.0))
            dt = max(dt, 1e-9)
            for n in active:
                remaining[n] -= rates[n] * dt
            now += dt
            busy += dt
            for n in [n for n in active if remaining[n] <= 1e-9]:
                finish(n, now)
    for t in alive:
        r = res[t.name]
        if t.kind == "training":
            r.relative_throughput = steps[t.name] * t.alone_s / horizon_s
            r.served = int(steps[t.name])
        else:
            r.served = len(lat[t.name])
            r.p50_s, r.p99_s, r.slo_attainment = _stats(lat[t.name], t)
    return GroupResult(mode, list(res.values()), min(busy / horizon_s, 1.0), 1.0)


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
    training_throughput: float | None
    blast_radius: float
    """Tenants a fatal fault of one tenant takes down, on average."""
    node_configs: int
    """Distinct GPU configurations the fleet needs."""
    oom_tenants: int
    groups: list[list[str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        return d


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
"""MIG sizing target: the instance keeps an inference tenant's utilization at or below 70 % (a
queueing headroom choice, stated)."""


def profile_for(gpu: str, t: Tenant, full_ok: bool = False) -> migm.MigProfile | None:
    """The smallest MIG profile that holds the tenant's memory and, for inference, keeps its
    utilization <= MAX_RHO; training, and tenants no smaller profile serves, get a whole GPU (None)."""
    if t.kind == "training":
        return max(migm.mig_profiles(gpu), key=lambda p: p.compute_slices) if full_ok else None
    fits = [p for p in migm.mig_profiles(gpu) if not p.media_engines and p.memory_gib >= t.mem_gib]
    for p in sorted(fits, key=lambda p: (p.compute_slices, p.memory_slices)):
        sh = mig_share(gpu, p.name)
        if p.compute_slices < 7 and t.rate_per_s * t.time_on(sh.sm_frac, sh.bw_frac) <= MAX_RHO:
            return p
    return max(fits, key=lambda p: p.compute_slices) if full_ok and fits else None


def _mig_pack(
    gpu: str, tenants: list[Tenant], full_ok: bool = False
) -> tuple[list[list[tuple[Tenant, migm.Instance]]], list[Tenant]]:
    gpus: list[list[tuple[Tenant, migm.Instance]]] = []
    whole: list[Tenant] = []
    for t in sorted(
        tenants, key=lambda t: -(profile_for(gpu, t, full_ok).memory_slices if profile_for(gpu, t, full_ok) else 9)
    ):
        p = profile_for(gpu, t, full_ok)
        if p is None:
            whole.append(t)
            continue
        for g in gpus:
            starts = migm.placements([i for _, i in g], p)
            if starts:
                g.append((t, migm.Instance(p, starts[0])))
                break
        else:
            gpus.append([(t, migm.Instance(p, p.placements[0]))])
    return gpus, whole


def evaluate_policy(
    policy: str, tenants: list[Tenant], gpu: str, horizon_s: float = 120.0, seed: int = 0, replicas: int = 4
) -> PolicyResult:
    m = gpu_model(gpu)
    cap = (m.memory_visible_mib or (m.memory_gib or 80) * 1024) / 1024
    results: list[TenantResult] = []
    busy_gpu_s = 0.0
    gpus = 0.0
    blast: list[int] = []
    configs: set = set()
    groups_out: list[list[str]] = []

    def whole(ts: list[Tenant]) -> None:
        nonlocal busy_gpu_s, gpus
        for k, t in enumerate(ts):
            r = simulate_isolated(t, Share("whole"), horizon_s, seed + k)
            results.append(r)
            gpus += 1
            busy_gpu_s += _busy(t, r, horizon_s, t.time_on(1, 1))
            blast.append(1)
            groups_out.append([t.name])
        if ts:
            configs.add("whole")

    if policy == "whole":
        whole(tenants)
    elif policy in ("timeslice", "mps"):
        groups = _pack(tenants, cap if policy == "timeslice" else cap, replicas)
        if policy == "mps":
            limit = cap / replicas
            big = [t for t in tenants if t.mem_gib > limit]
            groups = _pack([t for t in tenants if t.mem_gib <= limit], cap, replicas)
            whole(big)
        for k, g in enumerate(groups):
            r = simulate_shared(g, policy, gpu, horizon_s, seed + 100 + k, replicas)
            results += r.tenants
            gpus += 1
            busy_gpu_s += r.busy_fraction * horizon_s
            blast += [len(g)] * len(g)
            groups_out.append([t.name for t in g])
        configs.add(f"{policy}-x{replicas}")
    elif policy in ("mig", "mixed"):
        mig_tenants = tenants if policy == "mig" else [t for t in tenants if t.kind == "inference"]
        packed, big = _mig_pack(gpu, mig_tenants, policy == "mig")
        whole(big + ([t for t in tenants if t.kind == "training"] if policy == "mixed" else []))
        for g in packed:
            gpus += 1
            configs.add(tuple(sorted(str(i) for _, i in g)))
            groups_out.append([t.name for t, _ in g])
            for k, (t, inst) in enumerate(g):
                sh = mig_share(gpu, inst.profile.name)
                r = simulate_isolated(t, sh, horizon_s, seed + 200 + k)
                results.append(r)
                busy_gpu_s += (
                    _busy(t, r, horizon_s, t.time_on(sh.sm_frac, sh.bw_frac)) * inst.profile.compute_slices / 7
                )
                blast.append(1)
    else:
        raise UserError(f"unknown sharing policy '{policy}'", expected="whole, timeslice, mps, mig or mixed")
    inf = [r for r in results if r.kind == "inference" and not r.oom and r.p50_s is not None]
    tr = [r for r in results if r.kind == "training" and not r.oom]
    w = [r.served for r in inf]

    def wavg(vals):
        return float(np.average(vals, weights=w)) if inf and sum(w) > 0 else None

    return PolicyResult(
        policy,
        gpus,
        results,
        busy_gpu_s / (gpus * horizon_s) if gpus else 0.0,
        wavg([r.p50_s for r in inf]),
        wavg([r.p99_s for r in inf]),
        wavg([r.slo_attainment if r.slo_attainment is not None else 1.0 for r in inf]),
        float(np.mean([r.relative_throughput for r in tr])) if tr else None,
        float(np.mean(blast)) if blast else 0.0,
        len(configs),
        sum(r.oom for r in results),
        groups_out,
    )


def _busy(t: Tenant, r: TenantResult, horizon: float, svc: float) -> float:
    if r.oom:
        return 0.0
    if t.kind == "training":
        return horizon
    return min(r.served * svc, horizon)


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
    """MIG layouts for a day and a night demand; every GPU whose layout differs is drained and
    repartitioned twice a day (models/sharing.MIG_RECONFIGURE_S each, the GPU serving nothing)."""
    from gpuinfra.models.sharing import MIG_RECONFIGURE_S

    def layouts(ts):
        packed, big = _mig_pack(gpu, [t for t in ts if t.kind == "inference"])
        return sorted(tuple(sorted(i.profile.name for _, i in g)) for g in packed)

    a, b = layouts(day), layouts(night)
    changed = sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))
    per_day = 2 * changed
    return {
        "day_layouts": a,
        "night_layouts": b,
        "reconfigurations_per_day": per_day,
        "gpu_hours_per_day": per_day * MIG_RECONFIGURE_S / 3600,
    }
