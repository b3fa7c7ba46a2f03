"""Compose one simulation: scenario -> build -> replay -> accounting -> run directory and report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gpuinfra.analysis.accounting import interval_metrics, ledger, summarize
from gpuinfra.io.results import write_events, write_json, write_parquet
from gpuinfra.io.scenario import Built, Scenario, build
from gpuinfra.sim.cluster import MILLI_PER_GPU
from gpuinfra.sim.engine import ReplayEngine, RunResult
from gpuinfra.sim.faults import FaultClass


@dataclass
class SimulationOutput:
    built: Built
    run: RunResult
    summary: dict[str, Any]
    ledger: pd.DataFrame
    metrics: pd.DataFrame
    trace: dict | None = None
    """Chrome/Perfetto trace of the execution subsystem's phases (scenario ``execution:``), or None."""


def simulate(
    sc: Scenario,
    base_dir: Path | None,
    *,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    log_events: bool = True,
) -> SimulationOutput:
    """Build a scenario (cluster, workload, profile, faults, prices) and replay it once.

    ``base_dir`` resolves relative trace paths; ``seed`` overrides the scenario's. Returns the
    built scenario, the engine's :class:`RunResult` (invariants already checked), the summary
    dict (``summary.json``), the per-pod ledger and the per-interval metrics (pandas). Raises
    ``UserError`` for bad scenario content found while building. Prefer ``gpuinfra.api.simulate``.
    """
    built = build(sc, base_dir, seed=seed)
    eng = ReplayEngine(
        built.cluster,
        built.pods,
        built.profile,
        built.seed,
        sample_interval_s=sc.sample_interval_s,
        horizon_s=sc.horizon_s,
        log_events=log_events,
        progress=progress,
        fault_classes=[
            FaultClass(
                f.name,
                f.rate_per_day,
                f.action,
                f.repair_s,
                f.scope,
                f.detect_s,
                f.crash_s,
                f.signal,
                f.rack_nodes,
                f.lemon_fraction,
                f.lemon_factor,
            )
            for f in sc.faults
        ],
        subsystem_options={
            k: v
            for k, v in (
                ("execution", sc.execution),
                ("upgrade", sc.upgrade),
                ("spot", sc.spot),
                ("autoscaler", sc.autoscaler),
            )
            if v is not None
        }
        or None,
    )
    run = eng.run()
    led = ledger(run, built.prices)
    metrics = interval_metrics(run)
    summary = summarize(run, built.prices, built.meta(), led, metrics)
    summary["contention"] = contention(built, summary, led, metrics)
    ex = eng.subsystems.get("execution")
    if ex is not None:
        summary["execution"] = run.subsystems["execution"]
    for name in ("upgrade", "spot", "autoscaler"):
        if name in run.subsystems:
            summary[name] = {k: v for k, v in run.subsystems[name].items() if k != "log"}
    return SimulationOutput(built, run, summary, led, metrics, ex.chrome_trace() if ex is not None else None)


def request_class(num_gpu: int, gpu_milli: int) -> str:
    """The request class a pod's wait is reported under: CPU-only, a share of one GPU, or N GPUs."""
    if num_gpu == 0:
        return "CPU only"
    if num_gpu == 1 and gpu_milli < 1000:
        return "share of 1 GPU"
    return f"{num_gpu} GPU" + ("s" if num_gpu > 1 else "")


def _class_order(name: str) -> tuple[int, int]:
    if name == "CPU only":
        return (0, 0)
    if name.startswith("share"):
        return (1, 0)
    return (2, int(name.split()[0]))


def contention(built: Built, summary: dict[str, Any], led: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, Any]:
    """What the run says about contention, computed from its ledger and interval metrics.

    - ``offered_load``: requested GPU-seconds of the pods that arrived (GPUs x milli/1000 x
      duration) divided by (cluster GPUs x the arrival window, first to last submit). 1.0 means
      the pods ask for as much GPU time as the cluster has while they arrive.
    - ``waits_by_class``: per request class (CPU only, share of 1 GPU, N GPUs): pods drawn,
      ``arrived`` (submitted by the end), started,
      wait p50/p99/max in seconds over started pods, pending at the end, the share of the
      class's arrived pods still pending (``pending_share``), and lower bounds that count the
      pending pods' waits so far (horizon end - submit, right-censored): ``wait_p50_at_least_s``,
      ``wait_p99_at_least_s``, ``wait_max_at_least_s`` (over started and pending pods; the true
      values are at least these) and ``pending_waited_min_s`` (every pending pod had waited at least this).
    - ``stranded``: idle GPU-hours in the sampling intervals in which at least one pod was
      pending (capacity that existed while work waited), and their cost at the mean price of the
      run's idle GPU-hours; ``fragmented``: FGD's fragmentation measure (idle GPU capacity the
      run's typical pods cannot use), mean GPUs and GPU-hours.
    - ``pending_peak``: the largest queue length seen and when (seconds from the start).
    """
    p = built.pods
    g = p.num_gpu * np.where(p.num_gpu > 0, p.gpu_milli, 0) / 1000.0
    dur = np.nan_to_num(p.duration_s, nan=0.0)
    arrived = p.submit_s <= (summary["horizon"]["end_s"] or np.inf)
    window = float(p.submit_s[arrived].max() - p.submit_s[arrived].min()) if arrived.sum() > 1 else 0.0
    gpus = summary["cluster"]["gpus"]
    req_gpu_s = float((g * dur)[arrived].sum())
    offered = req_gpu_s / (gpus * window) if window > 0 and gpus else None

    # the request is in the pod table (the ledger's rows are in the same order; its gpu_milli is what was held)
    # one name per distinct (GPUs, milli) request, gathered for every pod
    code = p.num_gpu.astype(np.int64) * (MILLI_PER_GPU + 1) + p.gpu_milli
    uniq, inverse = np.unique(code, return_inverse=True)
    names = [request_class(int(u // (MILLI_PER_GPU + 1)), int(u % (MILLI_PER_GPU + 1))) for u in uniq.tolist()]
    cls = np.array(names, dtype=object)[inverse.reshape(-1)].tolist()
    end_s = summary["horizon"]["end_s"]
    frame = pd.DataFrame(
        {
            "cls": cls,
            "wait_s": led["wait_s"].to_numpy(),
            "outcome": led["outcome"].to_numpy(),
            "submit_s": np.asarray(p.submit_s, dtype=float),
        }
    )
    waits: dict[str, Any] = {}
    for name in sorted(set(cls), key=_class_order):
        sub = frame[frame["cls"] == name]
        w = sub["wait_s"].dropna().to_numpy()
        pend = (sub["outcome"] == "pending_at_horizon").to_numpy()
        # right-censored: a pod pending at the horizon that never bound has waited at least (horizon end -
        # submit); one pending again after an eviction has its wait (to its first bind) in w already
        never = pend & sub["wait_s"].isna().to_numpy()
        so_far = (end_s - sub["submit_s"].to_numpy()[never]) if end_s is not None and never.any() else np.array([])
        both = np.concatenate([w, so_far])
        # the population the report's sentences and table count: pods submitted by the end of the run
        # (started, pending at the end, or deleted while pending), not the pods drawn for it
        arrived_n = int((sub["outcome"] != "not_arrived").sum())
        waits[name] = {
            "pods": int(len(sub)),
            "arrived": arrived_n,
            "started": int(len(w)),
            "wait_p50_s": float(np.percentile(w, 50)) if len(w) else None,
            "wait_p99_s": float(np.percentile(w, 99)) if len(w) else None,
            "wait_max_s": float(w.max()) if len(w) else None,
            "pending_at_end": int(pend.sum()),
            "pending_share": float(pend.sum() / arrived_n) if arrived_n else 0.0,
            "wait_p50_at_least_s": float(np.percentile(both, 50)) if len(both) else None,
            "wait_p99_at_least_s": float(np.percentile(both, 99)) if len(both) else None,
            "pending_waited_min_s": float(so_far.min()) if len(so_far) else None,
            "wait_max_at_least_s": float(both.max()) if len(both) else None,
        }

    dt = (metrics["t_end_s"] - metrics["t_start_s"]).to_numpy()
    queued = metrics["queue_len_max"].to_numpy() > 0
    idle_h = metrics["idle_gpus"].to_numpy() * dt / 3600.0
    stranded_h = float(idle_h[queued].sum())
    frag_h = float(summary["gpu_time"]["fragmented_gpu_hours"] or 0.0)
    c = summary["cost"]
    idle_total_h = summary["gpu_time"]["idle_gpu_hours"] or 0.0
    usd_per_idle_h = (c["idle_usd"] / idle_total_h) if c["idle_usd"] is not None and idle_total_h > 0 else None
    dur_total = float(dt.sum())
    k = int(metrics["queue_len_max"].to_numpy().argmax()) if len(metrics) else 0
    half = np.arange(len(metrics)) >= len(metrics) // 2
    dt_h = dt[half].sum()
    return {
        "offered_load": offered,
        "offered_load_definition": "requested GPU-seconds of the arrived pods / (cluster GPUs x arrival window)",
        "arrival_window_s": window,
        "requested_gpu_hours": req_gpu_s / 3600.0,
        "waits_by_class": waits,
        "stranded": {
            "definition": "idle GPU-hours in sampling intervals in which at least one pod was pending",
            "gpu_hours": stranded_h,
            "intervals_with_pending": int(queued.sum()),
            "intervals": int(len(metrics)),
            "usd": stranded_h * usd_per_idle_h if usd_per_idle_h is not None else None,
        },
        "fragmented": {
            "definition": "FGD fragmentation measure: idle GPU capacity the run's typical pods cannot use",
            "gpu_hours": frag_h,
            "mean_gpus": frag_h * 3600.0 / dur_total if dur_total else 0.0,
            "usd": frag_h * usd_per_idle_h if usd_per_idle_h is not None else None,
        },
        "usd_per_idle_gpu_hour": usd_per_idle_h,
        "second_half": {
            "definition": "time-weighted means over the second half of the sampling intervals (after the ramp-up)",
            "allocation_ratio": float((metrics["allocated_gpus"].to_numpy()[half] * dt[half]).sum() / (gpus * dt_h))
            if dt_h and gpus
            else None,
            "mean_idle_gpus": float((metrics["idle_gpus"].to_numpy()[half] * dt[half]).sum() / dt_h) if dt_h else None,
            "mean_pending_pods": float((metrics["queue_len_mean"].to_numpy()[half] * dt[half]).sum() / dt_h)
            if dt_h
            else None,
        },
        "pending_peak": {
            "pods": int(metrics["queue_len_max"].iloc[k]) if len(metrics) else 0,
            "at_s": float(metrics["t_start_s"].iloc[k] - metrics["t_start_s"].iloc[0]) if len(metrics) else 0.0,
        },
    }


def write_run_dir(out: SimulationOutput, out_dir: Path, *, report: bool = True, events: bool = True) -> list[Path]:
    """Write the run directory: summary.json, metrics.parquet, pods.parquet, events.jsonl (unless
    ``events`` is False), scenario.yaml, report.html (unless ``report`` is False), each atomically,
    then ``manifest.json`` last, into a sibling temporary directory renamed to ``out_dir`` at the end
    (:func:`gpuinfra.io.rundir.staged_run_dir`): an interruption leaves ``out_dir`` as it was (an
    earlier run, or nothing) and no temporary directory. An earlier directory there is replaced.
    Returns the data files written (not the manifest), at their final paths."""
    from gpuinfra.io import manifest
    from gpuinfra.io.atomic import write_text
    from gpuinfra.io.rundir import staged_run_dir
    from gpuinfra.report.html import render_run_report

    sc_yaml = yaml.safe_dump(
        out.built.scenario.model_dump(mode="json", exclude_none=True) | {"seed": out.built.seed}, sort_keys=False
    )
    files = {
        "summary.json": lambda p: write_json(p, out.summary),
        "metrics.parquet": lambda p: write_parquet(p, out.metrics),
        "pods.parquet": lambda p: write_parquet(p, out.ledger),
        "events.jsonl": lambda p: write_events(p, out.run.events),
        "scenario.yaml": lambda p: write_text(p, sc_yaml),
    }
    if out.trace is not None:
        files["trace.json"] = lambda p: write_json(p, out.trace)
    if not events:
        del files["events.jsonl"]
    if report:
        files["report.html"] = lambda p: write_text(
            p, render_run_report(out.summary, out.metrics, out.ledger, sc_yaml, out.built.scenario.description)
        )
    out_dir = Path(out_dir)
    with staged_run_dir(out_dir) as tmp:
        written = []
        for name, fn in files.items():
            p = tmp / name
            fn(p)
            written.append(p)
        manifest.write_manifest(
            tmp,
            "simulate",
            {"scenario": out.built.scenario.name, "seed": out.built.seed, "report": report, "events": events},
            written,
        )
    return [out_dir / p.name for p in written]
