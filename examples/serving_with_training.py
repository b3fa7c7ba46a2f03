"""Training and LLM serving on one cluster, one simulator.

Run: PYTHONPATH=src python examples/serving_with_training.py

Two 8 x H100 nodes: an 8-GPU training job and three 1-GPU serving replicas (pods named serve-*)
of Llama-3-8B (priority 10, below the training job's 50). At 600 s an urgent 8-GPU job
(priority 100) arrives; preemption evicts the lowest-priority pods that make room, the serving
replicas: their in-flight requests wait in front of the router until the replicas are rescheduled
(after the urgent job) and start over, cold. The replay checks the cluster
invariants; the serving subsystem reports latency, SLO attainment and retries.
"""

from __future__ import annotations

import json
from pathlib import Path

from gpuinfra.io.serving_trace import read_request_trace
from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.serving import ColdStart, ServingConfig, ServingSpec
from gpuinfra.sim.workload import Pod, PodTable


def main() -> dict:
    cluster = ClusterState.from_pools([NodePool("h100", "H100-SXM", 8, 192000, 2000000, 2)])
    pods = PodTable(
        [
            Pod("train-a", 0.0, 3600.0, 32000, 512000, 8, 1000, priority=50),
            *(Pod(f"serve-{k}", 0.0, 3600.0, 4000, 64000, 1, 1000, priority=10) for k in range(3)),
            Pod("train-urgent", 600.0, 1200.0, 32000, 512000, 8, 1000, priority=100),
        ]
    )
    requests = read_request_trace(Path(__file__).with_name("requests.csv"))
    spec = ServingSpec(ServingConfig("llama-3-8b", "H100-SXM", cold_start=ColdStart(image_gb=0, warmup_s=20)), requests)
    profile = Profile(queue_sort="PrioritySort", preemption=True)
    r = ReplayEngine(cluster, pods, profile, 7, subsystem_options={"serving": spec}).run()
    s = r.subsystems["serving"]
    out = {
        "invariants_ok": r.invariants.ok,
        "requests": s["requests"],
        "completed": s["completed"],
        "retried": s["retried"],
        "ttft_p99_s": s["ttft_s"]["p99"],
        "slo_attainment": s["slo_attainment"],
        "replicas_started": s["replicas_started"],
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
