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
    pool_names: tuple[str, ...] = ()
    """``cluster.pools[i].name`` of the sweep's scenario (read from a recorded run's scenario.yaml), so
    parameters are titled by the pool's name; empty when not known (a fill sweep, no run yet)."""
    seeds_identical: bool = False
    """True when every configuration has >= 2 seeds and every seed gave the same value of every
    metric: the intervals are then [x, x] and say nothing, so displays omit them and say so once."""

    def param_title(self, path: str) -> str:
        """:func:`param_title` with this sweep's pool names."""
        return param_title(path, self.pool_names)


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


def param_title(path: str, pool_names: tuple[str, ...] | list[str] = ()) -> str:
    """A sweep parameter's name for people: ``cluster.pools[1].count`` -> ``h100 pool nodes`` when
    ``pool_names[1]`` is ``h100`` (else ``pools[1] nodes``); an unknown path -> its last segment
    with spaces (``faults[0].rate_per_day`` -> ``faults[0] rate per day``)."""
    if path in PARAM_TITLES:
        return PARAM_TITLES[path]
    m = re.fullmatch(r"cluster\.pools\[(\d+)\]\.(\w+)", path)
    if m:
        what = {"count": "nodes", "gpus_per_node": "GPUs per node", "gpu_model": "GPU model"}.get(m[2], m[2])
        i = int(m[1])
        pool = f"{pool_names[i]} pool" if i < len(pool_names) and pool_names[i] else f"pools[{i}]"
        return f"{pool} {what.replace('_', ' ')}"
    head, _, last = path.rpartition(".")
    owner = head.rsplit(".", 1)[-1] if "[" in head.rsplit(".", 1)[-1] else ""
    return (f"{owner} " if owner else "") + last.replace("_", " ")


def metric_title(m: str, unit: str) -> str:
    """An axis title: ``wait_p99_s``, ``s`` -> ``99th-percentile wait (s)`` (the axis is in the unit)."""
    return f"{METRIC_TITLES.get(m, m.replace('_', ' '))} ({unit})"


def column_title(m: str, unit: str) -> str:
    """A table column title. Durations are shown in s, min or h, each cell with its own unit
    (:func:`fmt_value`), so their header names no unit (``99th-percentile wait``); other metrics
    as :func:`metric_title`."""
    return METRIC_TITLES.get(m, m.replace("_", " ")) if unit == "s" else metric_title(m, unit)


def config_title(params: dict[str, object], pool_names: tuple[str, ...] | list[str] = ()) -> str:
    """A configuration's readable name: ``h100 pool nodes 1, arrival rate (pods/h) 20``."""
    return ", ".join(f"{param_title(k, pool_names)} {v}" for k, v in params.items()) or "the base scenario"


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
        runs = con.execute("SELECT * FROM runs ORDER BY run_id").df()
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
    pools = _pool_names(out_dir, runs)
    rows = []
    for _, c in configs.iterrows():
        sub = runs[runs["config_id"] == c["config_id"]]
        p = json.loads(c["params"])
        r: dict = {
            "config_id": c["config_id"],
            "label": c["label"],
            "title": config_title({k: _cell(p.get(k)) for k in params}, pools),
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
    identical = _seeds_identical(runs, metrics)
    return SweepReport(
        name,
        kind,
        conf,
        table,
        metrics,
        units,
        xs,
        ys,
        len(configs) * len(seeds),
        len(runs),
        tuple(params),
        pools,
        identical,
    )


def _seeds_identical(runs: pd.DataFrame, metrics: list[str]) -> bool:
    """True when every configuration ran >= 2 seeds and each metric took one value over them."""
    if runs.empty:
        return False
    for _, sub in runs.groupby("config_id"):
        if len(sub) < 2:
            return False
        for m in metrics:
            v = sub[m].astype(float)
            if v.isna().any() != v.isna().all() or v.dropna().nunique() > 1:
                return False
    return True


def _pool_names(out_dir: Path, runs: pd.DataFrame) -> tuple[str, ...]:
    """Pool names (``cluster.pools[i].name``) from the first recorded run's scenario.yaml; () if none."""
    import yaml

    for rel in runs.get("run_dir", pd.Series(dtype=str)).head(1):
        try:
            doc = yaml.safe_load((out_dir / str(rel) / "scenario.yaml").read_text(encoding="utf-8"))
            pools = doc["cluster"]["pools"]
            return tuple(str(p.get("name") or "") for p in pools)
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
            return ()
    return ()


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


def cell(rep: SweepReport, r: pd.Series, m: str) -> str:
    """Table cell of metric ``m`` in row ``r``: mean [interval], or just the mean when seeds change nothing."""
    if rep.seeds_identical:
        return fmt_interval(r[f"{m}_mean"], math.nan, math.nan, rep.units[m])
    return fmt_interval(r[f"{m}_mean"], r[f"{m}_lo"], r[f"{m}_hi"], rep.units[m])


def seeds_note(rep: SweepReport) -> str:
    """The one line said instead of [x, x] intervals when every seed gave identical metrics."""
    lo, hi = (int(rep.table["n"].min()), int(rep.table["n"].max())) if len(rep.table) else (0, 0)
    n = str(lo) if lo == hi else f"{lo}-{hi}"
    return (
        f"Seeds change nothing here: every configuration's {n} seeds gave identical values of every metric "
        "(nothing in these scenarios draws from the seed, e.g. a fixed trace replayed without faults or sampled "
        "durations), so each cell is that one value and no interval is shown; more seeds will not change it."
    )


def write_html(rep: SweepReport, path: Path) -> Path:
    """Write the report page (figure + table), every user string escaped; atomically."""
    import os

    fig = figure(rep)
    shown = pd.DataFrame(
        {
            "configuration": rep.table["title"],
            "seeds": rep.table["n"],
            **{column_title(m, rep.units[m]): [cell(rep, r, m) for _, r in rep.table.iterrows()] for m in rep.metrics},
        }
    )
    table_html = shown.to_html(index=False, escape=True, na_rep="")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(rep.name)} sweep</title></head><body>"
        f"<h1>Sweep {html.escape(rep.name)} ({html.escape(rep.kind)})</h1>"
        f"<p>{rep.runs_done} of {rep.runs_expected} runs recorded. "
        + (
            html.escape(seeds_note(rep))
            if rep.seeds_identical
            else f"Each cell: mean over seeds [percentile bootstrap interval at {100 * rep.confidence:g} %, "
            f"{BOOTSTRAP_RESAMPLES:,} resamples of the seeds]; none with one seed. The interval stays within the "
            "seeds' values, so with few seeds it is narrower than its level promises."
        )
        + " Durations are shown in s, min or h, each cell with its unit.</p>"
        + fig.to_html(full_html=False, include_plotlyjs=True)
        + table_html
        + "</body></html>"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
