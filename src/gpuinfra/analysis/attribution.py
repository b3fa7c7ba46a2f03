"""Cost attribution as OpenCost defines it, extended for GPUs: every billed GPU-second once.

OpenCost (spec v0.1, facts: cost-lifecycle-security.md section 2.1): total cluster cost =
workload costs + cluster idle costs (+ overhead, none here); *idle = asset cost - workload
cost*. Its allocation API names rows ``namespace/pod`` and the idle row ``__idle__`` and reports
``gpuHours``, ``gpuCost``, ``totalCost`` per row. This module keeps those names and splits the
GPU bill into lines, each GPU-second of a *provisioned* GPU counted exactly once:

- ``workload``: a pod's last (surviving) run, GPU-hours x the price of the model it ran on;
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

CATEGORIES = ("workload", "failure_waste", "unavailable", "stranded", "idle")


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
    run: RunResult, ledger: pd.DataFrame, prices: PriceBook, *, cluster_name: str = "cluster"
) -> pd.DataFrame:
    """One row per attributed line, with OpenCost's allocation columns plus ``costCategory`` and
    ``gpuModel``. GPU-hours and USD; CPU/RAM/PV/network columns are 0 (GPU pricing only).

    Raises UserError when a GPU model of the cluster has no price (naming the model).
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
    kept = pd.DataFrame(kept_on_kill(run), columns=["pod", "node", "milli_s"]).astype(
        {"pod": np.int64, "node": np.int64, "milli_s": float}
    )
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
