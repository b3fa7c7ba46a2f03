"""Cost attribution as OpenCost defines it, extended for GPUs: every billed GPU-second once.

OpenCost (spec v0.1, facts: cost-lifecycle-security.md section 2.1): total cluster cost =
workload costs + cluster idle costs (+ overhead, none here); *idle = asset cost - workload
cost*. Its allocation API names rows ``namespace/pod`` and the idle row ``__idle__`` and reports
``gpuHours``, ``gpuCost``, ``totalCost`` per row. This module keeps those names and splits the
GPU bill into lines, each GPU-second of a *provisioned* GPU counted exactly once:

- ``workload``: a pod's last (surviving) run, GPU-hours x the price of the model it ran on;
- ``over_provisioned``: GPU-time that inference replicas held beyond what their offered load
  needs at the SLO (:func:`over_provisioning`), moved out of the service pods' workload lines into
  ``namespace/__over_provisioned__``; services without a declared load are reported "not computed";
- ``failure_waste``: runs that were thrown away -- killed by a fault, crashed on a poisoned GPU,
  preempted, evicted by an upgrade drain or a spot reclaim (the engine's ``lost_runs``); charged
  to the pod's namespace as its own line (``namespace/pod/__failure__``). For a training pod the
  execution subsystem checkpoints, only the GPU-time since its last durable checkpoint is lost;
  the part before it moves to the pod's workload line (:func:`kept_on_kill`);
- ``__unavailable__``: GPUs out of service while still billed (repair, reimage during an upgrade);
- ``__stranded__``: idle GPU-time that the run's typical pods could not use (FGD fragmentation,
  the recorder's measure), per model in proportion to that model's idle time;
- ``__idle__``: the rest, OpenCost's residual (billed - everything above), so the lines sum to the
  bill by construction; the recorder's own idle integral checks it independently (``check``).

GPU-time of nodes that were not provisioned (surge/green nodes before they exist, nodes deleted
by an upgrade, reclaimed spot nodes) is not billed and not attributed. CPU, RAM, storage and
network costs are 0 here: the simulator prices GPUs only (GPU-node prices per GPU-hour include
the host's share on AWS/Azure rows; catalog/prices.py).
"""

from __future__ import annotations

import math
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
"""Columns of OpenCost's allocation API (``/allocation``), in its camelCase; ``costCategory``
and ``gpuModel`` are this extension's."""

CATEGORIES = ("workload", "over_provisioned", "failure_waste", "unavailable", "stranded", "idle")


def _price(prices: PriceBook, model: str) -> float:
    p = prices.usd_per_gpu_hour.get(model)
    if p is None or not math.isfinite(p):
        raise UserError(
            f"no price for GPU model '{model}', which the scenario's cluster holds: its GPU-time cannot be billed",
            where=f"prices (row for {model})",
            expected="a catalog price for every GPU model of the cluster",
            fix=f"add prices.overrides.{model} with on_demand_usd_per_gpu_hour and its source, or same_as",
        )
    return float(p)


def attribute(
    run: RunResult,
    ledger: pd.DataFrame,
    prices: PriceBook,
    *,
    cluster_name: str = "cluster",
    services: list[dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per attributed line, with OpenCost's allocation columns plus ``costCategory`` and
    ``gpuModel``. GPU-hours and USD; CPU/RAM/PV/network columns are 0 (GPU pricing only).

    ``services``: :func:`over_provisioning`'s result for this run (computed here when None); each
    computed service's excess replica GPU-time moves from its pods' workload lines to one
    ``namespace/__over_provisioned__`` line per GPU model.

    Raises UserError when a GPU model of the cluster has no price (naming the model), or when a
    service's capacity cannot be computed (see :func:`over_provisioning`).
    """
    c, rec = run.cluster, run.recorder
    start, end = float(rec.start_s), float(run.horizon_s)
    minutes = (end - start) / 60.0
    price = {m: _price(prices, m) for m in c.models}
    per_model = rec.per_model_totals()
    unprov = unprovisioned_by_model(run)
    rows: list[dict[str, Any]] = []

    def add(name, ns, pod, node, model, cat, gpu_h, gpus=0.0):
        rows.append(
            {
                "name": name,
                "namespace": ns,
                "pod": pod,
                "node": node,
                "gpuModel": model,
                "costCategory": cat,
                "gpuHours": gpu_h,
                "gpuCount": gpus,
            }
        )

    # workload: each pod's surviving run (vectorised: one row per pod that holds GPU-time)
    led = ledger
    lost = np.asarray(led["lost_gpu_hours"], dtype=float)
    last = np.asarray(led["gpu_hours"], dtype=float) - lost
    keep = (np.asarray(led["num_gpu"]) > 0) & (last > 0)
    wl = led.loc[keep, ["owner", "name", "node", "gpu_model", "num_gpu"]]
    wl_h = last[keep]
    work = pd.DataFrame(
        {
            "name": wl["owner"].astype(str) + "/" + wl["name"].astype(str),
            "namespace": wl["owner"].to_numpy(),
            "pod": wl["name"].to_numpy(),
            "node": wl["node"].to_numpy(),
            "gpuModel": wl["gpu_model"].to_numpy(),
            "costCategory": "workload",
            "gpuHours": wl_h,
            "gpuCount": wl["num_gpu"].to_numpy(dtype=float),
        }
    )
    owners, names = np.asarray(run.pods.owners, dtype=object), np.asarray(run.pods.names, dtype=object)
    # killed attempts of checkpointed training pods: the part a durable checkpoint kept is the
    # pod's useful work (workload), only the rest is failure waste (sim/execution.lost_on_kill_s)
    in_place = (run.subsystems.get("execution") or {}).get("held_in_place") or []
    kept = pd.DataFrame(
        kept_on_kill(run) + [(int(p), int(n), float(k)) for p, n, _, k in in_place], columns=["pod", "node", "milli_s"]
    ).astype({"pod": np.int64, "node": np.int64, "milli_s": float})
    kept = kept[kept["milli_s"] > 0]
    if len(kept):
        kmi = c.node_model[kept["node"].to_numpy()]
        kept = kept[kmi >= 0]
        kw = pd.DataFrame(
            {
                "name": [f"{o}/{n}" for o, n in zip(owners[kept["pod"]], names[kept["pod"]], strict=True)],
                "namespace": owners[kept["pod"]],
                "pod": names[kept["pod"]],
                "node": [c.node_names[n] for n in kept["node"]],
                "gpuModel": [c.models[m] for m in c.node_model[kept["node"].to_numpy()]],
                "costCategory": "workload",
                "gpuHours": kept["milli_s"].to_numpy() / MS_PER_GPU_HOUR,
                "gpuCount": run.pods.num_gpu[kept["pod"].to_numpy()].astype(float),
            }
        )
        work = pd.concat([work, kw], ignore_index=True)
        work = work.groupby(
            ["name", "namespace", "pod", "node", "gpuModel", "costCategory"], sort=False, as_index=False
        ).agg(gpuHours=("gpuHours", "sum"), gpuCount=("gpuCount", "max"))
    # over-provisioned serving: each service's excess replica GPU-time, taken from its pods'
    # workload lines in proportion to their GPU-hours (per model, so every model still sums)
    over_rows = []
    for sv in over_provisioning(run) if services is None else services:
        h = float(sv.get("over_provisioned_gpu_hours") or 0.0)
        if sv.get("status") != "computed" or h <= 0:
            continue
        mask = (work["namespace"] == sv["namespace"]).to_numpy()
        held = float(work.loc[mask, "gpuHours"].sum())
        if held <= 0:
            continue
        moved = work.loc[mask, "gpuHours"] * min(h / held, 1.0)
        work.loc[mask, "gpuHours"] = work.loc[mask, "gpuHours"] - moved
        for m, mh in moved.groupby(work.loc[mask, "gpuModel"]).sum().items():
            over_rows.append(
                {
                    "name": f"{sv['namespace']}/__over_provisioned__",
                    "namespace": sv["namespace"],
                    "pod": "",
                    "node": "",
                    "gpuModel": m,
                    "costCategory": "over_provisioned",
                    "gpuHours": float(mh),
                    "gpuCount": 0.0,
                }
            )
    if over_rows:
        work = pd.concat([work, pd.DataFrame(over_rows)], ignore_index=True)
    work_by_model = dict.fromkeys(c.models, 0.0)
    for m, h in work.groupby("gpuModel")["gpuHours"].sum().items():
        work_by_model[m] += float(h)
    # failure waste: every thrown-away run, on the model of the node it ran on, less what a checkpoint kept
    fail_by_model = dict.fromkeys(c.models, 0.0)
    fail = pd.DataFrame(run.lost_runs or np.zeros((0, 3)), columns=["pod", "node", "milli_s"]).astype(
        {"pod": np.int64, "node": np.int64, "milli_s": float}
    )
    if len(kept):
        fail = pd.concat([fail, kept.assign(milli_s=-kept["milli_s"])], ignore_index=True)
    # gang ranks the execution subsystem restarted in place (no engine run): what they held is theirs
    # to account -- the part a checkpoint kept is in ``kept`` above (workload), the rest is waste
    if in_place:
        fail = pd.concat(
            [fail, pd.DataFrame([(int(p), int(n), float(lo + k)) for p, n, lo, k in in_place], columns=fail.columns)],
            ignore_index=True,
        )
    fail["mi"] = c.node_model[fail["node"].to_numpy()] if len(fail) else np.zeros(0, dtype=np.int64)
    fail = fail[fail["mi"] >= 0].groupby(["pod", "mi"], sort=True)["milli_s"].sum().reset_index()
    fail = fail[fail["milli_s"] > 1e-6]
    fw = pd.DataFrame(
        {
            "name": [f"{o}/{n}/__failure__" for o, n in zip(owners[fail["pod"]], names[fail["pod"]], strict=True)],
            "namespace": owners[fail["pod"]],
            "pod": names[fail["pod"]],
            "node": "",
            "gpuModel": [c.models[m] for m in fail["mi"]],
            "costCategory": "failure_waste",
            "gpuHours": fail["milli_s"].to_numpy() / MS_PER_GPU_HOUR,
            "gpuCount": 0.0,
        }
    )
    for m, h in fw.groupby("gpuModel")["gpuHours"].sum().items():
        fail_by_model[m] += float(h)
    # cluster lines per model
    idle_rec = per_model["idle"] / MS_PER_GPU_HOUR
    total_idle = float(idle_rec.sum())
    frag_h = min(float(rec.frag_ms.sum()) / MS_PER_GPU_HOUR, total_idle)
    for k, m in enumerate(c.models):
        cap_h = float(c.capacity_milli[k]) * (end - start) / MS_PER_GPU_HOUR
        billed = cap_h - unprov.get(m, 0.0)
        unav = max(0.0, float(per_model["unavailable"][k]) / MS_PER_GPU_HOUR - unprov.get(m, 0.0))
        idle = billed - work_by_model[m] - fail_by_model[m] - unav  # OpenCost: asset - workload
        stranded = frag_h * (float(idle_rec[k]) / total_idle) if total_idle > 0 else 0.0
        stranded = min(max(stranded, 0.0), max(idle, 0.0))
        add("__unavailable__", "", "", "", m, "unavailable", unav)
        add("__stranded__", "", "", "", m, "stranded", stranded)
        add("__idle__", "", "", "", m, "idle", idle - stranded)
    df = pd.concat([work, fw, pd.DataFrame(rows)], ignore_index=True)
    df["cluster"], df["start"], df["end"], df["minutes"] = cluster_name, start, end, minutes
    df["gpuCost"] = df["gpuHours"] * df["gpuModel"].map(price).astype(float)
    for col in OPENCOST_COLUMNS:
        if col not in df.columns:
            df[col] = 0.0
    df["totalCost"] = df["gpuCost"] + df["cpuCost"] + df["ramCost"] + df["pvCost"] + df["networkCost"]
    return df[[*OPENCOST_COLUMNS, "gpuModel", "costCategory"]]


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
    """GPU-hours by model that no one paid for (surge/green nodes before creation, deleted or reclaimed nodes)."""
    out: dict[str, float] = {}
    for name in ("upgrade", "spot"):
        for m, h in (run.subsystems.get(name) or {}).get("unprovisioned_gpu_hours_by_model", {}).items():
            out[m] = out.get(m, 0.0) + float(h)
    return out


def bill(run: RunResult, prices: PriceBook) -> dict[str, float]:
    """The GPU bill: provisioned GPU-hours x price per model, and its total (USD)."""
    c = run.cluster
    dur = float(run.horizon_s - run.recorder.start_s)
    unprov = unprovisioned_by_model(run)
    out = {}
    for k, m in enumerate(c.models):
        out[m] = (float(c.capacity_milli[k]) * dur / MS_PER_GPU_HOUR - unprov.get(m, 0.0)) * _price(prices, m)
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
    cluster lines (idle, stranded, unavailable) keep their ``__name__`` as the key."""
    key = table[by].where(table[by] != "", table["name"])
    g = table.assign(_k=key).groupby(["_k", "costCategory"], sort=True)[["gpuHours", "totalCost"]].sum()
    return g.reset_index().rename(columns={"_k": by})


def silent_burn(table: pd.DataFrame) -> pd.DataFrame:
    """Where money burns without anyone asking for it, ranked by cost: every non-workload line
    aggregated by (category, namespace or cluster line), largest first, with its share of the bill."""
    t = table[table["costCategory"] != "workload"]
    key = t["namespace"].where(t["namespace"] != "", t["name"])
    g = t.assign(where=key).groupby(["costCategory", "where"], sort=True)[["gpuHours", "totalCost"]].sum()
    g = g.reset_index().sort_values(["totalCost", "costCategory", "where"], ascending=[False, True, True])
    total = float(table["totalCost"].sum())
    g["share_of_bill"] = g["totalCost"] / total if total else 0.0
    return g[g["gpuHours"] > 1e-9].reset_index(drop=True)
