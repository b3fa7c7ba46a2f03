"""Scale benchmark: a generated workload on a 10,000-GPU cluster with queueing (offered load > 1).

    python benchmarks/bench_scale.py --jobs 1000000            # the issue's million-job replay
    python benchmarks/bench_scale.py --jobs 100000 --profile   # cProfile of the engine, top 25
    python benchmarks/bench_scale.py --jobs 1000000 --build-only  # generating and validating the pods only

The cluster is 1,250 nodes of AWS p5.48xlarge (8 x H100-SXM, catalog shape); the workload is
the generator of the built-in synthetic-small scenario (GPUs per job {1: 0.6, 2: 0.15, 4: 0.15,
8: 0.1}, mean 2.3; log-normal durations, median 1,800 s, sigma 1.0, mean 1,800 e^{0.5} = 2,968 s)
with the Poisson arrival rate set for the requested offered load
rho = rate x E[GPUs] x E[duration] / GPUs. These are illustrative parameters, not a measured
cluster. One process; prints a JSON line (times in s, peak RSS in MiB): wall and CPU seconds of
the build (generate and validate the pods, build the cluster), the engine and the accounting.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import pstats
import resource
import time

from gpuinfra.analysis.accounting import interval_metrics, ledger, summarize
from gpuinfra.io.scenario import build, parse_scenario
from gpuinfra.sim.engine import ReplayEngine

GPUS_PER_JOB = {1: 0.6, 2: 0.15, 4: 0.15, 8: 0.1}
MEDIAN_S, SIGMA = 1800.0, 1.0


def scenario_text(jobs: int, nodes: int, load: float, policy: str) -> str:
    mean_gpus = sum(k * w for k, w in GPUS_PER_JOB.items())
    mean_dur = MEDIAN_S * math.exp(SIGMA**2 / 2)
    rate_per_h = load * nodes * 8 / (mean_gpus * mean_dur) * 3600
    return f"""
name: scale-{jobs}
seed: 1
sample_interval_s: 3600
cluster:
  pools: [{{name: h100, shape: "aws:p5.48xlarge", count: {nodes}}}]
workload:
  generator:
    jobs: {jobs}
    arrival_rate_per_hour: {rate_per_h:.3f}
    duration_median_s: {MEDIAN_S}
    duration_sigma: {SIGMA}
    gpus: {{1: 0.6, 2: 0.15, 4: 0.15, 8: 0.1}}
    cpu_milli_per_gpu: 8000
    memory_mib_per_gpu: 65536
scheduler:
  filters: [NodeResourcesFit, GpuModel]
  scores: [{{name: {policy}}}]
  reserve: FirstFitDevices
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--nodes", type=int, default=1250)
    ap.add_argument("--load", type=float, default=1.1, help="offered load rho (> 1 queues)")
    ap.add_argument("--policy", default="MostAllocated")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--build-only", action="store_true", help="stop after generating and validating the pods")
    a = ap.parse_args()
    sc = parse_scenario(scenario_text(a.jobs, a.nodes, a.load, a.policy), "bench-scale")
    t0 = time.perf_counter()
    c0 = time.process_time()
    b = build(sc, None)
    t1 = time.perf_counter()
    c1 = time.process_time()
    if a.build_only:
        print(
            json.dumps(
                {
                    "jobs": a.jobs,
                    "pods": len(b.pods),
                    "build_s": round(t1 - t0, 2),
                    "build_cpu_s": round(c1 - c0, 2),
                    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                }
            )
        )
        return
    eng = ReplayEngine(b.cluster, b.pods, b.profile, b.seed, sample_interval_s=sc.sample_interval_s, log_events=False)
    prof = cProfile.Profile() if a.profile else None
    if prof:
        prof.enable()
    run = eng.run()
    if prof:
        prof.disable()
    t2 = time.perf_counter()
    c2 = time.process_time()
    led = ledger(run, b.prices)
    m = interval_metrics(run)
    s = summarize(run, b.prices, b.meta(), led, m)
    t3 = time.perf_counter()
    c3 = time.process_time()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    out = {
        "jobs": a.jobs,
        "nodes": s["cluster"]["nodes"],
        "gpus": s["cluster"]["gpus"],
        "load": a.load,
        "events": s["engine"]["events"],
        "cycles": s["engine"]["scheduling_cycles"],
        "build_s": round(t1 - t0, 2),
        "build_cpu_s": round(c1 - c0, 2),
        "engine_s": round(t2 - t1, 2),
        "engine_cpu_s": round(c2 - c1, 2),
        "account_s": round(t3 - t2, 2),
        "account_cpu_s": round(c3 - c2, 2),
        "total_cpu_s": round(c3 - c0, 2),
        "us_per_event": round(1e6 * (c2 - c1) / s["engine"]["events"], 1),
        "us_per_cycle": round(1e6 * (c2 - c1) / max(1, s["engine"]["scheduling_cycles"]), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "allocation_ratio": round(s["gpu_time"]["allocation_ratio"], 4),
        "wait_p99_s": s["pods"]["wait_s"]["p99"],
        "queue_max": s["queue"]["max_length"],
        "balance_ok": s["invariants"]["gpu_time_balance"]["ok"],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
