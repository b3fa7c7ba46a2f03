"""Lab 5: GPU failure modes and debugging: "Why GPU Failures Are Sticky and Expensive" (seed
section 5).

Activities (seed 5.6), each a step below:
1. Classify GPU failures by cause, signal and action (the Xid catalog, the fleet failure mix).
2. Show what GPU OOM looks like against CPU OOM.
3. Trace a failure's stickiness: the health state machine and a poisoned GPU that eats retries.
4. Compare remediation policies on a large training job under the fleet's failure rates:
   detection delay, retries, spares, lemon-node quarantine, and what each costs.
5. Read real evidence: the decision tree on recorded kernel-log and nvidia-smi lines.
6. Present: the report.
"""

from __future__ import annotations

from collections import Counter
from html import escape as html_escape
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.catalog.xid import xid_catalog
from gpuinfra.labs import write_lab
from gpuinfra.models.health import TRANSITIONS, GpuHealth, IllegalTransition
from gpuinfra.models.incidents import poisoned_gpu
from gpuinfra.models.oom import compare
from gpuinfra.models.reliability import POLICIES, JobSpec, expected_ettr, failure_mix, signals, simulate
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html

TITLE = "Why GPU Failures Are Sticky and Expensive"

SAMPLE_LOG = """\
[Sun Nov 29 01:02:03 2026] NVRM: Xid (PCI:0000:5a:00): 79, pid=1234, GPU has fallen off the bus.
[Sun Nov 29 01:05:00 2026] NVRM: Xid (PCI:0000:18:00): 48, pid=2211, DBE (double-bit error) ECC error
[Sun Nov 29 01:05:01 2026] NVRM: Xid (PCI:0000:18:00): 63, pid=2211, Row Remapper: New row marked for remapping, reset gpu to activate.
[Sun Nov 29 01:07:12 2026] NVRM: Xid (PCI:0000:2a:00): 13, pid=3301, Graphics SM Warp Exception on (GPC 1, TPC 2, SM 0): Out Of Range Address
[Sun Nov 29 01:09:40 2026] NVRM: Xid (PCI:0000:2a:00): 94, pid=3302, Contained: SM (0x1). RST: No, D-RST: No
"""


def classify() -> dict[str, Any]:
    cat = xid_catalog()
    by_action = Counter(x.action for x in cat.values())
    poison = sum(1 for x in cat.values() if x.poisons_gpu)
    mix = failure_mix()
    rows = [
        {
            "component": c.component,
            "share": c.share,
            "class": c.cls,
            "scope": c.scope,
            "action": c.action,
            "sticky": c.sticky,
            "signal": c.signal,
            "detect_mean_s": signals()[c.signal].mean_s,
        }
        for c in mix
    ]
    sticky_share = sum(c.share for c in mix if c.sticky)
    return {
        "xids": len(cat),
        "by_action": dict(by_action),
        "poisoning_xids": poison,
        "mix": rows,
        "sticky_share": sticky_share,
    }


def oom() -> dict[str, Any]:
    return compare().as_dict()


def stickiness() -> dict[str, Any]:
    h = GpuHealth("node3/gpu6")
    h.apply("fault_reset", 0.0)
    refused = []
    for ev in ("recover", "undrain", "repair_done"):
        try:
            h.apply(ev, 1.0)
        except IllegalTransition:
            refused.append(ev)
    h.apply("reset_done", 2.0)
    inc = {a: poisoned_gpu(a) for a in ("retry-in-place", "cordon-on-xid")}
    return {
        "transitions": len(TRANSITIONS),
        "refused_while_poisoned": refused,
        "history": [list(x) for x in h.history],
        "retry_in_place_gpu_hours": inc["retry-in-place"].gpu_hours_lost,
        "cordon_gpu_hours": inc["cordon-on-xid"].gpu_hours_lost,
        "retries": sum(1 for m in inc["retry-in-place"].minutes for e in m.events if "crashed" in e),
    }


def remediation(quick: bool, price: float) -> dict[str, Any]:
    seeds = range(3 if quick else 10)
    out = {}
    for lemons in (0.0, 0.02):
        for pol in POLICIES:
            spec = JobSpec(nodes=256, days=30, policy=pol, spares=8, lemon_fraction=lemons, usd_per_gpu_hour=price)
            runs = [simulate(spec, seed=s) for s in seeds]
            lost = {k: float(np.mean([r.lost_gpu_hours[k] for r in runs])) for k in runs[0].lost_gpu_hours}
            out[f"{pol}|{lemons}"] = {
                "policy": pol,
                "lemon_fraction": lemons,
                "ettr": float(np.mean([r.ettr for r in runs])),
                "ettr_sd": float(np.std([r.ettr for r in runs])),
                "failures": float(np.mean([r.failures for r in runs])),
                "lost": lost,
                "lost_total": sum(lost.values()),
                "usd_lost": sum(lost.values()) * price,
                "crash_loops": float(np.mean([r.crash_loops for r in runs])),
                "quarantined": float(np.mean([r.quarantined for r in runs])),
            }
    base = JobSpec(nodes=256, days=30, spares=10_000)
    sim = float(np.mean([simulate(base, seed=s).ettr for s in seeds]))
    # how detection delay alone moves ETTR
    return {
        "runs": out,
        "closed_form_ettr": expected_ettr(base),
        "closed_form_sim": sim,
        "seeds": len(seeds),
        "nodes": 256,
        "days": 30,
    }


def evidence() -> dict[str, Any]:
    from gpuinfra.io.health import parse_kernel_log
    from gpuinfra.models.faults import escalate, verdict

    ev = parse_kernel_log(SAMPLE_LOG, "sample dmesg")
    f = escalate(ev.findings)
    return {"findings": [x.as_json() for x in f], "verdict": verdict(f)}


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    price = gpu_hour_price("H100-SXM").on_demand_usd or 0.0
    s = {
        "schema": "gpuinfra.lab5/1",
        "quick": quick,
        "usd_per_gpu_hour": price,
        "classify": classify(),
        "oom": oom(),
        "stickiness": stickiness(),
        "remediation": remediation(quick, price),
        "evidence": evidence(),
    }
    return write_lab(out_dir, s, render(s))


def render(s: dict[str, Any]) -> str:
    f: list[str] = []
    secs: list[Section] = []
    c = s["classify"]
    rows = [
        [
            r["component"],
            f"{r['share']:.1%}",
            r["class"],
            r["scope"],
            r["action"],
            "yes" if r["sticky"] else "no",
            r["signal"],
            f"{r['detect_mean_s']:.0f}",
        ]
        for r in c["mix"]
    ]
    fastest = min(c["mix"], key=lambda r: r["detect_mean_s"] if r["sticky"] else 1e9)
    slowest = max(c["mix"], key=lambda r: r["detect_mean_s"])
    claim1 = (
        f"{c['sticky_share']:.0%} of a large run's unexpected interruptions are sticky: the node stays broken until someone acts. "
        f"They are seen by different signals with mean delays from {fastest['detect_mean_s']:.0f} s ({fastest['signal']}) to {slowest['detect_mean_s'] / 3600:.0f} h ({slowest['signal']}); "
        f"the Xid catalog has {c['xids']} codes, {c['poisoning_xids']} of which poison the GPU until reset or reboot."
    )
    secs.append(
        Section(
            "1. Classify: failure classes, signals and actions",
            table_html(
                ["component", "share", "class", "scope", "action", "sticky", "first signal", "mean delay (s)"], rows
            ),
            claim1,
            "Mix: Llama 3's 419 unexpected interruptions (Table 5); class, scope, signal and repair time per row are gpuinfra's mapping (catalog/data/failure_mix.csv).",
        )
    )
    f.append(claim1)
    o = s["oom"]
    fig = line_figure(
        {
            "CPU process (swaps, slows)": list(zip(o["minutes"], o["cpu_progress"])),
            "GPU job (OOM: dies, back to checkpoint)": list(zip(o["minutes"], o["gpu_progress"])),
        },
        "Work done while memory demand ramps past capacity",
        "time (minutes)",
        "work done (minutes of full-speed work)",
        logx=False,
        mode="lines",
    )
    claim2 = (
        f"When demand passes capacity, the GPU job dies at minute {o['gpu_oom_at_min']:.1f} and falls back to its checkpoint ({o['gpu_work_min']:.1f} min of work kept, "
        f"{o['gpu_lost_gpu_hours']:.1f} GPU-hours lost with the restart); the CPU process keeps going through swap, slower, and does {o['cpu_work_min']:.1f} min of work"
        + (
            f" until the OOM killer takes it at minute {o['cpu_killed_at_min']:.1f}."
            if o["cpu_killed_at_min"] is not None
            else " without being killed."
        )
    )
    secs.append(
        Section(
            "2. GPU OOM against CPU OOM",
            fig_html(fig, "oom"),
            claim2,
            "gpuinfra.models.oom: no swap on the GPU; on the CPU a swapping memory-bound process slows by the memory/swap bandwidth ratio (an assumption).",
        )
    )
    f.append(claim2)
    st = s["stickiness"]
    claim3 = (
        f"A poisoned GPU refuses every way out but its action ({', '.join(st['refused_while_poisoned'])} are refused while it needs a reset). Retried in place, "
        f"a job crashed on it {st['retries']} times and lost {st['retry_in_place_gpu_hours']:.0f} GPU-hours before a person noticed; cordoning on the Xid alert cost {st['cordon_gpu_hours']:.0f}."
    )
    secs.append(
        Section(
            "3. Stickiness: why retries do not heal a GPU",
            table_html(
                ["time (s)", "event", "from state", "to state"],
                [[f"{x[0]:g}", x[1], x[2], x[3]] for x in st["history"]],
                {0},
            ),
            claim3,
        )
    )
    f.append(claim3)
    r = s["remediation"]
    runs = r["runs"]
    labels = [f"{v['policy']} (lemons {v['lemon_fraction']:.0%})" for v in runs.values()]
    causes = list(next(iter(runs.values()))["lost"])
    fig = bar_figure(
        labels,
        {k: [v["lost"][k] for v in runs.values()] for k in causes},
        f"GPU-hours lost in {r['days']} days, {r['nodes']}-node job",
        "GPU-hours lost",
        stacked=True,
        xt="remediation policy (share of lemon nodes)",
    )
    best = max(runs.values(), key=lambda v: v["ettr"])
    worst = min(runs.values(), key=lambda v: v["ettr"])
    rows = [
        [
            v["policy"],
            f"{v['lemon_fraction']:.0%}",
            f"{v['ettr']:.3f} ± {v['ettr_sd']:.3f}",
            f"{v['failures']:.1f}",
            f"{v['lost_total']:,.0f}",
            f"${v['usd_lost']:,.0f}",
            f"{v['crash_loops']:.0f}",
            f"{v['quarantined']:.1f}",
        ]
        for v in runs.values()
    ]
    claim4 = (
        f"On a {r['nodes']}-node job for {r['days']} days at the fleet's failure rate, remediation decides the bill: {worst['policy']} (lemons {worst['lemon_fraction']:.0%}) keeps ETTR {worst['ettr']:.3f} "
        f"and loses {worst['lost_total']:,.0f} GPU-hours (${worst['usd_lost']:,.0f}), {best['policy']} (lemons {best['lemon_fraction']:.0%}) keeps {best['ettr']:.3f} and loses {best['lost_total']:,.0f}. "
        f"The simulation agrees with the closed form when repairs never hold the job (ETTR {r['closed_form_sim']:.4f} simulated, {r['closed_form_ettr']:.4f} closed form)."
    )
    secs.append(
        Section(
            "4. Remediation policies and their cost",
            fig_html(fig, "rem")
            + table_html(
                [
                    "policy",
                    "lemon nodes",
                    "ETTR (ratio)",
                    "failures (count)",
                    "GPU-hours lost",
                    "cost (USD)",
                    "crash loops (count)",
                    "quarantined nodes (count)",
                ],
                rows,
                {2, 3, 4, 5, 6, 7},
            ),
            claim4,
            f"gpuinfra.models.reliability, {r['seeds']} seeds per policy; price ${s['usd_per_gpu_hour']:.2f} per H100-hour (median of the packaged catalog).",
        )
    )
    f.append(claim4)
    e = s["evidence"]
    from gpuinfra.models.faults import decision_tree

    edges = decision_tree()
    labels = sorted({a for a, _, _ in edges} | {b for _, b, _ in edges})
    idx = {n: k for k, n in enumerate(labels)}
    sankey = go.Figure(
        go.Sankey(
            node=dict(label=labels, pad=12, thickness=14),
            link=dict(
                source=[idx[a] for a, _, _ in edges],
                target=[idx[b] for _, b, _ in edges],
                value=[max(len([x for x in lab.split(", ") if x]), 1) for _, _, lab in edges],
                label=[f"Xid {lab}" if lab else "" for _, _, lab in edges],
            ),
        )
    )
    sankey.update_layout(title="The decision tree: evidence -> cause class -> action (width = Xids)")
    rows = [[x["source_line"], x["xid"], x["class"], x["action"], x["reason"]] for x in e["findings"]]
    claim5 = f"Read with the decision tree, five kernel-log lines give the node verdict '{e['verdict']}': the most severe action among them, not the most recent line."
    secs.append(
        Section(
            "5. Debug: the decision tree on real log lines",
            fig_html(sankey, "tree", height=560)
            + table_html(["line", "xid", "class", "action", "reason"], rows)
            + "<pre>"
            + html_escape(SAMPLE_LOG)
            + "</pre>",
            claim5,
            "`gpuinfra health --dmesg FILE --nvidia-smi FILE` applies the same tree to a node's own evidence; `gpuinfra health --tree` prints it as a Mermaid flowchart.",
        )
    )
    f.append(claim5)
    sub = "Seed section 5, every activity run now. Rates and mixes from published fleet data; mappings, repair times and detection delays are stated assumptions in the packaged CSVs."
    return render_page(f"Lab 5: {TITLE}", secs, findings=f, subtitle=sub)
