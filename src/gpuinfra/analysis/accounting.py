"""Accounting of a replay: the per-pod ledger, per-interval metrics, the summary and its invariants.

Units: GPU-time is integrated in milli-GPU-seconds and reported in GPU-hours
(1 GPU-hour = 1000 milli x 3600 s). Cost = GPU-hours x the price book's USD per GPU-hour of the
GPU model the pod ran on; a shared-GPU pod pays for its milli share.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gpuinfra.models.cost import PriceBook
from gpuinfra.sim.cluster import MILLI_PER_GPU
from gpuinfra.sim.engine import OUTCOMES, RunResult
from gpuinfra.sim.invariants import BALANCE_REL_TOL

MILLI_S_PER_GPU_HOUR = MILLI_PER_GPU * 3600.0
SUMMARY_SCHEMA = "gpuinfra.summary/1"


@dataclass(frozen=True)
class RunMeta:
    scenario: str
    seed: int
    trace: str
    skipped_impossible: tuple[tuple[str, str], ...] = ()


def ledger(run: RunResult, prices: PriceBook) -> pd.DataFrame:
    """One row per pod: what it asked, where and when it ran, what it cost."""
    p, c = run.pods, run.cluster
    start, end = run.start_s, run.end_s.copy()
    running = np.array([o == "running_at_horizon" for o in run.outcome])
    end[running] = run.horizon_s
    ran = ~np.isnan(start)
    run_s = np.where(ran, end - start, 0.0)
    node_model = np.where(run.node >= 0, c.node_model[np.maximum(run.node, 0)], -1)
    # per GPU model (index -1: no node, no model), then gathered: no Python work per pod
    models = np.array([*c.models, ""], dtype=object)[node_model].tolist()
    price = np.array([prices.usd_per_gpu_hour.get(m) or math.nan for m in c.models] + [0.0])[node_model]
    # runs thrown away by preemption, each priced at the GPU model it ran on
    lost_h = np.zeros(len(p))
    lost_cost = np.zeros(len(p))
    for pod, node, milli_s in run.lost_runs:
        h = milli_s / MILLI_S_PER_GPU_HOUR
        m = c.node_model[node]
        lost_h[pod] += h
        lost_cost[pod] += h * ((prices.usd_per_gpu_hour.get(c.models[m]) or math.nan) if m >= 0 else 0.0)
    # what each pod held per GPU: its request, or one replica's share on a time-sliced node
    from gpuinfra.sim.plugins.node_resources_fit import replica_milli

    rm = replica_milli(c)[np.maximum(run.node, 0)]
    on_ts = (run.node >= 0) & (rm > 0) & (p.num_gpu == 1) & (p.gpu_milli == MILLI_PER_GPU)
    held = np.where(on_ts, rm, p.gpu_milli).astype(np.int64)
    last_h = run_s * p.num_gpu * held / MILLI_S_PER_GPU_HOUR
    # GPU-hours a pod held: its last run plus the runs preemption threw away
    gpu_hours = last_h + lost_h
    cost = np.where(p.num_gpu > 0, np.where(last_h > 0, last_h * price, 0.0) + lost_cost, 0.0)
    # the scheduling wait (kube-scheduler's scheduling latency): submit to the first bind. An evicted
    # pod's later start is not a wait for the scheduler: the time it spent out of a node after an
    # eviction is requeued_wait_s, and the work it lost is lost_gpu_hours
    first = run.first_start_s if run.first_start_s is not None else start
    wait = np.where(np.isnan(first), np.nan, first - p.submit_s)
    requeued = run.requeued_wait_s if run.requeued_wait_s is not None else np.zeros(len(p))
    return pd.DataFrame(
        {
            "name": p.names,
            "owner": p.owners,
            "qos": p.qos,
            "priority": p.priority,
            "submit_s": p.submit_s,
            "start_s": start,
            "end_s": np.where(ran | ~np.isnan(run.end_s), end, np.nan),
            "first_start_s": first,
            "wait_s": wait,
            "requeued_wait_s": requeued,
            "node": np.array([*c.node_names, ""], dtype=object)[run.node].tolist(),
            "devices": _device_lists(run.devices),
            "gpu_model": models,
            "num_gpu": p.num_gpu,
            "gpu_milli": held,
            "cpu_milli": p.cpu_milli,
            "memory_mib": p.memory_mib,
            "outcome": run.outcome,
            "pending_reason": run.reason,
            "gpu_hours": gpu_hours,
            "lost_gpu_hours": lost_h,
            "preempted_times": run.preempted_times if run.preempted_times is not None else np.zeros(len(p), dtype=int),
            "cost_usd": cost,
        }
    )


def _device_lists(devices: list[tuple[int, ...]]) -> list[str]:
    """Each pod's device indices as "0,1,2"; one join per distinct tuple (most pods share a few)."""
    text: dict[tuple[int, ...], str] = {}
    out = []
    for d in devices:
        t = text.get(d)
        if t is None:
            t = text[d] = ",".join(map(str, d))
        out.append(t)
    return out


def interval_metrics(run: RunResult) -> pd.DataFrame:
    """Per-interval means (GPUs, queue length) and counts, from the recorder's exact integrals."""
    rec, c = run.recorder, run.cluster
    starts, ends = rec.edges[:-1], rec.edges[1:]
    dt = np.maximum(ends - starts, 1e-12)
    cap = c.capacity_milli.sum() / MILLI_PER_GPU
    df = pd.DataFrame(
        {
            "t_start_s": starts,
            "t_end_s": ends,
            "capacity_gpus": np.full(len(starts), cap),
            "allocated_gpus": rec.alloc_ms.sum(axis=1) / dt / MILLI_PER_GPU,
            "idle_gpus": rec.idle_ms.sum(axis=1) / dt / MILLI_PER_GPU,
            "unavailable_gpus": rec.unavail_ms.sum(axis=1) / dt / MILLI_PER_GPU,
            "busy_gpus": rec.busy_dev_s.sum(axis=1) / dt,
            "fragmented_gpus": rec.frag_ms / dt / MILLI_PER_GPU,
            "queue_len_mean": rec.queue_s / dt,
            "queue_len_max": rec.queue_max,
            "running_pods_mean": rec.running_s / dt,
            **{k: rec.counts[k].astype(np.int64) for k in ("arrivals", "starts", "finishes", "withdrawals")},
        }
    )
    df["allocation_pct"] = np.where(cap > 0, 100.0 * df["allocated_gpus"] / cap, 0.0)
    for m, name in enumerate(c.models):
        df[f"allocated_gpus:{name}"] = rec.alloc_ms[:, m] / dt / MILLI_PER_GPU
    return df


def _pct(x: np.ndarray, q: float) -> float | None:
    return float(np.percentile(x, q)) if len(x) else None


def _r(x: float | None, nd: int | None = None) -> float | None:
    """A finite float (or None), rounded only where a unit asks for it (USD to cents)."""
    if x is None or not math.isfinite(float(x)):
        return None
    return float(x) if nd is None else round(float(x), nd)


def _preemption(run: RunResult, led: pd.DataFrame) -> dict[str, Any]:
    """Preemption's toll: preemptions made, evictions and distinct pods they hit, the GPU-hours of the runs
    they threw away (GPU work is not preemptible) and how long their victims stayed off a node.

    Only evictions by a pod count (``RunResult.lost_run_by`` >= 0): kills by faults, spot reclaims and
    drains are in their own blocks. ``requeued_wait_s`` is over preempted pods, summed per pod over all
    its evictions (a lower bound for a pod still off a node at the horizon)."""
    times = led["preempted_times"].to_numpy()
    hit = times > 0
    by = run.lost_run_by if len(run.lost_run_by) == len(run.lost_runs) else [0] * len(run.lost_runs)
    lost_ms = sum(ms for (_, _, ms), b in zip(run.lost_runs, by, strict=True) if b >= 0)
    req = led["requeued_wait_s"].to_numpy()[hit]
    return {
        "preemptions": int(run.preemptions),
        "victims": int(times.sum()),
        "pods_preempted": int(hit.sum()),
        "lost_gpu_hours": _r(lost_ms / MILLI_S_PER_GPU_HOUR),
        "requeued_wait_s": {
            "total": _r(float(req.sum()), 3),
            "mean": _r(float(req.mean()) if len(req) else None, 3),
            "max": _r(float(req.max()) if len(req) else None, 3),
        },
    }


def summarize(
    run: RunResult, prices_book: PriceBook, meta: RunMeta, led: pd.DataFrame, metrics: pd.DataFrame
) -> dict[str, Any]:
    from gpuinfra import __version__

    c, p, rec = run.cluster, run.pods, run.recorder
    duration = run.horizon_s - rec.start_s
    cap_ms = float(c.capacity_milli.sum()) * duration
    tot = rec.totals()
    per_model = rec.per_model_totals()
    ledger_ms = float((led["gpu_hours"] * MILLI_S_PER_GPU_HOUR).sum())
    balance = tot["allocated"] + tot["idle"] + tot["unavailable"]
    rel = abs(balance - cap_ms) / cap_ms if cap_ms else 0.0
    rel_ledger = abs(ledger_ms - tot["allocated"]) / max(cap_ms, 1.0)
    # a negative window (capacity x time < 0) is physically impossible: never "ok"
    balance_ok = duration >= 0 and cap_ms >= 0 and 0 <= rel <= BALANCE_REL_TOL and rel_ledger <= BALANCE_REL_TOL
    over_ok = (
        c.peak_device_used_milli <= MILLI_PER_GPU
        and c.peak_cpu_ratio <= 1.0 + 1e-12
        and c.peak_mem_ratio <= 1.0 + 1e-12
    )
    unprov_h = sum(
        float(v.get("unprovisioned_gpu_hours") or 0.0) for v in (run.subsystems or {}).values() if isinstance(v, dict)
    )
    prices = prices_book.usd_per_gpu_hour
    by_model = {}
    idle_usd = 0.0
    for m, name in enumerate(c.models):
        a_h = per_model["allocated"][m] / MILLI_S_PER_GPU_HOUR
        i_h = per_model["idle"][m] / MILLI_S_PER_GPU_HOUR
        price = prices.get(name)
        by_model[name] = {
            "gpus": int(c.capacity_milli[m] // MILLI_PER_GPU),
            "allocated_gpu_hours": _r(a_h),
            "idle_gpu_hours": _r(i_h),
            "unavailable_gpu_hours": _r(per_model["unavailable"][m] / MILLI_S_PER_GPU_HOUR),
            "allocation_ratio": _r(a_h / (c.capacity_milli[m] / MILLI_PER_GPU * duration / 3600) if duration else 0.0),
            "usd_per_gpu_hour": price,
            "idle_usd": _r(i_h * price, 2) if price is not None else None,
        }
        if price is not None:
            idle_usd += i_h * price
    waits = led["wait_s"].to_numpy()
    waits = waits[~np.isnan(waits)]
    owners = (
        led[led["num_gpu"] > 0]
        .groupby("owner", sort=True)
        .agg(gpu_hours=("gpu_hours", "sum"), cost_usd=("cost_usd", "sum"), pods=("name", "count"))
    )
    counted = Counter(run.outcome)
    outcomes = {o: int(counted.get(o, 0)) for o in OUTCOMES}
    gpu_pods = int((p.num_gpu > 0).sum())
    shared = int(((p.num_gpu > 0) & (p.gpu_milli < MILLI_PER_GPU)).sum())
    allocated_gpus = metrics["allocated_gpus"].to_numpy()
    return {
        "schema": SUMMARY_SCHEMA,
        "gpuinfra_version": __version__,
        "scenario": meta.scenario,
        "seed": meta.seed,
        "trace": meta.trace,
        "cluster": {
            "nodes": c.n_nodes,
            "gpus": c.n_gpus,
            "gpus_by_model": {m: int(c.capacity_milli[k] // MILLI_PER_GPU) for k, m in enumerate(c.models)},
            "cpu_milli": int(c.cpu_cap.sum()),
            "memory_mib": int(c.mem_cap.sum()),
        },
        "workload": {
            "pods": len(p),
            "gpu_pods": gpu_pods,
            "shared_gpu_pods": shared,
            "requested_gpus": _r(p.total_gpu_request()),
            "skipped_impossible": len(meta.skipped_impossible),
            "skipped_examples": [{"pod": n, "why": w} for n, w in meta.skipped_impossible[:5]],
        },
        "horizon": {"start_s": rec.start_s, "end_s": run.horizon_s, "duration_s": duration},
        "gpu_time": {
            "capacity_gpu_hours": _r(cap_ms / MILLI_S_PER_GPU_HOUR),
            "allocated_gpu_hours": _r(tot["allocated"] / MILLI_S_PER_GPU_HOUR),
            "idle_gpu_hours": _r(tot["idle"] / MILLI_S_PER_GPU_HOUR),
            "unavailable_gpu_hours": _r(tot["unavailable"] / MILLI_S_PER_GPU_HOUR),
            "busy_device_hours": _r(float(rec.busy_dev_s.sum()) / 3600.0),
            "fragmented_gpu_hours": _r(float(rec.frag_ms.sum()) / MILLI_S_PER_GPU_HOUR),
            "allocation_ratio": _r(tot["allocated"] / cap_ms if cap_ms else 0.0),
            # node slots no subsystem had provisioned (autoscaler slots above the group's size, surge
            # nodes not yet requested, reclaimed spot VMs): counted in capacity (and in unavailable,
            # so the balance holds) but not billed; the billed share is what a cost-minded reader asks
            "unprovisioned_gpu_hours": _r(unprov_h),
            "billed_gpu_hours": _r(cap_ms / MILLI_S_PER_GPU_HOUR - unprov_h),
            "allocation_ratio_billed": _r(
                tot["allocated"] / (cap_ms - unprov_h * MILLI_S_PER_GPU_HOUR)
                if cap_ms - unprov_h * MILLI_S_PER_GPU_HOUR > 0
                else 0.0
            ),
            "peak_interval_allocated_gpus": _r(float(allocated_gpus.max()) if len(allocated_gpus) else 0.0, 3),
            "by_model": by_model,
        },
        "pods": {
            "outcomes": outcomes,
            "started": int(len(waits)),
            "waited": int((waits > 0).sum()),
            "wait_s": {
                "mean": _r(float(waits.mean()) if len(waits) else None, 3),
                "p50": _r(_pct(waits, 50)),
                "p90": _r(_pct(waits, 90)),
                "p99": _r(_pct(waits, 99)),
                "max": _r(float(waits.max()) if len(waits) else None, 3),
            },
        },
        "queue": {
            "mean_length": _r(float(rec.queue_s.sum()) / duration if duration else 0.0),
            "max_length": int(rec.queue_max.max()) if len(rec.queue_max) else 0,
        },
        "pending": {"at_end": outcomes["pending_at_horizon"], "reasons": run.pending_reasons_at_end},
        "faults": (
            {k: v for k, v in run.faults.items() if k != "log"} | {"events": len(run.faults["log"])}
            if run.faults
            else None
        ),
        "preemption": _preemption(run, led),
        "cost": {
            "currency": "USD",
            "basis": prices_book.basis,
            "allocated_usd": _r(float(np.nansum(led["cost_usd"])), 2),
            "idle_usd": _r(idle_usd, 2),
            "by_owner": {
                str(o): {"pods": int(r.pods), "gpu_hours": _r(r.gpu_hours), "cost_usd": _r(r.cost_usd, 2)}
                for o, r in owners.iterrows()
            },
            "usd_per_gpu_hour": {m: prices.get(m) for m in c.models},
            "price_sources": {m: prices_book.sources.get(m) for m in c.models},
            "unpriced_models": [m for m in c.models if prices.get(m) is None],
        },
        "invariants": {
            "gpu_time_balance": {
                "ok": bool(balance_ok),
                "statement": "allocated + idle + unavailable GPU-time = capacity x time; allocated from the "
                "recorder equals allocated from the pod ledger",
                "allocated_milli_s": tot["allocated"],
                "allocated_from_ledger_milli_s": ledger_ms,
                "idle_milli_s": tot["idle"],
                "unavailable_milli_s": tot["unavailable"],
                "capacity_x_time_milli_s": cap_ms,
                "relative_error": rel,
            },
            "no_overcommit": {
                "ok": bool(over_ok),
                "statement": "no device above 1000 milli, no node above its CPU or memory, at any allocation",
                "peak_device_used_milli": int(c.peak_device_used_milli),
                "peak_node_cpu_ratio": _r(c.peak_cpu_ratio),
                "peak_node_mem_ratio": _r(c.peak_mem_ratio),
            },
        },
        "engine": {"events": run.events_processed, "scheduling_cycles": run.cycles},
    }
