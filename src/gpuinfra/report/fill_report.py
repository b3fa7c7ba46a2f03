"""The fill experiment's report: unallocated GPUs and fragmentation against arrived load."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import count, decimals_to_tell_apart
from gpuinfra.sim.fill import FAIL_TYPES, FillResult

COLORS = {
    "random": "#7f7f7f",
    "dotprod": "#17becf",
    "clustering": "#bcbd22",
    "packing": "#ff7f0e",
    "bestfit": "#2ca02c",
    "fgd": "#d62728",
    "clustering-milli": "#dbdb8d",
    "packing-tightest": "#ffbb78",
    "firstfit": "#9467bd",
    "spread": "#8c564b",
    "mostallocated": "#e377c2",
}


def curves(
    results: list[FillResult], workload: str, metric: str
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """policy -> (arrived pct, mean, min, max) of ``metric`` over seeds."""
    out = {}
    for p in dict.fromkeys(r.policy for r in results if r.workload == workload):
        rs = [r for r in results if r.workload == workload and r.policy == p]
        n = min(len(r.rows) for r in rs)
        x = np.array([row["arrived_pct"] for row in rs[0].rows[:n]])
        y = np.array([[row[metric] for row in r.rows[:n]] for r in rs])
        out[p] = (x, y.mean(axis=0), y.min(axis=0), y.max(axis=0))
    return out


def curve_figure(results: list[FillResult], workload: str, metric: str, title: str, ytitle: str) -> go.Figure:
    fig = go.Figure()
    for p, (x, mean, lo, hi) in curves(results, workload, metric).items():
        c = COLORS.get(p, "#333")
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([hi, lo[::-1]]),
                fill="toself",
                fillcolor=c,
                opacity=0.15,
                line=dict(width=0),
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(go.Scatter(x=x, y=mean, name=p, line=dict(color=c)))
    fig.update_layout(
        title=title, xaxis_title="arrived workload (% of GPU capacity)", yaxis_title=ytitle, showlegend=True
    )
    if metric == "unalloc_pct":  # the policies only differ once the cluster fills: start the view at 60%
        cs = curves(results, workload, metric).values()
        tail = [float(m[x >= 60].max()) for x, m, _, _ in cs if (x >= 60).any()]
        if tail:
            fig.update_xaxes(range=[60, None])
            fig.update_yaxes(range=[0, min(100.0, max(tail) * 1.1)])
    return fig


def failed_figure(results: list[FillResult], workload: str) -> go.Figure:
    fig = go.Figure()
    pols = list(dict.fromkeys(r.policy for r in results if r.workload == workload))
    for t in FAIL_TYPES:
        vals = [
            float(np.mean([r.failed[t] for r in results if r.workload == workload and r.policy == p])) for p in pols
        ]
        fig.add_trace(go.Bar(x=pols, y=vals, name=t))
    fig.update_layout(
        title="Failed pods by type at the end of the fill (mean over seeds)",
        barmode="stack",
        xaxis_title="policy",
        yaxis_title="failed pods (count)",
        legend_title_text="pod type",
        showlegend=True,
    )
    return fig


def findings(summary: dict[str, Any]) -> list[str]:
    out = []
    for w, pols in summary["by_workload"].items():
        ranked = sorted((v["unalloc_pct_mean"], p) for p, v in pols.items() if v["unalloc_pct_mean"] is not None)
        if not ranked:
            continue
        seeds = max(v["seeds"] for v in pols.values())
        (best_v, best), (worst_v, worst) = ranked[0], ranked[-1]
        ref = next(iter(pols.values()))["ref_arrived_pct"]
        when = "equals the cluster's capacity" if ref == 100 else f"reaches {ref}% of the cluster's capacity"
        s = (
            f"{w}: when arrived demand {when}, {best} leaves {best_v:.2f}% of GPUs "
            f"unallocated and {worst} {worst_v:.2f}% (mean of {count(seeds, 'seed')})."
        )
        if "fgd" in pols and len(ranked) > 1:
            others = [(v, p) for v, p in ranked if p != "fgd"]
            ov, op = others[0]
            fv = pols["fgd"]["unalloc_pct_mean"]
            gpus = summary["cluster"]["gpus"]
            diff = ov - fv
            word = "fewer" if diff > 0 else "more"
            s += (
                f" FGD leaves {abs(diff):.2f} points {word} GPUs unallocated than the best other policy "
                f"({op}), about {abs(diff) * gpus / 100:,.0f} of {gpus:,} GPUs."
            )
        out.append(s)
    return out


def render_fill_report(summary: dict[str, Any], results: list[FillResult]) -> str:
    sections = []
    for w, pols in summary["by_workload"].items():
        sections.append(
            Section(
                f"{w}: unallocated GPUs as pods arrive",
                fig_html(
                    curve_figure(
                        results, w, "unalloc_pct", f"{w}: unallocated GPU share", "unallocated GPUs (% of capacity)"
                    ),
                    f"fig-unalloc-{w}",
                ),
                text="Lines are means over seeds; bands span the lowest and highest seed.",
            )
        )
        sections.append(
            Section(
                f"{w}: fragmentation (FGD's measure)",
                fig_html(
                    curve_figure(
                        results, w, "frag_amount_pct", f"{w}: fragmented GPU share", "fragmented GPUs (% of capacity)"
                    ),
                    f"fig-frag-{w}",
                ),
            )
        )
        sections.append(Section(f"{w}: failed pods", fig_html(failed_figure(results, w), f"fig-failed-{w}")))
        # one decimal unless the policies' means need more to be told apart
        nd = decimals_to_tell_apart(v["unalloc_pct_mean"] for v in pols.values())
        rows = [
            [
                p,
                v["seeds"],
                _pct(v["unalloc_pct_mean"], nd),
                _pct(v["unalloc_pct_stdev"], nd),
                _pct(v["frag_amount_pct_mean"], nd),
                f"{v['failed_pods_mean']:.1f}",
                f"{v['failed_gpus_mean']:.1f}",
            ]
            for p, v in pols.items()
        ]
        ref = next(iter(pols.values()))["ref_arrived_pct"]
        sections.append(
            Section(
                f"{w}: at {ref}% arrived load",
                table_html(
                    [
                        "policy",
                        "seeds",
                        "unallocated % (mean)",
                        "stdev",
                        "fragmented % (mean)",
                        "failed pods (end)",
                        "failed GPUs (end)",
                    ],
                    rows,
                    {1, 2, 3, 4, 5, 6},
                ),
            )
        )
    c = summary["cluster"]
    sub = (
        f"{c['node_list']}: {c['nodes']:,} nodes, {c['gpus']:,} GPUs; pods resampled to "
        f"{100 * summary['load']:.0f}% of capacity, placed one by one, no departures."
    )
    return render_page("The fill experiment (FGD, ATC '23)", sections, findings=findings(summary), subtitle=sub)


def _pct(x: float | None, nd: int) -> str:
    """A percentage to ``nd`` decimals, or "-" when the grid never reached the reference fill level
    (a load so low that fewer pods arrive than the first reported percentage)."""
    return "-" if x is None else f"{x:.{nd}f}"
