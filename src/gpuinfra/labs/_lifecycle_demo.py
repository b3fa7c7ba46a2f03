"""The workload labs 12 and 14 run: written next to the report (scenario YAML + trace CSV), so
a reader can rerun it with ``gpuinfra simulate``. Every number is an illustrative parameter of
the exercise, not a measurement: durations, counts and rates are stated in the YAML it writes."""

from __future__ import annotations

from pathlib import Path

import yaml

from gpuinfra.labs import write_lab_file


def write_trace(path: Path, *, days: float = 3.0, replicas: int = 6, batch_per_day: int = 14) -> None:
    """Inference replicas (whole run), three 2-day 8-GPU training jobs every 2 days and a steady
    batch stream. Deterministic (pure arithmetic, no random draws)."""
    trainings = 3 * max(1, int(days // 2))
    horizon = days * 86400
    rows = ["job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner"]
    for i in range(replicas):
        rows.append(f"serve-{i},{i * 10},{horizon:.0f},1,1000,8000,65536,H100-SXM,100,,serving")
    for i in range(trainings):
        rows.append(
            f"train-{i},{60 + (i // 3) * 2 * 86400 + (i % 3) * 30},{2 * 86400},8,1000,96000,786432,H100-SXM,10,,research"
        )
    n = int(batch_per_day * days)
    for i in range(n):
        dur = 7200 + (i * 977) % 7200
        rows.append(
            f"batch-{i},{300 + i * 86400 // batch_per_day},{dur},{1 + (i % 3)},1000,8000,65536,H100-SXM,5,,batch"
        )
    write_lab_file(path, "\n".join(rows) + "\n")


# Execution semantics of the demo's owners (sim/execution.py): training checkpoints hourly, the
# inference service declares the load it serves (the over-provisioned serving line needs it).
CHECKPOINT_INTERVAL_S = 3600.0
"""~1 h: the typical checkpoint interval of the ETTR model's inputs (Kokolis et al., HPCA 2025,
arXiv 2410.21680; facts failures-and-checkpoints.md 3.4). No stall: async checkpointing assumed
(Acme, NSDI'24, facts 3.5), so the GPUs are not blocked while it persists."""
SERVICE_LOAD = {
    "offered_rps": 100.0,
    "source": "illustrative parameter of the exercise (assumption): mean requests/s the inference service receives",
    "model": "llama-3-8b",
    "input_tokens": 512,
    "output_tokens": 128,
    "target_utilization": 0.7,
    "min_replicas": 2,
}
"""The service: Llama-3-8B bf16, one H100 per replica, 512-token prompts and 128-token outputs
(assumptions of the exercise); capacity per replica computed by sim/serving at Vidur-Search's SLO
(TTFT p90 < 2 s, TBT p99 < 200 ms); 70 % target utilisation (Knative's default
container-concurrency-target-percentage, facts serving.md 2.1); at least 2 replicas so a drain or
a fault never leaves the service with none (N+1, assumption)."""


def execution_block() -> dict:
    """The demo's ``execution:`` block (training checkpointed hourly; the service and its load)."""
    return {
        "kinds": [
            {"owner": "research", "kind": "training", "checkpoint_interval_s": CHECKPOINT_INTERVAL_S},
            {"owner": "serving", "kind": "service", "load": dict(SERVICE_LOAD)},
        ]
    }


def scenario_dict(trace: str, *, nodes: int = 5, spare: int = 5, days: float = 3.0) -> dict:
    return {
        "name": "lifecycle-demo",
        "description": "Inference replicas behind a PDB, 2-day training jobs, batch jobs on an H100 pool",
        "seed": 3,
        "horizon_s": days * 86400,
        "sample_interval_s": 600,
        "cluster": {
            "pools": [
                {"name": "gpu", "shape": "aws:p5.48xlarge", "count": nodes},
                {"name": "gpu-surge", "shape": "aws:p5.48xlarge", "count": spare},
            ]
        },
        "workload": {"trace": trace},
        "scheduler": {
            "queue_sort": "PrioritySort",
            "filters": ["NodeResourcesFit", "GpuModel"],
            "scores": [{"name": "MostAllocated", "weight": 1}],
            "reserve": "FirstFitDevices",
        },
        "prices": {"cloud": "aws"},
        "execution": execution_block(),
    }


def write_scenario(out_dir: Path, extra: dict | None = None, name: str = "scenario.yaml") -> Path:
    """Write the trace and a scenario (plus ``extra`` top-level blocks); return the YAML path."""
    write_trace(out_dir / "lifecycle-jobs.csv")
    d = scenario_dict("lifecycle-jobs.csv") | (extra or {})
    p = out_dir / name
    return write_lab_file(p, yaml.safe_dump(d, sort_keys=False))
