"""Shared by labs 7 and 8: run jobs with execution semantics on the one simulator."""

from __future__ import annotations

from dataclasses import dataclass

from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.engine import ReplayEngine, RunResult
from gpuinfra.sim.execution import Execution, ExecutionSpec, KindSpec
from gpuinfra.sim.faults import FaultClass
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.workload import Pod, PodTable

DAY = 86400.0


@dataclass
class JobsRun:
    run: RunResult
    execution: Execution

    def jobs(self) -> list[dict]:
        return self.execution.jobs_table()


def simulate_jobs(
    pods: list[Pod],
    kinds: list[KindSpec],
    nodes: int,
    *,
    gpu: str = "H100-SXM",
    gpus_per_node: int = 8,
    faults: list[FaultClass] | None = None,
    seed: int = 0,
    horizon_s: float | None = None,
    trace_max_attempts: int = 0,
) -> JobsRun:
    """Replay ``pods`` on ``nodes`` nodes with the ``execution`` subsystem (and faults); the
    cluster invariants are checked by the engine."""
    c = ClusterState.from_pools([NodePool("gpu", gpu, gpus_per_node, 192000, 2097152, nodes)])
    e = ReplayEngine(
        c,
        PodTable(pods),
        Profile(),
        seed,
        horizon_s=horizon_s,
        fault_classes=faults,
        subsystem_options={"execution": ExecutionSpec(kinds=kinds, trace_max_attempts=trace_max_attempts)},
        log_events=False,
        track_fragmentation=False,
        sample_interval_s=3600.0,
    )
    r = e.run()
    return JobsRun(r, e.subsystems["execution"])
