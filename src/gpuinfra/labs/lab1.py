"""Lab 1: why GPUs exist: "Why GPUs Exist and Why Infra Must Change" (seed section 1).

Activities (seed 1.4), each a step below:
1. Analyze historical CPU scaling limits: why parallelism, not clock speed, became the lever.
2. Explain how GPUs changed infra assumptions (without naming AI frameworks): the device
   contrasts that drive it, computed from the catalogs.
3. Design a hypothetical infra that treats GPUs as "faster CPUs" and find where it fails: each
   assumption run through the model that tests it.
4. Compare CPU-first and GPU-first designs and their failure modes, with costs.
5. Present: the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpuinfra.catalog.cpus import cpu_history, cpu_model
from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.labs import write_lab
from gpuinfra.models import roofline as rl
from gpuinfra.models.collectives import Placement, collective
from gpuinfra.models.counters import evaluate_monitor
from gpuinfra.models.memory_trace import run_trace, scenario
from gpuinfra.models.preempt_cost import GpuJob, preemption_cost
from gpuinfra.models.scaling import MODELS
from gpuinfra.models.topology import builtin
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html

TITLE = "Why GPUs Exist and Why Infra Must Change"
CPU, GPU = "EPYC-9654", "H100-SXM"


def _cagr(a: float, b: float, years: float) -> float:
    return (b / a) ** (1 / years) - 1 if a > 0 and years > 0 else float("nan")


# -- 1. history --------------------------------------------------------------------------------


def history() -> dict[str, Any]:
    h = [x for x in cpu_history() if x.clock_mhz > 0]
    knee = max((x for x in h if x.year <= 2006), key=lambda x: x.clock_mhz)  # the clock peak of the single-core era
    first_fp = next(x for x in h if x.fp32_flops_per_cycle_per_core >= 1)
    last = h[-1]
    later = [x for x in h if x.year > knee.year]
    rows = [
        {
            "year": x.year,
            "processor": x.processor,
            "clock_mhz": x.clock_mhz,
            "cores": x.cores,
            "tdp_w": x.tdp_w,
            "single_core_gflops": x.single_core_peak / 1e9,
            "chip_gflops": x.chip_peak / 1e9,
            "transistors": x.transistors,
        }
        for x in h
    ]
    return {
        "rows": rows,
        "knee_year": knee.year,
        "knee_clock_mhz": knee.clock_mhz,
        "clock_cagr_before": _cagr(first_fp.clock_mhz, knee.clock_mhz, knee.year - first_fp.year),
        "clock_cagr_after": _cagr(knee.clock_mhz, max(x.clock_mhz for x in later), last.year - knee.year),
        "max_clock_after_mhz": max(x.clock_mhz for x in later),
        "cores_after": max(x.cores for x in later),
        "chip_peak_growth_after": last.chip_peak / knee.chip_peak,
        "single_core_growth_after": max(x.single_core_peak for x in later) / knee.single_core_peak,
        "tdp_knee_w": knee.tdp_w,
        "first_fp_year": first_fp.year,
        "last_year": last.year,
    }


# -- 2. contrasts ------------------------------------------------------------------------------


def contrasts() -> dict[str, Any]:
    c, g = cpu_model(CPU), gpu_model(GPU)
    gemm = rl.gemm(8192, 8192, 8192)
    decode = rl.gemm(1, 8192, 8192)
    ec, eg = rl.estimate(gemm, CPU, "bf16"), rl.estimate(gemm, GPU, "bf16")
    dc, dg = rl.estimate(decode, CPU, "bf16"), rl.estimate(decode, GPU, "bf16")
    m = MODELS["gpt3-1.3b"]
    tokens = 300e9  # a GPT-3-style token budget for a small model [assumption]
    train_flops = 6 * m.params * tokens
    cpu_days = train_flops / c.bf16_flops / 86400
    gpu_days = train_flops / g.fp16_tensor_dense_flops / 86400
    pr = gpu_hour_price(GPU)
    price, n_rows = pr.on_demand_usd, pr.rows_used
    return {
        "cpu": CPU,
        "gpu": GPU,
        "peak_ratio": eg.peak_flops / ec.peak_flops,
        "bw_ratio": eg.mem_bw / ec.mem_bw,
        "cpu_memory_note": "a CPU socket addresses terabytes of DRAM; the GPU has its fixed on-package memory",
        "gpu_memory_gib": g.memory_gib,
        "gemm_speedup": ec.time_s / eg.time_s,
        "decode_speedup": dc.time_s / dg.time_s,
        "gemm_bound": (ec.bound, eg.bound),
        "decode_bound": (dc.bound, dg.bound),
        "train_days_cpu_socket": cpu_days,
        "train_days_gpu": gpu_days,
        "train_model": m.name,
        "train_tokens": tokens,
        "gpu_usd_per_hour": price,
        "price_rows": n_rows,
        "gpu_tdp_w": g.tdp_w,
        "cpu_tdp_w": c.tdp_w,
    }


# -- 3. the "GPUs are faster CPUs" design ---------------------------------------------------------


def faster_cpu_design() -> list[dict[str, Any]]:
    """Each assumption of a CPU-era infra, and the model run that tests it on GPUs."""
    out = []
    # 1. over-commit: pack two jobs on one device like CPU shares
    r = run_trace(scenario("second-process"))
    out.append(
        {
            "assumption": "over-commit devices like CPU cores: two jobs share a GPU, the OS sorts it out",
            "test": "a training job starts on an H100 where an inference server holds 60 GiB (allocator model)",
            "result": "OOM" if r.oom else "ran",
            "evidence": (r.oom["message"].split(". Including")[0] if r.oom else ""),
            "cost": "the second job dies at start; GPU memory has no swap and no fair share",
        }
    )
    # 2. stateless retry / preemption is free
    c = preemption_cost(GpuJob(MODELS["llama2-7b"].params, 8))
    out.append(
        {
            "assumption": "preempt and retry freely: processes are cheap to stop and restart",
            "test": "stop a Llama 2 7B training job on 8 H100s at a random moment (1 h checkpoints)",
            "result": f"{c.total_s / 60:.0f} min of 8 GPUs lost ({c.gpu_hours:.1f} GPU-hours)",
            "evidence": f"lost work {c.lost_work_s / 60:.0f} min, restart {c.restart_s / 60:.1f} min; a paused CPU process loses {c.cpu_pause_s:.0f} s",
            "cost": f"{c.gpu_hours:.1f} GPU-hours per preemption",
        }
    )
    # 3. scale on utilization
    v = {x.scenario: x for x in evaluate_monitor(GPU)}
    hung = v["hung collective"]
    out.append(
        {
            "assumption": "autoscale and alert on utilization, as with CPU load",
            "test": "counters of a hung NCCL collective (one SM spinning) through a utilization-only monitor",
            "result": f"GPU_UTIL {hung.counters.gpu_util_pct:.0f}%: '{hung.util_only_says}'",
            "evidence": f"useful throughput {hung.counters.useful_fraction:.0%}; SM_ACTIVE {hung.counters.sm_active:.3f}",
            "cost": "a dead job looks healthy until someone reads the step counter",
        }
    )
    # 4. any free device is as good as any other
    t = builtin("pcie-4x-a100-nvbridge")
    near = collective("all_reduce", 1 << 30, Placement.make(t, ["GPU0", "GPU1"]))
    far = collective("all_reduce", 1 << 30, Placement.make(t, ["GPU1", "GPU2"]))
    out.append(
        {
            "assumption": "devices are interchangeable: any two free GPUs will do",
            "test": "1 GiB all-reduce on an NVLink-bridged pair against a pair across sockets (same node)",
            "result": f"{far.time_s / near.time_s:.0f}x slower across sockets",
            "evidence": f"{near.busbw / 1e9:.0f} vs {far.busbw / 1e9:.0f} GB/s bus bandwidth",
            "cost": "every step of a data-parallel job pays it",
        }
    )
    return out


# -- 4. CPU-first vs GPU-first -------------------------------------------------------------------


def compare_designs(contrast: dict[str, Any], design: list[dict[str, Any]]) -> list[dict[str, str]]:
    pre = preemption_cost(GpuJob(MODELS["llama2-7b"].params, 8))
    price = contrast["gpu_usd_per_hour"]
    return [
        {
            "concern": "unit of allocation",
            "cpu_first": "millicores and bytes, over-committed, shared by the kernel",
            "gpu_first": "whole devices (or hardware partitions), memory never over-committed",
            "failure_if_cpu_first": design[0]["result"] + " on the shared GPU",
        },
        {
            "concern": "stopping work",
            "cpu_first": "pause, migrate or retry: cheap",
            "gpu_first": "checkpoint cadence, planned drains, preemption only with notice",
            "failure_if_cpu_first": f"{pre.gpu_hours:.1f} GPU-hours (~${pre.gpu_hours * price:,.0f}) lost per unplanned stop",
        },
        {
            "concern": "health signal",
            "cpu_first": "load average / CPU utilization",
            "gpu_first": "SM and tensor activity, step progress, Xid/ECC events",
            "failure_if_cpu_first": design[2]["result"],
        },
        {
            "concern": "placement",
            "cpu_first": "any node with free cores",
            "gpu_first": "topology-aware: NVLink domains, NUMA, NIC affinity",
            "failure_if_cpu_first": design[3]["result"],
        },
        {
            "concern": "cost of idling",
            "cpu_first": f"a {contrast['cpu']} socket: small share of the bill",
            "gpu_first": f"${price:.2f} per GPU-hour (median H100 price in the packaged catalog): idle GPUs are the bill",
            "failure_if_cpu_first": f"an 8-GPU node idle for a day: ${8 * 24 * price:,.0f}",
        },
    ]


# -- the lab ---------------------------------------------------------------------------------


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    hist = history()
    con = contrasts()
    fast = faster_cpu_design()
    cmp_ = compare_designs(con, fast)
    s = {
        "schema": "gpuinfra.lab1/1",
        "history": hist,
        "contrasts": con,
        "faster_cpu_design": fast,
        "cpu_first_vs_gpu_first": cmp_,
    }
    return write_lab(out_dir, s, render(s))


def render(s: dict[str, Any]) -> str:
    f: list[str] = []
    secs: list[Section] = []
    h = s["history"]
    rows = h["rows"]
    fig = line_figure(
        {
            "clock (MHz)": [(r["year"], r["clock_mhz"]) for r in rows],
            "cores": [(r["year"], r["cores"]) for r in rows],
            "TDP (W)": [(r["year"], r["tdp_w"]) for r in rows if r["tdp_w"]],
            "single-core peak FP32 (GFLOP/s)": [
                (r["year"], r["single_core_gflops"]) for r in rows if r["single_core_gflops"] > 0
            ],
            "chip peak FP32 (GFLOP/s)": [(r["year"], r["chip_gflops"]) for r in rows if r["chip_gflops"] > 0],
        },
        "CPUs, 1971 to today (recalled launch specs, tagged U; log scale)",
        "launch year",
        "value in each trace's unit (MHz, cores, W, GFLOP/s; log scale)",
        logx=False,
        logy=True,
    )
    claim1 = (
        f"Clock rate grew {h['clock_cagr_before']:.0%} a year from {h['first_fp_year']} to {h['knee_year']} and then stopped: the fastest "
        f"clock after {h['knee_year']} is {h['max_clock_after_mhz']:.0f} MHz against {h['knee_clock_mhz']:.0f} ({h['clock_cagr_after']:+.1%} a year), "
        f"at a power ceiling near {h['tdp_knee_w']:.0f} W per desktop chip. Peak throughput kept growing ({h['chip_peak_growth_after']:.0f}x "
        f"per chip since {h['knee_year']}) only through cores (up to {h['cores_after']}) and wider SIMD; single-core peak grew "
        f"{h['single_core_growth_after']:.0f}x, and only through SIMD width, which serial code does not use."
    )
    tab = table_html(
        ["year", "processor", "MHz", "cores", "W", "single-core GFLOP/s", "chip GFLOP/s"],
        [
            [
                r["year"],
                r["processor"],
                f"{r['clock_mhz']:g}",
                r["cores"],
                r["tdp_w"] or "-",
                f"{r['single_core_gflops']:.2f}",
                f"{r['chip_gflops']:.1f}",
            ]
            for r in rows
        ],
        {0, 2, 3, 4, 5, 6},
    )
    secs.append(
        Section(
            "1. Analyze: why CPUs broke",
            fig_html(fig, "f1") + tab,
            claim1,
            "Peak FLOP/s = clock x FP32 operations per cycle (SIMD lanes x FMA units) x cores, derived from the table (catalog/data/cpu_history.csv, CPU_SOURCES.md); measured single-thread performance is not in the table.",
        )
    )
    f.append(claim1)
    c = s["contrasts"]
    fig = bar_figure(
        ["peak BF16 FLOP/s", "memory bandwidth", "8192^3 GEMM speed", "decode GEMV speed"],
        {f"{c['gpu']} / {c['cpu']}": [c["peak_ratio"], c["bw_ratio"], c["gemm_speedup"], c["decode_speedup"]]},
        "How much more one GPU does than one server CPU socket (log scale; bars start at 1x, equal)",
        "GPU / CPU socket (x)",
        logy=True,
        xt="quantity compared",
        log_floor=1.0,
    )
    claim2 = (
        f"One {c['gpu']} has {c['peak_ratio']:.0f}x the dense BF16 peak of one {c['cpu']} socket but only {c['bw_ratio']:.0f}x its memory bandwidth "
        f"and {c['gpu_memory_gib']:.0f} GiB of memory: a compute-bound GEMM runs {c['gemm_speedup']:.0f}x faster, a memory-bound decode step only "
        f"{c['decode_speedup']:.0f}x. Training {c['train_model']} on {c['train_tokens'] / 1e9:.0f} B tokens at peak takes {c['train_days_gpu']:.0f} GPU-days "
        f"against {c['train_days_cpu_socket']:,.0f} socket-days: GPUs are a requirement, and they arrive as scarce, fixed-memory devices at "
        f"${c['gpu_usd_per_hour']:.2f} per hour and {c['gpu_tdp_w']:.0f} W each."
    )
    secs.append(
        Section(
            "2. Explain: what GPUs changed",
            fig_html(fig, "f2"),
            claim2,
            f"Roofline estimates (gpuinfra.models.roofline) from the GPU and CPU catalogs; price: median of {c['price_rows']} H100 rows in the packaged price catalog.",
        )
    )
    f.append(claim2)
    d = s["faster_cpu_design"]
    claim3 = (
        "Treating GPUs as faster CPUs fails at each assumption tested: "
        + "; ".join(f"{x['assumption'].split(':')[0]} -> {x['result']}" for x in d)
        + "."
    )
    secs.append(
        Section(
            "3. Design: the 'GPUs are faster CPUs' infra, and where it breaks",
            table_html(
                ["assumption", "test", "result", "evidence", "cost"],
                [[x[k] for k in ("assumption", "test", "result", "evidence", "cost")] for x in d],
            ),
            claim3,
        )
    )
    f.append(claim3)
    cm = s["cpu_first_vs_gpu_first"]
    claim4 = (
        "Where a CPU-first design meets GPUs, the failure has a price: "
        + "; ".join(f"{x['concern']}: {x['failure_if_cpu_first']}" for x in cm)
        + "."
    )
    secs.append(
        Section(
            "4. Compare: CPU-first against GPU-first",
            table_html(
                ["concern", "CPU-first", "GPU-first", "what the CPU-first choice costs on GPUs"],
                [[x["concern"], x["cpu_first"], x["gpu_first"], x["failure_if_cpu_first"]] for x in cm],
            ),
            claim4,
        )
    )
    f.append(claim4)
    sub = "Seed section 1, every activity run now. Numbers come from gpuinfra's catalogs and models; the CPU tables are recalled launch specifications tagged U (unverified)."
    return render_page(f"Lab 1: {TITLE}", secs, findings=f, subtitle=sub)
