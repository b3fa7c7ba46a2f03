"""The public Python API: load a scenario, simulate it, run the fill experiment, compare policies.

Everything the CLI, the labs and the reports do with the simulator goes through these
functions, and what they return is typed::

    from gpuinfra import api

    sc = api.scenario("synthetic-small")          # a built-in, or a path to a YAML file
    res = api.simulate(sc, seed=7)                 # one replay on the one simulator
    print(res.allocation_ratio, res.wait_p99_s)    # GPU-time share allocated; p99 wait (s)
    assert res.invariants.ok                       # no over-commit; GPU-time balance
    res.pods.head()                                # pandas: one row per pod (the ledger)

Errors a user can cause (a missing file, a bad field, an unknown built-in or policy) raise
:class:`gpuinfra.errors.UserError` with the file, line or field; a broken invariant raises
:class:`gpuinfra.sim.invariants.InvariantError` (a bug).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.io.scenario import Scenario, builtin_scenario_text, builtin_scenarios, load_scenario, parse_scenario
from gpuinfra.sim.invariants import Invariants

__all__ = [
    "Scenario",
    "SimulationResult",
    "FillGrid",
    "Comparison",
    "Invariants",
    "scenario",
    "builtins",
    "simulate",
    "fill",
    "compare",
]


def builtins() -> list[str]:
    """Names of the built-in scenarios (``gpuinfra scenarios`` lists them with descriptions)."""
    return builtin_scenarios()


def scenario(name_or_path: str | Path) -> Scenario:
    """A validated scenario: a built-in by name, or a YAML file by path.

    Raises ``UserError`` naming the file, line and field of every problem, or the unknown name
    with the closest built-in.
    """
    s = str(name_or_path)
    p = Path(s)
    if s in builtin_scenarios():
        sc = parse_scenario(builtin_scenario_text(s), f"builtin:{s}")
        sc._base_dir = None
        return sc
    if p.suffix in (".yaml", ".yml") or p.exists():
        sc, base = load_scenario(p)
        sc._base_dir = base
        return sc
    raise UserError(
        f"no built-in scenario or file named '{s}'",
        where="scenario",
        expected="a built-in name (" + ", ".join(builtin_scenarios()) + ") or a path to a .yaml file",
        fix=did_you_mean(s, builtin_scenarios()) or "list the built-ins with `gpuinfra scenarios`",
    )


@dataclass(frozen=True)
class SimulationResult:
    """One replay: the summary, the per-pod ledger, the per-interval metrics, the invariants.

    ``pods``: one row per pod (columns of ``analysis.accounting.ledger``: name, owner, num_gpu,
    gpu_milli, submit/start/end seconds, wait_s, gpu_hours, cost_usd, outcome, ...).
    ``metrics``: one row per sample interval (allocated/idle/unavailable GPUs, queue length,
    fragmentation, ...). ``summary``: the JSON-able dict written as ``summary.json``.
    """

    scenario: Scenario
    seed: int
    summary: dict[str, Any]
    pods: pd.DataFrame
    metrics: pd.DataFrame
    invariants: Invariants
    events: list[dict]
    _output: Any = None

    def __repr__(self) -> str:
        return (
            f"SimulationResult(scenario={self.scenario.name!r}, seed={self.seed}, pods={len(self.pods)}, "
            f"allocation_ratio={self.allocation_ratio:.3f}, wait_p99_s={self.wait_p99_s}, "
            f"invariants_ok={self.invariants.ok})"
        )

    @property
    def allocation_ratio(self) -> float:
        """Allocated GPU-time / (GPUs x horizon), in [0, 1]."""
        return float(self.summary["gpu_time"]["allocation_ratio"] or 0.0)

    @property
    def allocated_gpu_hours(self) -> float:
        return float(self.summary["gpu_time"]["allocated_gpu_hours"] or 0.0)

    @property
    def idle_gpu_hours(self) -> float:
        return float(self.summary["gpu_time"]["idle_gpu_hours"] or 0.0)

    @property
    def wait_p50_s(self) -> float | None:
        """Median queueing delay of pods that started, seconds (None if none started)."""
        return self.summary["pods"]["wait_s"]["p50"]

    @property
    def wait_p99_s(self) -> float | None:
        """99th-percentile queueing delay of pods that started, seconds."""
        return self.summary["pods"]["wait_s"]["p99"]

    @property
    def outcomes(self) -> dict[str, int]:
        """Pods by outcome (completed, pending_at_horizon, ...)."""
        return dict(self.summary["pods"]["outcomes"])

    def write(self, out_dir: str | Path, *, report: bool = True) -> list[Path]:
        """Write the run directory (summary.json, metrics.parquet, pods.parquet, events.jsonl,
        scenario.yaml, report.html); returns the files written."""
        from gpuinfra.run import write_run_dir

        return write_run_dir(self._output, Path(out_dir), report=report)


def simulate(
    sc: Scenario | str | Path,
    *,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    log_events: bool = True,
) -> SimulationResult:
    """Replay a scenario on the simulator; ``seed`` overrides the scenario's (same seed, same bytes)."""
    from gpuinfra.run import simulate as _simulate

    if not isinstance(sc, Scenario):
        sc = scenario(sc)
    out = _simulate(sc, getattr(sc, "_base_dir", None), seed=seed, progress=progress, log_events=log_events)
    return SimulationResult(
        scenario=sc,
        seed=out.built.seed,
        summary=out.summary,
        pods=out.ledger,
        metrics=out.metrics,
        invariants=out.run.invariants,
        events=out.run.events,
        _output=out,
    )


@dataclass(frozen=True)
class FillGrid:
    """The FGD fill experiment over workloads x policies x seeds.

    ``table``: one row per (workload, policy, seed, arrived_pct) with unalloc_pct,
    frag_amount_pct and the other columns of ``fill.csv``. ``summary``: the ``summary.json`` dict
    (means and standard deviations over seeds, by workload and policy).
    """

    summary: dict[str, Any]
    table: pd.DataFrame
    results: list[Any]


def fill(
    workloads: list[str] | str = "default",
    policies: list[str] | str = "paper",
    seeds: list[int] | str = "42",
    *,
    load: float = 1.3,
    nodes: str = "gpu_node",
    workers: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> FillGrid:
    """Run the fill experiment of Weng et al. (ATC'23) on the openb cluster; strings are parsed as
    the CLI parses them (``"42-51"``, ``"paper"``, ``"default,multi-gpu-50"``)."""
    from gpuinfra import fill as _fill

    if isinstance(workloads, str):
        workloads = _fill.parse_workloads(workloads)
    if isinstance(policies, str):
        policies = _fill.parse_policies(policies)
    if isinstance(seeds, str):
        from gpuinfra.units import parse_seeds

        seeds = parse_seeds(seeds)
    results = _fill.run_grid(
        list(workloads), list(policies), list(seeds), load=load, nodes=nodes, workers=workers, progress=progress
    )
    summary = _fill.summarize_grid(results, load=load, nodes=nodes)
    rows = [{"workload": r.workload, "policy": r.policy, "seed": r.seed, **row} for r in results for row in r.rows]
    return FillGrid(summary=summary, table=pd.DataFrame(rows), results=results)


@dataclass(frozen=True)
class Comparison:
    """Policies side by side on one scenario (replay mode): one row per policy in ``table``
    (allocation ratio, waits p50/p90/p99 in s, pending at horizon, invariants)."""

    table: pd.DataFrame
    runs: dict[str, SimulationResult]

    @property
    def invariants(self) -> dict[str, Invariants]:
        """Each policy's run invariants (all hold, or the run would have raised)."""
        return {p: r.invariants for p, r in self.runs.items()}


def compare(sc: Scenario | str | Path, policies: list[str] | str, *, seed: int | None = None) -> Comparison:
    """Replay ``sc`` once per policy (``scenario`` = its own profile, or a fill policy name)."""
    from gpuinfra.compare import with_policy
    from gpuinfra.fill import parse_policies

    if not isinstance(sc, Scenario):
        sc = scenario(sc)
    if isinstance(policies, str):
        policies = parse_policies(policies, "policies", allow_scenario=True)
    runs: dict[str, SimulationResult] = {}
    rows = []
    for p in policies:
        v = with_policy(sc, p)
        v._base_dir = getattr(sc, "_base_dir", None)
        r = simulate(v, seed=seed, log_events=False)
        runs[p] = r
        rows.append(
            {
                "policy": p,
                "allocation_ratio": r.allocation_ratio,
                "wait_p50_s": r.wait_p50_s,
                "wait_p90_s": r.summary["pods"]["wait_s"]["p90"],
                "wait_p99_s": r.wait_p99_s,
                "pending_at_end": r.summary["pending"]["at_end"],
                "invariants_ok": r.invariants.ok,
            }
        )
    return Comparison(table=pd.DataFrame(rows), runs=runs)
