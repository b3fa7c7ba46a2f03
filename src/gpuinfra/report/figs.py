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
    labels: list[str],
    series: dict[str, list[float]],
    title: str,
    yt: str,
    logy: bool = False,
    stacked: bool = False,
    *,
    xt: str = "",
    log_floor: float | None = None,
) -> go.Figure:
    """Grouped (or stacked) bars. On a log axis bars start at ``log_floor`` (e.g. 1 for ratios);
    without it, at the largest power of ten not above the smallest bar, never at plotly's
    autorange bottom (which makes bar lengths meaningless)."""
    import math

    fig = go.Figure()
    for name, vals in series.items():
        fig.add_trace(go.Bar(x=labels, y=vals, name=name))
    fig.update_layout(title=title, xaxis_title=xt, yaxis_title=yt, barmode="stack" if stacked else "group")
    if logy:
        vals = [v for vs in series.values() for v in vs if v and v > 0]
        lo = log_floor if log_floor is not None else (10 ** math.floor(math.log10(min(vals))) if vals else 1.0)
        hi = max(vals) if vals else 10.0
        # bars on a log axis grow from the bottom of the range: make that bottom a stated value
        fig.update_yaxes(type="log", range=[math.log10(lo), math.log10(hi) + 0.15])
    return fig
