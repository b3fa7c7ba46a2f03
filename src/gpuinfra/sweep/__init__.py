"""Sweeps: many runs of the one simulator over a grid or random search of scenario parameters.

``load_spec`` / ``plan`` read and expand a sweep file; ``run_sweep`` runs it on a local process
pool or a Ray cluster and stores every run in ``sweep.duckdb`` (crash-safe, resumable);
``report`` compares configurations with percentile-bootstrap intervals over seeds. See docs/sweeps.md.
"""

from gpuinfra.sweep.report import SweepReport, report
from gpuinfra.sweep.runner import SweepOutcome, check_ray_address, run_sweep
from gpuinfra.sweep.spec import Plan, SweepSpec, load_spec, parse_spec, plan

__all__ = [
    "Plan",
    "SweepOutcome",
    "SweepReport",
    "SweepSpec",
    "check_ray_address",
    "load_spec",
    "parse_spec",
    "plan",
    "report",
    "run_sweep",
]
