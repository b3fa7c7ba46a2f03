"""Lab 4: GPU sharing models: "GPU Sharing as an Infra Trade-off" (seed section 4).

Activities (seed 4.6), each a step below:
1. Explain why GPU sharing is harder than CPU sharing: memory that cannot be over-committed,
   a shared fault domain, and what co-located tenants do to each other's latency.
2. Compare isolation guarantees across full GPU, time-slicing, MPS and MIG, measured on the same
   tenants (latency, throughput, who a fault takes down) and MIG's own fragmentation.
3. Design a sharing policy for mixed training and inference (``--design FILE``: a YAML with
   ``policy``, ``replicas`` and ``layout``; default the mixed fleet) and write its real configs.
4. Evaluate utilization gains against operational complexity for each model, across load.
5. Present: the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpuinfra.errors import UserError
from gpuinfra.io.sharing_export import export_sharing
from gpuinfra.labs import write_lab
from gpuinfra.models import mig as migm
from gpuinfra.models.sharing import Share, advertised
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.sim.sharing import (
    POLICIES,
    evaluate_policy,
    mixed_workload,
    reconfigurations_per_day,
    simulate_isolated,
    simulate_shared,
)

TITLE = "GPU Sharing as an Infra Trade-off"
GPU = "H100-SXM"


def explain(horizon: float) -> dict[str, Any]:
    ts = {t.name: t for t in mixed_workload(GPU)}
    chat = ts["chat-7b"]
    alone = simulate_isolated(chat, Share("whole"), horizon, 1)
    with_train = simulate_shared([chat, ts["finetune-a"]], "timeslice", GPU, horizon, 1)
    c2 = next(r for r in with_train.tenants if r.tenant == "chat-7b")
    # memory: three 30 GiB tenants on an 80 GB GPU under time-slicing
    big = [
        ts["finetune-a"],
        ts["finetune-b"],
        ts["finetune-a"].__class__(**{**ts["finetune-a"].__dict__, "name": "finetune-c"}),
    ]
    mem = simulate_shared(big, "timeslice", GPU, 10.0, 1)
    return {
        "alone_p99_s": alone.p99_s,
        "timesliced_p99_s": c2.p99_s,
        "alone_slo": alone.slo_attainment,
        "timesliced_slo": c2.slo_attainment,
        "oom_when_sum_exceeds": [r.tenant for r in mem.tenants if r.oom],
        "mem_sum_gib": sum(t.mem_gib for t in big),
    }


def isolation(horizon: float, load: float) -> dict[str, Any]:
    ts = mixed_workload(GPU, load)
    res = {p: evaluate_policy(p, ts, GPU, horizon, 3).as_dict() for p in POLICIES}
    # MIG fragmentation: free slices no wanted profile can use after a common pattern
    state = migm.parse_have(GPU, "3g.40gb@4,2g.20gb@0,1g.10gb@2")
    stranded = migm.stranded_slices(state, [migm.profile(GPU, "2g.20gb"), migm.profile(GPU, "3g.40gb")])
    adv = {
        "whole": advertised(8, "whole"),
        "timeslice x4": advertised(8, "timeslice", replicas=4),
        "mps x4": advertised(8, "mps", replicas=4),
        "mig mixed (all-balanced)": advertised(8, "mig", layout=["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]),
    }
    return {"policies": res, "mig_stranded_slices": stranded, "advertised": adv}


def load_design(path: Path | None) -> tuple[dict, str]:
    d = {"policy": "mixed", "replicas": 4, "layout": None}
    if path is None:
        return d, "the built-in design (mixed fleet: training on whole GPUs, inference on MIG)"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read the design: {e}", where=str(path)) from None
    unknown = set(raw) - set(d)
    if unknown:
        raise UserError(f"unknown design keys {sorted(unknown)}", where=str(path), expected="policy, replicas, layout")
    if raw.get("policy", "mixed") not in POLICIES:
        raise UserError(f"unknown policy {raw.get('policy')!r}", where=f"{path}: policy", expected=", ".join(POLICIES))
    d.update(raw)
    if isinstance(d["layout"], str):
        d["layout"] = [x.strip() for x in d["layout"].split(",")]
    return d, str(path)


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    horizon = 60.0 if quick else 180.0
    spec, label = load_design(design)
    loads = [0.5, 1.0, 1.5] if quick else [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    sweep = {
        p: [evaluate_policy(p, mixed_workload(GPU, x), GPU, horizon, 5, spec["replicas"]).as_dict() for x in loads]
        for p in POLICIES
    }
    reconf = reconfigurations_per_day(GPU, mixed_workload(GPU, 1.5), mixed_workload(GPU, 0.5))
    chosen = evaluate_policy(spec["policy"], mixed_workload(GPU, 1.0), GPU, horizon, 7, spec["replicas"]).as_dict()
    exported = export_sharing(spec["policy"], GPU, out_dir / "configs", spec["replicas"], spec["layout"])
    s = {
        "schema": "gpuinfra.lab4/1",
        "quick": quick,
        "gpu": GPU,
        "explain": explain(horizon),
        "isolation": isolation(horizon, 1.0),
        "design": {"spec": spec, "label": label, "result": chosen, "exported": exported},
        "evaluate": {"loads": loads, "sweep": sweep, "reconfiguration": reconf},
    }
    return write_lab(out_dir, s, render(s))


def render(s: dict[str, Any]) -> str:
    f: list[str] = []
    secs: list[Section] = []
    ex = s["explain"]
    claim1 = (
        f"Sharing a GPU is not sharing a CPU: a chat service alone meets its SLO {ex['alone_slo']:.0%} of the time (p99 {ex['alone_p99_s'] * 1e3:.0f} ms); "
        f"time-sliced with one fine-tuning job it meets it {ex['timesliced_slo']:.0%} of the time (p99 {ex['timesliced_p99_s'] * 1e3:.0f} ms). "
        f"And memory cannot be over-committed: three tenants needing {ex['mem_sum_gib']:.0f} GiB on an 80 GB GPU leave {', '.join(ex['oom_when_sum_exceeds']) or 'nobody'} out of memory at start."
    )
    secs.append(
        Section(
            "1. Explain: why GPU sharing is hard",
            "",
            claim1,
            "gpuinfra.sim.sharing: request-level simulation of tenants on one GPU; no swap, no memory isolation under time-slicing.",
        )
    )
    f.append(claim1)
    iso = s["isolation"]
    pol = iso["policies"]
    rows = [
        [
            p,
            f"{r['gpus']:g}",
            f"{r['utilization']:.0%}",
            f"{(r['inference_p99_s'] or 0) * 1e3:.0f}",
            f"{r['slo_attainment']:.1%}",
            f"{r['training_throughput']:.2f}",
            f"{r['blast_radius']:.1f}",
            r["node_configs"],
            r["oom_tenants"],
        ]
        for p, r in pol.items()
    ]
    best_blast = min(pol, key=lambda p: (pol[p]["blast_radius"], pol[p]["gpus"]))
    worst_blast = max(pol, key=lambda p: pol[p]["blast_radius"])
    claim2 = (
        f"Measured on the same six tenants: time-slicing packs them on {pol['timeslice']['gpus']:g} GPUs but shares one fault domain among {pol['timeslice']['blast_radius']:.1f} tenants "
        f"and cuts training to {pol['timeslice']['training_throughput']:.2f}x; MPS keeps training at {pol['mps']['training_throughput']:.2f}x on {pol['mps']['gpus']:g} GPUs but a fault still takes {pol['mps']['blast_radius']:.1f}; "
        f"MIG isolates faults ({pol['mig']['blast_radius']:.1f}) on {pol['mig']['gpus']:g} GPUs and leaves {len(iso['mig_stranded_slices'])} memory slice(s) stranded in a common layout. "
        f"Blast radius: smallest with {best_blast}, largest with {worst_blast}."
    )
    adv = "".join(f"<li>{k}: {v}</li>" for k, v in iso["advertised"].items())
    secs.append(
        Section(
            "2. Compare isolation: full GPU, time-slicing, MPS, MIG",
            table_html(
                [
                    "policy",
                    "GPUs",
                    "utilization",
                    "p99 ms",
                    "SLO met",
                    "training x alone",
                    "tenants per fault",
                    "node configs",
                    "OOM",
                ],
                rows,
            )
            + f"<p>What an 8-GPU node advertises to Kubernetes:</p><ul>{adv}</ul>",
            claim2,
        )
    )
    f.append(claim2)
    d = s["design"]
    r = d["result"]
    files = "".join(f"<li>configs/{x}</li>" for x in d["exported"]["files"])
    claim3 = (
        f"The design ({d['label']}: policy {d['spec']['policy']}) serves the workload on {r['gpus']:g} GPUs with {r['slo_attainment']:.1%} of requests within SLO, training at {r['training_throughput']:.2f}x, "
        f"{r['blast_radius']:.1f} tenant(s) per fault; its configs validate against the Kubernetes {d['exported']['kubernetes_version']} schemas."
    )
    secs.append(
        Section(
            "3. Design: a policy for mixed training and inference",
            f"<ul>{files}</ul>",
            claim3,
            "`gpuinfra export sharing` writes the same files for any policy; `--design FILE` (policy, replicas, layout) changes this step.",
        )
    )
    f.append(claim3)
    ev = s["evaluate"]
    loads = ev["loads"]
    fig_slo = line_figure(
        {p: list(zip(loads, [x["slo_attainment"] for x in v])) for p, v in ev["sweep"].items()},
        "SLO attainment against load",
        "inference load (x the scenario's rates)",
        "share of requests within SLO",
        logx=False,
    )
    fig_util = line_figure(
        {p: list(zip(loads, [x["utilization"] for x in v])) for p, v in ev["sweep"].items()},
        "GPU utilization against load",
        "inference load",
        "busy fraction of the GPUs used",
        logx=False,
    )
    last = {p: v[-1] for p, v in ev["sweep"].items()}
    gain = {p: 1 - last[p]["gpus"] / last["whole"]["gpus"] for p in last}
    rc = ev["reconfiguration"]
    fig_cost = bar_figure(
        list(last),
        {
            "GPUs saved vs whole (%)": [100 * gain[p] for p in last],
            "node configurations": [last[p]["node_configs"] for p in last],
        },
        f"At load {loads[-1]}: what each policy saves and what it costs to run",
        "value",
    )
    worst = min(last, key=lambda p: last[p]["slo_attainment"] or 0)
    claim4 = (
        f"At load {loads[-1]}x, time-slicing saves {gain['timeslice']:.0%} of the GPUs and meets the SLO for {last['timeslice']['slo_attainment']:.0%} of requests, MPS saves {gain['mps']:.0%} at {last['mps']['slo_attainment']:.0%}, "
        f"MIG saves {gain['mig']:.0%} at {last['mig']['slo_attainment']:.0%}; the worst at high load is {worst}. MIG's price is operational: {last['mig']['node_configs']} node configurations and, when the inference mix shifts "
        f"between day and night, {rc['reconfigurations_per_day']} GPU reconfigurations a day ({rc['gpu_hours_per_day']:.2f} GPU-hours idle for them)."
    )
    secs.append(
        Section(
            "4. Evaluate: utilization against complexity",
            fig_html(fig_slo, "slo") + fig_html(fig_util, "util") + fig_html(fig_cost, "cost"),
            claim4,
        )
    )
    f.append(claim4)
    sub = f"Seed section 4, every activity run now on {s['gpu']} ({'quick' if s['quick'] else 'full'} mode). Time-slice length and switch cost, MPS bandwidth contention and MIG sizing headroom are stated assumptions in gpuinfra.models.sharing."
    return render_page(f"Lab 4: {TITLE}", secs, findings=f, subtitle=sub)
