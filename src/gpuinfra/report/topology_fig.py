"""Pictures of node topologies and of collective and scaling curves (plotly, offline)."""

from __future__ import annotations

import plotly.graph_objects as go

from gpuinfra.models.collectives import _to_cpu
from gpuinfra.models.topology import Topology, _devkey

LEVEL = {"cpu": 4.0, "hostbridge": 3.0, "switch": 2.0, "gpu": 1.0, "nic": 1.0, "nvswitch": -0.2}
EDGE_STYLE = {"nvlink": ("#2ca02c", "NVLink"), "pcie": ("#1f77b4", "PCIe"), "cpu": ("#d62728", "CPU-CPU (UPI/xGMI)")}
NODE_STYLE = {
    "gpu": ("#2ca02c", "square", 18),
    "nic": ("#ff7f0e", "diamond", 14),
    "switch": ("#1f77b4", "circle", 10),
    "hostbridge": ("#9467bd", "circle", 12),
    "cpu": ("#d62728", "hexagon", 22),
    "nvswitch": ("#2ca02c", "hexagon", 24),
}


def layout(t: Topology) -> dict[str, tuple[float, float]]:
    g = t.graph
    leaves = sorted(t.gpus + t.nics, key=lambda d: (_to_cpu(t, d)[::-1], g.nodes[d]["kind"] != "gpu", _devkey(d)))
    pos: dict[str, tuple[float, float]] = {d: (float(i), LEVEL[g.nodes[d]["kind"]]) for i, d in enumerate(leaves)}
    below: dict[str, list[float]] = {}
    for d in leaves:
        for v in _to_cpu(t, d):
            below.setdefault(v, []).append(pos[d][0])
    for v, xs in below.items():
        y = LEVEL[g.nodes[v]["kind"]]
        if g.nodes[v]["kind"] == "switch" and v.count(".") == 2 and any(u.startswith(v + ".") for u in g.nodes):
            y = 2.5  # an upper switch above leaf switches
        pos[v] = (sum(xs) / len(xs), y)
    for v, d in g.nodes(data=True):
        if v not in pos:
            if d["kind"] == "nvswitch":
                xs = [pos[x][0] for x in t.gpus]
                pos[v] = (sum(xs) / len(xs), LEVEL["nvswitch"])
            else:
                pos[v] = (0.0, LEVEL.get(d["kind"], 2.0))
    return pos


def topology_figure(t: Topology) -> go.Figure:
    g = t.graph
    pos = layout(t)
    fig = go.Figure()
    for kind, (color, label) in EDGE_STYLE.items():
        xs, ys, texts = [], [], []
        for u, v, d in g.edges(data=True):
            if d["kind"] != kind:
                continue
            (x0, y0), (x1, y1) = pos[u], pos[v]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
            texts.append(f"{u}-{v}: {d['bw_line'] / 1e9:.1f} GB/s line, {d['bw'] / 1e9:.1f} effective")
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line=dict(color=color, width=3 if kind == "nvlink" else 2),
                    name=label,
                    hoverinfo="skip",
                )
            )
    for kind, (color, symbol, size) in NODE_STYLE.items():
        vs = [v for v, d in g.nodes(data=True) if d["kind"] == kind]
        if not vs:
            continue
        hover = []
        for v in vs:
            extra = ""
            if kind == "nic":
                extra = f"<br>{g.nodes[v].get('name', v)}, {g.nodes[v]['port_line'] * 8 / 1e9:.0f} Gb/s" + (
                    " (assumed)" if g.nodes[v].get("assumed") else ""
                )
            if kind == "gpu":
                extra = f"<br>{t.gpu.name}, NUMA {t.numa(v) or '?'}"
            hover.append(v + extra)
        fig.add_trace(
            go.Scatter(
                x=[pos[v][0] for v in vs],
                y=[pos[v][1] for v in vs],
                mode="markers+text",
                marker=dict(color=color, symbol=symbol, size=size, line=dict(color="#333", width=1)),
                text=[v if kind in ("gpu", "nic", "cpu", "nvswitch") else "" for v in vs],
                textposition="bottom center" if kind in ("gpu", "nic", "nvswitch") else "top center",
                hovertext=hover,
                hoverinfo="text",
                name=kind,
            )
        )
    fig.update_layout(
        title=f"{t.name}: {len(t.gpus)}x {t.gpu.name}",
        xaxis=dict(visible=False),
        yaxis=dict(visible=False, range=[-0.8, 4.6]),
        legend=dict(orientation="h"),
    )
    return fig
