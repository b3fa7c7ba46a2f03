"""Lifecycle benchmark: a 30-day run of a 1,000-node (8,000-GPU) H100 cluster with a rolling
surge upgrade of its main pool, spot reclaims on a spot pool and OpenCost-style attribution.

    python benchmarks/bench_lifecycle.py            # one run, seed 7
    python benchmarks/bench_lifecycle.py --quick    # 100 nodes

The workload is the package's generator (Poisson arrivals, log-normal durations); its numbers are
benchmark parameters, not measurements. Prints a Markdown row; the target is under 30 s.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import yaml


def scenario(nodes: int) -> dict:
    spot = nodes // 10
    surge = max(1, nodes // 100)
    main = nodes - spot - surge
    return {
        "name": f"bench-lifecycle-{nodes}",
        "seed": 7,
        "horizon_s": 30 * 86400,
        "sample_interval_s": 3600,
        "cluster": {
            "pools": [
                {"name": "gpu", "shape": "aws:p5.48xlarge", "count": main},
                {"name": "gpu-spot", "shape": "aws:p5.48xlarge", "count": spot},
                {"name": "gpu-surge", "shape": "aws:p5.48xlarge", "count": surge},
            ]
        },
        "workload": {
            "generator": {
                "jobs": int(100_000 * nodes / 1000),
                "arrival_rate_per_hour": 140 * nodes / 1000,
                "duration_median_s": 8 * 3600,
                "duration_sigma": 1.0,
                "gpus": {1: 0.4, 2: 0.2, 4: 0.2, 8: 0.2},
                "cpu_milli_per_gpu": 8000,
                "memory_mib_per_gpu": 65536,
                "owners": {"serving": 0.2, "research": 0.5, "batch": 0.3},
                "gpu_model": "H100-SXM",
            }
        },
        "scheduler": {
            "queue_sort": "PrioritySort",
            "filters": ["NodeResourcesFit", "GpuModel"],
            "scores": [{"name": "MostAllocated", "weight": 1}],
            "reserve": "FirstFitDevices",
        },
        "prices": {"cloud": "aws"},
        "upgrade": {
            "pool": "gpu",
            "strategy": "surge",
            "max_surge": surge,
            "max_unavailable": 0,
            "surge_pool": "gpu-surge",
            "start_s": 5 * 86400,
            "pdbs": {"serving": {"maxUnavailable": "10%"}},
            "source": "benchmark parameters",
        },
        "spot": {"pools": ["gpu-spot"], "reclaim_rate_per_node_day": 0.2 / 30, "source": "AWS >20 %/month bucket"},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--without-lifecycle", action="store_true", help="same run without upgrade and spot (overhead)")
    args = ap.parse_args()
    nodes = 100 if args.quick else 1000
    from gpuinfra import api
    from gpuinfra.analysis import attribution as at

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "bench.yaml"
        d0 = scenario(nodes)
        if args.without_lifecycle:
            d0.pop("upgrade")
            d0.pop("spot")
        p.write_text(yaml.safe_dump(d0))
        t0 = time.perf_counter()
        sc = api.scenario(p)
        res = api.simulate(sc)
        t1 = time.perf_counter()
        o = res._output
        table = at.attribute(o.run, o.ledger, o.built.prices)
        t2 = time.perf_counter()
    u = o.run.subsystems.get("upgrade") or {"duration_s": 0, "nodes_done": 0, "jobs_killed": 0}
    sp = o.run.subsystems.get("spot") or {"reclaims": 0}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "| nodes | GPUs | pods | events | simulate s | attribution s | total s | upgrade h | nodes upgraded | "
        "jobs killed | reclaims | bill USD | sums to bill | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    total, billed = float(table["totalCost"].sum()), at.bill(o.run, o.built.prices)["total"]
    cells = [
        f"{nodes:,}", f"{o.run.cluster.n_gpus:,}", f"{len(o.run.pods):,}", f"{o.run.events_processed:,}",
        f"{t1 - t0:.2f}", f"{t2 - t1:.2f}", f"{t2 - t0:.2f}", f"{(u['duration_s'] or 0) / 3600:.1f}",
        str(u["nodes_done"]), str(u["jobs_killed"]), str(sp["reclaims"]), f"{total:,.0f}",
        "ok" if abs(total - billed) <= 1e-6 * total else "NO", f"{rss:.0f}",
    ]  # fmt: skip
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
