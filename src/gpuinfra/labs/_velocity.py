"""Lab 13's computations for configuration churn (activity 2): one-knob changes to a training
configuration through :mod:`gpuinfra.models.train_config`, a precision support matrix from the GPU
catalog, and variable sequence lengths through the caching-allocator model."""

from __future__ import annotations

from dataclasses import replace
from statistics import NormalDist
from typing import Any

import numpy as np

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models import train_config as tc
from gpuinfra.models.scaling import model_spec
from gpuinfra.models.topology import builtin
from gpuinfra.report.wording import floor_num
from gpuinfra.rng import Rngs

MODEL, NODE = "llama2-7b", "dgx-h100"
BASE = tc.TrainConfig(tp=2, pp=1, dp=4, micro_batch=1, microbatches=4, seq=4096)
"""Llama 2 7B over 8 GPUs (tensor parallel 2 x data parallel 4), bf16 + Adam without ZeRO,
FlashAttention on, no recomputation, no CUDA graphs; kernels at 0.5 of the roofline [assumption]."""

CHANGES: dict[str, dict[str, dict[str, Any]]] = {
    "batch": {
        "micro_batch x2": {"micro_batch": 2},
        "micro_batch x4": {"micro_batch": 4},
        "seq x2 (8192)": {"seq": 8192},
        "grad accumulation x2": {"microbatches": 8},
    },
    "precision": {
        "fp32": {"precision": "fp32"},
        "fp16 (loss scaling)": {"precision": "fp16"},
        "fp8 (Transformer Engine)": {"precision": "fp8"},
    },
    "parallelism": {
        "tp 2 -> 1 (dp 8)": {"tp": 1, "dp": 8},
        "tp 2 -> 4 (dp 2)": {"tp": 4, "dp": 2},
        "pp 1 -> 2 (dp 2)": {"pp": 2, "dp": 2},
        "ZeRO-1": {"zero": 1},
        "ZeRO-3 / FSDP FULL_SHARD": {"zero": 3},
    },
    "runtime flags": {
        "FlashAttention off": {"flash_attention": False},
        "full activation recompute": {"recompute": "full"},
        "CUDA graphs on": {"cuda_graphs": True},
    },
    "two knobs (a remedy)": {
        "micro_batch x4 + full recompute": {"micro_batch": 4, "recompute": "full"},
        "tp 2 -> 1 + ZeRO-1": {"tp": 1, "dp": 8, "zero": 1},
        "FlashAttention off + selective recompute": {"flash_attention": False, "recompute": "selective"},
    },
}
CONFIG_KEYS = ("tp", "pp", "dp", "micro_batch", "microbatches", "seq", "precision", "zero", "recompute")
CONFIG_KEYS += ("flash_attention", "cuda_graphs")
SUPPORT_GPUS = ("V100-16GB", "T4", "A100-80GB", "L40S", "H100-SXM", "B200")


def _row(m, topo, group: str, name: str, c: tc.TrainConfig, base_tps: float | None) -> dict[str, Any]:
    mem = tc.memory(m, topo.gpu, c)
    st = tc.step(m, topo, c)
    stab = tc.precision_stability(c.precision)
    return {
        "group": group,
        "change": name,
        "config": {k: getattr(c, k) for k in CONFIG_KEYS},
        "memory": {k: v / tc.GIB for k, v in mem.as_dict().items() if k not in ("fits", "total_gib")},
        "memory_gib": mem.total_gib,
        "capacity_gib": mem.capacity / tc.GIB,
        "fits": mem.fits,
        "step_s": st.step_s,
        "tokens_per_s": st.tokens_per_s,
        "throughput_vs_base": st.tokens_per_s / base_tps if base_tps else 1.0,
        "mfu": st.mfu,
        "recompute_s": st.recompute_s,
        "launch_s": st.launch_s,
        "scaling": stab["scaling"],
        "skipped_steps_per_10k": 1e4 * stab["skipped_step_fraction"],
        "unit_roundoff": stab["unit_roundoff"],
    }


def support_matrix() -> list[dict[str, Any]]:
    """Which training precisions each GPU computes on tensor cores, and their dense peak (TFLOP/s),
    from the catalog's datasheet columns; a refusal keeps its reason."""
    out = []
    for name in SUPPORT_GPUS:
        g = gpu_model(name)
        row: dict[str, Any] = {"gpu": g.name, "arch": g.arch}
        for p in tc.TRAIN_PRECISIONS:
            try:
                row[p] = tc.gemm_peak(g, p) / 1e12
            except UserError as e:
                row[p] = None
                row[f"{p}_why"] = e.what
        out.append(row)
    return out


def fit_length(m, gpu, c: tc.TrainConfig, hi: int = 1 << 17) -> int:
    """The longest sequence length whose static memory estimate fits (bisection; 0 if none)."""
    lo, top = 0, hi
    while lo < top:
        mid = (lo + top + 1) // 2
        if tc.memory(m, gpu, c, seq=mid).fits:
            lo = mid
        else:
            top = mid - 1
    return lo


LENGTHS = {"median": 3000, "sigma": 0.5, "min": 256, "max": 8192}
"""Unpacked sequence lengths of a fine-tuning set with an 8k context: log-normal around 3,000 tokens
clipped to [256, 8192] [assumption: illustrative, not a measured dataset]."""


def variable_lengths(seed: int, quick: bool) -> dict[str, Any]:
    """A configuration that fits at its nominal length, run at drawn lengths through the allocator."""
    m, topo = model_spec(MODEL), builtin(NODE)
    c = replace(BASE, micro_batch=2)
    steps = 60 if quick else 200
    rng = Rngs(seed)["lab13-seqlens"]
    raw = rng.lognormal(np.log(LENGTHS["median"]), LENGTHS["sigma"], size=steps)
    lens = [int(min(LENGTHS["max"], max(LENGTHS["min"], x))) for x in raw]
    variants = {
        "default allocator": (c, "", None),
        "expandable_segments:True": (c, "expandable_segments:True", None),
        "static shapes (pad to 8192, as CUDA graphs need)": (c, "", LENGTHS["max"]),
        "full recompute, default allocator": (replace(c, recompute="full"), "", None),
    }
    runs = {}
    for name, (cc, conf, pad) in variants.items():
        r = tc.variable_length_run(m, topo.gpu, cc, lens, conf, pad)
        runs[name] = {
            **r.as_dict(),
            "fit_length_formula": fit_length(m, topo.gpu, cc),
            "oom_fraction": r.ooms / r.steps,
        }
    # closed form: the static estimate OOMs exactly the steps longer than its longest fitting length
    fit = fit_length(m, topo.gpu, c)
    z = (np.log(min(fit, LENGTHS["max"])) - np.log(LENGTHS["median"])) / LENGTHS["sigma"]
    p_static = 0.0 if fit >= LENGTHS["max"] else 1.0 - NormalDist().cdf(float(z))
    return {
        "config": "micro_batch x2 (the first churn row)",
        "oom_probability_static": p_static,
        "nominal_seq": c.seq,
        "nominal_gib": tc.memory(m, topo.gpu, c).total_gib,
        "lengths": {
            **LENGTHS,
            "steps": steps,
            "p50": float(np.median(lens)),
            "p99": float(np.percentile(lens, 99)),
            "above_nominal": sum(x > c.seq for x in lens),
        },
        "runs": runs,
    }


def churn(seed: int = 13, quick: bool = False) -> dict[str, Any]:
    """Every one-knob (and two-knob remedy) change against :data:`BASE`; memory, time, stability."""
    m, topo = model_spec(MODEL), builtin(NODE)
    base = _row(m, topo, "base", "base", BASE, None)
    rows = []
    for group, changes in CHANGES.items():
        for name, ch in changes.items():
            rows.append(_row(m, topo, group, name, replace(BASE, **ch), base["tokens_per_s"]))
    formats = [tc.number_format(f).__dict__ for f in ("fp32", "bf16", "fp16", "fp8-e5m2", "fp8-e4m3")]
    return {
        "model": MODEL,
        "node": NODE,
        "params": m.params,
        "base": base,
        "changes": rows,
        "support": support_matrix(),
        "formats": formats,
        "variable_lengths": variable_lengths(seed, quick),
    }


# -- rendering -------------------------------------------------------------------------------------
def _gib(x: float) -> str:
    return f"{x:.1f}"


def render_churn(ch: dict[str, Any]) -> tuple[str, str]:
    """(HTML, conclusion) of activity 2, every sentence from the numbers in ``ch``."""
    import plotly.graph_objects as go

    from gpuinfra.report.figs import bar_figure
    from gpuinfra.report.html import fig_html
    from gpuinfra.report.page import table_html

    base, rows = ch["base"], ch["changes"]
    allr = [base, *rows]
    kinds = {
        "weights (+fp8 cache)": "weights",
        "gradients": "gradients",
        "optimizer states": "optimizer",
        "activations": "activations",
        "logits + CUDA context": None,
    }
    series = {
        k: [r["memory"][v] if v else r["memory"]["logits"] + r["memory"]["context"] for r in allr]
        for k, v in kinds.items()
    }
    fig = bar_figure(
        [r["change"] for r in allr],
        series,
        f"{ch['model']} on {ch['node']}: memory per GPU after one change (dashed: visible HBM)",
        "GiB per GPU",
        stacked=True,
        xt="configuration change",
    )
    fig.add_hline(y=base["capacity_gib"], line_dash="dash")
    fig.update_layout(legend_title="memory kind")
    fig2 = go.Figure()
    for ok, label in ((True, "fits"), (False, "OOM")):
        sel = [r for r in allr if r["fits"] == ok]
        fig2.add_trace(
            go.Scatter(
                x=[r["memory_gib"] for r in sel],
                y=[r["tokens_per_s"] / 1e3 for r in sel],
                mode="markers+text",
                text=[r["change"] for r in sel],
                textposition="top center",
                name=label,
            )
        )
    fig2.update_layout(
        title="Throughput against memory per GPU, each configuration change",
        xaxis_title="memory per GPU (GiB)",
        yaxis_title="training throughput (thousand tokens/s, 8 GPUs)",
        legend_title="memory fit",
    )
    fig2.add_vline(x=base["capacity_gib"], line_dash="dash")
    table = table_html(
        ["knob", "change", "GiB/GPU", "fits", "tokens/s vs base", "MFU (own peak)", "scaling", "skipped steps / 10k"],
        [
            [r["group"], r["change"], _gib(r["memory_gib"]), "yes" if r["fits"] else "OOM",
             f"{r['throughput_vs_base']:.2f}x", f"{100 * r['mfu']:.1f} %", r["scaling"],
             f"{r['skipped_steps_per_10k']:.1f}"]
            for r in allr
        ],
    )  # fmt: skip
    sup = table_html(
        ["GPU", "arch", *[f"{p} TFLOP/s" for p in tc.TRAIN_PRECISIONS]],
        [
            [r["gpu"], r["arch"], *[f"{r[p]:,.0f}" if r[p] else "refused" for p in tc.TRAIN_PRECISIONS]]
            for r in ch["support"]
        ],
    )
    fmts = table_html(
        ["format", "exponent bits", "mantissa bits", "largest finite", "smallest normal", "unit roundoff"],
        [
            [f["name"], f["exponent_bits"], f["mantissa_bits"], f"{f['max_finite']:.4g}", f"{f['min_normal']:.3g}",
             f"{f['unit_roundoff']:.3g}"]
            for f in ch["formats"]
        ],
    )  # fmt: skip
    vl = ch["variable_lengths"]
    vrows = [
        [k, r["ooms"], f"{100 * r['oom_fraction']:.0f} %", r["first_oom_step"] if r["first_oom_step"] is not None else "-",
         r["longest_ok"], r["shortest_oom"] or "-", r["fit_length_formula"], f"{r['peak_reserved_gib']:.1f}"]
        for k, r in vl["runs"].items()
    ]  # fmt: skip
    vt = table_html(
        ["allocator / shapes", "OOM steps", "OOM rate", "first OOM (step)", "longest run (tokens)",
         "shortest OOM (tokens)", "static estimate fits up to (tokens)", "peak reserved (GiB)"],
        vrows,
    )  # fmt: skip
    # -- conclusions from the numbers
    flips = [r for r in rows if base["fits"] and not r["fits"]]
    fitting = [r for r in rows if r["fits"]]
    best = max(fitting, key=lambda r: r["tokens_per_s"])
    by = {r["change"]: r for r in rows}
    fp8, fp32, bf = by["fp8 (Transformer Engine)"], by["fp32"], base
    d = vl["runs"]["default allocator"]
    st = vl["runs"]["static shapes (pad to 8192, as CUDA graphs need)"]
    rc = vl["runs"]["full recompute, default allocator"]
    ex = vl["runs"]["expandable_segments:True"]
    extra = d["ooms"] - ex["ooms"]
    gap = (
        f"the default allocator's {extra} extra OOM steps are fragmentation"
        if extra > 0
        else "fragmentation costs the default allocator no extra OOM step on these lengths"
    )
    one = [r for r in rows if r["group"] != "two knobs (a remedy)"]
    dm = [r["memory_gib"] - base["memory_gib"] for r in one]
    dt = [r["throughput_vs_base"] for r in one]
    if not d["shortest_oom"]:
        frag = "no step OOMed"
    elif d["shortest_oom"] > d["longest_ok"]:
        frag = (
            f"the allocator's limit lies between {d['longest_ok']:,} and {d['shortest_oom']:,} tokens against "
            f"{d['fit_length_formula']:,} by the static estimate"
        )
    else:  # a length OOMed at one step and a longer one ran at another: the cache's history decides
        frag = (
            f"a step of {d['shortest_oom']:,} tokens OOMed while one of {d['longest_ok']:,} ran at another time (the "
            f"cache's history, not the length alone, decides), against {d['fit_length_formula']:,} tokens by the "
            "static estimate"
        )
    text = (
        f"From a baseline of {base['memory_gib']:.1f} GiB per GPU ({'fits' if base['fits'] else 'OOM'} in "
        f"{base['capacity_gib']:.1f} GiB), {len(flips)} of {len(rows)} changes turn the job into an OOM "
        f"({', '.join(r['change'] for r in flips) or 'none'}). The fastest change that still fits is "
        f"{best['change']} ({best['throughput_vs_base']:.2f}x tokens/s). Precision: fp8 runs "
        f"{fp8['throughput_vs_base']:.2f}x bf16's tokens/s but holds {fp8['memory_gib'] - bf['memory_gib']:+.1f} GiB "
        f"per GPU (fp32 master weights and Adam stay; fp8 weight copies are added), with a unit roundoff of "
        f"{fp8['unit_roundoff']:.3g} against bf16's {bf['unit_roundoff']:.3g}; fp32 runs at "
        f"{fp32['throughput_vs_base']:.2f}x; fp16 matches bf16's speed but needs loss scaling, which skips at least "
        f"{floor_num(by['fp16 (loss scaling)']['skipped_steps_per_10k'], 1)} steps in 10,000 in steady state. "
        f"Under variable sequence lengths (p50 {vl['lengths']['p50']:,.0f}, p99 {vl['lengths']['p99']:,.0f} tokens), "
        f"the micro_batch x2 config that fits at its nominal {vl['nominal_seq']:,} tokens "
        f"({vl['nominal_gib']:.1f} GiB) OOMs on {100 * d['oom_fraction']:.0f} % of steps with the default allocator "
        f"(first at step {d['first_oom_step']}); {frag}. With expandable_segments:True it OOMs on "
        f"{100 * ex['oom_fraction']:.0f} % (longest step run {ex['longest_ok']:,} tokens, shortest OOM "
        f"{'-' if ex['shortest_oom'] is None else format(ex['shortest_oom'], ',')}), against "
        f"{100 * vl['oom_probability_static']:.1f} % that the static estimate predicts (P(length > "
        f"{d['fit_length_formula']:,}) under the length distribution); {gap}. Padding to static shapes (as CUDA graphs require) OOMs on "
        f"{100 * st['oom_fraction']:.0f} %; full recompute OOMs on {100 * rc['oom_fraction']:.0f} % at "
        f"{rc['peak_reserved_gib']:.1f} GiB peak. One-knob edits alone move memory per GPU by "
        f"{min(dm):+.1f} to {max(dm):+.1f} GiB and throughput from {min(dt):.2f}x to {max(dt):.2f}x: a config edit "
        "is an infrastructure change."
    )
    html = (
        fig_html(fig, "l13churn")
        + fig_html(fig2, "l13churn-tps")
        + table
        + "<h3>Precisions each GPU trains in (catalog datasheet peaks, dense)</h3>"
        + sup
        + "<h3>Number formats (computed from the bit layouts)</h3>"
        + fmts
        + "<h3>Variable sequence lengths through the caching-allocator model</h3>"
        + vt
    )
    return html, text
