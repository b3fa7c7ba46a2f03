"""Cost of the models added for seed sections 1, 2, 4, 5, 15 and 16.

    python benchmarks/bench_models.py

Prints a Markdown table: what was run, its size, wall time, and a rate.
"""

from __future__ import annotations

import platform
import time

from gpuinfra.models.memory import AllocatorConfig, CachingAllocator, GiB, Gpu, MiB
from gpuinfra.models.memory_trace import run_trace, scenario


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    rows = []
    # allocator: random alloc/free on an 80 GiB device
    import numpy as np

    rng = np.random.default_rng(0)
    g = Gpu(80 * GiB)
    a = CachingAllocator(g, AllocatorConfig())
    live = []
    n = 50_000

    def churn():
        for k in range(n):
            if live and rng.random() < 0.5:
                a.free(live.pop(int(rng.integers(len(live)))))
            else:
                name = f"t{k}"
                a.malloc(int(rng.integers(1, 64 * MiB)), name)
                live.append(name)

    _, dt = timed(churn)
    rows.append(("caching allocator, random alloc/free", f"{n:,} ops", f"{dt:.2f} s", f"{n / dt:,.0f} ops/s"))
    r, dt = timed(lambda: run_trace(scenario("variable-batch")))
    rows.append(("allocator scenario variable-batch", f"{len(r.rows)} ops", f"{dt * 1e3:.0f} ms", ""))
    from gpuinfra.models.counters import evaluate_monitor

    _, dt = timed(lambda: evaluate_monitor("H100-SXM", 10.0))
    rows.append(("utilization counters, 6 kernel streams x 10 s", "incl. 2.5M-kernel stream", f"{dt * 1e3:.0f} ms", ""))
    from gpuinfra.models.reliability import JobSpec, simulate

    out, dt = timed(lambda: simulate(JobSpec(nodes=1024, days=90), seed=0))
    rows.append(("reliability, 1,024-node job, 90 days", f"{out.failures} failures", f"{dt * 1e3:.0f} ms", ""))
    from gpuinfra.sim.sharing import POLICIES, evaluate_policy, mixed_workload

    ts = mixed_workload("H100-SXM", 1.0)
    for p in POLICIES:
        res, dt = timed(lambda p=p: evaluate_policy(p, ts, "H100-SXM", 600.0, 0))
        served = sum(t.served for t in res.tenants if t.kind == "inference")
        rows.append(
            (
                f"sharing policy {p}, 600 simulated s",
                f"{served:,} requests",
                f"{dt * 1e3:.0f} ms",
                f"{served / dt:,.0f} requests/s",
            )
        )
    from gpuinfra.obs.evaluate import evaluate
    from gpuinfra.obs.rules import designed_rules, naive_rules
    from gpuinfra.obs.simulate import simulate_telemetry

    tel, dt = timed(lambda: simulate_telemetry(nodes=4, hours=6.0))
    rows.append(
        (
            "telemetry, 32 GPUs x 6 h at 30 s",
            f"{tel.n_samples():,} samples",
            f"{dt * 1e3:.0f} ms",
            f"{tel.n_samples() / dt:,.0f} samples/s",
        )
    )
    for name, rs in (("naive", naive_rules()), ("designed", designed_rules())):
        _, dt = timed(lambda rs=rs: evaluate(rs, tel))
        evals = len(tel.times) * len(rs)
        rows.append(
            (
                f"alert evaluation, {name} rules",
                f"{evals:,} rule evaluations",
                f"{dt:.2f} s",
                f"{evals / dt:,.0f} rule evals/s",
            )
        )
    print(f"Python {platform.python_version()}, {platform.machine()}\n")
    print("| what | size | wall | rate |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
