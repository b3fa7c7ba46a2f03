"""Small figure helpers shared by the labs."""

from __future__ import annotations

import plotly.graph_objects as go


def line_figure(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    xt: str,
    yt: str,
    logx: bool = True,
    logy: bool = False,
    mode: str = "lines+markers",
) -> go.Figure:
    fig = go.Figure()
    for name, pts in series.items():
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode=mode, name=name))
    fig.update_layout(title=title, xaxis_title=xt, yaxis_title=yt)
    if logx:
        fig.update_xaxes(type="log")
    if logy:
        fig.update_yaxes(type="log")
    return fig


def bar_figure(
    labels: list[str], series: dict[str, list[float]], title: str, yt: str, logy: bool = False, stacked: bool = False
) -> go.Figure:
    fig = go.Figure()
    for name, vals in series.items():
        fig.add_trace(go.Bar(x=labels, y=vals, name=name))
    fig.update_layout(title=title, yaxis_title=yt, barmode="stack" if stacked else "group")
    if logy:
        fig.update_yaxes(type="log")
    return fig
