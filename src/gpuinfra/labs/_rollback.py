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

The canary policy also runs as one simulation (:func:`canary_one_run`): the same strategy and
detector code (:class:`gpuinfra.sim.rollout.ServingRollout`) drives a request-level
:class:`gpuinfra.sim.serving.ServingRun` whose replicas carry a version and whose router picks a
version by the canary weight, then the least-outstanding ready replica of it. The new replica's cold
start, the requests it served, its wrong answers and errors, and its TTFT/TPOT/e2e latency and SLO
attainment all come from that one run, and the detector decides from the requests the run completed.
It runs on the first seed with the automated careful detector (an analysis run, what "canary with
analysis" names) over a shorter horizon (:func:`one_run_horizon_s`: the good release's full rollout
plus 5 min), since every request at the fleet's rate goes through the step model.

The composed path (tick model x one replica per version) stays for every policy and seed: it is what
the grid of policies x detectors x seeds affords, and for the canary it is a cross-check of the one
run (detection time and wrong answers from a different random realisation of the same model; latency
per request from one replica at the per-replica rate against the fleet's routed load). Composing per
request is exact while the replicas are not saturated (both report the attainment, so a saturated case
shows).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.models.precision import MODELS, weight_bytes
from gpuinfra.rng import Rngs
from gpuinfra.sim import serving as sv
from gpuinfra.sim.rollout import FAILURES, RolloutConfig, Signals, Strategy, simulate_rollout, simulate_serving_rollout

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


ONE_RUN_POLICY = "canary 10 % with analysis"
ONE_RUN_DETECTOR = "careful (z 5, 3 evals, automated)"


def one_run_horizon_s(cfg: RolloutConfig, cold_s: float) -> float:
    """Horizon of the one-run canary: start + cold start + bake + one cold start per replica (the good
    release's promotion, a closed form of the canary strategy) + 300 s of steady state after it."""
    return cfg.start_s + cold_s + cfg.strategy.bake_s + cfg.replicas * cold_s + 300.0


QUICK_ONE_RUN_FAILURES = ("none", "tokenizer")
"""``--quick`` runs the one-run canary for the good release and the tokenizer change only (each run
is ~20 s of CPU: a 53-min horizon at the fleet's full request rate)."""


def canary_one_run(seed: int, cfg0: RolloutConfig, failures: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The canary policy with the automated careful detector, every failure, each inside one request-level
    serving run at the fleet's rate: what the controller saw and did, and per version what the run served
    (requests, wrong answers, errors, mean output tokens, SLO attainment, e2e p50/p99)."""
    st = POLICIES[ONE_RUN_POLICY]
    sig, delay = DETECTORS[ONE_RUN_DETECTOR]
    out: dict[str, Any] = {}
    for name, f in FAILURES.items():
        if failures is not None and name not in failures:
            continue
        cfg = replace(cfg0, strategy=replace(st, rollback_delay_s=delay), failure=f, signals=sig)
        cfg = replace(cfg, horizon_s=one_run_horizon_s(cfg, cfg0.cold_start_s))
        reqs = sv.make_requests(
            seed, cfg.rate_rps, cfg.horizon_s, PROMPT_TOKENS, f"lognormal:{cfg.out_mean}:{cfg.out_cv}"
        )
        r = simulate_serving_rollout(cfg, sv.ServingConfig(model=SERVING_MODEL.lower()), reqs, seed)
        s = r.summary
        bv = {
            k: {
                "requests": v["requests"],
                "wrong": v["wrong"],
                "errors": v["errors"],
                "mean_output_tokens": v["mean_output_tokens"],
                "slo_attainment": v["slo_attainment"],
                "e2e_p50_s": v["e2e_s"]["p50"],
                "e2e_p99_s": v["e2e_s"]["p99"],
            }
            for k, v in r.by_version.items()
        }
        new, old = bv["new"], bv["old"]
        miss = new["requests"] * max(0.0, old["slo_attainment"] - new["slo_attainment"]) if new["requests"] else 0.0
        out[name] = {
            "phase": s["phase"],
            "detected_by": s["detected_by"],
            "time_to_detect_min": None if s["time_to_detect_s"] is None else s["time_to_detect_s"] / 60.0,
            "rollout_min": None if s["rollout_duration_s"] is None else s["rollout_duration_s"] / 60.0,
            "served_by_new": s["requests"]["new"],
            "wrong": s["requests"]["wrong"],
            "slo_misses_from_run": miss,
            "by_version": bv,
            "requests": r.serving.requests,
            "horizon_s": cfg.horizon_s,
            "gpu_hours": r.serving.gpu_hours,
            "invariants_ok": bool(r.serving.invariants["ok"])
            and bool(r.serving.serving_invariants["served_exactly_once"]),
        }
    return {"seed": seed, "policy": ONE_RUN_POLICY, "detector": ONE_RUN_DETECTOR, "failures": out}


def rollback_runs(seeds: list[int], one_run: bool = True, quick: bool = False) -> dict[str, Any]:
    """Every policy x detector x failure on ``seeds``; means over seeds, plus the serving impact; with
    ``one_run`` also the canary inside one serving run on ``seeds[0]`` (:func:`canary_one_run`; with
    ``quick`` for :data:`QUICK_ONE_RUN_FAILURES` only)."""
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
        "one_run": canary_one_run(seeds[0], cfg0, QUICK_ONE_RUN_FAILURES if quick else None) if one_run else None,
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
    if rb.get("one_run"):
        h1, t1 = _render_one_run(rb)
        html += h1
        text += " " + t1
    return html, text


def _render_one_run(rb: dict[str, Any]) -> tuple[str, str]:
    """Table and sentences of the canary run inside one serving run, beside the tick model's same cell."""
    from gpuinfra.report.page import table_html

    one = rb["one_run"]
    cell = rb["results"][f"{one['policy']} | {one['detector']}"]["failures"]

    def f1(x: float | None, fmt: str = "{:.1f}") -> str:
        return "-" if x is None else fmt.format(x)

    rows = []
    for name, v in one["failures"].items():
        o, n = v["by_version"]["old"], v["by_version"]["new"]
        tk = cell[name]
        rows.append(
            [name, v["phase"], v["detected_by"] or "-", f1(v["time_to_detect_min"]), f1(tk["time_to_detect_min"]),
             f"{v['served_by_new']:,}", f"{v['wrong']:,}", f"{tk['wrong']:,.0f}", f"{n['errors']:,}",
             f1(n["mean_output_tokens"], "{:.0f}") + " / " + f1(o["mean_output_tokens"], "{:.0f}"),
             f1(None if n["slo_attainment"] is None else 100 * n["slo_attainment"])
             + " / " + f1(100 * o["slo_attainment"]),
             f1(n["e2e_p99_s"], "{:.2f}") + " / " + f1(o["e2e_p99_s"], "{:.2f}"),
             "yes" if v["invariants_ok"] else "NO"]
        )  # fmt: skip
    table = table_html(
        ["failure", "outcome", "detected by", "time to detect (min)", "tick model: time to detect (min, mean)",
         "served by new (run)", "wrong answers (run)", "tick model: wrong (mean)", "errors of new (run)",
         "mean output tokens new / old", "SLO attainment % new / old", "e2e p99 s new / old", "invariants"],
        rows,
    )  # fmt: skip
    bad = [k for k in one["failures"] if k != "none"]
    caught = [k for k in bad if one["failures"][k]["phase"] == "rolled-back"]
    good = one["failures"]["none"]
    tok = one["failures"].get("tokenizer")
    t_tok = ""
    if tok and tok["served_by_new"]:
        n, o = tok["by_version"]["new"], tok["by_version"]["old"]
        t_tok = (
            f" In that run the tokenizer-broken canary generated {n['mean_output_tokens']:.0f} tokens per request "
            f"against the stable version's {o['mean_output_tokens']:.0f}, with end-to-end p99 {n['e2e_p99_s']:.1f} s "
            f"against {o['e2e_p99_s']:.1f} s, over the {tok['served_by_new']:,} requests it served before the rollback."
        )
    text = (
        f"Run as one request-level serving simulation (seed {one['seed']}, {one['detector']} detector, "
        f"{good['requests']:,} requests over {good['horizon_s'] / 60:.0f} min), the canary rolls back "
        f"{len(caught)} of {len(bad)} bad changes"
        + (f" ({', '.join(caught)})" if caught else "")
        + f" and the good release ends {good['phase']}"
        + (f" after {good['rollout_min']:.0f} min" if good["rollout_min"] is not None else "")
        + "."
        + t_tok
    )
    html = "<h3>Canary with analysis inside one serving run (version-labelled replicas, weighted routing)</h3>" + table
    return html, text
