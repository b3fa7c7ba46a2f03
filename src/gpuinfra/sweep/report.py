"""Compare a sweep's configurations: mean and Student-t confidence interval over seeds per metric.

For a configuration with n seeds and sample standard deviation s of a metric, the interval is
mean +- t_{(1+c)/2, n-1} * s / sqrt(n) (two-sided, level c, default 0.95; scipy.stats.t). It
assumes the seeds' results are independent draws of a roughly normal quantity; with n = 1 no
interval is given. The trade-off plot puts two metrics of every configuration on the axes with
these intervals as error bars (plotly HTML).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gpuinfra.errors import UserError, did_you_mean
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


def _t(conf: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf((1 + conf) / 2, df))


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
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT name, kind, spec, seeds FROM sweep").fetchone()
        if row is None:
            raise UserError("the sweep database is empty", where=str(db), fix="run the sweep first")
        name, kind, spec_json, seeds_json = row
        spec = json.loads(spec_json)
        runs = con.execute("SELECT * FROM runs").df()
        configs = con.execute("SELECT config_id, label, params FROM configs ORDER BY label").df()
    finally:
        con.close()
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
            **{k: _cell(p.get(k)) for k in params},
            "n": len(sub),
        }
        for m in metrics:
            v = sub[m].dropna().astype(float)
            n = len(v)
            mean = float(v.mean()) if n else math.nan
            if n >= 2:
                half = _t(conf, n - 1) * float(v.std(ddof=1)) / math.sqrt(n)
                r[f"{m}_mean"], r[f"{m}_lo"], r[f"{m}_hi"] = mean, mean - half, mean + half
            else:
                r[f"{m}_mean"], r[f"{m}_lo"], r[f"{m}_hi"] = mean, math.nan, math.nan
        rows.append(r)
    table = pd.DataFrame(rows)
    seeds = json.loads(seeds_json)
    return SweepReport(name, kind, conf, table, metrics, units, xs, ys, len(configs) * len(seeds), len(runs))


def _cell(v):
    return v if isinstance(v, (int, float, str)) or v is None else json.dumps(v, sort_keys=True)


def figure(rep: SweepReport):
    """The trade-off plot: one marker per configuration at (mean x, mean y) with t-interval error
    bars; one trace per value of the first varied parameter (legend), axis titles with units."""
    import plotly.graph_objects as go

    fig = go.Figure()
    params = [
        c for c in rep.table.columns if c not in ("config_id", "label", "n") and not c.endswith(("_mean", "_lo", "_hi"))
    ]
    group = "policy" if "policy" in params else (params[0] if params else None)
    groups = [(None, rep.table)] if group is None else list(rep.table.groupby(group, sort=True))
    for key, sub in groups:
        ex = (sub[f"{rep.x}_hi"] - sub[f"{rep.x}_mean"]).fillna(0)
        ey = (sub[f"{rep.y}_hi"] - sub[f"{rep.y}_mean"]).fillna(0)
        fig.add_trace(
            go.Scatter(
                x=sub[f"{rep.x}_mean"],
                y=sub[f"{rep.y}_mean"],
                mode="markers",
                name=f"{group}={key}" if group else "configurations",
                error_x={"type": "data", "array": ex, "visible": True},
                error_y={"type": "data", "array": ey, "visible": True},
                text=sub["label"],
                hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>",
            )
        )
    pct = f"{100 * rep.confidence:g} %"
    fig.update_layout(
        title=f"{rep.name}: {rep.y} vs {rep.x} (mean over seeds, {pct} t-interval)",
        xaxis_title=f"{rep.x} ({rep.units[rep.x]})",
        yaxis_title=f"{rep.y} ({rep.units[rep.y]})",
        showlegend=True,
        template="plotly_white",
    )
    return fig


def write_html(rep: SweepReport, path: Path) -> Path:
    """Write the report page (figure + table), every user string escaped; atomically."""
    import os

    fig = figure(rep)
    cols = ["label", "n"] + [f"{m}_{s}" for m in rep.metrics for s in ("mean", "lo", "hi")]
    table_html = rep.table[cols].to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}", na_rep="")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(rep.name)} sweep</title></head><body>"
        f"<h1>Sweep {html.escape(rep.name)} ({html.escape(rep.kind)})</h1>"
        f"<p>{rep.runs_done} of {rep.runs_expected} runs recorded. Intervals: two-sided Student t at "
        f"{100 * rep.confidence:g} % over seeds (mean &plusmn; t&middot;s/&radic;n); none with one seed.</p>"
        + fig.to_html(full_html=False, include_plotlyjs=True)
        + table_html
        + "</body></html>"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
