"""Pictures of the caching allocator: state over time, and the segment/block map (in the spirit
of PyTorch's memory-snapshot viewer)."""

from __future__ import annotations

import plotly.graph_objects as go

from gpuinfra.models.memory import MiB


def timeline_figure(rows: list[dict], title: str) -> go.Figure:
    x = [r["step"] for r in rows]
    fig = go.Figure()
    for key, name, color in (
        ("device_used", "device used (all processes, nvidia-smi)", "#7f7f7f"),
        ("reserved", "reserved by this process (segments)", "#ff7f0e"),
        ("allocated", "allocated (live tensors)", "#1f77b4"),
        ("inactive_split", "inactive split (free inside used segments)", "#d62728"),
    ):
        fig.add_trace(
            go.Scatter(x=x, y=[r[key] / 2**30 for r in rows], mode="lines", name=name, line=dict(color=color))
        )
    oom = [r for r in rows if not r["ok"]]
    if oom:
        fig.add_trace(
            go.Scatter(
                x=[r["step"] for r in oom],
                y=[r["reserved"] / 2**30 for r in oom],
                mode="markers",
                marker=dict(symbol="x", size=14, color="black"),
                name="OOM",
            )
        )
    fig.update_layout(title=title, xaxis_title="allocator operation (index in the trace)", yaxis_title="memory (GiB)")
    return fig


def segment_figure(snapshot: list[dict], title: str, max_segments: int = 60) -> go.Figure:
    """One horizontal bar per segment, its blocks side by side: allocated, or free (cached)."""
    segs = sorted(snapshot, key=lambda s: -s["size"])[:max_segments]
    fig = go.Figure()
    shown = set()
    for s in segs:
        label = f"seg {s['segment']} ({s['pool']}{', expandable' if s['expandable'] else ''})"
        for b in s["blocks"]:
            state = "allocated" if b["state"] == "active_allocated" else "free (cached)"
            fig.add_trace(
                go.Bar(
                    y=[label],
                    x=[b["size"] / MiB],
                    base=[b["offset"] / MiB],
                    orientation="h",
                    marker=dict(
                        color="#1f77b4" if state == "allocated" else "#ff7f0e", line=dict(color="white", width=0.5)
                    ),
                    name=state,
                    legendgroup=state,
                    showlegend=state not in shown,
                    hovertext=f"{b['name'] or 'free'}: {b['size'] / MiB:.1f} MiB at +{b['offset'] / MiB:.1f} MiB",
                    hoverinfo="text",
                )
            )
            shown.add(state)
    fig.update_layout(
        title=title,
        xaxis_title="offset within the segment (MiB)",
        barmode="overlay",
        height=max(300, 18 * len(segs) + 120),
        yaxis=dict(autorange="reversed", title=dict(text="segment (largest first)")),
    )
    return fig
