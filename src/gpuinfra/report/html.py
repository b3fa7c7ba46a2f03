"""Render a simulation run as one self-contained HTML file (opens offline; plotly.js inlined).

Every sentence with a number is built from the run's summary and metrics, so it says something
else when the run does. Figure div ids are fixed, so the same run gives the same bytes.
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape

DAY_S = 86400.0


@cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _env() -> Environment:
    return Environment(loader=PackageLoader("gpuinfra", "report/templates"), autoescape=select_autoescape())


def fig_html(fig: go.Figure, div_id: str, height: int = 380) -> str:
    fig.update_layout(template="plotly_white", margin=dict(l=60, r=20, t=50, b=50), height=height)
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def _days(metrics: pd.DataFrame) -> np.ndarray:
    return (metrics["t_start_s"].to_numpy() - metrics["t_start_s"].iloc[0]) / DAY_S


def allocation_figure(metrics: pd.DataFrame) -> go.Figure:
    x = _days(metrics)
    fig = go.Figure()
    for col, name, color in (
        ("allocated_gpus", "allocated (milli-GPU sum)", "#1f77b4"),
        ("idle_gpus", "idle", "#d9d9d9"),
        ("unavailable_gpus", "unavailable", "#d62728"),
    ):
        fig.add_trace(go.Scatter(x=x, y=metrics[col], name=name, stackgroup="gpu", mode="none", fillcolor=color))
    fig.add_trace(
        go.Scatter(
            x=x, y=metrics["busy_gpus"], name="GPUs with any pod (whole-GPU view)", line=dict(color="#ff7f0e", width=1)
        )
    )
    fig.update_layout(title="GPU allocation over time (interval means)", xaxis_title="day of run", yaxis_title="GPUs")
    return fig


def allocation_zoom_figure(metrics: pd.DataFrame) -> go.Figure:
    x = _days(metrics)
    fig = go.Figure(go.Scatter(x=x, y=metrics["allocated_gpus"], name="allocated", line=dict(color="#1f77b4")))
    fig.add_trace(go.Scatter(x=x, y=metrics["busy_gpus"], name="GPUs with any pod", line=dict(color="#ff7f0e")))
    fig.update_layout(title="Allocated GPUs, own scale", xaxis_title="day of run", yaxis_title="GPUs")
    return fig


def queue_figure(metrics: pd.DataFrame) -> go.Figure:
    x = _days(metrics)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=metrics["queue_len_max"], name="max in interval", line=dict(color="#9467bd")))
    fig.add_trace(go.Scatter(x=x, y=metrics["queue_len_mean"], name="time-weighted mean", line=dict(color="#2ca02c")))
    fig.update_layout(title="Pending pods (queue length)", xaxis_title="day of run", yaxis_title="pods")
    return fig


def wait_figure(led: pd.DataFrame) -> go.Figure | None:
    w = led["wait_s"].dropna().to_numpy()
    if not (w > 0).any():
        return None
    fig = go.Figure()
    if len(w):
        ws = np.sort(w)
        y = np.arange(1, len(ws) + 1) / len(ws) * 100
        fig.add_trace(go.Scatter(x=np.maximum(ws, 0.1), y=y, mode="lines", name="started pods"))
    fig.update_layout(
        title="Wait time (submit to start), cumulative",
        xaxis_type="log",
        xaxis_title="wait, seconds (0 shown at 0.1 s)",
        yaxis_title="% of started pods",
    )
    return fig


def cost_figure(summary: dict[str, Any]) -> go.Figure:
    owners = summary["cost"]["by_owner"]
    names = list(owners)
    fig = go.Figure(go.Bar(x=names, y=[owners[o]["cost_usd"] or 0 for o in names], name="allocated GPU cost"))
    idle = summary["cost"]["idle_usd"] or 0
    fig.add_trace(go.Bar(x=["(idle capacity)"], y=[idle], name="idle GPU cost", marker_color="#bbbbbb"))
    fig.update_layout(
        title="Cost by owner, and what idle GPUs cost", yaxis_title="USD", yaxis_type="log", barmode="group"
    )
    return fig


def model_figure(summary: dict[str, Any]) -> go.Figure:
    bm = summary["gpu_time"]["by_model"]
    names = list(bm)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[bm[m]["allocated_gpu_hours"] for m in names], name="allocated"))
    fig.add_trace(go.Bar(x=names, y=[bm[m]["idle_gpu_hours"] for m in names], name="idle", marker_color="#cccccc"))
    fig.update_layout(title="GPU-hours by GPU model", yaxis_title="GPU-hours", barmode="stack", yaxis_type="log")
    return fig


def findings(summary: dict[str, Any], metrics: pd.DataFrame) -> list[str]:
    """Sentences computed from this run's numbers."""
    g, pods, cost = summary["gpu_time"], summary["pods"], summary["cost"]
    out = []
    ratio = g["allocation_ratio"] or 0.0
    out.append(
        f"Over {summary['horizon']['duration_s'] / DAY_S:.1f} days the cluster's {summary['cluster']['gpus']:,} GPUs "
        f"offered {g['capacity_gpu_hours']:,.0f} GPU-hours; pods were allocated {g['allocated_gpu_hours']:,.0f} "
        f"of them ({100 * ratio:.2f}%), and {g['idle_gpu_hours']:,.0f} GPU-hours sat idle."
    )
    busy = g["busy_device_hours"] or 0.0
    alloc = g["allocated_gpu_hours"] or 0.0
    if busy > alloc * 1.0001:
        out.append(
            f"Counting a GPU as taken when any pod holds a share of it gives {busy:,.0f} GPU-hours, "
            f"{busy / alloc:.2f}x the milli-GPU sum: shared GPUs look fully used to a whole-GPU counter "
            f"while {busy - alloc:,.0f} GPU-hours on them were not allocated to anyone."
        )
    bm = g["by_model"]
    if alloc > 0 and len(bm) > 1:
        top = max(bm, key=lambda m: bm[m]["allocated_gpu_hours"] or 0.0)
        share_alloc = (bm[top]["allocated_gpu_hours"] or 0.0) / alloc
        share_gpus = bm[top]["gpus"] / max(summary["cluster"]["gpus"], 1)
        out.append(
            f"{top} GPUs are {100 * share_gpus:.1f}% of the cluster but took {100 * share_alloc:.1f}% of the "
            f"allocated GPU-hours: placement, not demand alone, decides which hardware works."
        )
    peak = g["peak_interval_allocated_gpus"] or 0.0
    if len(metrics):
        k = int(metrics["allocated_gpus"].to_numpy().argmax())
        day = (metrics["t_start_s"].iloc[k] - metrics["t_start_s"].iloc[0]) / DAY_S
        out.append(
            f"The busiest interval (day {day:.1f}) averaged {peak:,.1f} allocated GPUs, "
            f"{100 * peak / max(summary['cluster']['gpus'], 1):.1f}% of capacity."
        )
    w = pods["wait_s"]
    if pods["started"] and not pods["waited"]:
        out.append(f"None of the {pods['started']:,} started pods waited: every pod found room when it arrived.")
    elif pods["started"]:
        out.append(
            f"{pods['waited']:,} of {pods['started']:,} started pods waited at all; the median wait was "
            f"{w['p50']:.0f} s, the 99th percentile {w['p99']:.0f} s and the longest {w['max']:,.0f} s."
        )
    oc = pods["outcomes"]
    if oc.get("withdrawn"):
        out.append(f"{oc['withdrawn']:,} pods were deleted by their owners while still pending.")
    if summary["pending"]["at_end"]:
        top = max(summary["pending"]["reasons"].items(), key=lambda kv: kv[1])
        out.append(
            f"{summary['pending']['at_end']:,} pods were still pending at the end; the commonest reason: {top[0]}"
        )
    if cost["idle_usd"] is not None and cost["allocated_usd"] is not None:
        tot = cost["idle_usd"] + cost["allocated_usd"]
        if tot > 0:
            out.append(
                f"At {cost['basis'].replace('_', '-')} prices the GPUs cost ${tot:,.0f} over the run, "
                f"of which ${cost['idle_usd']:,.0f} ({100 * cost['idle_usd'] / tot:.1f}%) paid for idle GPUs."
            )
    fl = summary.get("faults")
    if fl and fl.get("events"):
        classes = ", ".join(f"{n} {c}" for n, c in fl["by_class"].items() if c)
        out.append(
            f"{fl['events']:,} injected faults ({classes}) killed {fl['pods_killed']:,} running pods and took GPUs out "
            f"of service for {g['unavailable_gpu_hours']:,.1f} GPU-hours."
        )
    pre = summary.get("preemption", {})
    if pre.get("preemptions"):
        out.append(
            f"{pre['preemptions']:,} preemptions evicted {pre['victims']:,} pods; their runs so far were lost, "
            f"{pre['lost_gpu_hours']:,.1f} GPU-hours of work that had to be done again."
        )
    if cost["unpriced_models"]:
        out.append("Unpriced GPU models (excluded from cost): " + ", ".join(cost["unpriced_models"]) + ".")
    return out


def render_run_report(summary: dict[str, Any], metrics: pd.DataFrame, led: pd.DataFrame, scenario_yaml: str) -> str:
    figs = [
        fig_html(allocation_figure(metrics), "fig-allocation"),
        fig_html(allocation_zoom_figure(metrics), "fig-allocation-zoom"),
        fig_html(queue_figure(metrics), "fig-queue"),
        *([fig_html(wf, "fig-wait")] if (wf := wait_figure(led)) is not None else []),
        fig_html(cost_figure(summary), "fig-cost"),
        fig_html(model_figure(summary), "fig-models"),
    ]
    inv = summary["invariants"]
    tmpl = _env().get_template("run.html.j2")
    return tmpl.render(
        title=f"gpuinfra simulate: {summary['scenario']}",
        summary=summary,
        findings=findings(summary, metrics),
        figures=figs,
        invariants=inv,
        scenario_yaml=scenario_yaml,
        plotly_js=plotly_js(),
        esc=html.escape,
    )
