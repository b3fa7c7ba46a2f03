"""Spot what-if as a replay on the Alibaba spot GPU cluster's real node inventory.

The cluster is built from ``catalog/data/traces/alibaba-spot-gpu-v2026/node_info_df.csv`` (the
node list of the GFS paper's spot GPU cluster, ASPLOS '26; SOURCE.md beside it): one node pool
per (GPU model, GPUs per node, vCPUs) with the trace's node names. The same workload of training
jobs (gangs of whole nodes, checkpointed; sim/execution.py) is replayed on the one simulator under
three purchase plans, same seed, same jobs:

- ``on-demand``: every node on-demand (no reclaims);
- ``spot``: every node spot, reclaimed by the ``spot`` subsystem (sim/spot.py) at a sourced rate
  with a notice period, and replaced after ``replace_s``;
- ``committed+spot``: a share of each pool committed (priced at on-demand x (1 - discount), never
  reclaimed), the rest spot.

Cost: each pool's provisioned GPU-hours from the start until the last job ends (the cluster is
released when the work is done), less the hours reclaimed spot nodes were out of service, times
the pool's price per GPU-hour (catalog/prices.py: median of the SkyPilot catalog rows, or the
spec's overrides). Goodput: the steady work the jobs kept (resumed from checkpoints), against the
steady work thrown away by reclaims (work since the last durable checkpoint) and the GPU time
spent starting, checkpointing and waiting.

What the trace lacks, stated as assumptions beside each number in :class:`WhatIfSpec`: the jobs
(``job_info_df.csv`` was not in the stored snapshot), so arrivals, sizes and durations are drawn
from the run's seeded ``whatif-workload`` stream; host memory (not in the trace).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError
from gpuinfra.rng import Rngs

INVENTORY = ("traces", "alibaba-spot-gpu-v2026", "node_info_df.csv")
INVENTORY_SOURCE = (
    "alibaba/clusterdata cluster-trace-v2026-spot-gpu/node_info_df.csv (GFS, ASPLOS '26); "
    "catalog/data/traces/alibaba-spot-gpu-v2026/SOURCE.md"
)
PLANS = ("on-demand", "spot", "committed+spot")
DAY_S = 86400.0
MONTH_DAYS = 30.0
"""AWS's Spot Instance Advisor measures interruptions over the trailing month (facts 1.2); 30 days."""


class PriceSpec(BaseModel):
    """A price per GPU-hour for one GPU model (overrides the catalog)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    on_demand_usd: float = Field(gt=0, le=1e4)
    spot_usd: float = Field(gt=0, le=1e4)
    source: str = Field(min_length=1, description="where the prices come from; required")


class WhatIfSpec(BaseModel):
    """Inputs of the spot what-if (CLI flags or a YAML file). Defaults are assumptions or sourced
    numbers, each stated in its description."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    models: list[str] | None = Field(
        None, description="GPU models of the inventory to replay (default: every model the catalog prices)"
    )
    scale: float = Field(1.0, gt=0, le=1, description="share of each pool's nodes kept (the first by name)")
    days: float = Field(3.0, gt=0, le=60, description="jobs arrive over this many days")
    load: float = Field(0.7, gt=0, le=2, description="offered GPU-hours / capacity over the arrival window")
    job_hours_median: float = Field(
        6.0, gt=0, le=1000, description="median job length (steady work), log-normal [assumption: no job list]"
    )
    job_hours_sigma: float = Field(1.0, ge=0, le=3, description="sigma of ln(job length) [assumption]")
    max_job_hours: float = Field(
        48.0, gt=0, le=10000, description="job lengths above this are cut to it (a bounded tail) [assumption]"
    )
    max_job_nodes: int = Field(4, ge=1, le=64, description="largest job in nodes (1, 2, 4, ... up to it) [assumption]")
    checkpoint_interval_s: float = Field(3600.0, gt=0, le=1e6, description="steady work between checkpoints")
    checkpoint_stall_s: float = Field(60.0, ge=0, le=1e5, description="GPUs blocked per checkpoint [assumption]")
    reclaim_per_month: float = Field(
        0.20,
        ge=0,
        le=1,
        description="share of spot instances interrupted a month (AWS Spot Instance Advisor buckets <5 %..>20 %; "
        "default 0.20: the lower edge of the worst bucket, >20 %, so real worst-bucket pools reclaim more; facts 1.2)",
    )
    notice_s: float = Field(120.0, ge=0, le=3600, description="interruption notice (AWS 120 s; GCP spot 30 s)")
    replace_s: float | None = Field(
        900.0, ge=0, le=1e6, description="until a replacement node joins [assumption]; null: never"
    )
    committed_share: float = Field(0.5, ge=0, le=1, description="committed+spot: share of each pool committed")
    committed_discount: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="committed price = on-demand x (1 - this) [assumption: published GPU CUD/Savings Plans "
        "percentages vary by family; facts 1.3]",
    )
    replace_unavailable_prob: float = Field(
        0.1,
        ge=0,
        le=1,
        description="share of reclaims after which no spot capacity comes back for replace_unavailable_s, drawn per "
        "reclaim (Bernoulli) in one extra replay of the spot plan "
        "[assumption: no published rate; spot capacity shortages are the main real risk]",
    )
    replace_unavailable_s: float = Field(
        14400.0, ge=0, le=1e6, description="how long a replacement is unavailable then [assumption: 4 h]"
    )
    autoscale_granularity_s: float = Field(
        600.0,
        ge=0,
        le=86400,
        description="right-sized baseline: each job's nodes are billed for the time the job held them plus this "
        "scale-down delay (cluster-autoscaler's documented default --scale-down-unneeded-time is 10 min, "
        "kubernetes/autoscaler FAQ)",
    )
    cloud: str | None = Field(None, description="catalog rows of one cloud (aws, gcp, azure); default: all")
    prices: dict[str, PriceSpec] = Field(default_factory=dict, description="per GPU model price overrides")
    horizon_days: float | None = Field(
        None, gt=0, le=365, description="stop the replay here (default: 4 x the arrival window + 2 x max_job_hours)"
    )

    @property
    def reclaim_per_node_day(self) -> float:
        return self.reclaim_per_month / MONTH_DAYS


@dataclass(frozen=True)
class InvPool:
    """Nodes of the inventory sharing a GPU model, GPUs per node and vCPUs."""

    model: str
    gpus_per_node: int
    vcpus: int
    nodes: tuple[str, ...]


def inventory() -> list[InvPool]:
    """The packaged node inventory as pools, in order of first appearance (4,278 nodes, 10,412 GPUs)."""
    groups: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    for r in read_csv_rows(*INVENTORY):
        groups[(r["gpu_model"], int(r["gpu_capacity_num"]), int(r["cpu_num"]))].append(r["node_name"])
    return [InvPool(m, g, c, tuple(f"alibaba-{n}" for n in names)) for (m, g, c), names in groups.items()]


@dataclass(frozen=True)
class ModelPrice:
    model: str
    on_demand_usd: float
    spot_usd: float
    source: str


def price_for(model: str, spec: WhatIfSpec, where: str = "--models") -> ModelPrice:
    """Per-GPU-hour on-demand and spot price of an inventory model: the spec's override, else the catalog.

    Raises UserError naming the model when neither prices it (or the catalog has no spot price)."""
    if model in spec.prices:
        p = spec.prices[model]
        return ModelPrice(model, p.on_demand_usd, p.spot_usd, p.source)
    from gpuinfra.catalog.prices import gpu_hour_price

    fix = f"give a price: --price '{model}=ON_DEMAND:SPOT' (USD per GPU-hour), or leave the model out"
    try:
        p = gpu_hour_price(model, cloud=spec.cloud)
    except UserError as e:
        raise UserError(
            f"GPU model '{model}' has no price: {e.what}", where=where, expected="a model with a price", fix=fix
        ) from None
    if p.on_demand_usd is None or p.spot_usd is None:
        raise UserError(
            f"GPU model '{model}' has no {'on-demand' if p.on_demand_usd is None else 'spot'} price in the catalog",
            where=where,
            expected="a model with both prices",
            fix=fix,
        )
    return ModelPrice(model, p.on_demand_usd, p.spot_usd, p.source)


def select(spec: WhatIfSpec) -> tuple[list[InvPool], dict[str, ModelPrice], list[dict]]:
    """The inventory pools the spec replays (scaled), their prices, and the models left out (with why)."""
    pools = inventory()
    present = list(dict.fromkeys(p.model for p in pools))
    gpus = {m: sum(p.gpus_per_node * len(p.nodes) for p in pools if p.model == m) for m in present}
    prices: dict[str, ModelPrice] = {}
    skipped: list[dict] = []
    if spec.models is None:
        for m in present:
            try:
                prices[m] = price_for(m, spec)
            except UserError as e:
                why = "no catalog price" if "no price" in e.what else e.what.replace(f"GPU model '{m}' has ", "")
                skipped.append({"gpu_model": m, "gpus": gpus[m], "why": why})
    else:
        for m in spec.models:
            if m not in present:
                raise UserError(
                    f"GPU model '{m}' is not in the inventory",
                    where="--models",
                    expected="one of " + ", ".join(present),
                )
            prices[m] = price_for(m, spec)
        skipped = [{"gpu_model": m, "gpus": gpus[m], "why": "not selected"} for m in present if m not in prices]
    if not prices:
        raise UserError("no inventory model has a price", where="--models", fix="name models and give --price")
    kept = []
    for p in pools:
        if p.model in prices:
            n = max(1, math.floor(len(p.nodes) * spec.scale + 1e-9))
            kept.append(InvPool(p.model, p.gpus_per_node, p.vcpus, p.nodes[:n]))
    return kept, prices, skipped


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class JobDef:
    name: str
    model: str
    pods: int
    gpus_per_pod: int
    work_s: float
    submit_s: float


def _clipped_lognormal_mean(median: float, sigma: float, cap: float) -> float:
    """E[min(X, cap)] for X log-normal with this median and sigma (closed form via the normal CDF)."""
    if sigma == 0:
        return min(median, cap)
    mu = math.log(median)
    z = (math.log(cap) - mu) / sigma
    phi = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    return math.exp(mu + sigma**2 / 2) * phi(z - sigma) + cap * (1.0 - phi(z))


def workload(pools: list[InvPool], spec: WhatIfSpec, seed: int) -> list[JobDef]:
    """Training jobs per GPU model: Poisson arrivals over ``days`` whose expected GPU-hours are
    ``load`` x the model's capacity; a job is 1, 2, 4 .. ``max_job_nodes`` whole nodes (equal weights,
    capped by the model's node count) of the model's smallest node size; steady work log-normal.
    Drawn from the ``whatif-workload`` stream of ``seed`` (the same jobs for every plan)."""
    rng = Rngs(seed).stream("whatif-workload")
    window = spec.days * DAY_S
    mean_h = _clipped_lognormal_mean(spec.job_hours_median, spec.job_hours_sigma, spec.max_job_hours)
    jobs: list[JobDef] = []
    for model in dict.fromkeys(p.model for p in pools):
        mp = [p for p in pools if p.model == model]
        g = min(p.gpus_per_node for p in mp)
        nodes = sum(len(p.nodes) for p in mp)
        cap_gpus = sum(p.gpus_per_node * len(p.nodes) for p in mp)
        sizes = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= min(spec.max_job_nodes, nodes)]
        mean_gpus = g * sum(sizes) / len(sizes)
        rate_per_s = spec.load * cap_gpus / (mean_gpus * mean_h * 3600.0)
        t = 0.0
        k = 0
        while True:
            t += float(rng.exponential(1.0 / rate_per_s))
            if t > window:
                break
            n = sizes[int(rng.integers(len(sizes)))]
            hours = spec.job_hours_median * math.exp(spec.job_hours_sigma * float(rng.standard_normal()))
            hours = min(hours, spec.max_job_hours)
            jobs.append(JobDef(f"{_slug(model)}-job-{k:05d}", model, n, g, round(hours * 3600.0, 3), round(t, 3)))
            k += 1
    return jobs


def plan_pools(pools: list[InvPool], plan: str, spec: WhatIfSpec) -> list[tuple[InvPool, str, str]]:
    """(inventory pool part, pool name, purchase kind) of a plan; kinds: on-demand, spot, committed."""
    out = []
    for p in pools:
        base = f"{_slug(p.model)}-{p.gpus_per_node}g-{p.vcpus}c"
        if plan == "on-demand":
            out.append((p, base + "-od", "on-demand"))
        elif plan == "spot":
            out.append((p, base + "-spot", "spot"))
        elif plan == "committed+spot":
            k = round(len(p.nodes) * spec.committed_share)
            if k:
                out.append((InvPool(p.model, p.gpus_per_node, p.vcpus, p.nodes[:k]), base + "-committed", "committed"))
            if k < len(p.nodes):
                out.append((InvPool(p.model, p.gpus_per_node, p.vcpus, p.nodes[k:]), base + "-spot", "spot"))
        else:
            raise UserError(f"plan '{plan}'", where="plans", expected=", ".join(PLANS))
    return out


def usd_per_gpu_hour(kind: str, price: ModelPrice, spec: WhatIfSpec) -> float:
    if kind == "on-demand":
        return price.on_demand_usd
    if kind == "spot":
        return price.spot_usd
    return price.on_demand_usd * (1.0 - spec.committed_discount)


HOST_MIB_PER_VCPU = 8192
"""The trace has no host memory; nodes get 8 GiB per vCPU [placeholder: pods here request none]."""
CPU_MILLI_PER_GPU = 4000
"""milli-CPU a training pod asks per GPU [assumption], capped at the smallest node's vCPUs per GPU."""


def replay_plan(
    plan: str,
    pools: list[InvPool],
    prices: dict[str, ModelPrice],
    jobs: list[JobDef],
    spec: WhatIfSpec,
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Replay ``jobs`` on the plan's cluster with the execution (and, with spot pools, spot) subsystems.

    Returns a JSON-able dict: cost (USD, total and per pool), GPU-hours billed / useful / lost /
    overhead, goodput, jobs completed / interrupted / unfinished, pods killed, reclaims, completion
    time (h) and mean job completion time (h), and the run's invariants (checked by the engine)."""
    from gpuinfra.sim.cluster import ClusterState, NodePool
    from gpuinfra.sim.engine import ReplayEngine
    from gpuinfra.sim.execution import IGNORE_DISRUPTIONS, ExecutionSpec, KindSpec, job_pods
    from gpuinfra.sim.framework import Profile
    from gpuinfra.sim.spot import SpotSpec
    from gpuinfra.sim.workload import PodTable

    parts = plan_pools(pools, plan, spec)
    node_pools = [
        NodePool(
            name,
            p.model,
            p.gpus_per_node,
            p.vcpus * 1000,
            p.vcpus * HOST_MIB_PER_VCPU,
            len(p.nodes),
            labels=(("gpuinfra/purchase", kind),),
            node_names=p.nodes,
        )
        for p, name, kind in parts
    ]
    cluster = ClusterState.from_pools(node_pools)
    cpu_per_gpu = {
        m: min(CPU_MILLI_PER_GPU, min(p.vcpus * 1000 // p.gpus_per_node for p in pools if p.model == m)) for m in prices
    }
    pods = []
    for j in jobs:
        for pod in job_pods(
            j.name,
            "training",
            j.pods,
            j.gpus_per_pod,
            j.work_s,
            submit_s=j.submit_s,
            cpu_milli=cpu_per_gpu[j.model] * j.gpus_per_pod,
            memory_mib=0,
        ):
            pods.append(dataclasses.replace(pod, gpu_models=(j.model,)))
    kind = KindSpec(
        owner="training",
        kind="training",
        restart_policy="OnFailure",
        # a reclaim is a disruption, not the job's fault: the Job's podFailurePolicy Ignores pods with the
        # DisruptionTarget condition (a reclaimed pod carries it; sim/spot.py), so reclaims never count
        # toward the default backoffLimit of 6 and the gang restarts without a back-off
        pod_failure_policy=IGNORE_DISRUPTIONS,
        checkpoint_interval_s=spec.checkpoint_interval_s,
        checkpoint_stall_s=spec.checkpoint_stall_s,
    )
    spot_pools = [name for _, name, k in parts if k == "spot"]
    options: dict[str, Any] = {"execution": ExecutionSpec(kinds=[kind])}
    if spot_pools:
        options["spot"] = SpotSpec(
            pools=spot_pools,
            reclaim_rate_per_node_day=spec.reclaim_per_node_day,
            notice_s=spec.notice_s,
            replace_s=spec.replace_s,
            source="AWS Spot Instance Advisor interruption buckets (share of instances a month; facts 1.2)",
            replace_unavailable_prob=spec.replace_unavailable_prob,
            replace_unavailable_s=spec.replace_unavailable_s,
            replace_unavailable_source=UNAVAILABLE_BASIS,
        )
    horizon = (spec.horizon_days or 4 * spec.days + 2 * spec.max_job_hours / 24.0) * DAY_S
    eng = ReplayEngine(
        cluster,
        PodTable(pods),
        Profile(filters=("NodeResourcesFit", "GpuModel"), preemption=False),
        seed,
        horizon_s=horizon,
        start_s=0.0,
        log_events=False,
        track_fragmentation=False,
        subsystem_options=options,
        sample_interval_s=3600.0,
        progress=progress,
    )
    run = eng.run()
    ex = eng.subsystems["execution"]
    table = {r["job"]: r for r in ex.jobs_table()}
    ends = run.end_s[np.isfinite(run.end_s)]
    done = [r for r in table.values() if r["outcome"] == "completed"]
    t_end = float(ends.max()) if len(done) == len(jobs) and len(ends) else float(run.horizon_s)
    spot = eng.subsystems.get("spot")
    unprov = spot.unprovisioned_by_pool(t_end) if spot is not None else {}
    pools_out = []
    for (p, name, k), npl in zip(parts, node_pools, strict=True):
        gpus = npl.gpus_per_node * npl.count
        billed = gpus * t_end / 3600.0 - unprov.get(name, 0.0)
        usd = usd_per_gpu_hour(k, prices[p.model], spec)
        pools_out.append(
            {
                "pool": name,
                "gpu_model": p.model,
                "purchase": k,
                "nodes": npl.count,
                "gpus": gpus,
                "usd_per_gpu_hour": usd,
                "billed_gpu_hours": billed,
                "reclaimed_gpu_hours": unprov.get(name, 0.0),
                "cost_usd": billed * usd,
            }
        )
    jd = {j.name: j for j in jobs}
    useful = sum(r["progress"] * jd[n].pods * jd[n].gpus_per_pod * jd[n].work_s for n, r in table.items()) / 3600.0
    lost = sum(r["gpu_hours_by_phase"].get("lost work", 0.0) for r in table.values())
    used = sum(r["gpu_hours"] for r in table.values())
    billed = sum(p["billed_gpu_hours"] for p in pools_out)
    cost = sum(p["cost_usd"] for p in pools_out)
    job_end: dict[str, float] = {}
    for i, jn in enumerate(run.pods.jobs):
        if np.isfinite(run.end_s[i]):
            job_end[jn] = max(job_end.get(jn, 0.0), float(run.end_s[i]))
    jct = [job_end[r["job"]] - jd[r["job"]].submit_s for r in done]
    ssum = run.subsystems.get("spot") or {}
    # right-sized: each job's GPUs billed only for the time the job held them plus one scale-down delay
    # (an autoscaled pool of the same purchase kind); committed capacity is paid whether used or not
    right_sized = None
    if plan in ("on-demand", "spot"):
        right_sized = 0.0
        for n, r in table.items():
            j = jd[n]
            held = r["gpu_hours"] + j.pods * j.gpus_per_pod * spec.autoscale_granularity_s / 3600.0
            right_sized += held * usd_per_gpu_hour(plan, prices[j.model], spec)
    return {
        **_plan_money(plan, cost, billed, used, useful, lost),
        "overhead_gpu_hours": max(0.0, used - useful - lost),
        "right_sized_usd": right_sized,
        "jobs": len(jobs),
        "jobs_completed": len(done),
        "jobs_interrupted": sum(1 for r in table.values() if r["failures"] > 0),
        # reclaims are disruptions the jobs' podFailurePolicy ignores: none should count toward backoffLimit
        "failures_ignored": sum(r["failures_ignored"] for r in table.values()),
        "failures_counted": sum(r["failures_counted"] for r in table.values()),
        "jobs_unfinished": len(jobs) - len(done),
        "pods_killed": int(ssum.get("pods_killed", 0)),
        "reclaims": sum(1 for x in ssum.get("log", []) if x["t_s"] <= t_end),
        "reclaims_to_horizon": int(ssum.get("reclaims", 0)),
        "replacements_late": int(ssum.get("replacements_late", 0)),
        "completion_time_h": t_end / 3600.0,
        "mean_jct_h": float(np.mean(jct)) / 3600.0 if jct else None,
        "pools": pools_out,
        "invariants": run.invariants.__dict__ if run.invariants is not None else None,
        "events_processed": run.events_processed,
    }


INTERVAL_WHERE = "checkpoint_interval_s (--checkpoint-interval-s, or the --spec file's field)"

MAX_QUEUE_WORK = 1e7
"""Budget of :func:`check_work`'s estimate (pod releases x pods left waiting, all replays), sized from
replays on the project's 2-core machine (default inventory, load 0.7, --plans spot = 2 replays):
estimate 6e6 (--days 0.5, interval 10 s) ran in 8 s and 8e6 (--load 1, default 3 days) in 87 s;
1.5e7 (--days 1, interval 30 s) and 3.2e7 (--days 1, --load 1.4) did not finish in 120 s;
--days 3 at 600 s (estimate 0: below capacity) takes 19 s.
An order-of-magnitude guard, not a prediction."""


def check_checkpoint_floor(spec: WhatIfSpec) -> None:
    """Refuse a checkpoint interval shorter than the checkpoint stall: the GPUs would spend more time
    writing checkpoints than training (overhead stall / (interval + stall) above 50 %)."""
    iv, stall = spec.checkpoint_interval_s, spec.checkpoint_stall_s
    if iv < stall:
        raise UserError(
            f"a checkpoint every {iv:g} s of work with a {stall:g} s stall each spends "
            f"{100 * stall / (iv + stall):.0f} % of the GPUs' time checkpointing",
            where=INTERVAL_WHERE,
            expected=f"at least checkpoint_stall_s ({stall:g} s); real jobs checkpoint every 10 min to a few hours",
            fix=f"give --checkpoint-interval-s {max(stall, 600.0):g} or more (or lower checkpoint_stall_s in the spec)",
        )


def offered_load(spec: WhatIfSpec) -> float:
    """The load the cluster sees once checkpoint stalls stretch every job: ``load x (interval + stall) / interval``."""
    return spec.load * (spec.checkpoint_interval_s + spec.checkpoint_stall_s) / spec.checkpoint_interval_s


def queue_work(spec: WhatIfSpec, jobs: list[JobDef], n_replays: int) -> float:
    """Up-front estimate of the replays' scheduling work: when the offered load (:func:`offered_load`) is
    above the capacity, a share ``1 - 1/load`` of the pods is still waiting when the arrivals end, and
    every pod release retries the waiting queue (sim/gang retry_after_release); work ~ releases x the
    mean queue (half the waiting pods), per replay."""
    eff = offered_load(spec)
    pods = sum(j.pods for j in jobs)
    waiting = pods * max(0.0, 1.0 - 1.0 / eff)
    return n_replays * pods * waiting / 2.0


def check_work(spec: WhatIfSpec, jobs: list[JobDef], n_replays: int) -> None:
    """Refuse a what-if whose :func:`queue_work` exceeds :data:`MAX_QUEUE_WORK`, before any replay."""
    work = queue_work(spec, jobs, n_replays)
    if work <= MAX_QUEUE_WORK:
        return
    eff = offered_load(spec)
    raise UserError(
        f"the jobs offer {eff:.2f}x the cluster's capacity (load {spec.load:g} stretched by a "
        f"{spec.checkpoint_stall_s:g} s stall every {spec.checkpoint_interval_s:g} s of work), so the queue grows "
        f"through the whole {spec.days:g}-day arrival window: about {work:.2g} scheduling retries over "
        f"{n_replays} replays; this machine is budgeted for {MAX_QUEUE_WORK:.2g} (minutes to hours otherwise)",
        where=INTERVAL_WHERE if spec.checkpoint_stall_s / spec.checkpoint_interval_s > 0.1 else "--load",
        expected="an offered load at or below 1 (the cluster keeps up), or a shorter run",
        fix="raise --checkpoint-interval-s (600 s or more), lower --load, or shorten --days",
    )


def whatif(
    spec: WhatIfSpec,
    seed: int = 0,
    plans: tuple[str, ...] = PLANS,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Run every plan on the same seed and jobs; returns the inputs, the models left out, and one
    result per plan (see :func:`replay_plan`), plus each plan's cost and goodput against on-demand."""
    if not plans:
        raise UserError("no plan given", where="--plans", expected="one or more of " + ", ".join(PLANS))
    for p in plans:
        if p not in PLANS:
            raise UserError(f"plan '{p}'", where="--plans", expected=", ".join(PLANS))
    check_checkpoint_floor(spec)
    pools, prices, skipped = select(spec)
    jobs = workload(pools, spec, seed)
    if not jobs:
        raise UserError("the workload has no jobs", where="--days/--load", fix="raise --days or --load")
    n_replays = len(plans) + int("spot" in plans and spec.replace_unavailable_prob > 0 and spec.replace_s is not None)
    check_work(spec, jobs, n_replays)
    results = {}
    on_time = spec.model_copy(update={"replace_unavailable_prob": 0.0})  # the plans: every replacement on time
    for plan in plans:
        cb = (lambda f, _p=plan: progress(_p, f)) if progress else None
        results[plan] = replay_plan(plan, pools, prices, jobs, on_time, seed, cb)
    risk = None
    if "spot" in results and spec.replace_unavailable_prob > 0 and spec.replace_s is not None:
        cb = (lambda f: progress("spot, some replacements late", f)) if progress else None
        drawn = replay_plan("spot", pools, prices, jobs, spec, seed, cb)
        risk = capacity_risk(results["spot"], drawn, spec)
    return {
        "schema": "gpuinfra.spot-whatif/1",
        "seed": seed,
        "spec": spec.model_dump(),
        "inventory": {
            "source": INVENTORY_SOURCE,
            "pools": [
                {"gpu_model": p.model, "gpus_per_node": p.gpus_per_node, "vcpus": p.vcpus, "nodes": len(p.nodes)}
                for p in pools
            ],
            "nodes": sum(len(p.nodes) for p in pools),
            "gpus": sum(p.gpus_per_node * len(p.nodes) for p in pools),
            "left_out": skipped,
        },
        "prices": {m: p.__dict__ for m, p in prices.items()},
        "workload": {
            "jobs": len(jobs),
            "gpu_hours": sum(j.pods * j.gpus_per_pod * j.work_s for j in jobs) / 3600.0,
            "assumption": "job list not in the trace snapshot: Poisson arrivals, log-normal steady work, "
            "1..max_job_nodes whole nodes (seeded stream whatif-workload)",
        },
        "plans": results,
        "headline": headline(results, prices, pools, spec.autoscale_granularity_s),
        "capacity_risk": risk,
    }


def headline(
    results: dict[str, dict],
    prices: dict[str, ModelPrice],
    pools: list[InvPool] | dict[str, int],
    granularity_s: float = 600.0,
) -> dict[str, Any] | None:
    """Each plan against the strongest baseline of the same run: on-demand right-sized (billed only for
    the GPU time the jobs held plus one scale-down delay ``granularity_s`` per job), beside the fixed
    on-demand fleet (billed idle) and the bare price ratio (GPU-weighted 1 - spot / on-demand, over
    ``pools``, or a dict of GPUs per model). What reclaims cost beyond the price ratio: lost GPU-hours
    (priced at spot), the change in mean JCT and in completion time. None without the on-demand plan."""
    od = results.get("on-demand")
    if od is None or od.get("right_sized_usd") is None:
        return None
    if isinstance(pools, dict):
        gpus = {m: int(pools.get(m, 0)) for m in prices}
    else:
        gpus = {m: sum(p.gpus_per_node * len(p.nodes) for p in pools if p.model == m) for m in prices}
    tot_od = sum(prices[m].on_demand_usd * g for m, g in gpus.items())
    tot_sp = sum(prices[m].spot_usd * g for m, g in gpus.items())
    spot_usd = tot_sp / sum(gpus.values())
    base = od["right_sized_usd"]
    out: dict[str, Any] = {
        "baseline": "on-demand, right-sized",
        "baseline_usd": base,
        "autoscale_granularity_s": granularity_s,
        "fixed_on_demand_usd": od["cost_usd"],
        "fixed_on_demand_utilisation": od["utilisation"],
        "price_ratio_saving": 1.0 - tot_sp / tot_od,
        "plans": {},
    }
    for name, r in results.items():
        if name == "on-demand":
            continue

        def delta(k: str, _r: dict = r) -> float | None:
            return None if _r.get(k) is None or od.get(k) is None else _r[k] - od[k]

        out["plans"][name] = {
            "fixed_usd": r["cost_usd"],
            "saving_vs_right_sized_on_demand": 1.0 - r["cost_usd"] / base if base else None,
            "right_sized_usd": r.get("right_sized_usd"),
            "right_sized_saving_vs_right_sized_on_demand": (
                1.0 - r["right_sized_usd"] / base if base and r.get("right_sized_usd") is not None else None
            ),
            "saving_vs_fixed_on_demand": 1.0 - r["cost_usd"] / od["cost_usd"] if od["cost_usd"] else None,
            "lost_gpu_hours": r["lost_gpu_hours"],
            "lost_usd_at_spot_price": r["lost_gpu_hours"] * spot_usd,
            "mean_jct_delta_h": delta("mean_jct_h"),
            "completion_delta_h": delta("completion_time_h"),
            "jobs_unfinished": r.get("jobs_unfinished"),
            "pods_at_horizon": r.get("pods_at_horizon"),
            "label": r.get("label"),
        }
    return out


UNAVAILABLE_BASIS = "assumption (no published rate for spot replacements being unavailable)"


def capacity_risk(on_time: dict, drawn: dict, spec: WhatIfSpec) -> dict[str, Any]:
    """Spot capacity availability: the spot plan replayed twice on the same seed and jobs, every
    replacement after ``replace_s`` (``on_time``, the spot plan itself) and with each reclaim's own
    Bernoulli(``replace_unavailable_prob``) draw (sim/spot.py, the run's ``spot.replacement`` stream)
    sending its replacement ``replace_unavailable_s`` later (``drawn``). Returns both replays' figures,
    how many replacements the draws made late, and the difference drawn - on time: one replay's outcome
    at that share (one draw of the late reclaims, not an average over draws)."""
    keys = ("cost_usd", "mean_jct_h", "completion_time_h", "lost_gpu_hours", "jobs_unfinished", "reclaims")
    have = [k for k in keys if drawn.get(k) is not None and on_time.get(k) is not None]
    delta = {k: (drawn[k] - on_time[k]) if k in have else None for k in keys}
    return {
        "probability": spec.replace_unavailable_prob,
        "unavailable_s": spec.replace_unavailable_s,
        "replace_s": spec.replace_s,
        "basis": UNAVAILABLE_BASIS,
        "on_time": {k: on_time.get(k) for k in keys},
        "drawn": {k: drawn.get(k) for k in keys},
        "replacements_late": drawn.get("replacements_late", 0),
        "reclaims_to_horizon": drawn.get("reclaims_to_horizon"),
        "delta": delta,
        "method": "one replay with a Bernoulli draw per reclaim (stream spot.replacement) against the on-time replay",
    }


# -- the same what-if on a scenario ------------------------------------------------------------


def right_sized_usd(run: Any, prices: Any, granularity_s: float, label: str = "scenario") -> float:
    """A run's cost had every pod's GPUs been billed only while the pod held them, plus one scale-down
    delay ``granularity_s`` per pod that started (an autoscaled on-demand pool, as the inventory
    what-if's right-sized baseline): allocated GPU-hours per GPU model (the recorder's integral) x the
    on-demand price of a pool of that model in ``prices`` (the on-demand replay's book, every pool
    on-demand), plus started pods' GPUs x ``granularity_s`` x their node pool's price. USD."""
    from gpuinfra.sim.invariants import MILLI_S_PER_GPU_HOUR

    c = run.cluster
    pool_of_model = {p.gpu_model: p.name for p in c.pools if p.gpu_model and p.gpus_per_node}
    alloc = run.recorder.per_model_totals()["allocated"]
    usd = 0.0
    for k, m in enumerate(c.models):
        if m and m in pool_of_model:
            usd += float(alloc[k]) / MILLI_S_PER_GPU_HOUR * prices.pool_usd(pool_of_model[m], m, where=label)
    started = np.isfinite(run.start_s) & (run.node >= 0)
    gpus = run.pods.num_gpu.astype(float) * run.pods.gpu_milli / 1000.0
    for i in np.flatnonzero(started & (gpus > 0)):
        n = int(run.node[i])
        k = int(c.node_model[n])
        if k >= 0:
            pool = c.pools[c.node_pool[n]].name
            usd += float(gpus[i]) * granularity_s / 3600.0 * prices.pool_usd(pool, c.models[k], where=label)
    return usd


def _plan_label(plan: str, pools_out: list[dict]) -> str:
    """What a plan buys, pool by pool: ``on-demand gpu (2 nodes) + spot gpu-spot (4 nodes)``."""
    return " + ".join(
        f"{p['purchase']} {p['pool']} ({p['nodes']} node{'s' if p['nodes'] != 1 else ''})" for p in pools_out
    )


def _scenario_result(out: Any, plan: str, od: Any, spot_pools: set[str], discount: float, label: str) -> dict:
    """One plan's figures from a replay ``out``: spot pools priced from the replay's own price book (its
    pools' spot prices, io/scenario_build.price_book, the book attribution bills from), the other pools
    from ``od`` (the on-demand replay's book) at on-demand, or committed at on-demand x (1 - ``discount``)."""
    run = out.run
    c = run.cluster
    t0 = float(run.recorder.start_s)
    ends = run.end_s[np.isfinite(run.end_s)]
    unfinished = sum(1 for o in run.outcome if o in ("pending_at_horizon", "running_at_horizon", "not_arrived"))
    from gpuinfra.analysis.attribution import billed_gpu_hours_by_pool

    # the scenario sets the window: billed from its start to its horizon (or its last event), the
    # hours analysis/attribution.bill bills per pool (reclaimed spot nodes and nodes an upgrade had not
    # yet created or had deleted are out)
    t_end = float(run.horizon_s)
    last = float(ends.max()) if len(ends) else t0
    spot = run.subsystems.get("spot") or {}
    by_pool = spot.get("unprovisioned_gpu_hours_by_pool", {})
    billed_by_pool = billed_gpu_hours_by_pool(run)
    pools_out = []
    for p in c.pools:
        if not p.gpu_model or p.gpus_per_node == 0:
            continue
        kind = "spot" if p.name in spot_pools else ("committed" if plan == "committed+spot" else "on-demand")
        usd = (out.built.prices if kind == "spot" else od).pool_usd(p.name, p.gpu_model, where=label)
        if kind == "committed":
            usd *= 1.0 - discount
        gpus = p.gpus_per_node * p.count
        billed = billed_by_pool.get(p.name, 0.0)
        pools_out.append(
            {
                "pool": p.name,
                "gpu_model": p.gpu_model,
                "purchase": kind,
                "nodes": p.count,
                "gpus": gpus,
                "usd_per_gpu_hour": usd,
                "billed_gpu_hours": billed,
                "reclaimed_gpu_hours": by_pool.get(p.name, 0.0),
                "cost_usd": billed * usd,
            }
        )
    ex = run.subsystems.get("execution")
    if ex is not None:
        lost = sum(r["gpu_hours_by_phase"].get("lost work", 0.0) for r in ex["jobs"])
    else:
        lost = float(spot.get("lost_gpu_hours", 0.0))  # no execution block: no checkpoints, since start
    used = float(run.invariants.allocated_gpu_hours) if run.invariants is not None else 0.0
    cost = sum(p["cost_usd"] for p in pools_out)
    billed = sum(p["billed_gpu_hours"] for p in pools_out)
    done = [i for i, o in enumerate(run.outcome) if o == "completed"]
    jct = [float(run.end_s[i] - run.pods.submit_s[i]) for i in done]
    useful = max(0.0, used - lost)
    return {
        **_plan_money(plan, cost, billed, used, useful, lost),
        "pods": len(run.outcome),
        "pods_completed": len(done),
        "pods_at_horizon": unfinished,
        "pods_killed": int(spot.get("pods_killed", 0)),
        "reclaims": int(spot.get("reclaims", 0)),
        "billed_hours": (t_end - t0) / 3600.0,
        "completion_time_h": (last - t0) / 3600.0 if not unfinished else None,
        "mean_jct_h": float(np.mean(jct)) / 3600.0 if jct else None,
        "label": _plan_label(plan, pools_out),
        "pools": pools_out,
        "invariants": run.invariants.__dict__ if run.invariants is not None else None,
    }


def _plan_money(plan: str, cost: float, billed: float, used: float, useful: float, lost: float) -> dict[str, Any]:
    """The money and GPU-hour fields every plan's result carries (GPU-hours; USD; goodput and
    utilisation as fractions; USD per useful GPU-hour None when no work was useful)."""
    return {
        "plan": plan,
        "cost_usd": cost,
        "billed_gpu_hours": billed,
        "allocated_gpu_hours": used,
        "useful_gpu_hours": useful,
        "lost_gpu_hours": lost,
        "goodput": useful / used if used else 0.0,
        "utilisation": used / billed if billed else 0.0,
        "usd_per_useful_gpu_hour": cost / useful if useful else None,
    }


def scenario_whatif(
    sc: Any,
    base_dir: Any,
    *,
    seed: int | None = None,
    committed_discount: float = 0.5,
    plans: tuple[str, ...] = PLANS,
    progress: Callable[[str, float], None] | None = None,
    autoscale_granularity_s: float = 600.0,
) -> dict[str, Any]:
    """The what-if on a scenario with a ``spot:`` block, same seed for every plan: ``on-demand`` (the
    scenario replayed without its spot block, every pool on-demand), ``spot`` (as written: its spot
    pools at the spot price, the other pools on-demand) and ``committed+spot`` (the same replay, the
    other pools committed at on-demand x (1 - ``committed_discount``)). Cost per pool over the run's
    window (its start to its horizon, or to its last event), less reclaimed hours; lost GPU-hours
    from the execution subsystem when the scenario has one (work since the last checkpoint), else
    the spot subsystem's (a plain pod restarts from zero). The headline compares every plan with the
    strongest baseline of the same run, on-demand right-sized (:func:`right_sized_usd` of the
    on-demand replay, ``autoscale_granularity_s`` per pod), as the inventory what-if does
    (:func:`headline`); each plan carries a ``label`` naming what it buys pool by pool.

    Raises UserError when the scenario has no spot block, or a GPU model lacks the price a plan needs."""
    from gpuinfra.run import simulate

    label = getattr(sc, "_label", "scenario")
    if not plans:
        raise UserError("no plan given", where="--plans", expected="one or more of " + ", ".join(PLANS))
    for p in plans:
        if p not in PLANS:
            raise UserError(f"plan '{p}'", where="--plans", expected=", ".join(PLANS))
    if sc.spot is None:
        raise UserError("the scenario has no spot: block", where=f"{label} (spot)", fix="add spot: {pools: [...], ...}")

    def run(s: Any, name: str) -> Any:
        cb = (lambda f: progress(name, f)) if progress else None
        return simulate(s, base_dir, seed=seed, progress=cb, log_events=False)

    on_demand = sc.model_copy(update={"spot": None, "prices": sc.prices.model_copy(update={"basis": "on_demand"})})
    a = run(on_demand, "on-demand")
    od = a.built.prices
    results: dict[str, Any] = {}
    results["on-demand"] = _scenario_result(a, "on-demand", od, set(), committed_discount, label)
    results["on-demand"]["right_sized_usd"] = right_sized_usd(a.run, od, autoscale_granularity_s, label)
    spot_book = None
    if "spot" in plans or "committed+spot" in plans:
        b = run(sc, "spot")  # as written: its price book prices the spot pools at the spot price
        spot_book = b.built.prices
        pools = set(sc.spot.pools)
        for plan in ("spot", "committed+spot"):
            if plan in plans:
                results[plan] = _scenario_result(b, plan, od, pools, committed_discount, label)
    # per GPU model: the on-demand price of its pools, and the spot price of its spot pools (none: on-demand)
    gpus: dict[str, int] = {}
    od_usd: dict[str, float] = {}
    sp_usd: dict[str, float] = {}
    for p in a.run.cluster.pools:
        if p.gpu_model and p.gpus_per_node:
            gpus[p.gpu_model] = gpus.get(p.gpu_model, 0) + p.gpus_per_node * p.count
            od_usd.setdefault(p.gpu_model, od.pool_usd(p.name, p.gpu_model, where=label))
            if spot_book is not None and p.name in sc.spot.pools:
                sp_usd.setdefault(p.gpu_model, spot_book.pool_usd(p.name, p.gpu_model, where=label))
    prices = {m: ModelPrice(m, od_usd[m], sp_usd.get(m, od_usd[m]), "the scenario's price book") for m in gpus}
    hl = headline(results, prices, gpus, autoscale_granularity_s)
    if "on-demand" not in plans:
        results.pop("on-demand")
    return {
        "schema": "gpuinfra.spot-whatif/1",
        "scenario": sc.name,
        "seed": a.built.seed,
        "spot": sc.spot.model_dump(),
        "committed_discount": committed_discount,
        "plans": results,
        "headline": hl,
    }
