"""Figures of a checkpoint plan: ETTR and where the wall time goes, against the interval."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

LOSSES = (
    ("stalls", "checkpoint stalls"),
    ("lost_work", "lost work"),
    ("detection", "detection"),
    ("requeue", "requeue"),
    ("restart", "restart"),
)


def plan_figure(p, title: str | None = None) -> go.Figure:
    """ETTR (line) and the lost fractions (stacked areas) against the interval (minutes, log axis)."""
    x = [e.interval_s / 60 for e in p.curve]
    fig = go.Figure()
    for key, label in LOSSES:
        fig.add_trace(go.Scatter(x=x, y=[getattr(e, key) for e in p.curve], name=label, stackgroup="lost", mode="none"))
    fig.add_trace(go.Scatter(x=x, y=[e.ettr for e in p.curve], name="ETTR", mode="lines", line=dict(width=3)))
    r = p.recommended
    fig.add_trace(
        go.Scatter(
            x=[r.interval_s / 60], y=[r.ettr], name="recommended", mode="markers", marker=dict(size=12, symbol="star")
        )
    )
    fig.update_layout(
        title=title or f"Checkpoint interval trade-off ({p.job['storage']}, {p.job['mode']}, {p.job['gpus']:,} GPUs)",
        xaxis_title="checkpoint interval (minutes)",
        yaxis_title="fraction of wall time",
    )
    fig.update_xaxes(type="log")
    return fig


def write_plan_html(p, path: Path, where: str | None = None) -> None:
    """One self-contained HTML file with the plan's figure, written atomically (the CLI checks
    ``path`` first with :func:`gpuinfra.io.atomic.check_output_file`; ``where`` names the option)."""
    from gpuinfra.io.atomic import write_text
    from gpuinfra.report.html import fig_html
    from gpuinfra.report.page import Section, render_page

    r = p.recommended
    claim = f"Recommended interval {r.interval_s / 60:.1f} min gives ETTR {r.ettr:.3f}; Young {p.young_s / 60:.1f} min, Daly {p.daly_s / 60:.1f} min."
    page = render_page("Checkpoint plan", [Section("Trade-off", fig_html(plan_figure(p), "plan"), claim)])
    write_text(path, page, where)
