"""Lab 13, activity 4: rollback speed against correctness, simulated.

Each rollout policy (:mod:`gpuinfra.sim.rollout`: ``recreate`` = all at once, ``rolling`` =
progressive one replica at a time, ``canary`` = 10 % canary with analysis, ``bluegreen``) runs with
three detectors -- fast (loose threshold, one evaluation, automated rollback), careful (strict
threshold, three evaluations, automated) and a paged human (the default thresholds, 15 minutes
to act) -- against every failure of :data:`gpuinfra.sim.rollout.FAILURES` and a good release, on
the same seeds. How long a bad change lives, how many wrong answers it serves, how many good
releases are rolled back falsely, and what the GPUs held cost come from those runs.

What one request of the bad version costs beyond being wrong comes from the serving replica
model (:mod:`gpuinfra.sim.serving`): one replica at the fleet's per-replica rate, serving the old
version's output lengths and the new version's (a ``bad_fraction`` of answers ``length_factor``
times longer), gives the latency SLO attainment and GPU-seconds per request of each; their
difference times the requests the bad version served is its latency and GPU cost. The replica's
cold start is the serving model's cold-start pipeline for the model's bf16 weights
(:class:`gpuinfra.sim.serving.ColdStart`), not a number of this lab.

Why the two simulators are not one run: :mod:`gpuinfra.sim.rollout` counts Poisson requests per
10 s tick and routes shares of them to versions; :mod:`gpuinfra.sim.serving` runs every request
through batching and KV-cache steps on replicas of one version. Running the rollout inside the
serving run needs version-labelled replicas and weighted routing in ``ServingRun`` (its router is
least-outstanding-requests over identical replicas); that is a change to sim/serving, which this
lab does not own. Composing the two per request is exact while the replicas are not saturated (the
runs below report the attainment, so a saturated case shows).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.models.precision import MODELS, weight_bytes
from gpuinfra.rng import Rngs
from gpuinfra.sim import serving as sv
from gpuinfra.sim.rollout import FAILURES, RolloutConfig, Signals, Strategy, simulate_rollout

POLICIES = {
    "all at once (Recreate)": Strategy("recreate"),
    "progressive (RollingUpdate, maxSurge 1)": Strategy("rolling"),
    "canary 10 % with analysis": Strategy("canary", canary_weight=0.10, bake_s=1800.0),
    "blue/green": Strategy("bluegreen", bake_s=1800.0),
}
DETECTORS = {
    "fast (z 3, 1 eval, automated)": (Signals(drift_z=3.0, drift_for=1), 0.0),
    "careful (z 5, 3 evals, automated)": (Signals(drift_z=5.0, drift_for=3), 0.0),
    "paged human (z 4, 2 evals, 15 min to act)": (Signals(), 900.0),
}
SERVING_MODEL = "Llama-3-8B"
PROMPT_TOKENS = 1000
"""Prompt length of the serving runs [assumption: sim/serving's default; sim/rollout has none]."""
LOAD = 0.7
"""The fleet is provisioned so each replica runs at this fraction of its SLO capacity [assumption:
headroom for the loss of one replica in eight and for bursts]."""
SLO_TARGET = 0.99
"""A replica's capacity: the highest Poisson rate at which this fraction of requests meets the
serving SLO (TTFT p90 2 s / TPOT 200 ms, sim/serving's Slo)."""


def replica_capacity_rps(seed: int, horizon_s: float = 300.0) -> float:
    """Bisection on the arrival rate (requests/s, to 0.25) for the highest at which one replica of the
    serving model keeps :data:`SLO_TARGET` of requests within the SLO, with the stable version's
    output lengths (sim/rollout's defaults: log-normal mean 250, cv 0.8)."""
    cfg = RolloutConfig()

    def ok(rate: float) -> bool:
        reqs = sv.make_requests(seed, rate, horizon_s, PROMPT_TOKENS, f"lognormal:{cfg.out_mean}:{cfg.out_cv}")
        return sv.simulate(sv.ServingConfig(model=SERVING_MODEL.lower()), reqs, seed).slo_attainment >= SLO_TARGET

    lo, hi = 0.25, 128.0
    if not ok(lo):
        return 0.0
    while hi - lo > 0.25:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def cold_start_s() -> float:
    """The serving model's cold start for the served model's bf16 weights (image pull, weights load
    from object storage, warm-up)."""
    return sv.ColdStart().total_s(weight_bytes(MODELS[SERVING_MODEL], "bf16"))


def serving_impact(seed: int, cfg: RolloutConfig, horizon_s: float) -> dict[str, Any]:
    """Per request, old version against each failure's new version, on one replica of the serving
    model at the fleet's per-replica rate: SLO attainment, e2e latency, GPU-seconds."""
    rate = cfg.rate_rps / cfg.replicas
    base = sv.make_requests(seed, rate, horizon_s, PROMPT_TOKENS, f"lognormal:{cfg.out_mean}:{cfg.out_cv}")
    out: dict[str, Any] = {}
    for name, f in FAILURES.items():
        rng = Rngs(seed)[f"lab13-bad-answers-{name}"]
        wrong = rng.random(len(base)) < f.bad_fraction
        outp = np.where(wrong, np.maximum(1, np.rint(base.output * f.length_factor)), base.output).astype(np.int64)
        reqs = sv.Requests(base.arrival_s.copy(), base.prompt.copy(), outp)
        r = sv.simulate(sv.ServingConfig(model=SERVING_MODEL.lower()), reqs, seed)
        out[name] = {
            "requests": r.requests,
            "slo_attainment": r.slo_attainment,
            "e2e_p50_s": r.e2e_s["p50"],
            "e2e_p99_s": r.e2e_s["p99"],
            "mean_output_tokens": float(outp.mean()),
            "invariants_ok": bool(r.invariants["ok"]) and bool(r.serving_invariants.get("ok", True)),
        }
    return out


def rollback_runs(seeds: list[int]) -> dict[str, Any]:
    """Every policy x detector x failure on ``seeds``; means over seeds, plus the serving impact."""
    cs = cold_start_s()
    cap = replica_capacity_rps(seeds[0])
    reps = RolloutConfig().replicas
    cfg0 = RolloutConfig(cold_start_s=cs, rate_rps=reps * LOAD * cap)
    price = float(gpu_hour_price(cfg0.gpu).on_demand_usd or 0.0)
    impact = serving_impact(seeds[0], cfg0, 900.0)
    res: dict[str, dict[str, Any]] = {}
    for pname, st in POLICIES.items():
        for dname, (sig, delay) in DETECTORS.items():
            key = f"{pname} | {dname}"
            res[key] = {"policy": pname, "detector": dname, "failures": {}}
            for fname, f in FAILURES.items():
                cfg = replace(cfg0, strategy=replace(st, rollback_delay_s=delay), failure=f, signals=sig)
                runs = [simulate_rollout(cfg, s) for s in seeds]
                ss = [r.summary for r in runs]
                lives = []
                for x in ss:
                    if x["new_first_served_s"] is None:
                        continue
                    end = x["rollback_done_s"] if x["rollback_done_s"] is not None else cfg.horizon_s
                    lives.append(end - x["new_first_served_s"])
                new = float(np.mean([x["requests"]["new"] for x in ss]))
                imp, ref = impact[fname], impact["none"]
                slo_miss = new * max(0.0, ref["slo_attainment"] - imp["slo_attainment"])
                extra_tokens = new * (imp["mean_output_tokens"] - ref["mean_output_tokens"])
                gh = float(np.mean([r.gpu_hours for r in runs]))
                res[key]["failures"][fname] = {
                    "rolled_back": sum(x["phase"] == "rolled-back" for x in ss),
                    "detected": sum(x["detected_s"] is not None for x in ss),
                    "alive_min": float(np.mean(lives)) / 60.0 if lives else 0.0,
                    "time_to_detect_min": _mean([x["time_to_detect_s"] for x in ss], 60.0),
                    "wrong": float(np.mean([x["requests"]["wrong"] for x in ss])),
                    "errors": float(np.mean([x["requests"]["errors"] for x in ss])),
                    "refused": float(np.mean([x["requests"]["refused"] for x in ss])),
                    "served_by_new": new,
                    "slo_misses_from_serving": slo_miss,
                    "extra_output_tokens": extra_tokens,
                    "rollout_min": _mean([x["rollout_duration_s"] for x in ss], 60.0),
                    "gpu_hours": gh,
                    "gpu_cost_usd": gh * price,
                    "peak_gpus": max(x["peak_gpus"] for x in ss),
                    "invariants_ok": all(r.invariants["ok"] for r in runs),
                    "runs": len(runs),
                }
    return {
        "seeds": seeds,
        "cold_start_s": cs,
        "replica_capacity_rps": cap,
        "fleet_rate_rps": cfg0.rate_rps,
        "replicas": reps,
        "price_usd_per_gpu_hour": price,
        "serving_impact": impact,
        "failures": {k: v.note for k, v in FAILURES.items()},
        "results": res,
    }


def _mean(v: list[float | None], scale: float) -> float | None:
    x = [a for a in v if a is not None]
    return float(np.mean(x)) / scale if x else None


def bad_cost(r: dict[str, Any]) -> float:
    """Harm of one policy x detector over the bad releases: wrong answers + refused requests +
    latency-SLO misses the serving model attributes to the bad version, plus refused requests and
    wrong answers of a good release rolled back (it is redeployed later: the refusals count)."""
    f = r["failures"]
    bad = sum(v["wrong"] + v["refused"] + v["slo_misses_from_serving"] for k, v in f.items() if k != "none")
    return bad + f["none"]["refused"]


def render_rollback(rb: dict[str, Any]) -> tuple[str, str]:
    """(HTML, conclusion) of activity 4 from the runs."""
    import plotly.graph_objects as go

    from gpuinfra.report.html import fig_html
    from gpuinfra.report.page import table_html

    res = rb["results"]
    bad = [k for k in rb["failures"] if k != "none"]
    rows = []
    for r in res.values():
        f = r["failures"]
        rows.append(
            [r["policy"], r["detector"],
             " / ".join(f"{f[k]['alive_min']:.0f}" for k in bad),
             " / ".join(f"{f[k]['wrong']:,.0f}" for k in bad),
             f"{sum(f[k]['refused'] for k in f):,.0f}",
             f"{sum(f[k]['slo_misses_from_serving'] for k in bad):,.0f}",
             f"{f['none']['rolled_back']}/{f['none']['runs']}",
             "-" if f["none"]["rollout_min"] is None else f"{f['none']['rollout_min']:.0f}",
             f"{f['none']['peak_gpus']}",
             f"${np.mean([v['gpu_cost_usd'] for v in f.values()]):,.0f}"]
        )  # fmt: skip
    table = table_html(
        ["rollout", "detector", f"bad change alive, min ({' / '.join(bad)})", f"wrong answers ({' / '.join(bad)})",
         "refused (all runs)", "SLO misses (serving model)", "good release rolled back", "good release rollout (min)",
         "peak GPUs", "GPU cost per run"],
        rows,
    )  # fmt: skip
    fig = go.Figure()
    for det in DETECTORS:
        ks = [k for k in res if res[k]["detector"] == det]
        fig.add_trace(
            go.Scatter(
                x=[np.mean([res[k]["failures"][b]["alive_min"] for b in bad]) for k in ks],
                y=[sum(res[k]["failures"][b]["wrong"] for b in bad) for k in ks],
                mode="markers+text",
                text=[res[k]["policy"].split(" (")[0] for k in ks],
                textposition="top center",
                name=det,
            )
        )
    fig.update_layout(
        title="How long a bad change lives against the wrong answers it serves (mean over failures and seeds)",
        xaxis_title="bad change alive (minutes, from first request served to rollback done)",
        yaxis_title="wrong answers served (requests, summed over the failures)",
        legend_title="detector",
    )
    imp = rb["serving_impact"]
    it = table_html(
        ["version", "mean output tokens", "SLO attainment (TTFT, TPOT)", "e2e p50 (s)", "e2e p99 (s)"],
        [
            [k, f"{v['mean_output_tokens']:.0f}", f"{100 * v['slo_attainment']:.1f} %", f"{v['e2e_p50_s']:.2f}",
             f"{v['e2e_p99_s']:.2f}"]
            for k, v in imp.items()
        ],
    )  # fmt: skip
    best = min(res, key=lambda k: bad_cost(res[k]))
    fastest = min(res, key=lambda k: np.mean([res[k]["failures"][b]["alive_min"] for b in bad]))
    false_rb = {k: res[k]["failures"]["none"]["rolled_back"] for k in res}
    fast_det, careful_det = list(DETECTORS)[:2]
    fr_fast = sum(v for k, v in false_rb.items() if res[k]["detector"] == fast_det)
    fr_care = sum(v for k, v in false_rb.items() if res[k]["detector"] == careful_det)
    n_good = len(POLICIES) * len(rb["seeds"])
    rec = next(iter(POLICIES))
    fr_rec = sum(v for k, v in false_rb.items() if res[k]["policy"] == rec and res[k]["detector"] == fast_det)
    b, fa = res[best], res[fastest]

    def alive(r):
        return np.mean([r["failures"][x]["alive_min"] for x in bad])

    def wrong(r):
        return sum(r["failures"][x]["wrong"] for x in bad)

    def refused(r):
        return sum(v["refused"] for v in r["failures"].values())

    tok = imp.get("tokenizer", imp["none"])
    drop = imp["none"]["slo_attainment"] - tok["slo_attainment"]
    seen = "the latency SLO does not see it" if drop < 0.001 else f"{100 * drop:.1f} points of SLO lost"
    correct = [k for k in res if res[k]["failures"]["none"]["rolled_back"] == 0]
    bc = min(correct, key=lambda k: bad_cost(res[k])) if correct else None
    c_txt = (
        f"Among the cells that never roll back a good release, the least harm comes from {res[bc]['policy']} with the "
        f"{res[bc]['detector']} detector: a bad change lives {alive(res[bc]):.0f} min and serves "
        f"{wrong(res[bc]):,.0f} wrong answers. "
        if bc
        else "Every cell rolls back at least one good release. "
    )
    nb = b["failures"]["none"]
    fb = (
        f"but it rolls back {nb['rolled_back']} of {nb['runs']} good releases. " + c_txt
        if nb["rolled_back"]
        else "and it rolls back no good release. "
    )
    text = (
        f"Over {len(rb['seeds'])} seeds per cell and {len(bad)} silent failures, the least harm (wrong answers, refused "
        f"requests and latency-SLO misses) comes from {b['policy']} with the {b['detector']} detector: a bad change "
        f"lives {alive(b):.0f} min on average and serves {wrong(b):,.0f} wrong answers, " + fb + "The "
        f"shortest-lived bad change is under {fa['policy']} / {fa['detector']} ({alive(fa):.0f} min, "
        f"{wrong(fa):,.0f} wrong answers, {refused(fa):,.0f} requests refused over its runs). Speed against "
        f"correctness: the fast detector rolls back {fr_fast} of {n_good} good releases ({fr_rec} of them under "
        f"{rec}, whose cold-start outage itself burns the error budget), the careful one {fr_care}. "
        f"From the serving model, a tokenizer-broken replica generates {tok['mean_output_tokens']:.0f} tokens per request "
        f"against {imp['none']['mean_output_tokens']:.0f} (p99 end-to-end {tok['e2e_p99_s']:.1f} s against "
        f"{imp['none']['e2e_p99_s']:.1f} s); its TTFT/TPOT SLO attainment is {100 * tok['slo_attainment']:.1f} % "
        f"against {100 * imp['none']['slo_attainment']:.1f} % ({seen}) at {LOAD:.0%} of a replica's SLO capacity of "
        f"{rb['replica_capacity_rps']:.1f} requests/s (the fleet of {rb['replicas']} serves "
        f"{rb['fleet_rate_rps']:.0f}/s). A replica's cold start is "
        f"{rb['cold_start_s']:.0f} s, which is what every rolling-back step pays."
    )
    html = fig_html(fig, "l13rollback") + table + "<h3>One replica of each version (serving model)</h3>" + it
    return html, text
