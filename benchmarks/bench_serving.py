"""Serving benchmark: the request-level simulation's cost against rate and replicas.

    python benchmarks/bench_serving.py            # the issue's target run plus the sweep
    python benchmarks/bench_serving.py --quick    # 10 simulated minutes per point

Target: one simulated hour at 100 requests/s on 16 replicas with continuous batching
(Llama-3-8B on H100-SXM, 200 prompt / 200 output tokens, ShareGPT's mean lengths per the vLLM
v0.6 blog) in under 10 s. Each run is in its own process; wall and CPU (process) time both
reported, since the machine is shared. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
from gpuinfra.sim.serving import Batching, ServingConfig, make_requests, simulate
rate, reps, hours, kind = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
reqs = make_requests(1, rate, hours * 3600, 200, 200)
cfg = ServingConfig("llama-3-8b", "H100-SXM", replicas=reps, batching=Batching(kind=kind))
w0, c0 = time.perf_counter(), time.process_time()
r = simulate(cfg, reqs, 1)
print(json.dumps({"requests": r.requests, "events": r.events, "wall_s": time.perf_counter() - w0,
                  "cpu_s": time.process_time() - c0, "ok": r.invariants["ok"]}))
"""


def one(rate: float, reps: int, hours: float, kind: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(rate), str(reps), str(hours), kind],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    hours = 1 / 6 if args.quick else 1.0
    points = [(100, 16, "continuous")] + [(r, n, "continuous") for r, n in ((25, 4), (50, 8), (200, 32))]
    points += [(100, 16, "chunked"), (100, 16, "dynamic")]
    print(f"| run ({hours:g} simulated h) | requests | events | wall s | CPU s | requests/CPU-s |")
    print("|---|---|---|---|---|---|")
    for rate, reps, kind in points:
        d = one(rate, reps, hours, kind)
        print(f"| {rate} req/s, {reps} replicas, {kind} | {d['requests']:,} | {d['events']:,} | "
              f"{d['wall_s']:.2f} | {d['cpu_s']:.2f} | {d['requests'] / d['cpu_s']:,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
