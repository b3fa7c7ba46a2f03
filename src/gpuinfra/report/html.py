"""Render a simulation run as one self-contained HTML file (opens offline; plotly.js inlined).

Every sentence with a number is built from the run's summary and metrics, so it says something
else when the run does. Figure div ids are fixed, so the same run gives the same bytes.
"""

from __future__ import annotations

import html
import json
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from gpuinfra.report.wording import count, floor_num, plural

DAY_S = 86400.0


@cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _env() -> Environment:
    # every template is HTML (*.html.j2): escape every value unless the code marks it safe
    return Environment(loader=PackageLoader("gpuinfra", "report/templates"), autoescape=True)


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(text_or_obj: Any) -> str:
    """JSON safe to place inside ``<script>``: ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\uXXXX``.

    Takes a JSON string or an object to serialise; the result parses to the same value.
    """
    text = text_or_obj if isinstance(text_or_obj, str) else json.dumps(text_or_obj, separators=(",", ":"))
    return text.translate(_SCRIPT_SAFE)


def fig_html(fig: go.Figure, div_id: str, height: int = 380) -> str:
    """A figure as a ``<div>`` plus a JSON data block and a loader script; every string escaped.

    The figure's data and layout travel in ``<script type="application/json">`` (escaped by
    :func:`script_json`), so no trace name or title can end the script; the id is escaped too.
    """
    fig.update_layout(template="plotly_white", margin=dict(l=60, r=20, t=50, b=50), height=height)
    payload = script_json(pio.to_json(fig, validate=False, pretty=False, engine="json"))
    hid = html.escape(div_id, quote=True)
    config = script_json({"displaylogo": False, "responsive": True})
    return (
        f'<div id="{hid}" class="plotly-graph-div" style="height:{int(height)}px; width:100%;"></div>\n'
        f'<script type="application/json" class="gpuinfra-figure" data-div="{hid}">{payload}</script>\n'
        "<script>(function(){var s=document.currentScript.previousElementSibling;"
        "var f=JSON.parse(s.textContent);"
        f"Plotly.newPlot(s.getAttribute('data-div'),f.data,f.layout,{config});}})();</script>"
    )


def _time_axis(metrics: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Interval start times from the run's start, in days for runs over 2 days, else hours; and the axis title."""
    t = metrics["t_start_s"].to_numpy() - (metrics["t_start_s"].iloc[0] if len(metrics) else 0.0)
    span = float(metrics["t_end_s"].iloc[-1] - metrics["t_start_s"].iloc[0]) if len(metrics) else 0.0
    if span > 2 * DAY_S:
        return t / DAY_S, "time from start of run (days)"
    return t / 3600.0, "time from start of run (hours)"


def _days(metrics: pd.DataFrame) -> np.ndarray:
    return (metrics["t_start_s"].to_numpy() - metrics["t_start_s"].iloc[0]) / DAY_S


def allocation_figure(metrics: pd.DataFrame) -> go.Figure:
    x, xt = _time_axis(metrics)
    fig = go.Figure()
    for col, name, color in (
        ("allocated_gpus", "allocated (sum of milli-GPU requests)", "#1f77b4"),
        ("idle_gpus", "idle", "#d9d9d9"),
        ("unavailable_gpus", "unavailable (faults)", "#d62728"),
    ):
        fig.add_trace(go.Scatter(x=x, y=metrics[col], name=name, stackgroup="gpu", mode="none", fillcolor=color))
    fig.add_trace(
        go.Scatter(
            x=x, y=metrics["busy_gpus"], name="GPUs with any pod (whole-GPU view)", line=dict(color="#ff7f0e", width=1)
        )
    )
    fig.update_layout(title="GPU allocation over time (interval means)", xaxis_title=xt, yaxis_title="GPUs")
    return fig


def stranded_figure(metrics: pd.DataFrame) -> go.Figure:
    """Idle and fragmented GPUs (left axis) against pending pods (right axis), per interval."""
    x, xt = _time_axis(metrics)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=metrics["idle_gpus"], name="idle GPUs", line=dict(color="#7f7f7f")))
    fig.add_trace(
        go.Scatter(x=x, y=metrics["fragmented_gpus"], name="fragmented GPUs (FGD measure)", line=dict(color="#d62728"))
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=metrics["queue_len_mean"],
            name="pending pods (time-weighted mean)",
            line=dict(color="#9467bd", dash="dot"),
            yaxis="y2",
        )
    )
    fig.update_layout(
        title="Idle GPUs while pods wait",
        xaxis_title=xt,
        yaxis=dict(title=dict(text="GPUs"), rangemode="tozero"),
        yaxis2=dict(title=dict(text="pending pods"), overlaying="y", side="right", rangemode="tozero"),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def queue_figure(metrics: pd.DataFrame) -> go.Figure:
    x, xt = _time_axis(metrics)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=metrics["queue_len_max"], name="max in interval", line=dict(color="#9467bd")))
    fig.add_trace(go.Scatter(x=x, y=metrics["queue_len_mean"], name="time-weighted mean", line=dict(color="#2ca02c")))
    fig.update_layout(title="Pending pods over time (queue length)", xaxis_title=xt, yaxis_title="pending pods")
    return fig


def waits_by_class_figure(contention: dict[str, Any]) -> go.Figure:
    wc = contention["waits_by_class"]
    names = list(wc)
    fig = go.Figure()
    # the same population as the findings and the table: arrived pods, a pending one at its wait so far
    for key, label in (("wait_p50_at_least_s", "median (p50)"), ("wait_p99_at_least_s", "99th percentile (p99)")):
        fig.add_trace(
            go.Bar(
                x=names, y=[wc[n].get(key, wc[n].get(key.replace("_at_least", ""))) or 0.0 for n in names], name=label
            )
        )
    fig.update_layout(
        title="Wait by request class (arrived pods; a pending pod at its wait so far, a lower bound)",
        xaxis_title="request class",
        yaxis_title="wait, submit to start (s)",
        barmode="group",
    )
    return fig


def wait_figure(led: pd.DataFrame) -> go.Figure | None:
    w = led["wait_s"].dropna().to_numpy()
    if not (w > 0).any():
        return None
    fig = go.Figure()
    ws = np.sort(w)
    y = np.arange(1, len(ws) + 1) / len(ws) * 100
    fig.add_trace(go.Scatter(x=np.maximum(ws, 0.1), y=y, mode="lines", name="started pods"))
    fig.update_layout(
        title="Wait time (submit to start), cumulative",
        xaxis_type="log",
        xaxis_title="wait (s; 0 shown at 0.1 s)",
        yaxis_title="started pods (%)",
    )
    return fig


def cost_figure(summary: dict[str, Any]) -> go.Figure:
    owners = summary["cost"]["by_owner"]
    names = list(owners)
    fig = go.Figure(go.Bar(x=names, y=[owners[o]["cost_usd"] or 0 for o in names], name="allocated GPU cost"))
    idle = summary["cost"]["idle_usd"] or 0
    fig.add_trace(go.Bar(x=["idle GPUs"], y=[idle], name="idle GPU cost", marker_color="#bbbbbb"))
    con = summary.get("contention") or {}
    if (con.get("stranded") or {}).get("usd") is not None:
        fig.add_trace(
            go.Bar(
                x=["idle while pods waited"],
                y=[con["stranded"]["usd"]],
                name="stranded GPU cost",
                marker_color="#d62728",
            )
        )
    fig.update_layout(
        title="Cost by owner, and what idle GPUs cost", xaxis_title="owner or idle capacity", yaxis_title="cost (USD)"
    )
    return fig


def model_figure(summary: dict[str, Any]) -> go.Figure:
    bm = summary["gpu_time"]["by_model"]
    names = list(bm)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[bm[m]["allocated_gpu_hours"] for m in names], name="allocated"))
    fig.add_trace(go.Bar(x=names, y=[bm[m]["idle_gpu_hours"] for m in names], name="idle", marker_color="#cccccc"))
    fig.update_layout(title="GPU-hours by GPU model", xaxis_title="GPU model", yaxis_title="GPU-hours", barmode="stack")
    return fig


def _dur(seconds: float) -> str:
    if seconds >= 2 * DAY_S:
        return f"{seconds / DAY_S:,.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:,.1f} hours"
    return f"{seconds / 60:,.0f} minutes"


def _ask(cls: str) -> str:
    return "a " + cls if cls.startswith("share") else ("no GPU" if cls == "CPU only" else cls)


# Below this share of the GPUs idle on average the cluster counts as full: one or two idle GPUs
# among hundreds are the granularity of the requests, not a saturation point (an assumption of
# this report's wording, not a measured threshold).
FULL_IDLE_SHARE = 0.02


def _saturation(mean_idle_gpus: float, gpus: int) -> str:
    """The saturation clause of the ramp-up sentence, derived from the mean idle GPUs."""
    share = mean_idle_gpus / gpus if gpus else 0.0
    if share < FULL_IDLE_SHARE:
        return (
            f"the cluster ran full ({100 * (1 - share):.1f}% of its GPUs allocated, under "
            f"{100 * FULL_IDLE_SHARE:.0f}% idle), so the pending pods waited for capacity"
        )
    return (
        f"the cluster saturated at {100 * (1 - share):.1f}% of its GPUs: {100 * share:.1f}% stayed idle "
        "because the pending pods' requests did not fit the idle capacity"
    )


def _starvation(v: dict[str, Any]) -> tuple[float, float]:
    """Rank key of a request class: the 99th-percentile wait counting pending pods at their wait
    so far (a class whose pods mostly still wait ranks by those waits, not by its few started
    pods), then the share still pending."""
    p99 = v.get("wait_p99_at_least_s")
    return (p99 if p99 is not None else (v.get("wait_p99_s") or 0.0), v.get("pending_share") or 0.0)


def _waits_sentence(wc: dict[str, dict[str, Any]]) -> str:
    """Worst and best request class, ranked by the p99 wait counting the pending pods' waits so far
    (right-censored at the horizon: "at least"), then by the share still pending."""
    worst = max(wc, key=lambda k: _starvation(wc[k]))
    best = min(wc, key=lambda k: _starvation(wc[k]))

    def part(cls: str) -> str:
        v = wc[cls]
        # the same population as the table's "arrived" column: pods submitted by the end, not pods drawn
        arrived = v.get("arrived", v["started"] + v.get("pending_at_end", 0))
        if v.get("pending_at_end"):
            lead = (
                f"{v['pending_at_end']:,} of the {count(arrived, 'pod')} asking {_ask(cls)} that arrived "
                f"({100 * v['pending_share']:.1f}%) {plural(v['pending_at_end'], 'was', 'were')} still pending at the end"
                + (
                    f", each having waited at least {floor_num(v['pending_waited_min_s'])} s"
                    if (v.get("pending_waited_min_s") or 0) >= 1
                    else ""
                )
                + "; counting their waits so far the median wait was at least "
                f"{floor_num(v['wait_p50_at_least_s'])} s and the 99th percentile at least "
                f"{floor_num(v['wait_p99_at_least_s'])} s"
            )
            if v["started"]:
                lead += f" (the {v['started']:,} that started waited {v['wait_p50_s']:,.0f} s at the median)"
            return lead
        if arrived == 1 and v["started"] == 1:
            return f"the one pod asking {_ask(cls)} started after {v['wait_p50_s']:,.0f} s"
        if v["started"] == arrived:
            return (
                f"the {arrived:,} pods asking {_ask(cls)} that arrived all started, waiting {v['wait_p50_s']:,.0f} s "
                f"at the median and {v['wait_p99_s']:,.0f} s at the 99th percentile"
            )
        return (
            f"{v['started']:,} of the {count(arrived, 'pod')} asking {_ask(cls)} that arrived started (the others were "
            f"deleted while pending), waiting {v['wait_p50_s']:,.0f} s at the median and {v['wait_p99_s']:,.0f} s "
            "at the 99th percentile"
        )

    return f"Waits depend on what a pod asks for: {part(worst)}; {part(best)}."


def findings(summary: dict[str, Any], metrics: pd.DataFrame) -> list[str]:
    """Sentences computed from this run's numbers, the contention findings first."""
    g, pods, cost = summary["gpu_time"], summary["pods"], summary["cost"]
    con = summary.get("contention") or {}
    out = []
    ratio = g["allocation_ratio"] or 0.0
    gpus = summary["cluster"]["gpus"]
    if con.get("offered_load") is not None:
        rho = con["offered_load"]
        cap_h = g["capacity_gpu_hours"] or 0.0
        # the load is measured over the arrival window (first to last submit), which can be a small part of the
        # run: the same requests against the whole run's capacity say how busy the cluster could have been
        whole = (
            f"; against the whole run ({_dur(summary['horizon']['duration_s'])}, {cap_h:,.0f} GPU-hours) the same "
            f"requests are a load of {con['requested_gpu_hours'] / cap_h:.2f}"
            if cap_h > 0
            else ""
        )
        out.append(
            f"Offered load {rho:.2f} over the {_dur(con['arrival_window_s'])} in which pods arrived: they asked for "
            f"{con['requested_gpu_hours']:,.0f} GPU-hours, {rho:.2f} times what the cluster's {gpus:,} GPUs offer in "
            f"that window{whole}. Pods were allocated {100 * ratio:.1f}% of the run's {cap_h:,.0f} "
            f"GPU-hours; {g['idle_gpu_hours']:,.0f} GPU-hours sat idle."
        )
        sh = con.get("second_half") or {}
        if sh.get("allocation_ratio") is not None and sh.get("mean_pending_pods"):
            out.append(
                f"After the ramp-up (second half of the run) allocation averaged {100 * sh['allocation_ratio']:.1f}% "
                f"with {sh['mean_idle_gpus']:,.1f} GPUs idle while {sh['mean_pending_pods']:,.1f} pods were pending "
                f"on average: {_saturation(sh['mean_idle_gpus'], gpus)}."
            )
    else:
        out.append(
            f"Over {_dur(summary['horizon']['duration_s'])} the cluster's {gpus:,} GPUs offered "
            f"{g['capacity_gpu_hours']:,.0f} GPU-hours; pods were allocated {g['allocated_gpu_hours']:,.0f} of them "
            f"({100 * ratio:.1f}%), and {g['idle_gpu_hours']:,.0f} GPU-hours sat idle."
        )
    wc = con.get("waits_by_class") or {}
    asked = {k: v for k, v in wc.items() if v["started"] or v.get("pending_at_end")}
    if len(asked) > 1 and (pods["waited"] or any(v.get("pending_at_end") for v in asked.values())):
        out.append(_waits_sentence(asked))
    st = con.get("stranded") or {}
    if st.get("intervals_with_pending"):
        usd = f" (${st['usd']:,.0f} at the mean price of the idle GPU-hours)" if st.get("usd") is not None else ""
        out.append(
            f"Stranded GPUs: in {st['intervals_with_pending']} of {st['intervals']} sampling intervals some pod was "
            f"pending, and in those intervals {st['gpu_hours']:,.0f} GPU-hours sat idle{usd}: capacity existed, "
            "but not in the shape the waiting pods asked for (whole GPUs on one node, or CPU and memory beside them)."
        )
    fr = con.get("fragmented") or {}
    if fr.get("gpu_hours"):
        usd = f", ${fr['usd']:,.0f} of GPU time" if fr.get("usd") is not None else ""
        out.append(
            f"Fragmentation (FGD's measure: idle GPU capacity the run's typical pods cannot use) averaged "
            f"{fr['mean_gpus']:,.0f} GPUs, {100 * fr['mean_gpus'] / max(gpus, 1):.1f}% of the cluster "
            f"({fr['gpu_hours']:,.0f} GPU-hours{usd})."
        )
    pk = con.get("pending_peak") or {}
    if pk.get("pods"):
        out.append(
            f"The queue peaked at {count(pk['pods'], 'pending pod')}, {_dur(pk['at_s'])} into the run "
            "(figure: pending pods over time)."
        )
    if cost["idle_usd"] is not None and cost["allocated_usd"] is not None:
        tot = cost["idle_usd"] + cost["allocated_usd"]
        if tot > 0:
            out.append(
                f"At {cost['basis'].replace('_', '-')} prices the GPUs cost ${tot:,.0f} over the run, "
                f"of which ${cost['idle_usd']:,.0f} ({100 * cost['idle_usd'] / tot:.1f}%) paid for idle GPUs."
            )
    busy = g["busy_device_hours"] or 0.0
    alloc = g["allocated_gpu_hours"] or 0.0
    # only a difference that shows at the sentence's precision (x.xx and whole GPU-hours): "1.00x ... while 0
    # GPU-hours were not allocated" would contradict itself
    if alloc > 0 and busy - alloc >= 0.5 and busy / alloc >= 1.005:
        out.append(
            f"Counting a GPU as taken when any pod holds a share of it gives {busy:,.0f} GPU-hours, "
            f"{busy / alloc:.2f}x the milli-GPU sum: shared GPUs look fully used to a whole-GPU counter "
            f"while {busy - alloc:,.0f} GPU-hours on them were not allocated to anyone."
        )
    bm = g["by_model"]
    if alloc > 0 and len(bm) > 1:
        top = max(bm, key=lambda m: bm[m]["allocated_gpu_hours"] or 0.0)
        share_alloc = (bm[top]["allocated_gpu_hours"] or 0.0) / alloc
        share_gpus = bm[top]["gpus"] / max(gpus, 1)
        out.append(
            f"{top} GPUs are {100 * share_gpus:.1f}% of the cluster but took {100 * share_alloc:.1f}% of the "
            f"allocated GPU-hours."
        )
    w = pods["wait_s"]
    if pods["started"] and not pods["waited"]:
        out.append(
            "The one started pod did not wait: it found room when it arrived."
            if pods["started"] == 1
            else f"None of the {pods['started']:,} started pods waited: every pod found room when it arrived."
        )
    elif pods["started"]:
        out.append(
            f"Over all classes, {pods['waited']:,} of {pods['started']:,} started pods waited at all; the median wait "
            f"was {w['p50']:,.0f} s, the 99th percentile {w['p99']:,.0f} s and the longest {w['max']:,.0f} s."
        )
    oc = pods["outcomes"]
    if oc.get("withdrawn"):
        out.append(
            f"{count(oc['withdrawn'], 'pod')} {plural(oc['withdrawn'], 'was', 'were')} deleted by "
            f"{plural(oc['withdrawn'], 'its owner', 'their owners')} while still pending."
        )
    if summary["pending"]["at_end"]:
        top = max(summary["pending"]["reasons"].items(), key=lambda kv: kv[1])
        out.append(
            f"{count(summary['pending']['at_end'], 'pod')} {plural(summary['pending']['at_end'], 'was', 'were')} "
            f"still pending at the end; the commonest reason: {top[0]}"
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
            f"{count(pre['preemptions'], 'preemption')} evicted {count(pre['victims'], 'pod')}; their runs so far were lost, "
            f"{pre['lost_gpu_hours']:,.1f} GPU-hours of work that had to be done again."
        )
    if cost["unpriced_models"]:
        out.append("Unpriced GPU models (excluded from cost): " + ", ".join(cost["unpriced_models"]) + ".")
    return out


def execution_figure(summary: dict[str, Any]) -> go.Figure | None:
    from gpuinfra.report.execution_fig import execution_figure as fig

    return fig(summary)


MILLI_S_PER_GPU_HOUR = 1000.0 * 3600.0


def render_run_report(
    summary: dict[str, Any], metrics: pd.DataFrame, led: pd.DataFrame, scenario_yaml: str, description: str = ""
) -> str:
    """The run's report.html: findings (contention first), invariants in GPU-hours, figures, tables, configuration.

    Every value from the run (scenario, pool, owner and model names, the description, the
    scenario text) is escaped by the template; figures travel as escaped JSON (:func:`fig_html`).
    """
    con = summary.get("contention")
    figs = [
        fig_html(queue_figure(metrics), "fig-queue"),
        fig_html(stranded_figure(metrics), "fig-stranded", height=420),
        *([fig_html(waits_by_class_figure(con), "fig-wait-class")] if con and con["waits_by_class"] else []),
        *([fig_html(wf, "fig-wait")] if (wf := wait_figure(led)) is not None else []),
        fig_html(allocation_figure(metrics), "fig-allocation"),
        fig_html(cost_figure(summary), "fig-cost"),
        fig_html(model_figure(summary), "fig-models"),
        *([fig_html(ef, "fig-execution")] if (ef := execution_figure(summary)) is not None else []),
    ]
    inv = summary["invariants"]
    bal = inv["gpu_time_balance"]
    balance_h = {
        k: bal[k] / MILLI_S_PER_GPU_HOUR
        for k in ("allocated_milli_s", "idle_milli_s", "unavailable_milli_s", "capacity_x_time_milli_s")
    }
    tmpl = _env().get_template("run.html.j2")
    return tmpl.render(
        title=f"gpuinfra simulate: {summary['scenario']}",
        description=description,
        summary=summary,
        contention=con,
        findings=findings(summary, metrics),
        figures=[Markup(f) for f in figs],
        invariants=inv,
        balance_h=balance_h,
        scenario_yaml=scenario_yaml,
        plotly_js=Markup(plotly_js()),
    )
