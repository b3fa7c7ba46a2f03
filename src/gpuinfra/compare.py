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

from gpuinfra.errors import UserError
from gpuinfra.io.scenario import Built, Scenario, ScoreEntry
from gpuinfra.sim.fill import POLICIES, FillResult

SCHEMA = "gpuinfra.compare/1"


def profile_label(sc: Scenario) -> str:
    """What a scenario's profile scores, reserves and breaks ties with, in one line, e.g.
    ``score FirstFit, reserve FirstFitDevices, ties first`` (queue sort and filters are the
    scenario's in every row of a comparison, so they are not repeated)."""
    s = sc.scheduler
    scores = " + ".join(e.name if e.weight == 1 else f"{e.weight:g}x{e.name}" for e in s.scores) or "none"
    ties = "seeded random" if s.tie_break == "random" else "first"
    return f"score {scores}, reserve {s.reserve}, ties {ties}"


def with_policy(sc: Scenario, policy: str) -> Scenario:
    """The scenario under a named policy of ``gpuinfra fill``: the policy's score plugin with the
    FGD artifact's device choice (PolicyDevices) and seeded random tie-breaks, the scenario's queue
    sort, filters and everything else unchanged. So ``firstfit`` is *not* a scenario profile of
    FirstFit + FirstFitDevices + first-node ties; ``scenario`` runs the scenario's own profile."""
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
    profile: str = ""
    """What the row ran (:func:`profile_label`)."""


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
        sp = with_policy(sc, p)
        out = simulate(sp, base_dir, seed=seed, log_events=False)
        runs.append(PolicyRun(p, out.summary, out.metrics, out.ledger, profile_label(sp)))
    return runs


def replay_table(runs: list[PolicyRun]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for r in runs:
        s, led = r.summary, r.ledger
        started = led[led["wait_s"].notna()]  # bound at least once (wait: submit to first bind)
        by_owner = {o: _wait_stats(g["wait_s"].to_numpy()) for o, g in started.groupby("owner", sort=True)}
        by_prio = {str(int(k)): _wait_stats(g["wait_s"].to_numpy()) for k, g in started.groupby("priority", sort=True)}
        g = s["gpu_time"]
        dur_h = s["horizon"]["duration_s"] / 3600 or 1.0
        rows[r.policy] = {
            "profile": r.profile,
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


def run_compare(
    sc: Scenario, base_dir: Path | None, policies: list[str], *, mode: str, load: float, seed: int | None
) -> tuple[dict[str, Any], str]:
    """Run ``sc`` under each policy and build the comparison: ``(summary, report_html)``.

    ``mode`` is ``replay`` (the scenario in time, one replay per policy; summary ``policies`` holds
    :func:`replay_table`) or ``fill`` (the FGD experiment on the scenario's cluster and pods up to
    ``load`` x capacity; summary as ``fill.summarize_results``).

    Raises:
        UserError: an unknown mode, or ``scenario`` as a policy in fill mode.
    """
    if mode not in ("replay", "fill"):
        raise UserError(f"unknown mode '{mode}'", where="--mode", expected="replay or fill")
    if mode == "fill":
        from gpuinfra.fill import summarize_results
        from gpuinfra.io.scenario import build
        from gpuinfra.report.fill_report import render_fill_report

        b = build(sc, base_dir, seed=seed)
        results = compare_fill(b, policies, load)
        cluster = {"node_list": f"scenario {sc.name}", "nodes": b.cluster.n_nodes, "gpus": b.cluster.n_gpus}
        summ = summarize_results(results, load=load, cluster=cluster) | {"schema": SCHEMA, "mode": "fill"}
        return summ, render_fill_report(summ, results)
    from gpuinfra.report.compare_report import render_compare_report

    runs = compare_replay(sc, base_dir, policies, seed)
    table = replay_table(runs)
    summ = {
        "schema": SCHEMA,
        "mode": "replay",
        "scenario": sc.name,
        "seed": seed if seed is not None else sc.seed,
        "policies": table,
    }
    return summ, render_compare_report(sc.name, table, runs)
