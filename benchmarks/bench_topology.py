"""Topology and collective model benchmark: how fast the models answer.

    python benchmarks/bench_topology.py

Measures: collective() evaluations per second (one message size, auto algorithm and protocol)
on an NVSwitch node and a PCIe-switch node, single and multi-node; best_devices() for a 4-GPU
pod on an 8-GPU node (cold: all 70 combinations; warm: memoised); a scaling curve from 1 to
1,024 GPUs. Prints a Markdown table.
"""

from __future__ import annotations

import platform
import time

from gpuinfra.models.collectives import _BEST, Placement, best_devices, collective
from gpuinfra.models.scaling import MODELS, Parallelism, scaling_curve
from gpuinfra.models.topology import builtin


def rate(fn, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    dt = time.perf_counter() - t0
    return n / dt, dt / n


def main() -> None:
    rows = []
    for node, nodes in (("dgx-h100", 1), ("dgx-h100", 16), ("pcie-8x-l40s", 1), ("pcie-8x-l40s", 4)):
        t = builtin(node)
        pl = Placement.make(t, nodes=nodes)
        for op in ("all_reduce", "all_to_all"):
            r, per = rate(lambda op=op, pl=pl: collective(op, 1 << 28, pl), 200)
            rows.append((f"collective {op}", f"{node} x{nodes}", f"{r:,.0f}/s", f"{per * 1e3:.2f} ms"))
    t = builtin("pcie-8x-l40s")
    free = tuple(range(8))

    def cold():
        _BEST.clear()
        best_devices(t, free, 4)

    r, per = rate(cold, 5)
    rows.append(("best_devices k=4 of 8 (cold, 70 rings)", "pcie-8x-l40s", f"{r:,.1f}/s", f"{per * 1e3:.1f} ms"))
    r, per = rate(lambda: best_devices(t, free, 4), 10000)
    rows.append(("best_devices k=4 of 8 (memoised)", "pcie-8x-l40s", f"{r:,.0f}/s", f"{per * 1e6:.1f} us"))
    t0 = time.perf_counter()
    curve = scaling_curve(MODELS["llama2-7b"], builtin("dgx-h100"), Parallelism(tp=2, microbatches=8), 1024)
    dt = time.perf_counter() - t0
    rows.append(("scaling_curve llama2-7b, 2..1024 GPUs", "dgx-h100", f"{len(curve)} points", f"{dt * 1e3:.0f} ms"))
    print(f"Python {platform.python_version()}, {platform.machine()}\n")
    print("| what | node | rate | per call |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
