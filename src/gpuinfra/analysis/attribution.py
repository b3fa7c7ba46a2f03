"""Cost attribution as OpenCost defines it, extended for GPUs: every billed GPU-second once.

OpenCost (spec v0.1, facts: cost-lifecycle-security.md section 2.1): total cluster cost =
workload costs + cluster idle costs (+ overhead, none here); *idle = asset cost - workload
cost*. Its allocation API names rows ``namespace/pod`` and the idle row ``cluster/__idle__``
(opencost ``core/pkg/opencost/allocation.go``: ``IdleSuffix``, ``ComputeIdleAllocations``) and reports
``gpuHours``, ``gpuCost``, ``totalCost`` per row. OpenCost's ``__unallocated__`` is not a line of
capacity: it is the key an allocation gets when it lacks the property aggregated by (a pod
without the label asked for); every row here has its namespace or is a cluster line, so none
carries it. This module keeps those names and splits the
GPU bill into lines, each GPU-second of a *provisioned* GPU counted exactly once:

- ``workload``: a pod's last (surviving) run, GPU-hours x the price of the node pool it ran on;
- ``over_provisioned``: GPU-time that inference replicas held beyond what their offered load
  needs at the SLO (:func:`over_provisioning`), moved out of the service pods' workload lines into
  ``namespace/__over_provisioned__``; services without a declared load are reported "not computed";
- ``failure_waste``: runs that were thrown away -- killed by a fault, crashed on a poisoned GPU,
  evicted by an upgrade drain or a spot reclaim, failed by the job's own code (the engine's ``lost_runs``
  with no preemptor); charged to the pod's namespace as its own line (``namespace/pod/__failure__``).
  For a training pod the execution subsystem checkpoints, only the GPU-time since its last durable
  checkpoint is lost; the part before it moves to the pod's workload line (:func:`kept_on_kill`);
- ``preemption_waste``: runs a higher-priority pod preempted (kube DefaultPreemption, Kueue reclaim;
  ``RunResult.lost_run_by`` names the preemptor): nothing failed, the scheduler chose to throw the work
  away; charged like failure waste, as ``namespace/pod/__preemption__``;
- ``cluster/__unavailable__``: GPUs out of service while still billed (repair, reimage during an upgrade);
- ``cluster/__stranded__``: idle GPU-time that the run's typical pods could not use (FGD fragmentation,
  the recorder's measure), per model in proportion to that model's idle time, then to the model's
  node pools in proportion to theirs;
- ``cluster/__idle__`` (OpenCost's own name for its idle allocation): the rest, OpenCost's residual
  (billed - everything above), so the lines sum to the bill by construction; the recorder's own
  idle integral checks it independently (``check``).

Prices are per node pool (:func:`pool_prices`, ``PriceBook.pool_usd``): a pool listed in the scenario's
``spot.pools`` is billed at its GPU model's spot price, the other pools on the price book's basis
(on-demand by default), so two pools of one GPU model bought differently cost differently. Cluster
lines (idle, stranded, unavailable) and over-provisioned lines are per node pool, each priced as the
pool it came from; every row names its ``nodePool`` and that pool's ``purchase`` kind.

Windows: every row carries the interval its pod ran (see :func:`attribute`), start/end as RFC 3339
after a run epoch (:data:`DEFAULT_EPOCH` unless given), gpuCount the time-average over it.

GPU-time of nodes that were not provisioned (surge/green nodes before they exist, nodes deleted
by an upgrade, reclaimed spot nodes, node slots the cluster-autoscaler has not provisioned) is not
billed and not attributed. CPU, RAM, storage and network costs are 0 here: the simulator prices
GPUs only (GPU-node prices per GPU-hour include the host's share on AWS/Azure rows; catalog/prices.py).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from gpuinfra.errors import UserError
from gpuinfra.models.cost import PriceBook
from gpuinfra.sim.cluster import MILLI_PER_GPU
from gpuinfra.sim.engine import RunResult
from gpuinfra.sim.invariants import BALANCE_REL_TOL

MS_PER_GPU_HOUR = MILLI_PER_GPU * 3600.0

OPENCOST_COLUMNS = (
    "name",
    "cluster",
    "node",
    "namespace",
    "pod",
    "start",
    "end",
    "minutes",
    "cpuCores",
    "cpuCoreRequestAverage",
    "cpuCoreHours",
    "cpuCost",
    "gpuCount",
    "gpuHours",
    "gpuCost",
    "ramBytes",
    "ramByteHours",
    "ramCost",
    "pvCost",
    "networkCost",
    "loadBalancerCost",
    "sharedCost",
    "externalCost",
    "totalCost",
)
"""Columns of OpenCost's allocation API (``/allocation``; fields of ``Allocation`` in opencost's
``core/pkg/opencost/allocation.go``), in its camelCase; :data:`EXTENSION_COLUMNS` follow them."""

EXTENSION_COLUMNS = ("gpuModel", "nodePool", "purchase", "costCategory", "startS", "endS")
"""This extension's columns after OpenCost's: the row's GPU model, node pool and how that pool is bought
(``on_demand`` or ``spot``; the price of its ``gpuCost``), its cost line, and its window in seconds since
the run's start."""

CATEGORIES = ("workload", "over_provisioned", "failure_waste", "preemption_waste", "unavailable", "stranded", "idle")
POD_CATEGORIES = ("workload", "over_provisioned", "failure_waste", "preemption_waste")
"""The lines charged to a namespace (pod-held GPU-time); the rest are cluster lines."""


def pool_prices(run: RunResult, prices: PriceBook) -> dict[str, tuple[str, str, float]]:
    """Node pool -> (GPU model, purchase kind, USD per GPU-hour) for every pool with GPUs, from the run's
    price book (``PriceBook.pool_usd``: a spot pool at its model's spot price, the others on the book's
    basis; io/scenario_build.price_book, the same source the spot what-if prices its pools from).

    Raises UserError naming the model and the pool when the book has no price of the pool's kind."""
    out = {}
    for p in run.cluster.pools:
        if p.gpu_model and p.gpus_per_node > 0 and p.count > 0:
            pp = prices.pool_price(p.name, p.gpu_model)
            out[p.name] = (p.gpu_model, pp.purchase, prices.pool_usd(p.name, p.gpu_model))
    return out


DEFAULT_EPOCH = "1970-01-01T00:00:00Z"
"""Default run epoch: the wall-clock instant the scenario's t = 0 s stands for. The simulator has no
calendar, so by default timestamps read as time since the scenario start (``1970-01-03T00:00:00Z``
is 48 h in); pass ``epoch`` (CLI ``--epoch``) to place the run on a real calendar."""


_RFC3339 = re.compile(r"(?P<y>\d{4})-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(?P<off>[Zz]|[+-]\d{2}:\d{2})?")
EPOCH_YEARS = (1970, 2200)
"""Years a run epoch may fall in: pandas' nanosecond timestamps end in 2262, and a run's
timestamps (epoch + up to a century of simulated time, the trace bound) must stay inside them."""


def _epoch_ms(epoch: str) -> np.int64:
    """``epoch`` (RFC 3339, e.g. ``2026-03-01T00:00:00Z``, years 1970-2200) as UTC milliseconds.

    Raises:
        UserError: not RFC 3339 (``date-time`` of RFC 3339 section 5.6, nothing looser), no offset,
            an impossible date, or a year outside :data:`EPOCH_YEARS`.
    """
    expected = "an RFC 3339 timestamp with its offset, such as 2026-03-01T00:00:00Z"
    m = _RFC3339.fullmatch(epoch.strip())
    if m is None:
        raise UserError(f"run epoch '{epoch}' is not an RFC 3339 timestamp", where="--epoch", expected=expected)
    if m["off"] is None:
        raise UserError(
            f"run epoch '{epoch}' has no UTC offset",
            where="--epoch",
            expected=expected,
            fix=f"write {epoch.strip()}Z for UTC",
        )
    if not EPOCH_YEARS[0] <= int(m["y"]) <= EPOCH_YEARS[1]:
        raise UserError(
            f"run epoch '{epoch}' is outside {EPOCH_YEARS[0]}-{EPOCH_YEARS[1]}",
            where="--epoch",
            expected=f"a year from {EPOCH_YEARS[0]} to {EPOCH_YEARS[1]}",
        )
    try:
        ts = pd.Timestamp(epoch.strip())
    except (ValueError, TypeError, OverflowError) as e:
        raise UserError(f"run epoch '{epoch}' is not a valid date ({e})", where="--epoch", expected=expected) from None
    return np.int64(ts.tz_convert("UTC").value // 1_000_000)


def rfc3339(seconds: np.ndarray, epoch: str = DEFAULT_EPOCH) -> list[str]:
    """Seconds since the run's start as RFC 3339 UTC timestamps (millisecond precision) after ``epoch``."""
    ms = _epoch_ms(epoch) + np.round(np.asarray(seconds, dtype=float) * 1000.0).astype(np.int64)
    return np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()


def attribute(
    run: RunResult,
    ledger: pd.DataFrame,
    prices: PriceBook,
    *,
    cluster_name: str = "cluster",
    services: list[dict[str, Any]] | None = None,
    epoch: str = DEFAULT_EPOCH,
) -> pd.DataFrame:
    """One row per attributed line, with OpenCost's allocation columns plus :data:`EXTENSION_COLUMNS`
    (``gpuModel``, ``nodePool``, ``purchase``, ``costCategory``, ``startS``/``endS`` in seconds since
    the run's start). GPU-hours and USD.

    Windows follow OpenCost's allocation: each row carries the interval its pod ran, clipped to the
    run (``start``/``end`` RFC 3339 after ``epoch``, ``minutes`` = end - start), and
    ``gpuCount`` = gpuHours / (minutes / 60), OpenCost's ``Allocation.GPUs()`` (the time-average), so
    gpuHours = gpuCount x minutes / 60 on every row. A pod killed and started again is, in Kubernetes,
    a new pod object that OpenCost reports as its own allocation, so every attempt is its own row: the
    surviving run (``workload``), each thrown-away run (``failure_waste``, ``namespace/pod/__failure__``;
    ``preemption_waste``, ``namespace/pod/__preemption__`` when a pod preempted it)
    with the part a durable checkpoint kept split off at the attempt's start as a ``workload`` row.
    Gang ranks restarted in place (no attempt window of their own) and ``__over_provisioned__``
    carry the window of the run they belong to; cluster lines (``cluster/__idle__`` as OpenCost
    names it, and this extension's ``cluster/__stranded__``, ``cluster/__unavailable__``) carry the
    whole run.

    ``cpuCores`` and ``cpuCoreRequestAverage``: the pod's CPU request (cores); ``cpuCoreHours`` =
    cpuCores x minutes / 60; ``cpuCost`` 0 because the price book prices GPU-hours only (its GPU-node
    prices include the host's share). RAM/PV/network columns are 0.

    ``services``: :func:`over_provisioning`'s result for this run (computed here when None); each
    computed service's excess replica GPU-time moves from its pods' workload lines to one
    ``namespace/__over_provisioned__`` line per node pool (in proportion to the GPU-hours the service's
    pods ran there), priced as that pool.

    Every row names its ``nodePool`` and the pool's ``purchase`` kind; ``gpuCost`` = gpuHours x the
    pool's USD per GPU-hour (spot pools at the spot price).

    Raises UserError when a node pool's GPU model has no price of the pool's purchase kind (naming the
    model and the pool), when ``epoch``
    is not RFC 3339 with an offset, or when a service's capacity cannot be computed.
    """
    c, rec = run.cluster, run.recorder
    t_lo, t_hi = float(rec.start_s), float(run.horizon_s)
    pool_price = pool_prices(run, prices)  # refuses an unpriced pool before any work
    _epoch_ms(epoch)  # refuse a bad epoch before any work
    per_model = rec.per_model_totals()
    pool_unav = rec.per_pool_totals()["unavailable"]
    unprov = unprovisioned_by_pool(run)
    led = ledger
    owners, names = np.asarray(run.pods.owners, dtype=object), np.asarray(run.pods.names, dtype=object)
    cpu = run.pods.cpu_milli.astype(float) / 1000.0
    node_names = np.array([*c.node_names, ""], dtype=object)
    models = np.array([*c.models, ""], dtype=object)
    pool_of_node = np.array([c.pools[k].name for k in c.node_pool.tolist()] + [""], dtype=object)
    pool_of_name = dict(zip(node_names.tolist(), pool_of_node.tolist(), strict=True))

    def frame(pod, node_col, model_col, cat, gpu_h, t0, t1, name_suffix="", cpu_cores=None):
        pod = np.asarray(pod, dtype=np.int64)
        ns = owners[pod]
        return pd.DataFrame(
            {
                "name": [f"{o}/{n}{name_suffix}" for o, n in zip(ns, names[pod], strict=True)],
                "namespace": ns,
                "pod": names[pod],
                "node": node_col,
                "nodePool": [pool_of_name.get(x, "") for x in node_col],
                "gpuModel": model_col,
                "costCategory": cat,
                "gpuHours": np.asarray(gpu_h, dtype=float),
                "startS": np.asarray(t0, dtype=float),
                "endS": np.asarray(t1, dtype=float),
                "cpuCores": cpu[pod] if cpu_cores is None else cpu_cores,
            }
        )

    # workload: each pod's surviving run, in its own window (the ledger's start/end; horizon if running)
    lost = np.asarray(led["lost_gpu_hours"], dtype=float)
    last = np.asarray(led["gpu_hours"], dtype=float) - lost
    keep = np.flatnonzero((np.asarray(led["num_gpu"]) > 0) & (last > 0))
    parts = [
        frame(
            keep,
            led["node"].to_numpy()[keep],
            led["gpu_model"].to_numpy()[keep],
            "workload",
            last[keep],
            np.clip(led["start_s"].to_numpy(dtype=float)[keep], t_lo, t_hi),
            np.clip(led["end_s"].to_numpy(dtype=float)[keep], t_lo, t_hi),
        )
    ]
    # each thrown-away attempt in its own window; the part a durable checkpoint kept (execution's
    # kept_on_kill, per pod and node) is the attempt's head: filled into that pair's attempts in order
    lr = pd.DataFrame(run.lost_runs or np.zeros((0, 3)), columns=["pod", "node", "milli_s"]).astype(
        {"pod": np.int64, "node": np.int64, "milli_s": float}
    )
    win = np.asarray(getattr(run, "lost_run_windows", None) or np.zeros((0, 2)), dtype=float).reshape(-1, 2)
    if len(win) != len(lr):  # a result without attempt windows: the pod's whole stay in the run
        win = np.column_stack([np.full(len(lr), t_lo), np.full(len(lr), t_hi)])
    lr["t0"], lr["t1"] = win[:, 0], win[:, 1]
    by = list(getattr(run, "lost_run_by", None) or [])
    lr["by"] = np.asarray(by if len(by) == len(lr) else [-1] * len(lr), dtype=np.int64)  # preemptor, -1: none
    lr = lr[(c.node_model[lr["node"].to_numpy()] >= 0) if len(lr) else np.zeros(0, dtype=bool)]
    kept_left: dict[tuple[int, int], float] = {}
    for p_, n_, ms in kept_on_kill(run):
        if ms > 0:
            kept_left[(p_, n_)] = kept_left.get((p_, n_), 0.0) + ms
    k_ms = np.zeros(len(lr))
    for j, (p_, n_, ms) in enumerate(zip(lr["pod"].tolist(), lr["node"].tolist(), lr["milli_s"].tolist(), strict=True)):
        left = kept_left.get((p_, n_), 0.0)
        if left > 0:
            k_ms[j] = min(left, ms)
            kept_left[(p_, n_)] = left - k_ms[j]
    if len(lr):
        rate = np.where(lr["t1"] > lr["t0"], lr["milli_s"] / np.maximum(lr["t1"] - lr["t0"], 1e-300), 0.0)
        split = lr["t0"].to_numpy() + np.where(rate > 0, k_ms / np.where(rate > 0, rate, 1.0), 0.0)
        t0c, t1c = np.clip(lr["t0"].to_numpy(), t_lo, t_hi), np.clip(lr["t1"].to_numpy(), t_lo, t_hi)
        split = np.clip(split, t0c, t1c)
        nodes, mi = lr["node"].to_numpy(), c.node_model[lr["node"].to_numpy()]
        kk = k_ms > 0
        parts.append(
            frame(
                lr["pod"].to_numpy()[kk],
                node_names[nodes[kk]],
                models[mi[kk]],
                "workload",
                k_ms[kk] / MS_PER_GPU_HOUR,
                t0c[kk],
                split[kk],
            )
        )
        waste = (lr["milli_s"].to_numpy() - k_ms) > 1e-6
        pre = lr["by"].to_numpy() >= 0
        for ff, cat, suffix in (
            (waste & ~pre, "failure_waste", "/__failure__"),
            (waste & pre, "preemption_waste", "/__preemption__"),
        ):
            parts.append(
                frame(
                    lr["pod"].to_numpy()[ff],
                    node_names[nodes[ff]],
                    models[mi[ff]],
                    cat,
                    (lr["milli_s"].to_numpy() - k_ms)[ff] / MS_PER_GPU_HOUR,
                    split[ff],
                    t1c[ff],
                    suffix,
                )
            )
    # gang ranks restarted in place (no engine attempt of their own): the kept part is workload, the
    # rest failure waste, in the window of the pod's run (the whole run when it has none); their CPU
    # is already on that run's row
    in_place = (run.subsystems.get("execution") or {}).get("held_in_place") or []
    ip = [(int(p_), int(n_), float(lo), float(k)) for p_, n_, lo, k in in_place if c.node_model[int(n_)] >= 0]
    if ip:
        pods = np.array([r[0] for r in ip], dtype=np.int64)
        nodes = np.array([r[1] for r in ip], dtype=np.int64)
        s0 = led["start_s"].to_numpy(dtype=float)[pods]
        s1 = led["end_s"].to_numpy(dtype=float)[pods]
        ok = np.isfinite(s0) & np.isfinite(s1) & (s1 > s0)
        t0 = np.clip(np.where(ok, s0, t_lo), t_lo, t_hi)
        t1 = np.clip(np.where(ok, s1, t_hi), t_lo, t_hi)
        mi = c.node_model[nodes]
        for col, cat, suf in ((3, "workload", ""), (2, "failure_waste", "/__failure__")):
            h = np.array([r[col] for r in ip]) / MS_PER_GPU_HOUR
            m = h > 1e-6 / MS_PER_GPU_HOUR
            parts.append(
                frame(pods[m], node_names[nodes[m]], models[mi[m]], cat, h[m], t0[m], t1[m], suf, np.zeros(m.sum()))
            )
    work = pd.concat([p_ for p_ in parts], ignore_index=True)
    # over-provisioned serving: each service's excess replica GPU-time, taken from its pods'
    # workload lines in proportion to their GPU-hours (per model, so every model still sums)
    over_rows = []
    for sv in over_provisioning(run) if services is None else services:
        h = float(sv.get("over_provisioned_gpu_hours") or 0.0)
        if sv.get("status") != "computed" or h <= 0:
            continue
        mask = ((work["namespace"] == sv["namespace"]) & (work["costCategory"] == "workload")).to_numpy()
        held = float(work.loc[mask, "gpuHours"].sum())
        if held <= 0:
            continue
        moved = work.loc[mask, "gpuHours"] * min(h / held, 1.0)
        work.loc[mask, "gpuHours"] = work.loc[mask, "gpuHours"] - moved
        sub = work.loc[mask]
        for pool, mh in moved.groupby(sub["nodePool"]).sum().items():
            on = sub["nodePool"] == pool
            over_rows.append(
                {
                    "name": f"{sv['namespace']}/__over_provisioned__",
                    "namespace": sv["namespace"],
                    "pod": "",
                    "node": "",
                    "nodePool": pool,
                    "gpuModel": pool_price[pool][0],
                    "costCategory": "over_provisioned",
                    "gpuHours": float(mh),
                    "startS": float(sub.loc[on, "startS"].min()),
                    "endS": float(sub.loc[on, "endS"].max()),
                    "cpuCores": 0.0,
                }
            )
    if over_rows:
        work = pd.concat([work, pd.DataFrame(over_rows)], ignore_index=True)
    used = work.groupby(["nodePool", "costCategory"])["gpuHours"].sum()
    # cluster lines per node pool, over the whole run, each priced as its pool is bought
    rows: list[dict[str, Any]] = []
    idle_rec = per_model["idle"] / MS_PER_GPU_HOUR
    total_idle = float(idle_rec.sum())
    frag_h = min(float(rec.frag_ms.sum()) / MS_PER_GPU_HOUR, total_idle)
    pool_gpus = np.bincount(c.node_pool, weights=c.gpu_count, minlength=len(c.pools))
    lines: dict[str, dict[str, float]] = {}
    for j, p in enumerate(c.pools):
        if p.name not in pool_price:
            continue
        full = float(pool_gpus[j]) * (t_hi - t_lo) / 3600.0
        billed = full - unprov.get(p.name, 0.0)
        unav = max(0.0, float(pool_unav[j]) / MS_PER_GPU_HOUR - unprov.get(p.name, 0.0))
        w = sum(float(used.get((p.name, cat), 0.0)) for cat in POD_CATEGORIES)
        idle = billed - w - unav  # OpenCost: asset - workload
        # differences of equal float sums leave +-1e-15: a rounding residue is 0, never a credit;
        # anything beyond rounding stays visible (the idle check against the recorder judges it)
        lines[p.name] = {"unavailable": unav, "idle": 0.0 if abs(idle) <= 1e-9 * max(full, 1.0) else idle}
    for k, m in enumerate(c.models):
        mine = [q for q in lines if pool_price[q][0] == m]
        idle_m = sum(lines[q]["idle"] for q in mine)
        # stranded (the recorder's fragmentation measure) per model in proportion to its recorded idle time,
        # then to the model's pools in proportion to their idle GPU-hours
        stranded = frag_h * (float(idle_rec[k]) / total_idle) if total_idle > 0 else 0.0
        stranded = min(max(stranded, 0.0), max(idle_m, 0.0))
        pos = sum(max(lines[q]["idle"], 0.0) for q in mine)
        for q in mine:
            share = max(lines[q]["idle"], 0.0) / pos if pos > 0 else 0.0
            lines[q]["stranded"] = min(stranded * share, max(lines[q]["idle"], 0.0))
    for pool, ln in lines.items():
        for suffix, cat, h in (
            ("__unavailable__", "unavailable", ln["unavailable"]),
            ("__stranded__", "stranded", ln["stranded"]),
            ("__idle__", "idle", ln["idle"] - ln["stranded"]),
        ):
            rows.append(
                {
                    "name": f"{cluster_name}/{suffix}",
                    "namespace": "",
                    "pod": "",
                    "node": "",
                    "nodePool": pool,
                    "gpuModel": pool_price[pool][0],
                    "costCategory": cat,
                    "gpuHours": h,
                    "startS": t_lo,
                    "endS": t_hi,
                    "cpuCores": 0.0,
                }
            )
    df = pd.concat([work, pd.DataFrame(rows)], ignore_index=True)
    df["cluster"] = cluster_name
    df["minutes"] = (df["endS"] - df["startS"]) / 60.0
    hours = df["minutes"] / 60.0
    pos = hours > 0
    df["gpuCount"] = np.where(pos, df["gpuHours"] / hours.where(pos, 1.0), 0.0)  # OpenCost Allocation.GPUs()
    df["cpuCoreRequestAverage"] = df["cpuCores"]
    df["cpuCoreHours"] = df["cpuCores"] * hours
    df["start"] = rfc3339(df["startS"].to_numpy(), epoch)
    df["end"] = rfc3339(df["endS"].to_numpy(), epoch)
    df["purchase"] = df["nodePool"].map({q: v[1] for q, v in pool_price.items()})
    df["gpuCost"] = df["gpuHours"] * df["nodePool"].map({q: v[2] for q, v in pool_price.items()}).astype(float)
    for col in OPENCOST_COLUMNS:
        if col not in df.columns:
            df[col] = 0.0
    df["totalCost"] = df["gpuCost"] + df["cpuCost"] + df["ramCost"] + df["pvCost"] + df["networkCost"]
    return df[[*OPENCOST_COLUMNS, *EXTENSION_COLUMNS]]


def over_provisioning(run: RunResult) -> list[dict[str, Any]]:
    """Per service (execution kind ``service``): the replicas its load needs and the replica
    GPU-time held beyond them, from the numbers of this run.

    needed = max(min_replicas, ceil(offered_rps / (capacity_rps x target_utilization)))
    (sim/execution.ServiceLoad; capacity measured or from sim/serving.capacity_at_slo on the GPU
    model and GPU count the replicas ran on). With R(t) the service's replicas running at t (every
    attempt of its pods, from the execution subsystem's summary: a replica killed once Ready lost
    nothing, so all its attempts are the service's usage), over-provisioned GPU-hours = integral of
    max(0, R(t) - needed) x GPUs per replica; replica-hours short = integral of
    max(0, needed - R(t)) over the service's window (first submit to the end of its durations,
    capped at the horizon). Start-up and warm-up of a replica count as held (it holds its GPUs).

    Returns one dict per service: ``status`` ``computed`` with ``namespace``, ``offered_rps``,
    ``capacity_rps``, ``capacity_source``, ``target_utilization``, ``needed_replicas``,
    ``mean_replicas``, ``gpus_per_replica``, ``gpu_model``, ``held_gpu_hours``,
    ``over_provisioned_gpu_hours``, ``replica_hours_short``, ``offered_source``; or ``not computed``
    with ``why`` (no ``load`` declared, replicas of different sizes or GPU models, no replica ran).
    Raises UserError when the serving model does not fit the replicas' GPUs."""
    import math as _m

    from gpuinfra.sim.execution import ServiceLoad

    specs = (run.subsystems.get("execution") or {}).get("services") or []
    c = run.cluster
    out: list[dict[str, Any]] = []
    horizon = float(run.horizon_s)
    for sv in specs:
        owner = sv["owner"]
        where = f"execution.kinds[owner={owner}].load"
        if sv.get("load") is None:
            out.append(
                {
                    "namespace": owner,
                    "status": "not computed",
                    "why": f"{where} is missing: the service declares no offered load (offered_rps, source) to size "
                    "its replicas against",
                }
            )
            continue
        load = ServiceLoad(**sv["load"])
        runs = pd.DataFrame(sv.get("runs") or [], columns=["pod", "node", "start", "end"])
        runs = runs[(runs["end"] > runs["start"]) & (runs["node"] >= 0)]
        if not len(runs):
            out.append({"namespace": owner, "status": "not computed", "why": "no replica of the service ran"})
            continue
        pod = runs["pod"].to_numpy(dtype=np.int64)
        per = run.pods.num_gpu[pod] * run.pods.gpu_milli[pod] / MILLI_PER_GPU
        sizes = sorted(set(np.round(per, 6).tolist()))
        mi = c.node_model[runs["node"].to_numpy(dtype=np.int64)]
        models = sorted({c.models[m] if m >= 0 else "no GPU" for m in mi})
        if len(sizes) > 1 or len(models) > 1:
            out.append(
                {
                    "namespace": owner,
                    "status": "not computed",
                    "why": f"replicas of different sizes ({sizes} GPUs) or GPU models ({', '.join(models)}): one "
                    "per-replica capacity does not describe them",
                }
            )
            continue
        g, model = float(sizes[0]), models[0]
        if load.replica_capacity_rps is not None:
            cap, src = load.replica_capacity_rps, load.capacity_source
        else:
            cap, src = _capacity(load, model, int(run.pods.num_gpu[pod[0]]))
        needed = max(load.min_replicas, _m.ceil(load.offered_rps / (cap * load.target_utilization) - 1e-9))
        # R(t): +1 at each attempt's start, -1 at its end (running ones end at the horizon)
        t0 = runs["start"].to_numpy(dtype=float)
        t1 = np.minimum(runs["end"].to_numpy(dtype=float), horizon)
        win0 = float(run.pods.submit_s[[i for i, o in enumerate(run.pods.owners) if o == owner]].min())
        durs = run.pods.submit_s + run.pods.duration_s
        win1 = min(horizon, float(max(durs[i] for i, o in enumerate(run.pods.owners) if o == owner)))
        ts = np.concatenate([t0, t1, [win0, win1]])
        dr = np.concatenate([np.ones(len(t0)), -np.ones(len(t1)), [0.0, 0.0]])
        order = np.lexsort((dr, ts))
        ts, dr = ts[order], dr[order]
        r = np.cumsum(dr)[:-1]
        dt = np.diff(ts)
        over_s = float((np.maximum(r - needed, 0.0) * dt).sum())
        inwin = np.clip(np.minimum(ts[1:], win1) - np.maximum(ts[:-1], win0), 0.0, None)
        short_s = float((np.maximum(needed - r, 0.0) * inwin).sum())
        held_h = float(((t1 - t0) * g).sum()) / 3600.0
        out.append(
            {
                "namespace": owner,
                "status": "computed",
                "offered_rps": load.offered_rps,
                "offered_source": load.source,
                "capacity_rps": cap,
                "capacity_source": src,
                "target_utilization": load.target_utilization,
                "min_replicas": load.min_replicas,
                "needed_replicas": needed,
                "mean_replicas": float((r * dt).sum()) / (win1 - win0) if win1 > win0 else 0.0,
                "gpus_per_replica": g,
                "gpu_model": model,
                "held_gpu_hours": held_h,
                "over_provisioned_gpu_hours": min(over_s * g / 3600.0, held_h),
                "replica_hours_short": short_s / 3600.0,
            }
        )
    return out


def _capacity(load: Any, gpu: str, tp: int) -> tuple[float, str]:
    """One replica's sustained requests/s at the SLO, from the request-level serving simulator."""
    key = (load.model, load.precision, load.batching, str(load.input_tokens), str(load.output_tokens))
    key += (load.slo_ttft_s, load.slo_tpot_s, load.slo_attainment, gpu, tp)
    if key not in _CAPACITY:
        from gpuinfra.sim.serving import Batching, ServingConfig, Slo, capacity_at_slo

        cfg = ServingConfig(
            model=load.model,
            gpu=gpu,
            precision=load.precision,
            tp=tp,
            batching=Batching(kind=load.batching),
            slo=Slo(load.slo_ttft_s, load.slo_tpot_s),
        )
        r = capacity_at_slo(cfg, load.input_tokens, load.output_tokens, attainment=load.slo_attainment)
        _CAPACITY[key] = (float(r["rps"]), r["source"])
    return _CAPACITY[key]


_CAPACITY: dict[tuple, tuple[float, str]] = {}
"""Capacities already computed in this process (a pure function of its key: same seed, same window)."""


def kept_on_kill(run: RunResult) -> list[tuple[int, int, float]]:
    """(pod, node, GPU milli-seconds) of killed attempts that a durable checkpoint kept, from the
    execution subsystem's summary (empty without one): the engine's ``lost_runs`` count the
    whole attempt; this part of it is not lost (sim/execution.lost_on_kill_s)."""
    rows = (run.subsystems.get("execution") or {}).get("kept_on_kill") or []
    return [(int(p), int(n), float(ms)) for p, n, ms in rows]


def unprovisioned_by_model(run: RunResult) -> dict[str, float]:
    """GPU-hours by model that no one paid for (surge/green nodes before creation, deleted or reclaimed nodes,
    node slots the cluster-autoscaler has not provisioned)."""
    out: dict[str, float] = {}
    for name in ("upgrade", "spot", "autoscaler"):
        for m, h in (run.subsystems.get(name) or {}).get("unprovisioned_gpu_hours_by_model", {}).items():
            out[m] = out.get(m, 0.0) + float(h)
    return out


def unprovisioned_by_pool(run: RunResult) -> dict[str, float]:
    """GPU-hours by node pool that no one paid for: :func:`unprovisioned_by_model` per pool."""
    out: dict[str, float] = {}
    for name in ("upgrade", "spot", "autoscaler"):
        for q, h in (run.subsystems.get(name) or {}).get("unprovisioned_gpu_hours_by_pool", {}).items():
            out[q] = out.get(q, 0.0) + float(h)
    return out


def billed_gpu_hours_by_pool(run: RunResult) -> dict[str, float]:
    """Node pool (with GPUs) -> GPU-hours billed over the run's window (its start to its horizon): the
    pool's GPUs x the window, less its unprovisioned hours (:func:`unprovisioned_by_pool`)."""
    c = run.cluster
    dur = float(run.horizon_s - run.recorder.start_s)
    unprov = unprovisioned_by_pool(run)
    gpus = np.bincount(c.node_pool, weights=c.gpu_count, minlength=len(c.pools))
    out = {}
    for j, p in enumerate(c.pools):
        if p.gpu_model and p.gpus_per_node > 0 and p.count > 0:
            full = float(gpus[j]) * dur / 3600.0
            h = full - unprov.get(p.name, 0.0)
            # a pool never provisioned bills 0: the difference of two equal sums of floats may be
            # -1e-15 (rounding), never a credit; anything beyond rounding is left to show a bug
            out[p.name] = 0.0 if abs(h) <= 1e-9 * max(full, 1.0) else h
    return out


def bill_by_pool(run: RunResult, prices: PriceBook) -> list[dict[str, Any]]:
    """One row per node pool with GPUs: ``pool``, ``gpu_model``, ``purchase`` (``on_demand``/``spot``),
    ``usd_per_gpu_hour``, ``billed_gpu_hours`` (GPUs x the run's window less the pool's unprovisioned
    hours: reclaimed spot nodes, surge/green nodes before creation, deleted nodes, node slots the
    cluster-autoscaler has not provisioned) and ``usd``.
    Raises UserError when a pool's GPU model has no price of its purchase kind."""
    price = pool_prices(run, prices)
    out = []
    for pool, h in billed_gpu_hours_by_pool(run).items():
        model, kind, usd = price[pool]
        out.append(
            {
                "pool": pool,
                "gpu_model": model,
                "purchase": kind,
                "usd_per_gpu_hour": usd,
                "billed_gpu_hours": h,
                "usd": h * usd,
            }
        )
    return out


def bill(run: RunResult, prices: PriceBook) -> dict[str, float]:
    """The GPU bill (USD): each node pool's provisioned GPU-hours x the price of how it is bought
    (:func:`bill_by_pool`), summed per GPU model, and ``total``."""
    out: dict[str, float] = {m: 0.0 for m in run.cluster.models}
    for r in bill_by_pool(run, prices):
        out[r["gpu_model"]] += r["usd"]
    out["total"] = sum(out.values())
    return out


def check(run: RunResult, table: pd.DataFrame) -> dict[str, Any]:
    """Independent check of the residual idle line: attributed idle (+ stranded) against the
    recorder's integral of idle GPU-time. ``ok`` within the run invariants' tolerance."""
    rec_idle = float(run.recorder.per_model_totals()["idle"].sum()) / MS_PER_GPU_HOUR
    att = float(table.loc[table["costCategory"].isin(["idle", "stranded"]), "gpuHours"].sum())
    cap = float(run.cluster.capacity_milli.sum()) * float(run.horizon_s - run.recorder.start_s) / MS_PER_GPU_HOUR
    rel = abs(att - rec_idle) / cap if cap else 0.0
    return {
        "idle_attributed_gpu_hours": att,
        "idle_recorded_gpu_hours": rec_idle,
        "relative_error": rel,
        "ok": rel <= BALANCE_REL_TOL,
    }


def aggregate(table: pd.DataFrame, by: str = "namespace") -> pd.DataFrame:
    """Sum of GPU-hours and cost by ``namespace``, ``pod``, ``costCategory`` or ``gpuModel``;
    cluster lines (idle, stranded, unavailable) are keyed ``__idle__``, ``__stranded__``, ``__unavailable__``
    as OpenCost keys its idle allocation when aggregating."""
    key = table[by].where(table[by] != "", table["name"].str.rsplit("/", n=1).str[-1])
    g = table.assign(_k=key).groupby(["_k", "costCategory"], sort=True)[["gpuHours", "totalCost"]].sum()
    return g.reset_index().rename(columns={"_k": by})


def silent_burn(table: pd.DataFrame) -> pd.DataFrame:
    """Where money burns without anyone asking for it, ranked by cost: every non-workload line
    aggregated by (category, namespace or cluster line), largest first, with its share of the bill."""
    t = table[table["costCategory"] != "workload"]
    key = t["namespace"].where(t["namespace"] != "", t["name"].str.rsplit("/", n=1).str[-1])
    g = t.assign(where=key).groupby(["costCategory", "where"], sort=True)[["gpuHours", "totalCost"]].sum()
    g = g.reset_index().sort_values(["totalCost", "costCategory", "where"], ascending=[False, True, True])
    total = float(table["totalCost"].sum())
    g["share_of_bill"] = g["totalCost"] / total if total else 0.0
    return g[g["gpuHours"] > 1e-9].reset_index(drop=True)
