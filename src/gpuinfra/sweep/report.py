"""Compare a sweep's configurations: mean and percentile-bootstrap confidence interval over seeds.

For a configuration with n >= 2 seeds, the interval of a metric's mean is the percentile
bootstrap: B = 2,000 resamples of the n seed values with replacement, the mean of each, and the
(1 - c)/2 and (1 + c)/2 quantiles of those means (two-sided, level c, default 0.95; Efron &
Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13). Unlike a Student-t interval it
never leaves the range of the observed values, so a quantity that cannot be negative (a wait, an
idle GPU-hour) never gets a negative bound; with few seeds (n = 5) it is narrower than the true
coverage asks (it cannot reach beyond the seeds seen), which the report says. The resamples come
from the seeded stream ``bootstrap:METRIC`` of :class:`gpuinfra.rng.Rngs`, seeded by the
configuration id, so the same database gives the same bytes. With n = 1 no interval is given. The
trade-off plot puts two metrics of every configuration on the axes with these intervals as error
bars (plotly HTML), one marker (colour and symbol) per configuration.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.rng import Rngs
from gpuinfra.sweep.store import DB_NAME, HEADLINE


@dataclass(frozen=True)
class SweepReport:
    """``table``: one row per configuration: config_id, label, the varied parameters, n (seeds),
    and for every headline metric M: M_mean, M_lo, M_hi (interval bounds, NaN when n < 2)."""

    name: str
    kind: str
    confidence: float
    table: pd.DataFrame
    metrics: list[str]
    units: dict[str, str]
    x: str
    y: str
    runs_expected: int
    runs_done: int
    params: tuple[str, ...] = ()
    """The varied parameters (columns of ``table``), in the sweep file's order."""


BOOTSTRAP_RESAMPLES = 2000
"""Resamples per interval (Efron & Tibshirani 1993 suggest >= 1,000 for percentile intervals)."""

METRIC_TITLES = {
    "allocation_ratio": "allocated",
    "idle_gpu_hours": "idle GPU-hours",
    "wait_mean_s": "mean wait",
    "wait_p50_s": "median wait",
    "wait_p90_s": "90th-percentile wait",
    "wait_p99_s": "99th-percentile wait",
    "completed": "pods completed",
    "pending_at_end": "pods pending at the end",
    "queue_mean_length": "mean queue length",
    "allocated_usd": "cost of allocated GPUs",
    "idle_usd": "cost of idle GPUs",
    "gpus": "cluster GPUs",
    "unalloc_pct": "GPUs left unallocated",
    "frag_amount_pct": "fragmented GPU capacity",
    "alloc_pct": "GPUs allocated",
    "arrived_pct": "demand arrived",
    "failed_pods": "pods that failed to place",
    "failed_gpus": "GPUs asked by failed pods",
    "placed": "pods placed",
}
"""A metric's name for people (column and axis titles); the unit comes from ``store.HEADLINE``."""

PARAM_TITLES = {
    "workload.generator.arrival_rate_per_hour": "arrival rate (pods/h)",
    "workload.generator.jobs": "jobs",
    "policy": "policy",
    "load": "offered load (x capacity)",
    "nodes": "nodes",
    "workload": "workload",
    "cluster.replicate": "cluster copies",
    "sample_interval_s": "sampling interval (s)",
    "scheduler.scores": "score plugins",
    "scheduler.queue_mode": "queue mode",
}


def param_title(path: str) -> str:
    """A sweep parameter's name for people: ``cluster.pools[1].count`` -> ``pools[1] nodes``; an
    unknown path -> its last segment with spaces (``faults[0].rate_per_day`` -> ``faults[0] rate per day``)."""
    if path in PARAM_TITLES:
        return PARAM_TITLES[path]
    m = re.fullmatch(r"cluster\.pools\[(\d+)\]\.(\w+)", path)
    if m:
        what = {"count": "nodes", "gpus_per_node": "GPUs per node", "gpu_model": "GPU model"}.get(m[2], m[2])
        return f"pools[{m[1]}] {what.replace('_', ' ')}"
    head, _, last = path.rpartition(".")
    owner = head.rsplit(".", 1)[-1] if "[" in head.rsplit(".", 1)[-1] else ""
    return (f"{owner} " if owner else "") + last.replace("_", " ")


def metric_title(m: str, unit: str) -> str:
    """``wait_p99_s``, ``s`` -> ``99th-percentile wait (s)``."""
    return f"{METRIC_TITLES.get(m, m.replace('_', ' '))} ({unit})"


def config_title(params: dict[str, object]) -> str:
    """A configuration's readable name: ``pools[1] nodes 1, arrival rate (pods/h) 20``."""
    return ", ".join(f"{param_title(k)} {v}" for k, v in params.items()) or "the base scenario"


def bootstrap_interval(values: np.ndarray, conf: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (n >= 2) at level ``conf``."""
    n = len(values)
    idx = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - conf) / 2, (1 + conf) / 2])
    return float(lo), float(hi)


def report(
    out_dir: str | Path, *, x: str | None = None, y: str | None = None, confidence: float | None = None
) -> SweepReport:
    """Read ``out_dir/sweep.duckdb`` and compare its configurations; UserError if it holds no sweep
    or an axis names no metric."""
    import duckdb

    out_dir = Path(out_dir)
    db = out_dir / DB_NAME
    if not db.is_file():
        raise UserError(f"no sweep database in '{out_dir}'", where=str(out_dir), expected=f"a directory with {DB_NAME}")
    not_a_sweep = UserError(
        "not a sweep database (unreadable, or without the sweep's tables)",
        where=str(db),
        expected=f"the {DB_NAME} that `gpuinfra sweep` wrote",
        fix="point at a sweep's output directory, or run the sweep again into a new one",
    )
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        raise not_a_sweep from None
    try:
        row = con.execute("SELECT name, kind, spec, seeds FROM sweep").fetchone()
        if row is None:
            raise UserError("the sweep database is empty", where=str(db), fix="run the sweep first")
        name, kind, spec_json, seeds_json = row
        spec = json.loads(spec_json)
        runs = con.execute("SELECT * FROM runs").df()
        configs = con.execute("SELECT config_id, label, params FROM configs ORDER BY label").df()
    except (duckdb.Error, json.JSONDecodeError, TypeError, ValueError):
        raise not_a_sweep from None
    finally:
        con.close()
    if kind not in HEADLINE:
        raise not_a_sweep
    heads = HEADLINE[kind]
    metrics = list(heads)
    units = {m: u for m, (_, u) in heads.items()}
    rep = spec.get("report") or {}
    conf = confidence if confidence is not None else float(rep.get("confidence", 0.95))
    if not 0 < conf < 1:
        raise UserError(f"confidence {conf} is out of range", where="--confidence", expected="a level in (0, 1)")
    xs = x or rep.get("x") or metrics[0]
    ys = y or rep.get("y") or metrics[1]
    for axis, m in (("x", xs), ("y", ys)):
        if m not in metrics:
            raise UserError(
                f"unknown metric '{m}' for the {axis} axis",
                where=f"--{axis}",
                expected="one of " + ", ".join(metrics),
                fix=did_you_mean(m, metrics),
            )
    params = list(spec["params"])
    rows = []
    for _, c in configs.iterrows():
        sub = runs[runs["config_id"] == c["config_id"]]
        p = json.loads(c["params"])
        r: dict = {
            "config_id": c["config_id"],
            "label": c["label"],
            "title": config_title({k: _cell(p.get(k)) for k in params}),
            **{k: _cell(p.get(k)) for k in params},
            "n": len(sub),
        }
        rngs = Rngs(int(str(c["config_id"])[:12], 16))
        for m in metrics:
            v = sub.sort_values("seed")[m].dropna().astype(float).to_numpy()
            n = len(v)
            mean = float(v.mean()) if n else math.nan
            if n >= 2:
                lo, hi = bootstrap_interval(v, conf, rngs.stream(f"bootstrap:{m}"))
                r[f"{m}_mean"], r[f"{m}_lo"], r[f"{m}_hi"] = mean, lo, hi
            else:
                r[f"{m}_mean"], r[f"{m}_lo"], r[f"{m}_hi"] = mean, math.nan, math.nan
        rows.append(r)
    table = pd.DataFrame(rows)
    seeds = json.loads(seeds_json)
    return SweepReport(
        name, kind, conf, table, metrics, units, xs, ys, len(configs) * len(seeds), len(runs), tuple(params)
    )


def _cell(v):
    return v if isinstance(v, (int, float, str)) or v is None else json.dumps(v, sort_keys=True)


SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "triangle-down")


def _err(r: pd.Series, m: str, mean: float) -> dict:
    """Asymmetric error bar of metric ``m`` of table row ``r`` around ``mean``; hidden without an interval."""
    lo, hi = r[f"{m}_lo"], r[f"{m}_hi"]
    if math.isnan(lo):
        return {"visible": False}
    return {"type": "data", "symmetric": False, "array": [hi - mean], "arrayminus": [mean - lo], "visible": True}


def figure(rep: SweepReport):
    """The trade-off plot: one marker per configuration at (mean x, mean y) with bootstrap-interval
    error bars (asymmetric: lo and hi); each configuration its own trace in the legend, named by
    its readable title, with its own colour and symbol (colours cycle, symbols change per cycle,
    so configurations that differ in any parameter are told apart); axis titles with units."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    palette = qualitative.Plotly
    fig = go.Figure()
    for i, (_, r) in enumerate(rep.table.iterrows()):
        xm, ym = r[f"{rep.x}_mean"], r[f"{rep.y}_mean"]

        fig.add_trace(
            go.Scatter(
                x=[xm],
                y=[ym],
                mode="markers",
                name=html.escape(r["title"]),
                marker={
                    "color": palette[i % len(palette)],
                    "symbol": SYMBOLS[(i // len(palette)) % len(SYMBOLS)],
                    "size": 10,
                },
                error_x=_err(r, rep.x, xm),
                error_y=_err(r, rep.y, ym),
                hovertemplate=f"{html.escape(r['title'])}<br>x=%{{x:.4g}}<br>y=%{{y:.4g}}<extra></extra>",
            )
        )
    pct = f"{100 * rep.confidence:g} %"
    xt, yt = metric_title(rep.x, rep.units[rep.x]), metric_title(rep.y, rep.units[rep.y])
    fig.update_layout(
        title=f"{rep.name}: {METRIC_TITLES.get(rep.y, rep.y)} against {METRIC_TITLES.get(rep.x, rep.x)} "
        f"(mean over seeds, {pct} bootstrap interval)",
        xaxis_title=xt,
        yaxis_title=yt,
        legend_title_text="configuration",
        showlegend=True,
        template="plotly_white",
    )
    return fig


def fmt_value(v: float, unit: str, ref: float | None = None) -> str:
    """A metric value for people: seconds in s, min or h (scale chosen by ``ref``, default ``v``,
    so a mean and its interval share one unit), other units with 3 significant digits of ``ref``
    (so a mean and its interval bounds have the same decimals: 0.540 [0.495, 0.581])."""
    if v is None or math.isnan(v):
        return ""
    if unit == "s":
        a = abs(v if ref is None else ref)
        if a >= 2 * 3600:
            return f"{v / 3600:,.1f} h"
        if a >= 120:
            return f"{v / 60:,.1f} min"
        return f"{v:,.0f} s"
    a = abs(v if ref is None else ref)
    if a >= 1000:
        return f"{v:,.0f}"
    decimals = 2 - math.floor(math.log10(a)) if a > 0 else 2
    return f"{v:.{max(0, min(decimals, 12))}f}"


def fmt_interval(mean: float, lo: float, hi: float, unit: str) -> str:
    """``mean [lo, hi]`` in one human unit; just the mean without an interval."""
    if math.isnan(mean):
        return ""
    s = fmt_value(mean, unit)
    if not math.isnan(lo):
        s += f" [{fmt_value(lo, unit, mean)}, {fmt_value(hi, unit, mean)}]"
    return s


def write_html(rep: SweepReport, path: Path) -> Path:
    """Write the report page (figure + table), every user string escaped; atomically."""
    import os

    fig = figure(rep)
    shown = pd.DataFrame(
        {
            "configuration": rep.table["title"],
            "seeds": rep.table["n"],
            **{
                metric_title(m, rep.units[m]): [
                    fmt_interval(r[f"{m}_mean"], r[f"{m}_lo"], r[f"{m}_hi"], rep.units[m])
                    for _, r in rep.table.iterrows()
                ]
                for m in rep.metrics
            },
        }
    )
    table_html = shown.to_html(index=False, escape=True, na_rep="")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(rep.name)} sweep</title></head><body>"
        f"<h1>Sweep {html.escape(rep.name)} ({html.escape(rep.kind)})</h1>"
        f"<p>{rep.runs_done} of {rep.runs_expected} runs recorded. Each cell: mean over seeds [percentile "
        f"bootstrap interval at {100 * rep.confidence:g} %, {BOOTSTRAP_RESAMPLES:,} resamples of the seeds]; "
        "none with one seed. The interval stays within the seeds' values, so with few seeds it is "
        "narrower than its level promises.</p>"
        + fig.to_html(full_html=False, include_plotlyjs=True)
        + table_html
        + "</body></html>"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
