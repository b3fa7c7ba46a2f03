"""Lab 2: the GPU resource model: "What a GPU Resource Actually Is" (seed section 2).

Activities (seed 2.6), each a step below:
1. Explain the GPU resource model purely in terms of constraints (memory capacity, memory
   bandwidth, compute, SMs), with which one binds for typical operations on each GPU.
2. Analyze why VRAM fragmentation causes failures even when memory appears available.
3. Reproduce GPU memory pressure scenarios and document allocation behaviour (on a real GPU too,
   when PyTorch and a GPU are present).
4. Design a monitoring system that relies only on utilization, and show why it misleads.
5. Present: the report, with sections 2.4 (non-preemptibility) and 2.5 (CPU-GPU feeding) run
   as models too.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape as html_escape
from pathlib import Path
from typing import Any

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.io.results import write_json
from gpuinfra.labs import write_lab_file
from gpuinfra.models import roofline as rl
from gpuinfra.models.counters import evaluate_monitor, sample, scenarios
from gpuinfra.models.feeding import Loop, step, sweep_batch, sweep_workers
from gpuinfra.models.memory import format_size
from gpuinfra.models.memory_trace import SCENARIOS, run_trace, scenario
from gpuinfra.models.preempt_cost import GpuJob, preemption_cost
from gpuinfra.models.scaling import MODELS, Parallelism, memory_bytes
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.memory_fig import segment_figure, timeline_figure
from gpuinfra.report.page import Section, render_page, table_html

TITLE = "What a GPU Resource Actually Is"
GPUS = ("T4", "L4", "A100-80GB", "H100-SXM", "B200")


def constraints() -> dict[str, Any]:
    ops = {
        "training GEMM 8192^3": rl.gemm(8192, 8192, 8192),
        "decode GEMV 1x8192x8192": rl.gemm(1, 8192, 8192),
        "layer norm over 64M values": rl.elementwise(1 << 26, operands=1, flops_per_element=5),
        "embedding lookup 64k x 4096": rl.embedding(65536, 4096),
        "attention b8 h32 s4096": rl.attention(8, 32, 4096, 128),
    }
    rows = []
    for g in GPUS:
        m = gpu_model(g)
        prec = "bf16" if m.bf16 else "fp16"
        row = {
            "gpu": m.name,
            "memory_gib": m.memory_gib,
            "bw_tb_s": (m.mem_bw_bytes_per_s or 0) / 1e12,
            "tflops": rl.peak(m, prec) / 1e12,
            "sms": m.sm_count,
            "ridge": rl.peak(m, prec) / (m.mem_bw_bytes_per_s or 1),
        }
        for name, o in ops.items():
            row[name] = rl.estimate(o, g, prec).bound
        fits = {}
        for mname in ("gpt3-1.3b", "llama2-7b", "llama2-70b"):
            need = memory_bytes(MODELS[mname], Parallelism(micro_batch=1, seq=2048)) / 2**30
            fits[mname] = need <= (m.memory_visible_mib or (m.memory_gib or 0) * 1024) / 1024
        row["trains_alone"] = fits
        rows.append(row)
    return {"rows": rows, "ops": list(ops)}


def fragmentation() -> dict[str, Any]:
    out = {}
    for name in ("variable-batch", "interleaved"):
        runs = {}
        for conf in ("", "expandable_segments:True"):
            r = run_trace(scenario(name), conf or None)
            o = r.oom
            runs[conf or "(defaults)"] = {
                "oom": o is not None,
                "request": o["size"] if o else None,
                "device_free": o["device_free"] if o else None,
                "cached_free": o["cached_free"] if o else None,
                "largest_free_block": o["largest_free_block"] if o else None,
                "message": o["message"] if o else "",
                "peak_inactive_split": max(x["inactive_split"] for x in r.rows),
                "peak_reserved": max(x["reserved"] for x in r.rows),
                "peak_allocated": max(x["allocated"] for x in r.rows),
                "rows": r.rows,
                "snapshot": r.snapshot,
            }
        out[name] = runs
    return out


def pressure(probe_real: bool) -> dict[str, Any]:
    res = {}
    for name, (_, what) in SCENARIOS.items():
        r = run_trace(scenario(name))
        res[name] = {
            "what": what,
            "ooms": [
                {k: o[k] for k in ("proc", "name", "size", "message", "device_free", "cached_free", "allocated")}
                for o in r.ooms
            ],
            "ops": len(r.rows),
            "stats": r.stats,
        }
    real: dict[str, Any] = {"ran": False, "why": "not asked (run with a GPU and PyTorch; `gpuinfra probe memory`)"}
    if probe_real:
        from gpuinfra.io.probe import ProbeUnavailable
        from gpuinfra.io.probe_memory import compare_real

        try:
            real = {
                "ran": True,
                **{k: v for k, v in compare_real("variable-batch", "").items() if k not in ("real", "model")},
            }
        except ProbeUnavailable as e:
            real = {"ran": False, "why": str(e)}
    return {"scenarios": res, "real": real}


def monitoring() -> dict[str, Any]:
    verdicts = evaluate_monitor("H100-SXM")
    series = {}
    for name, (_, stream) in scenarios("H100-SXM").items():
        cs = sample(stream, "H100-SXM", 10.0)
        series[name] = [(i, c.gpu_util_pct, c.sm_active, c.useful_fraction) for i, c in enumerate(cs)]
    return {"verdicts": [v.as_dict() for v in verdicts], "series": series}


def non_preemptible() -> list[dict[str, Any]]:
    rows = []
    for label, job in (
        ("Llama 2 7B on 8 H100, unplanned", GpuJob(MODELS["llama2-7b"].params, 8)),
        ("Llama 2 7B on 8 H100, planned (save first)", GpuJob(MODELS["llama2-7b"].params, 8, planned=True)),
        ("Llama 2 70B on 64 H100, unplanned", GpuJob(MODELS["llama2-70b"].params, 64)),
        (
            "Llama 2 70B on 64 H100, 15 min checkpoints",
            GpuJob(MODELS["llama2-70b"].params, 64, checkpoint_interval_s=900),
        ),
    ):
        c = preemption_cost(job)
        rows.append({"job": label, **c.as_dict()})
    return rows


def feeding() -> dict[str, Any]:
    base = Loop(workers=2)
    return {
        "workers": sweep_workers(base, [1, 2, 4, 8, 16, 32]),
        "batch": sweep_batch(replace(base, workers=32), [1, 4, 16, 64, 256]),
        "pinned": step(replace(base, workers=32, batch=64, gpu_s_per_sample=0.05e-3)).as_dict(),
        "pageable": step(replace(base, workers=32, batch=64, gpu_s_per_sample=0.05e-3, pinned=False)).as_dict(),
        "loop": base.__dict__,
    }


def run(
    out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None, probe_real: bool = False
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    s = {
        "schema": "gpuinfra.lab2/1",
        "constraints": constraints(),
        "fragmentation": fragmentation(),
        "pressure": pressure(probe_real),
        "monitoring": monitoring(),
        "non_preemptible": non_preemptible(),
        "feeding": feeding(),
    }
    write_json(
        out_dir / "summary.json",
        {k: v for k, v in s.items() if k != "fragmentation"}
        | {
            "fragmentation": {
                n: {c: {k: v for k, v in r.items() if k not in ("rows", "snapshot")} for c, r in runs.items()}
                for n, runs in s["fragmentation"].items()
            }
        },
    )
    return write_lab_file(out_dir / "report.html", render(s))


def render(s: dict[str, Any]) -> str:
    f: list[str] = []
    secs: list[Section] = []
    # 1
    c = s["constraints"]
    rows = [
        [
            r["gpu"],
            f"{r['memory_gib']:.0f}",
            f"{r['bw_tb_s']:.2f}",
            f"{r['tflops']:.0f}",
            r["sms"],
            f"{r['ridge']:.0f}",
            *[r[o] for o in c["ops"]],
            ", ".join(k for k, v in r["trains_alone"].items() if v) or "none",
        ]
        for r in c["rows"]
    ]
    mem_bound = [o for o in c["ops"] if all(r[o] == "memory" for r in c["rows"])]
    comp_bound = [o for o in c["ops"] if all(r[o] == "compute" for r in c["rows"])]
    big = c["rows"][-1]
    claim1 = (
        f"A GPU is four separate limits, and different work hits different ones: on every GPU here {', '.join(comp_bound)} run into compute, "
        f"while {', '.join(mem_bound)} run into memory bandwidth (ridge points {min(r['ridge'] for r in c['rows']):.0f}-{max(r['ridge'] for r in c['rows']):.0f} FLOP/byte); "
        f"and memory capacity decides what can run at all: even a {big['gpu']} trains alone only {', '.join(k for k, v in big['trains_alone'].items() if v) or 'none'} of the three models."
    )
    secs.append(
        Section(
            "1. Explain: a GPU is a set of constraints",
            table_html(
                [
                    "GPU",
                    "GiB",
                    "TB/s",
                    "dense TFLOP/s",
                    "SMs",
                    "ridge FLOP/byte",
                    *c["ops"],
                    "trains alone (16 B/param + activations)",
                ],
                rows,
                {1, 2, 3, 4, 5},
            ),
            claim1,
            "Roofline (gpuinfra.models.roofline) per operation; memory per model from the scaling model (weights, gradients, Adam, activations).",
        )
    )
    f.append(claim1)
    # 2
    fr = s["fragmentation"]
    vb = fr["variable-batch"]["(defaults)"]
    vbx = fr["variable-batch"]["expandable_segments:True"]
    il = fr["interleaved"]["(defaults)"]
    claim2 = (
        f"Fragmentation fails requests while memory looks available: in variable-batch the {format_size(vb['request'] or 0)} request fails with "
        f"{format_size(vb['device_free'] or 0)} free on the device and {format_size(vb['cached_free'] or 0)} cached but unallocated "
        f"(largest cached block {format_size(vb['largest_free_block'] or 0)}); with expandable_segments the same trace "
        f"{'also fails' if vbx['oom'] else 'completes'}. In interleaved, {format_size(il['cached_free'] or 0)} are cached in holes no larger than "
        f"{format_size(il['largest_free_block'] or 0)} when a {format_size(il['request'] or 0)} tensor is asked for."
    )
    html2 = (
        fig_html(timeline_figure(vb["rows"], "variable-batch, default allocator"), "fr1")
        + fig_html(segment_figure(vb["snapshot"], "segments at the OOM (default)"), "fr2")
        + fig_html(timeline_figure(vbx["rows"], "variable-batch, expandable_segments:True"), "fr3")
    )
    html2 += '<pre style="white-space: pre-wrap">' + html_escape(vb["message"] or "") + "</pre>"
    secs.append(
        Section(
            "2. Analyze: why fragmentation fails requests",
            html2,
            claim2,
            "The caching-allocator model follows PyTorch's documented rules (gpuinfra.models.memory); the OOM text is PyTorch's format.",
        )
    )
    f.append(claim2)
    # 3
    p = s["pressure"]
    rows = []
    for name, v in p["scenarios"].items():
        o = v["ooms"][0] if v["ooms"] else None
        rows.append(
            [
                name,
                v["what"],
                "yes" if o else "no",
                format_size(o["size"]) if o else "-",
                format_size(o["device_free"]) if o else "-",
                format_size(o["cached_free"]) if o else "-",
                (o["message"][:160] + "...") if o else "",
            ]
        )
    n_oom = sum(1 for v in p["scenarios"].values() if v["ooms"])
    real = p["real"]
    real_txt = (
        f"On the real GPU ({real.get('device')}), the same variable-batch trace: allocated bytes equal after every operation: {real.get('allocated_equal')}; OOM at op {real.get('real_oom_step')} (model: {real.get('model_oom_step')})."
        if real.get("ran")
        else f"Real-GPU comparison not run here: {real.get('why')}."
    )
    claim3 = f"{n_oom} of {len(rows)} pressure scenarios end in an OOM although the GPU never had its memory fully allocated by the failing process. {real_txt}"
    secs.append(
        Section(
            "3. Reproduce: memory pressure scenarios",
            table_html(["scenario", "what", "OOM", "asked", "device free", "cached free", "PyTorch says"], rows),
            claim3,
        )
    )
    f.append(claim3)
    # 4
    mon = s["monitoring"]
    vs = mon["verdicts"]
    misled = [v for v in vs if v["misled"]]
    rows = [
        [
            v["scenario"],
            f"{v['counters']['gpu_util_pct']:.0f}",
            f"{v['counters']['sm_active']:.3f}",
            f"{v['counters']['tensor_active']:.3f}",
            f"{v['counters']['dram_active']:.2f}",
            f"{v['counters']['useful_fraction']:.1%}",
            v["util_only_says"],
            v["truth"],
            "MISLED" if v["misled"] else "ok",
        ]
        for v in vs
    ]
    fig = bar_figure(
        [v["scenario"] for v in vs],
        {
            "GPU_UTIL / 100": [v["counters"]["gpu_util_pct"] / 100 for v in vs],
            "SM_ACTIVE": [v["counters"]["sm_active"] for v in vs],
            "useful FLOP/s / peak": [v["counters"]["useful_fraction"] for v in vs],
        },
        "What the counters read against what the GPU delivered",
        "fraction (ratio; 1 = all of it)",
        xt="kernel stream",
    )
    worst = (
        max(misled, key=lambda v: v["counters"]["gpu_util_pct"] - 100 * v["counters"]["useful_fraction"])
        if misled
        else None
    )
    claim4 = (
        f"A monitor that trusts only GPU utilization is wrong in {len(misled)} of {len(vs)} cases: "
        + (
            f"'{worst['scenario']}' reads {worst['counters']['gpu_util_pct']:.0f}% while delivering {worst['counters']['useful_fraction']:.1%} of peak; "
            if worst
            else ""
        )
        + "it calls a hung or trickling GPU healthy and a host-starved job idle. SM_ACTIVE, tensor activity and step progress tell them apart."
    )
    secs.append(
        Section(
            "4. Design: a utilization-only monitor, and why it misleads",
            table_html(
                [
                    "kernel stream",
                    "GPU_UTIL %",
                    "SM_ACTIVE",
                    "TENSOR",
                    "DRAM",
                    "useful",
                    "util-only monitor says",
                    "what is true",
                    "",
                ],
                rows,
            )
            + fig_html(fig, "mon"),
            claim4,
            "Counters from kernel streams per the NVML/DCGM definitions (gpuinfra.models.counters), under dcgm-exporter's names.",
        )
    )
    f.append(claim4)
    # 2.4 and 2.5
    npre = s["non_preemptible"]
    rows = [
        [
            r["job"],
            format_size(r["state_bytes"]),
            f"{r['save_s']:.0f}",
            f"{r['lost_work_s'] / 60:.0f}",
            f"{r['restart_s']:.0f}",
            f"{r['gpu_hours']:.1f}",
            f"{r['cpu_pause_s']:.0f}",
        ]
        for r in npre
    ]
    claim5 = f"Stopping GPU work is never free: {npre[0]['job']} loses {npre[0]['gpu_hours']:.1f} GPU-hours per stop, {npre[2]['job']} {npre[2]['gpu_hours']:.0f}; saving first cuts it to {npre[1]['gpu_hours']:.1f}. A paused CPU process loses {npre[0]['cpu_pause_s']:.0f} s."
    secs.append(
        Section(
            "Why GPUs are not preemptible like CPUs (2.4)",
            table_html(["job", "state", "save s", "lost work min", "restart s", "GPU-hours lost", "CPU pause s"], rows),
            claim5,
            "gpuinfra.models.preempt_cost; storage rates, start-up and warm-up are stated assumptions.",
        )
    )
    f.append(claim5)
    fe = s["feeding"]
    ws = fe["workers"]
    enough = next((r["workers"] for r in ws if r["gpu_idle_fraction"] < 0.01), None)
    fig = line_figure(
        {"GPU idle fraction": [(r["workers"], r["gpu_idle_fraction"]) for r in ws]},
        "GPU idle time against data-loader workers",
        "data-loader workers (count)",
        "GPU idle time (fraction of the step, ratio)",
        logx=True,
    )
    b1 = fe["batch"][0]
    claim6 = (
        f"The CPU feeds the GPU: with {ws[0]['workers']} worker the GPU idles {ws[0]['gpu_idle_fraction']:.0%} of the time (bound by {ws[0]['bound_by']}); "
        f"it stops idling at {enough or 'more than ' + str(ws[-1]['workers'])} workers. At batch {b1['batch']} the step is bound by {b1['bound_by']} "
        f"(idle {b1['gpu_idle_fraction']:.0%}); pageable instead of pinned memory turns a {fe['pinned']['copy_s'] * 1e3:.1f} ms asynchronous copy into a "
        f"{fe['pageable']['copy_s'] * 1e3:.1f} ms synchronous one."
    )
    rows = [
        [
            r["workers"],
            f"{r['load_s'] * 1e3:.1f}",
            f"{r['compute_s'] * 1e3:.1f}",
            f"{r['step_s'] * 1e3:.1f}",
            r["bound_by"],
            f"{r['gpu_idle_fraction']:.0%}",
        ]
        for r in ws
    ]
    secs.append(
        Section(
            "CPU-GPU interaction and hidden bottlenecks (2.5)",
            fig_html(fig, "feed")
            + table_html(["workers", "load ms", "compute ms", "step ms", "bound by", "GPU idle"], rows),
            claim6,
            "gpuinfra.models.feeding; the loop's per-sample costs are stated assumptions (an image classifier); change them to match yours.",
        )
    )
    f.append(claim6)
    sub = "Seed section 2, every activity run now. Device limits from the GPU catalog; allocator, counters, feeding and preemption from gpuinfra's models."
    return render_page(f"Lab 2: {TITLE}", secs, findings=f, subtitle=sub)
