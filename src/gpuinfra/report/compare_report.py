"""The policy comparison report (replay mode): one scenario, several scheduler profiles."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from gpuinfra.report.fill_report import COLORS
from gpuinfra.report.html import _time_axis, fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import decimals_to_tell_apart


def _fmt(x: float | None, nd: int = 1) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def findings(table: dict[str, Any]) -> list[str]:
    out = []
    pols = list(table)
    if len(pols) < 2:
        return out
    by_alloc = sorted(pols, key=lambda p: -(table[p]["allocation_ratio"] or 0))
    a, z = by_alloc[0], by_alloc[-1]
    hours = [table[p]["allocated_gpu_hours"] or 0.0 for p in pols]
    if max(hours) - min(hours) <= 1e-9 * max(max(hours), 1.0):
        out.append(
            f"Every policy delivered the same allocated GPU-time ({hours[0]:,.1f} GPU-hours): in a replay where "
            "every pod eventually runs, work is conserved, and placement decides who waits and what the idle "
            "GPUs cost, not how much work gets done."
        )
    else:
        out.append(
            f"{a} kept {100 * table[a]['allocation_ratio']:.2f}% of GPU-time allocated, {z} "
            f"{100 * table[z]['allocation_ratio']:.2f}%; on average {table[z]['mean_unallocated_gpus']:,.1f} GPUs "
            f"sat unallocated under {z} against {table[a]['mean_unallocated_gpus']:,.1f} under {a}."
        )
    waits = {p: table[p]["wait_s"]["p90"] for p in pols if table[p]["wait_s"]["p90"] is not None}
    if waits:
        lo = min(waits, key=waits.get)
        hi = max(waits, key=waits.get)
        if waits[hi] > waits[lo]:
            out.append(
                f"The 90th-percentile wait ranges from {waits[lo]:,.0f} s under {lo} to {waits[hi]:,.0f} s under {hi}."
            )
        else:
            out.append(
                f"All policies give the same 90th-percentile wait ({waits[lo]:,.0f} s): at this load "
                "placement does not decide who waits."
            )
    frag = {p: table[p]["mean_fragmented_gpus"] for p in pols}
    lo = min(frag, key=frag.get)
    hi = max(frag, key=frag.get)
    out.append(f"FGD's fragmentation measure averages {frag[lo]:,.1f} GPUs under {lo} and {frag[hi]:,.1f} under {hi}.")
    idle = {p: table[p]["idle_usd"] for p in pols if table[p]["idle_usd"] is not None}
    if idle:
        lo, hi = min(idle, key=idle.get), max(idle, key=idle.get)
        out.append(f"Idle GPUs cost ${idle[lo]:,.0f} under {lo} and ${idle[hi]:,.0f} under {hi} over the run.")
    return out


def _over_time(runs: list[Any], column: str, title: str, yt: str = "GPUs") -> go.Figure:
    fig = go.Figure()
    xt = "time"
    for r in runs:
        x, xt = _time_axis(r.metrics)
        fig.add_trace(go.Scatter(x=x, y=r.metrics[column], name=r.policy, line=dict(color=COLORS.get(r.policy))))
    fig.update_layout(title=title, xaxis_title=xt, yaxis_title=yt)
    return fig


def _waits_by_class(runs: list[Any]) -> go.Figure | None:
    """99th-percentile wait per request class, one bar group per class, one bar per policy."""
    per = {r.policy: (r.summary.get("contention") or {}).get("waits_by_class") or {} for r in runs}
    classes = list(dict.fromkeys(c for wc in per.values() for c in wc))
    if not classes:
        return None
    fig = go.Figure()
    for r in runs:
        wc = per[r.policy]
        fig.add_trace(
            go.Bar(
                x=classes,
                y=[(wc.get(c) or {}).get("wait_p99_s") or 0.0 for c in classes],
                name=r.policy,
                marker_color=COLORS.get(r.policy),
            )
        )
    fig.update_layout(
        title="99th-percentile wait by request class",
        xaxis_title="request class",
        yaxis_title="wait p99 (s)",
        barmode="group",
    )
    return fig


def render_compare_report(name: str, table: dict[str, Any], runs: list[Any]) -> str:
    alloc = _over_time(runs, "allocated_gpus", "Allocated GPUs over time")
    frag = _over_time(runs, "fragmented_gpus", "Fragmented GPUs over time (FGD's measure)")
    queue = _over_time(runs, "queue_len_mean", "Pending pods over time (time-weighted mean)", "pending pods")
    by_class = _waits_by_class(runs)
    wait = go.Figure()
    for r in runs:
        w = np.sort(r.ledger["wait_s"].dropna().to_numpy())
        if len(w):
            wait.add_trace(
                go.Scatter(
                    x=np.maximum(w, 0.1),
                    y=np.arange(1, len(w) + 1) / len(w) * 100,
                    name=r.policy,
                    line=dict(color=COLORS.get(r.policy)),
                )
            )
    wait.update_layout(
        title="Wait time, cumulative",
        xaxis_type="log",
        xaxis_title="wait (s; 0 shown at 0.1 s)",
        yaxis_title="started pods (%)",
    )
    owners = sorted({o for p in table for o in table[p]["wait_by_owner"]})
    own = go.Figure()
    for p in table:
        own.add_trace(
            go.Bar(
                x=owners,
                y=[(table[p]["wait_by_owner"].get(o) or {}).get("mean") or 0 for o in owners],
                name=p,
                marker_color=COLORS.get(p),
            )
        )
    own.update_layout(title="Mean wait by owner", xaxis_title="owner", yaxis_title="mean wait (s)", barmode="group")
    nd = decimals_to_tell_apart(100 * (v["allocation_ratio"] or 0) for v in table.values())
    rows = [
        [
            p,
            f"{100 * (v['allocation_ratio'] or 0):.{nd}f}",
            _fmt(v["mean_unallocated_gpus"]),
            _fmt(v["mean_fragmented_gpus"]),
            _fmt(v["wait_s"]["p50"], 0),
            _fmt(v["wait_s"]["p90"], 0),
            _fmt(v["wait_s"]["p99"], 0),
            v["pending_at_end"],
            v["withdrawn"],
            v["preemptions"],
            _fmt(v["idle_usd"], 0),
            "ok" if v["invariants_ok"] else "VIOLATED",
            v.get("profile", ""),
        ]
        for p, v in table.items()
    ]
    sections = [
        Section(
            "Side by side",
            table_html(
                [
                    "policy",
                    "allocation %",
                    "mean unallocated GPUs",
                    "mean fragmented GPUs",
                    "wait p50 s",
                    "wait p90 s",
                    "wait p99 s",
                    "pending at end",
                    "withdrawn",
                    "preemptions",
                    "idle cost USD",
                    "invariants",
                    "runs (named policies: the FGD artifact's device choice and seeded ties)",
                ],
                rows,
                set(range(1, 11)),
            ),
        ),
        Section("Allocation", fig_html(alloc, "fig-cmp-alloc")),
        Section("Fragmentation", fig_html(frag, "fig-cmp-frag")),
        Section("Pending pods", fig_html(queue, "fig-cmp-queue")),
        Section("Waiting", fig_html(wait, "fig-cmp-wait")),
        *([Section("Waiting by request class", fig_html(by_class, "fig-cmp-class"))] if by_class else []),
        Section("Waiting by owner", fig_html(own, "fig-cmp-owner")),
    ]
    return render_page(
        f"Policy comparison: {name}",
        sections,
        findings=findings(table),
        subtitle="Same cluster, workload and seed under each scheduler profile.",
    )
