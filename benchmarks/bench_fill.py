"""Fill benchmark: one FGD-paper fill run per policy, at 1x and 10x the openb cluster.

    python benchmarks/bench_fill.py            # 1x and 10x, every policy, seed 42
    python benchmarks/bench_fill.py --quick    # 1x only

"warm CPU s" is the median CPU time (time.process_time) of ``--repeat`` more runs in the same
process, after the first has paid the imports: the figure the issue's goals (BestFit under 0.5 s,
FGD under 1 s) are read against, as a shared machine disturbs it less than wall time.
"decisions" are scheduling cycles (one per arriving pod, placed or failed). At 10x the node list
is replicated ten times and the pod list resampled to the same 130% of the larger capacity.
Each run is in its own process (peak RSS is its own). Prints a Markdown table.
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
from dataclasses import replace
from gpuinfra.io.traces import openb_node_list, openb_pod_list, read_openb_nodes, read_openb_static
from gpuinfra.sim.fill import run_fill
policy, scale = sys.argv[1], int(sys.argv[2])
pools = read_openb_nodes(openb_node_list("gpu_node"))
if scale > 1:
    pools = [replace(p, name=f"{p.name}-r{r}", node_names=tuple(f"{n}-r{r}" for n in p.node_names))
             for r in range(scale) for p in pools]
base = read_openb_static(openb_pod_list("default"))
t0 = time.perf_counter()
r = run_fill(pools, base, policy, 42)
wall = time.perf_counter() - t0
cpu = []
for _ in range(int(sys.argv[3])):  # warm runs (imports and caches of the first run paid): CPU of the fill
    c0 = time.process_time()
    run_fill(pools, base, policy, 42)
    cpu.append(time.process_time() - c0)
row = next(x for x in r.rows if x["arrived_pct"] == 100)
print(json.dumps({"pods": r.pods, "cycles": r.cycles, "wall_s": wall, "unalloc": row["unalloc_pct"],
                  "cpu": sorted(cpu)[len(cpu) // 2] if cpu else None,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--policies",
        default="random,dotprod,clustering,packing,bestfit,fgd,clustering-milli,packing-tightest,firstfit,spread,mostallocated",
    )
    ap.add_argument("--repeat", type=int, default=3, help="warm runs whose median CPU seconds are reported (0: none)")
    args = ap.parse_args()
    scales = [1] if args.quick else [1, 10]
    print(
        f"# fill benchmark: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(
        "| policy | cluster | nodes | pods | wall s | warm CPU s (median) | decisions/s | peak RSS MiB "
        "| unallocated % at 100% |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scale in scales:
        for policy in args.policies.split(","):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, policy, str(scale), str(args.repeat if scale == 1 else 0)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"| {policy} | {scale}x | {1213 * scale:,} | {r['pods']:,} | {r['wall_s']:.2f} | "
                f"{'-' if r['cpu'] is None else format(r['cpu'], '.2f')} | "
                f"{r['cycles'] / r['wall_s']:,.0f} | {r['rss']:.0f} | {r['unalloc']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
