"""Compose one simulation: scenario -> build -> replay -> accounting -> run directory and report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gpuinfra.analysis.accounting import interval_metrics, ledger, summarize
from gpuinfra.io.results import write_events, write_json, write_parquet
from gpuinfra.io.scenario import Built, Scenario, build
from gpuinfra.sim.engine import ReplayEngine, RunResult
from gpuinfra.sim.faults import FaultClass


@dataclass
class SimulationOutput:
    built: Built
    run: RunResult
    summary: dict[str, Any]
    ledger: pd.DataFrame
    metrics: pd.DataFrame


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
    )
    run = eng.run()
    led = ledger(run, built.prices)
    metrics = interval_metrics(run)
    summary = summarize(run, built.prices, built.meta(), led, metrics)
    return SimulationOutput(built, run, summary, led, metrics)


def write_run_dir(out: SimulationOutput, out_dir: Path, *, report: bool = True) -> list[Path]:
    """Write the run directory; returns the files written."""
    from gpuinfra.report.html import render_run_report

    out_dir.mkdir(parents=True, exist_ok=True)
    sc_yaml = yaml.safe_dump(
        out.built.scenario.model_dump(mode="json", exclude_none=True) | {"seed": out.built.seed}, sort_keys=False
    )
    files = {
        "summary.json": lambda p: write_json(p, out.summary),
        "metrics.parquet": lambda p: write_parquet(p, out.metrics),
        "pods.parquet": lambda p: write_parquet(p, out.ledger),
        "events.jsonl": lambda p: write_events(p, out.run.events),
        "scenario.yaml": lambda p: p.write_text(sc_yaml),
    }
    if report:
        files["report.html"] = lambda p: p.write_text(render_run_report(out.summary, out.metrics, out.ledger, sc_yaml))
    written = []
    for name, fn in files.items():
        p = out_dir / name
        fn(p)
        written.append(p)
    return written
