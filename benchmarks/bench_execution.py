"""Benchmark: a 30-day, 2,048-node (16,384-GPU) training job with node failures at Llama 3's rate
(3.79 per 1,000 node-days), 30-min checkpoints and in-place restarts, on the one simulator.

Run: PYTHONPATH=src python benchmarks/bench_execution.py  (prints build and replay wall seconds)."""

from __future__ import annotations

import time

from gpuinfra.models.reliability import LLAMA3_RATE_PER_1000_NODE_DAYS
from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.execution import ExecutionSpec, KindSpec, job_pods
from gpuinfra.sim.faults import FaultClass
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.workload import PodTable

DAY = 86400.0


def main(nodes: int = 2048, seed: int = 1) -> None:
    t0 = time.perf_counter()
    c = ClusterState.from_pools([NodePool("h100", "H100-SXM", 8, 192000, 2097152, nodes + 16)])
    pods = PodTable(job_pods("llm", "training", nodes, 8, 30 * DAY))
    spec = ExecutionSpec(
        kinds=[
            KindSpec(
                owner="training",
                kind="training",
                checkpoint_interval_s=1800,
                checkpoint_stall_s=30,
                load_gb=2.8,
                restart_policy="Always",
            )
        ]
    )
    fc = [FaultClass("node", LLAMA3_RATE_PER_1000_NODE_DAYS / 1000, "reboot_node", 3600.0, scope="node")]
    e = ReplayEngine(
        c,
        pods,
        Profile(),
        seed=seed,
        horizon_s=30 * DAY,
        log_events=False,
        track_fragmentation=False,
        fault_classes=fc,
        subsystem_options={"execution": spec},
        sample_interval_s=DAY,
    )
    t1 = time.perf_counter()
    r = e.run()
    t2 = time.perf_counter()
    j = r.subsystems["execution"]["jobs"][0]
    print(
        f"build {t1 - t0:.2f} s, replay {t2 - t1:.2f} s: {nodes} nodes, {j['failures']} failures, "
        f"{j['attempts']} attempts, progress {j['progress']:.3f}, invariants ok={r.invariants.ok}"
    )


if __name__ == "__main__":
    main()
