"""The execution subsystem in a run's report: GPU-hours by lifecycle phase and outcome, per workload kind."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go


def execution_figure(summary: dict[str, Any]) -> go.Figure | None:
    """Stacked GPU-hours by phase for each workload kind (x: kind with its outcomes), or None."""
    ex = summary.get("execution")
    if not ex or not ex.get("jobs"):
        return None
    kinds: dict[str, dict[str, float]] = {}
    outcomes: dict[str, dict[str, int]] = {}
    for j in ex["jobs"]:
        acc = kinds.setdefault(j["kind"], {})
        for p, v in j["gpu_hours_by_phase"].items():
            acc[p] = acc.get(p, 0.0) + v
        o = outcomes.setdefault(j["kind"], {})
        o[j["outcome"]] = o.get(j["outcome"], 0) + 1
    labels = [f"{k} ({', '.join(f'{n} {o}' for o, n in outcomes[k].items())})" for k in kinds]
    phases = sorted({p for acc in kinds.values() for p in acc})
    fig = go.Figure()
    for p in phases:
        fig.add_trace(go.Bar(x=labels, y=[kinds[k].get(p, 0.0) for k in kinds], name=p))
    fig.update_layout(
        title="GPU-hours by lifecycle phase, per workload kind (jobs by outcome)",
        yaxis_title="GPU-hours",
        xaxis_title="workload kind",
        barmode="stack",
    )
    return fig
