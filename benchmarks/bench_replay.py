"""Replay benchmark: the default openb scenario, and how cost grows with trace and cluster size.

Each configuration runs in its own process so peak memory (ru_maxrss) is its own.

    python benchmarks/bench_replay.py            # full table (about a few minutes on 2 cores)
    python benchmarks/bench_replay.py --quick    # 1x and 4x only

Prints a Markdown table; docs/benchmarks.md records the figures and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
from gpuinfra.io.scenario import parse_scenario, builtin_scenario_text
from gpuinfra.run import simulate
import yaml
pods_x, nodes_x = int(sys.argv[1]), int(sys.argv[2])
data = yaml.safe_load(builtin_scenario_text("openb-raw"))  # the trace replayed in its own time
data["workload"]["scale"] = pods_x
data["cluster"]["replicate"] = nodes_x
sc = parse_scenario(yaml.safe_dump(data), "bench")
from gpuinfra.io.scenario import build
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.analysis.accounting import interval_metrics, ledger, summarize
t0 = time.perf_counter()
b = build(sc, None)
t1 = time.perf_counter()
run = ReplayEngine(b.cluster, b.pods, b.profile, b.seed, sample_interval_s=sc.sample_interval_s,
                   log_events=False).run()
t2 = time.perf_counter()
led = ledger(run, b.prices); m = interval_metrics(run); s = summarize(run, b.prices, b.meta(), led, m)
t3 = time.perf_counter()
print(json.dumps({
    "pods": s["workload"]["pods"], "nodes": s["cluster"]["nodes"], "gpus": s["cluster"]["gpus"],
    "events": s["engine"]["events"], "cycles": s["engine"]["scheduling_cycles"], "wall_s": t3 - t0,
    "build_s": t1 - t0, "engine_s": t2 - t1, "account_s": t3 - t2,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "alloc_ratio": s["gpu_time"]["allocation_ratio"], "ok": s["invariants"]["gpu_time_balance"]["ok"],
}))
"""


def run(pods_x: int, nodes_x: int) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(pods_x), str(nodes_x)], capture_output=True, text=True, check=True
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    configs = (
        [(1, 1), (4, 1), (1, 4), (4, 4)] if args.quick else [(1, 1), (4, 1), (16, 1), (1, 4), (1, 16), (4, 4), (16, 16)]
    )
    print(
        f"# replay benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    print(
        "| pods x | nodes x | pods | nodes | events | build s | engine s | accounting s | engine events/s | "
        "cycles/s | peak RSS MiB | allocation | balance |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for px, nx in configs:
        r = run(px, nx)
        print(
            f"| {px} | {nx} | {r['pods']:,} | {r['nodes']:,} | {r['events']:,} | {r['build_s']:.2f} | "
            f"{r['engine_s']:.2f} | {r['account_s']:.2f} | {r['events'] / r['engine_s']:,.0f} | "
            f"{r['cycles'] / r['engine_s']:,.0f} | "
            f"{r['peak_rss_mib']:.0f} | {100 * r['alloc_ratio']:.2f}% | {'ok' if r['ok'] else 'FAIL'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
