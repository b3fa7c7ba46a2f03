"""Lab 15: observability for GPU systems: "Observability for GPU-Based Systems" (seed section 15).

Activities (seed 15.6), each a step below:
1. Explain why GPU observability needs different signals than CPU systems: the same telemetry
   seen through CPU-style signals (busy/idle) and through GPU signals.
2. Analyze misleading metrics and false alerts: what the naive rules page on.
3. Correlate infra, workload and cost metrics to diagnose issues: system panels (fleet
   utilization, allocation, faults) beside job panels (progress) and cost, aligned in time.
4. Design alerting rules that avoid GPU noise: the designed set against the naive one, scored
   against the simulation's ground truth, and verified by the real ``promtool`` when present.
5. Present: the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.io.results import write_json
from gpuinfra.labs import write_lab_file
from gpuinfra.obs.evaluate import evaluate
from gpuinfra.obs.export import check_with_promtool, promtool, write_openmetrics
from gpuinfra.obs.rules import RULE_SETS, rule_file
from gpuinfra.obs.simulate import simulate_telemetry
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.sim.invariants import InvariantError
from gpuinfra.sim.telemetry import Telemetry

TITLE = "Observability for GPU-Based Systems"


def _matrix(tel: Telemetry, metric: str) -> tuple[np.ndarray, list]:
    ss = tel.series.get(metric, {})
    labels = list(ss)
    return (np.vstack([ss[k] for k in labels]) if labels else np.zeros((0, len(tel.times)))), labels


def explain(tel: Telemetry) -> dict[str, Any]:
    util, labs = _matrix(tel, "DCGM_FI_DEV_GPU_UTIL")
    sm, _ = _matrix(tel, "DCGM_FI_PROF_SM_ACTIVE")
    ten, _ = _matrix(tel, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")
    ok = ~np.isnan(util)
    busy = (util >= 50) & ok
    # a CPU-style view: a device is 'busy' when its utilization is high
    busy_samples = int(busy.sum())
    hollow = busy & (np.nan_to_num(sm) < 0.1)
    slow = busy & (np.nan_to_num(ten) < 0.3)
    return {
        "gpu_samples": int(ok.sum()),
        "busy_samples": busy_samples,
        "busy_but_sm_idle_share": float(hollow.sum() / busy_samples) if busy_samples else 0.0,
        "busy_but_tensor_low_share": float(slow.sum() / busy_samples) if busy_samples else 0.0,
        "mean_util": float(np.nanmean(util)),
        "mean_tensor": float(np.nanmean(ten)),
    }


def correlate(tel: Telemetry, price: float) -> dict[str, Any]:
    util, _ = _matrix(tel, "DCGM_FI_DEV_GPU_UTIL")
    ten, _ = _matrix(tel, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")
    req, _ = _matrix(tel, "kube_pod_container_resource_requests")
    steps, slabs = _matrix(tel, "gpuinfra_job_steps_total")
    n_gpus = len(tel.nodes) * tel.gpus_per_node
    allocated = np.nansum(req, axis=0)
    reporting = np.sum(~np.isnan(util), axis=0)

    def per_s(s: np.ndarray) -> np.ndarray:
        d = np.concatenate([[np.nan], np.diff(s)]) / tel.interval_s
        return np.clip(np.nan_to_num(d), 0.0, None)  # no rate across the series' start or end

    rate = np.vstack([per_s(s) for s in steps]) if len(steps) else np.zeros((0, len(tel.times)))
    hours = tel.interval_s / 3600
    alloc_gpu_h = float(allocated.sum() * hours)
    useful_gpu_h = float(np.nansum(ten) * hours)
    return {
        "t_min": (tel.times / 60).tolist(),
        "allocated_gpus": allocated.tolist(),
        "reporting_gpus": reporting.tolist(),
        "n_gpus": n_gpus,
        "mean_util": np.nanmean(util, axis=0).tolist(),
        "mean_tensor": np.nanmean(ten, axis=0).tolist(),
        "job_rates": {dict(lab)["pod"]: r.tolist() for lab, r in zip(slabs, rate)},
        "allocated_gpu_hours": alloc_gpu_h,
        "useful_gpu_hours": useful_gpu_h,
        "usd_allocated": alloc_gpu_h * price,
        "usd_useful": useful_gpu_h * price,
    }


def require_ok(tel: Telemetry) -> dict:
    """The telemetry run's invariant checks (the replay raises if one fails; a missing check is a bug)."""
    if not tel.invariants or not tel.invariants.get("ok"):
        raise InvariantError(f"lab 15: the telemetry run carries no passing invariant check ({tel.invariants})")
    return tel.invariants


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    tel = simulate_telemetry(nodes=2 if quick else 4, hours=3.0 if quick else 6.0, seed=7)
    price = gpu_hour_price("H100-SXM").on_demand_usd or 0.0
    evals = {name: evaluate(fn(), tel) for name, fn in RULE_SETS.items()}
    from gpuinfra.io.atomic import atomic_path

    with atomic_path(out_dir / "metrics.om") as tmp:  # the exposition appears whole or not at all
        n_samples = write_openmetrics(tel, tmp)
    for name, fn in RULE_SETS.items():
        write_lab_file(out_dir / f"rules-{name}.yml", rule_file(fn()))
    pt: dict[str, Any] = {"ran": False, "why": "promtool not installed (Debian package 'prometheus')"}
    if promtool():
        small = simulate_telemetry(nodes=1, gpus_per_node=4, hours=2.0, seed=7)
        pt = {
            "ran": True,
            **{
                name: {
                    k: v
                    for k, v in check_with_promtool(fn(), small, out_dir / "promtool" / name).items()
                    if k != "test_output"
                }
                for name, fn in RULE_SETS.items()
            },
        }
    s = {
        "schema": "gpuinfra.lab15/1",
        "quick": quick,
        "cluster": {
            "nodes": len(tel.nodes),
            "gpus": len(tel.nodes) * tel.gpus_per_node,
            "hours": float(tel.times[-1] + tel.interval_s) / 3600,
            "samples": n_samples,
        },
        "truth": [i.__dict__ for i in tel.truth],
        "noise": tel.noise,
        "explain": explain(tel),
        "evaluations": {k: v.as_dict() for k, v in evals.items()},
        "correlate": correlate(tel, price),
        "promtool": pt,
        "usd_per_gpu_hour": price,
        "invariants": require_ok(tel),
    }
    write_json(
        out_dir / "summary.json",
        {k: v for k, v in s.items() if k != "correlate"}
        | {"correlate": {k: v for k, v in s["correlate"].items() if not isinstance(v, list | dict)}},
    )
    return write_lab_file(out_dir / "report.html", render(s, tel))


def _ttd(sc: dict) -> str:
    """Minutes to detect, or why there is none: the rule never fired, or fired at no incident it targets."""
    if not sc["episodes"]:
        return "never fired"
    if sc["mean_ttd_s"] is None:
        return "caught none"
    return f"{sc['mean_ttd_s'] / 60:.1f}"


MAX_JOB_TRACES = 8


def correlate_figures(s: dict[str, Any]) -> dict[str, go.Figure]:
    """The correlation view as four aligned panels (same time axis, minutes), each with a legend
    and axis titles with units: fleet GPUs, fleet activity, job progress, cost; incidents shaded."""
    c = s["correlate"]
    x = c["t_min"]
    xt = "time since the start of the run (minutes)"
    price = s["usd_per_gpu_hour"]
    hit = {i["pod"] for i in s["truth"]}
    rates = c["job_rates"]
    # the jobs an incident hit first, then the others, up to MAX_JOB_TRACES for a readable legend
    jobs = sorted(rates, key=lambda p: (p not in hit, p))[:MAX_JOB_TRACES]
    spec = {
        "fleet": (
            "Fleet: GPUs allocated to pods and GPUs reporting to the exporter",
            "GPUs (count)",
            [("allocated GPUs", c["allocated_gpus"]), ("GPUs reporting", c["reporting_gpus"])],
        ),
        "activity": (
            "Fleet: mean GPU_UTIL against mean tensor-pipe activity",
            "mean over reporting GPUs (%)",
            [
                ("DCGM_FI_DEV_GPU_UTIL", c["mean_util"]),
                ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE x 100", [100 * v for v in c["mean_tensor"]]),
            ],
        ),
        "jobs": (
            f"Jobs: progress of {len(jobs)} of {len(rates)} jobs (those an incident hit first)",
            "steps per second (steps/s)",
            [(f"{p}{' (incident)' if p in hit else ''}", rates[p]) for p in jobs],
        ),
        "cost": (
            "Cost: paid for allocated GPUs against the tensor work done",
            "US dollars per hour (USD/h)",
            [
                ("USD/h for allocated GPUs", [a * price for a in c["allocated_gpus"]]),
                ("USD/h of tensor work", [t * c["n_gpus"] * price for t in c["mean_tensor"]]),
            ],
        ),
    }
    out = {}
    for key, (title, yt, traces) in spec.items():
        fig = go.Figure()
        for name, y in traces:
            fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines"))
        for inc in s["truth"]:
            fig.add_vrect(
                x0=inc["start_s"] / 60,
                x1=inc["end_s"] / 60,
                fillcolor="red",
                opacity=0.08,
                line_width=0,
                annotation_text=inc["kind"],
                annotation_position="top left",
            )
        fig.update_layout(title=title, xaxis_title=xt, yaxis_title=yt, showlegend=True, legend_title_text="series")
        out[key] = fig
    return out


def render(s: dict[str, Any], tel: Telemetry) -> str:
    f: list[str] = []
    secs: list[Section] = []
    ex = s["explain"]
    claim1 = (
        f"In {ex['gpu_samples']:,} GPU samples, a CPU-style view (busy when utilization >= 50%) calls {ex['busy_samples']:,} busy; "
        f"in {ex['busy_but_sm_idle_share']:.0%} of those almost no SM is active (SM_ACTIVE < 0.1) and in {ex['busy_but_tensor_low_share']:.0%} the tensor cores do less than 30% of peak. "
        f"Mean GPU_UTIL is {ex['mean_util']:.0f}% against {ex['mean_tensor']:.0%} mean tensor activity: utilization measures time, not work."
    )
    secs.append(
        Section(
            "1. Explain: why GPU signals differ",
            "",
            claim1,
            "Telemetry under dcgm-exporter's names (gpuinfra.obs.simulate, a replay on the one simulator), counters from gpuinfra.models.counters.",
        )
    )
    f.append(claim1)
    ev = s["evaluations"]
    nv, ds = ev["naive"], ev["designed"]
    rows = []
    for name in ("naive", "designed"):
        for sc in ev[name]["scores"]:
            rows.append(
                [
                    name,
                    sc["rule"],
                    sc["episodes"],
                    sc["true_episodes"],
                    "-" if sc["precision"] is None else f"{sc['precision']:.0%}",
                    f"{sc['caught']}/{sc['targeted']}",
                    _ttd(sc),
                    f"{sc['pages_per_day']:.0f}",
                ]
            )
    noise_eps = [e for e in nv["episodes"] if e["incident"] is None]
    by_rule: dict[str, int] = {}
    for e in noise_eps:
        by_rule[e["rule"]] = by_rule.get(e["rule"], 0) + 1
    worst = max(by_rule, key=by_rule.get) if by_rule else "-"
    claim2 = (
        f"The naive rules page {nv['pages_per_day']:.0f} times a day with {nv['precision']:.0%} precision: {len(noise_eps)} of their {len(nv['episodes'])} pages point at no incident, "
        f"most from {worst} ({by_rule.get(worst, 0)}): transient states (job start-up, free GPUs, 90-s temperature spikes, an application's own Xid) paged as if they were incidents."
    )
    secs.append(
        Section(
            "2. Analyze: misleading metrics and false alerts",
            table_html(
                ["set", "rule", "pages", "true", "precision", "caught/targeted", "minutes to detect", "pages/day"],
                rows,
                {2, 3, 7},
            ),
            claim2,
        )
    )
    f.append(claim2)
    c = s["correlate"]
    figs = correlate_figures(s)
    html3 = "".join(fig_html(fig, f"corr-{k}") for k, fig in figs.items())
    claim3 = (
        f"Aligned in time, the layers explain each other: each shaded incident shows as a job's step rate falling to zero (or slowing) while the fleet panels barely move. "
        f"Over the run the cluster paid for {c['allocated_gpu_hours']:,.0f} allocated GPU-hours (${c['usd_allocated']:,.0f}) of which tensor work filled {c['useful_gpu_hours']:,.0f} (${c['usd_useful']:,.0f})."
    )
    secs.append(
        Section(
            "3. Correlate: system, job and cost views",
            html3,
            claim3,
            "The fleet view alone hides job failures; the job view alone hides their cause; cost shows what the gap is worth.",
        )
    )
    f.append(claim3)
    pt = s["promtool"]
    agree = (
        "; ".join(
            f"{k}: promtool test rules {'agrees' if v['test_ok'] else 'DISAGREES'} ({v['evaluations']} evaluations, {v['expected_alerts']} alerts)"
            for k, v in pt.items()
            if k != "ran"
        )
        if pt.get("ran")
        else pt.get("why", "")
    )
    claim4 = (
        f"The designed rules page {ds['pages_per_day']:.0f} times a day at {ds['precision']:.0%} precision and catch {ds['recall']:.0%} of the {len(s['truth'])} incidents "
        f"(naive: {nv['recall']:.0%} recall at {nv['pages_per_day']:.0f} pages a day): job-level aggregation, `for:` against transient spikes, Xid classes instead of any Xid, "
        f"vanished series, progress and SM activity. Checked against Prometheus itself: {agree}."
    )
    rules_html = "<pre>" + rule_file(RULE_SETS["designed"]()).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"
    secs.append(
        Section(
            "4. Design: alert rules that avoid GPU noise",
            rules_html,
            claim4,
            "Files beside this report: rules-designed.yml, rules-naive.yml, metrics.om (load with `promtool tsdb create-blocks-from openmetrics`), promtool/*/rules_test.yml.",
        )
    )
    f.append(claim4)
    sub = f"Seed section 15, every activity run now: {s['cluster']['gpus']} simulated GPUs for {s['cluster']['hours']:.1f} h ({s['cluster']['samples']:,} samples) with {len(s['truth'])} injected incidents and {len(s['noise'])} benign anomalies."
    return render_page(f"Lab 15: {TITLE}", secs, findings=f, subtitle=sub)
