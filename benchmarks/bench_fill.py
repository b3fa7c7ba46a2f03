"""Fill benchmark: one FGD-paper fill run per policy, at 1x and 10x the openb cluster.

    python benchmarks/bench_fill.py            # 1x and 10x, every policy, seed 42
    python benchmarks/bench_fill.py --quick    # 1x only

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
row = next(x for x in r.rows if x["arrived_pct"] == 100)
print(json.dumps({"pods": r.pods, "cycles": r.cycles, "wall_s": wall, "unalloc": row["unalloc_pct"],
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--policies",
        default="random,dotprod,clustering,packing,bestfit,fgd,clustering-milli,packing-tightest,firstfit,spread,mostallocated",
    )
    args = ap.parse_args()
    scales = [1] if args.quick else [1, 10]
    print(
        f"# fill benchmark: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print("| policy | cluster | nodes | pods | wall s | decisions/s | peak RSS MiB | unallocated % at 100% |")
    print("|---|---|---|---|---|---|---|---|")
    for scale in scales:
        for policy in args.policies.split(","):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, policy, str(scale)], capture_output=True, text=True, check=True
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"| {policy} | {scale}x | {1213 * scale:,} | {r['pods']:,} | {r['wall_s']:.2f} | "
                f"{r['cycles'] / r['wall_s']:,.0f} | {r['rss']:.0f} | {r['unalloc']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
