"""Compare scheduler policies on one scenario: the same cluster, workload and seed, one run each.

``replay`` mode replays the scenario in time under each policy; ``fill`` mode runs the FGD fill
experiment on the scenario's cluster and pods. Policies are the names of ``gpuinfra fill``
(random, dotprod, clustering, packing, bestfit, fgd, firstfit, spread, mostallocated) or
``scenario`` for the scenario's own scheduler profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.io.scenario import Built, Scenario, ScoreEntry
from gpuinfra.sim.fill import POLICIES, FillResult

SCHEMA = "gpuinfra.compare/1"


def parse_compare_policies(text: str) -> list[str]:
    items = [x.strip().lower() for x in text.split(",") if x.strip()]
    if text.strip() == "all":
        return list(POLICIES)
    if text.strip() == "paper":
        from gpuinfra.sim.fill import PAPER_POLICIES

        return list(PAPER_POLICIES)
    for p in items:
        if p != "scenario" and p not in POLICIES:
            raise UserError(
                f"unknown policy '{p}'",
                where="--policies",
                expected="scenario, " + ", ".join(POLICIES) + ", 'paper' or 'all'",
                fix=did_you_mean(p, [*POLICIES, "scenario"]) or "see `gpuinfra compare --help`",
            )
    if len(items) < 1:
        raise UserError("no policies given", where="--policies", expected="a comma-separated list")
    return list(dict.fromkeys(items))


def with_policy(sc: Scenario, policy: str) -> Scenario:
    if policy == "scenario":
        return sc
    sched = sc.scheduler.model_copy(
        update={"scores": [ScoreEntry(name=POLICIES[policy])], "reserve": "PolicyDevices", "tie_break": "random"}
    )
    new = sc.model_copy(update={"scheduler": sched})
    new._label, new._text = sc._label, sc._text
    return new


@dataclass
class PolicyRun:
    policy: str
    summary: dict[str, Any]
    metrics: pd.DataFrame
    ledger: pd.DataFrame


def _wait_stats(w: np.ndarray) -> dict[str, float | None]:
    if not len(w):
        return {"pods": 0, "mean": None, "p50": None, "p90": None, "p99": None}
    return {
        "pods": int(len(w)),
        "mean": float(w.mean()),
        "p50": float(np.percentile(w, 50)),
        "p90": float(np.percentile(w, 90)),
        "p99": float(np.percentile(w, 99)),
    }


def compare_replay(sc: Scenario, base_dir: Path | None, policies: list[str], seed: int | None) -> list[PolicyRun]:
    from gpuinfra.run import simulate

    runs = []
    for p in policies:
        out = simulate(with_policy(sc, p), base_dir, seed=seed, log_events=False)
        runs.append(PolicyRun(p, out.summary, out.metrics, out.ledger))
    return runs


def replay_table(runs: list[PolicyRun]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for r in runs:
        s, led = r.summary, r.ledger
        started = led[led["start_s"].notna()]
        by_owner = {o: _wait_stats(g["wait_s"].to_numpy()) for o, g in started.groupby("owner", sort=True)}
        by_prio = {str(int(k)): _wait_stats(g["wait_s"].to_numpy()) for k, g in started.groupby("priority", sort=True)}
        g = s["gpu_time"]
        dur_h = s["horizon"]["duration_s"] / 3600 or 1.0
        rows[r.policy] = {
            "allocation_ratio": g["allocation_ratio"],
            "allocated_gpu_hours": g["allocated_gpu_hours"],
            "idle_gpu_hours": g["idle_gpu_hours"],
            "mean_unallocated_gpus": g["idle_gpu_hours"] / dur_h,
            "fragmented_gpu_hours": g.get("fragmented_gpu_hours"),
            "mean_fragmented_gpus": (g.get("fragmented_gpu_hours") or 0.0) / dur_h,
            "wait_s": s["pods"]["wait_s"],
            "waited_pods": s["pods"]["waited"],
            "pending_at_end": s["pending"]["at_end"],
            "withdrawn": s["pods"]["outcomes"]["withdrawn"],
            "preemptions": s.get("preemption", {}).get("victims", 0),
            "idle_usd": s["cost"]["idle_usd"],
            "allocated_usd": s["cost"]["allocated_usd"],
            "wait_by_owner": by_owner,
            "wait_by_priority": by_prio,
            "invariants_ok": s["invariants"]["gpu_time_balance"]["ok"] and s["invariants"]["no_overcommit"]["ok"],
        }
    return rows


def compare_fill(b: Built, policies: list[str], load: float) -> list[FillResult]:
    """The fill experiment on a built scenario's cluster and pods, one run per policy."""
    from gpuinfra.sim.fill import run_fill

    sc = b.scenario
    base = [b.pods.pod(i) for i in range(len(b.pods))]
    out = []
    for p in policies:
        if p == "scenario":
            raise UserError(
                "fill mode compares named policies", where="--policies", expected="policy names such as fgd,bestfit"
            )
        out.append(run_fill(list(b.cluster.pools), base, p, b.seed, load=load, workload=sc.name))
    return out
