"""Lab 13: "Supporting Velocity Without Chaos" (seed section 13).

Activities, each computed now:
1. Why AI infra evolves faster: the release cadence of PyTorch minors and the CUDA builds each
   ships (packaged compatibility tables, catalog/data/compat/SOURCE.md).
2. Configuration churn (labs/_velocity.py over models/train_config.py): one-knob changes to a
   training config -- batch (micro-batch, sequence length, gradient accumulation), precision
   (fp32 / bf16 / fp16 / fp8 where the GPU has it), parallelism (TP, PP, DP, ZeRO / FSDP) and
   runtime flags (FlashAttention, activation recomputation, CUDA graphs) -- and their computed
   memory fit, step time and stability (number formats, loss scaling; OOMs under variable sequence
   lengths through the caching-allocator model).
3. Guardrails for safe experimentation (``--design FILE``, shipped labs/designs/lab13-guardrails.yaml):
   an experiment-heavy workload (many small experiments, some large ones, a few forgotten ones)
   replayed on the one simulator with and without guardrails -- admission check on GPUs per
   experiment (refused at admission, before the scheduler), TTL (the pod's delete time, run by the
   simulator), a preemptible tier for large experiments, team quotas (KueueQuota with reclaim, which
   the engine's preemption step carries out) -- on the same seed and workload; time to feedback for
   small experiments (experiments still pending at the horizon count as waiting until it), GPU-hours
   burned by forgotten runs. The headline compares the design with the strongest baseline.
4. Rollback speed vs correctness (labs/_rollback.py): all-at-once, progressive, canary-with-analysis
   and blue/green rollouts of silently bad releases on sim/rollout (one kernel, GPUs held through
   ClusterState), each with a fast, a careful and a human-paced detector, on the same seeds; the
   per-request impact of the bad version from the serving replica model (sim/serving). 4b keeps the
   closed form as a cross-check: the samples a z-test needs to see an effect,
   ((z_a + z_b) sigma / delta)^2, divided by the traffic share the change sees.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from gpuinfra import api
from gpuinfra.catalog import compat as cc
from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError
from gpuinfra.labs import write_lab, write_lab_file
from gpuinfra.labs._rollback import render_rollback, rollback_runs
from gpuinfra.report.figs import bar_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import ceil_num
from gpuinfra.rng import Rngs

TITLE = "Supporting Velocity Without Chaos"
DEFAULT_DESIGN = Path(__file__).parent / "designs" / "lab13-guardrails.yaml"
TEAMS = ("team-a", "team-b", "team-c", "team-d")
NODES = 8  # x 8 H100 = 64 GPUs
DAYS = 3.0


class Design(BaseModel):
    """Lab 13's ``--design``: experiment guardrails."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str = "design"
    max_gpus_per_experiment: int | None = Field(16, ge=1, le=64, description="admission check; None: no cap")
    ttl_hours: float | None = Field(12.0, gt=0, le=720, description="experiments deleted after this long; None: no TTL")
    preemptible_large: bool = Field(True, description="experiments above 8 GPUs run at low priority, preemptible")
    team_quota_gpus: float | None = Field(16.0, gt=0, le=64, description="nominal GPUs per team (cohort borrowing)")


def load_design(path: Path | None) -> Design:
    from gpuinfra.io.scenario_load import load_model_file

    return load_model_file(path or DEFAULT_DESIGN, Design, what="a lab 13 design")


# -- 1. cadence --------------------------------------------------------------------------------
def cadence() -> dict[str, Any]:
    rows = read_csv_rows("compat", "pytorch_cuda_wheels.csv")
    dates: dict[str, dt.date] = {}
    builds: dict[str, int] = {}
    for r in rows:
        builds[r["torch_minor"]] = builds.get(r["torch_minor"], 0) + 1
        if r["release_date"]:
            y, m, *d = (int(x) for x in r["release_date"].split("-"))
            dates[r["torch_minor"]] = dt.date(y, m, d[0] if d else 1)
    ds = sorted(dates.values())
    gaps = [(b - a).days for a, b in zip(ds, ds[1:], strict=False)]
    per_year: dict[int, int] = {}
    for d in ds:
        per_year[d.year] = per_year.get(d.year, 0) + 1
    return {
        "releases_dated": len(ds),
        "median_days_between_minors": float(np.median(gaps)) if gaps else None,
        "per_year": per_year,
        "cuda_builds_per_minor_mean": float(np.mean(list(builds.values()))),
        "cuda_toolkits_in_table": len({t.cuda[:2] for t in cc.toolkits()}),
    }


# -- 2. config churn: labs/_velocity.py (models/train_config) -----------------------------------
def churn(seed: int = 13, quick: bool = False) -> dict[str, Any]:
    """One-knob changes of a training config and their memory, step-time and stability effects."""
    from gpuinfra.labs._velocity import churn as _churn

    return _churn(seed, quick)


# -- 3. guardrails -----------------------------------------------------------------------------
def experiments(seed: int) -> list[dict[str, Any]]:
    """The experiment-heavy workload: drawn once from the lab's own seeded stream.

    Illustrative parameters (not measurements): 4 teams; 80 % small (1-2 GPUs, log-normal
    around 40 min), 15 % large (8, 16 or 32 GPUs, around 4 h), 5 % forgotten (1-4 GPUs left
    running for 7 days: a notebook or a sweep nobody stopped)."""
    rng = Rngs(seed)["lab13-experiments"]
    n = int(260 * DAYS)
    out = []
    t = 0.0
    for i in range(n):
        t += float(rng.exponential(DAYS * 86400 / n))
        u = float(rng.random())
        team = TEAMS[int(rng.integers(len(TEAMS)))]
        if u < 0.80:
            kind, gpus, dur = "small", int(rng.choice([1, 2])), float(rng.lognormal(np.log(2400), 0.6))
        elif u < 0.95:
            kind, gpus, dur = "large", int(rng.choice([8, 16, 32])), float(rng.lognormal(np.log(4 * 3600), 0.5))
        else:
            kind, gpus, dur = "forgotten", int(rng.choice([1, 2, 4])), 7 * 86400.0
        out.append({"id": f"{kind}-{i}", "kind": kind, "team": team, "gpus": gpus, "submit": t, "duration": dur})
    return out


def _trace(exps: list[dict], g: Design | None) -> tuple[str, int]:
    """The trace under guardrails ``g`` (None: none) and how many experiments admission refused."""
    head = "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner"
    rows = [head + ",delete_time_s,job,gang_size"]
    rejected = 0
    for e in exps:
        if g and g.max_gpus_per_experiment and e["gpus"] > g.max_gpus_per_experiment:
            # a validating admission webhook (or a Kueue AdmissionCheck) refuses the object at the API
            # server: it never reaches the scheduler, so it is not a row of the simulated trace
            rejected += 1
            continue
        prio = 1 if (g and g.preemptible_large and e["gpus"] > 8) else 10
        delete = f"{e['submit'] + g.ttl_hours * 3600:.3f}" if (g and g.ttl_hours) else ""
        per = min(e["gpus"], 8)  # an experiment above one node is a gang of 8-GPU workers
        workers = e["gpus"] // per
        for w in range(workers):
            gang = f"{e['id']},{workers}" if workers > 1 else ","
            rows.append(
                f"{e['id']}-w{w},{e['submit']:.3f},{e['duration']:.3f},{per},1000,{8000 * per},"
                f"{65536 * per},H100-SXM,{prio},,{e['team']},{delete},{gang}"
            )
    return "\n".join(rows) + "\n", rejected


def _guardrail_run(out_dir: Path, name: str, exps: list[dict], g: Design | None, seed: int) -> dict[str, Any]:
    text, rejected = _trace(exps, g)
    write_lab_file(out_dir / f"{name}.csv", text)
    sc: dict[str, Any] = {
        "name": f"lab13-{name}",
        "seed": seed,
        "horizon_s": DAYS * 86400,
        "sample_interval_s": 600,
        "cluster": {"pools": [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": NODES}]},
        "workload": {"trace": f"{name}.csv"},
        "scheduler": {
            "queue_sort": "PrioritySort",
            "filters": ["NodeResourcesFit", "GpuModel"],
            "scores": [{"name": "MostAllocated", "weight": 1}],
            "reserve": "FirstFitDevices",
            # preemption serves the preemptible tier and Kueue's reclaim of borrowed quota alike
            "preemption": bool(g and (g.preemptible_large or g.team_quota_gpus)),
        },
        "prices": {"cloud": "aws"},
    }
    if g and g.team_quota_gpus:
        sc["quotas"] = {
            "queues": [{"name": t, "cohort": "lab", "nominal_gpus": g.team_quota_gpus} for t in TEAMS],
            "reclaim": True,
        }
    p = out_dir / f"{name}.yaml"
    write_lab_file(p, yaml.safe_dump(sc, sort_keys=False))
    res = api.simulate(api.scenario(p), seed=seed)
    led = res.pods
    exp = led["name"].str.rsplit("-w", n=1).str[0]
    kind = exp.str.split("-").str[0]
    horizon = DAYS * 86400
    small = led[(kind == "small") & (led["submit_s"] < horizon)]
    # a small experiment still pending at the horizon has waited at least horizon - submit: counting
    # only the started ones would report the shortest waits of the most congested run
    # (wait_s is submit to the first bind: a preempted experiment's time off a node is not in it)
    waits = small["wait_s"].where(small["wait_s"].notna(), horizon - small["submit_s"]).to_numpy()
    started = int(small["wait_s"].notna().sum())
    forgotten_h = float(led.loc[kind == "forgotten", "gpu_hours"].sum())
    done = (led["outcome"] == "completed").groupby(exp).all()
    ekind = kind.groupby(exp).first()
    return {
        "rejected_at_admission": rejected,
        "small_wait_p50_s": float(np.percentile(waits, 50)) if len(waits) else None,
        "small_wait_p90_s": float(np.percentile(waits, 90)) if len(waits) else None,
        "small_started": started,
        "small_arrived": len(small),
        "small_completed": int((done & (ekind == "small")).sum()),
        "large_completed": int((done & (ekind == "large")).sum()),
        "forgotten_gpu_hours": forgotten_h,
        "allocation_ratio": res.allocation_ratio,
        "preemptions": int(res.summary["preemption"]["preemptions"]),
        "invariants_ok": bool(res.invariants.ok),
    }


# -- 4. rollback speed vs correctness ------------------------------------------------------------
def rollout(effect_sigma: float = 0.5, interval_s: float = 60.0, rollback_s: float = 300.0) -> list[dict[str, Any]]:
    """Closed form. A bad change shifts a fleet metric by ``effect_sigma`` standard deviations of one
    per-minute sample at full traffic; a z-test at false-alarm rate alpha needs
    n = ((z_{1-alpha} + z_{power}) / (effect x sqrt(share)))^2 samples when the change sees a traffic
    share (its samples carry share of the signal's precision). Time alive = detection + rollback;
    exposure = the share x time alive (fleet-hours of bad behaviour). A good change is rolled back
    falsely with probability alpha per check; full rollout of a good change takes the policy's steps."""
    nd = NormalDist()
    policies = {
        "big-bang": [1.0],
        "canary 5 % then all": [0.05, 1.0],
        "progressive 1-10-50-100 %": [0.01, 0.10, 0.50, 1.0],
    }
    detectors = {"fast (alpha 5 %, power 80 %)": (0.05, 0.80), "careful (alpha 0.1 %, power 95 %)": (0.001, 0.95)}
    out = []
    for pname, steps in policies.items():
        for dname, (alpha, power) in detectors.items():
            z = nd.inv_cdf(1 - alpha) + nd.inv_cdf(power)
            share = steps[0]  # the first step sees the bad change first
            n = (z / (effect_sigma * np.sqrt(share))) ** 2
            detect_s = float(np.ceil(n)) * interval_s
            alive_s = detect_s + rollback_s
            soak = [(z / (effect_sigma * np.sqrt(s))) ** 2 * interval_s for s in steps]
            out.append(
                {
                    "policy": pname,
                    "detector": dname,
                    "bad_change_alive_min": alive_s / 60.0,
                    "bad_exposure_fleet_min": share * alive_s / 60.0,
                    "false_rollbacks_per_100_good": 100 * (1 - (1 - alpha) ** len(steps)),
                    "good_change_full_rollout_min": float(sum(soak)) / 60.0,
                }
            )
    return out


def _largest_pod_gpus(exps: list[dict[str, Any]]) -> int:
    """GPUs of the largest single pod the lab submits (an experiment above one node is a gang of
    8-GPU workers, as :func:`_trace` writes it)."""
    return max(min(e["gpus"], 8) for e in exps)


def check_design(d: Design, exps: list[dict[str, Any]], design: Path | None) -> None:
    """Refuse a design the lab's own workload cannot run under, before any file is written.

    With team quotas, Kueue admits a pod only if its ClusterQueue's cohort has that many unused
    nominal GPUs; the cohort is the lab's ``len(TEAMS)`` teams, so its total is
    ``len(TEAMS) x team_quota_gpus``. Below the largest pod's GPUs every such pod would be refused by
    the simulator as never schedulable (the "quotas only" baseline uses the same quota).

    Raises:
        UserError: naming the design file and ``team_quota_gpus``, the minimum and why.
    """
    q = d.team_quota_gpus
    need = _largest_pod_gpus(exps)
    if q is not None and len(TEAMS) * q < need:
        raise UserError(
            f"team_quota_gpus {q:g} is too small for this lab's workload",
            where=f"{design or DEFAULT_DESIGN}: team_quota_gpus",
            expected=(
                f"at least {ceil_num(need / len(TEAMS), 2, thousands=False, trim=True)} GPUs per team: the cohort of {len(TEAMS)} teams "
                f"({len(TEAMS)} x team_quota_gpus) must hold the largest pod the lab submits ({need} GPUs, "
                "one 8-GPU worker of a large experiment), or null for no team quotas"
            ),
            fix=f"set team_quota_gpus to {ceil_num(need / len(TEAMS), 2, thousands=False, trim=True)} or more (the default is 16)",
        )


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    d = load_design(design)  # checked before any run
    seed = 13
    exps = experiments(seed)
    check_design(d, exps, design)
    out_dir.mkdir(parents=True, exist_ok=True)
    none = Design(
        label="none", max_gpus_per_experiment=None, ttl_hours=None, preemptible_large=False, team_quota_gpus=None
    )
    baselines = {
        "no guardrails": none,
        "TTL only": none.model_copy(update={"ttl_hours": d.ttl_hours or 12.0}),
        "GPU cap only": none.model_copy(update={"max_gpus_per_experiment": d.max_gpus_per_experiment or 16}),
        "quotas only": none.model_copy(update={"team_quota_gpus": d.team_quota_gpus or 16.0}),
    }
    names = [f"run-{i}" for i in range(len(baselines))] + ["design"]
    try:
        runs = {
            k: _guardrail_run(out_dir, n, exps, b, seed)
            for n, (k, b) in zip(names[:-1], baselines.items(), strict=True)
        }
        runs["design"] = _guardrail_run(out_dir, "design", exps, d, seed)
    except BaseException:
        # no half set of guardrail traces/scenarios without a report beside them
        for n in names:
            for ext in (".csv", ".yaml"):
                (out_dir / f"{n}{ext}").unlink(missing_ok=True)
        raise
    s = {
        "schema": "gpuinfra.lab13/1",
        "design": {"label": d.label, "spec": d.model_dump()},
        "cadence": cadence(),
        "churn": churn(seed, quick),
        "workload": {k: sum(1 for e in exps if e["kind"] == k) for k in ("small", "large", "forgotten")},
        "guardrails": runs,
        "guardrail_specs": {k: b.model_dump(exclude={"label"}) for k, b in baselines.items()},
        "rollout": rollout(),
        "rollback": rollback_runs([0, 1] if quick else [0, 1, 2, 3, 4], quick=quick),
    }
    return write_lab(out_dir, s, render(s))


def _strongest(runs: dict[str, Any]) -> str:
    base = {k: r for k, r in runs.items() if k != "design"}
    return min(base, key=lambda k: (base[k]["small_wait_p90_s"] or 0.0, -base[k]["small_completed"]))


def render(s: dict[str, Any]) -> str:
    secs, f = [], []
    c = s["cadence"]
    c1 = (
        f"PyTorch ships a minor every {c['median_days_between_minors']:.0f} days (median over "
        f"{c['releases_dated']} dated releases; per year: "
        + ", ".join(f"{y}: {n}" for y, n in sorted(c["per_year"].items()))
        + f"), each with {c['cuda_builds_per_minor_mean']:.1f} CUDA builds on average, against "
        f"{c['cuda_toolkits_in_table']} CUDA minors in the toolkit table: the stack under a training job "
        "moves every quarter, and each move is a compatibility decision."
    )
    secs.append(Section("1. Why AI infra changes faster", "", c1))
    f.append(c1)
    from gpuinfra.labs._velocity import render_churn

    html2, c2 = render_churn(s["churn"])
    secs.append(Section("2. Configuration churn: memory fit, throughput and stability", html2, c2))
    f.append(c2)
    g = s["guardrails"]
    strong = _strongest(g)
    de, sb, no = g["design"], g[strong], g["no guardrails"]
    keys = ["rejected_at_admission", "small_started", "small_wait_p50_s", "small_wait_p90_s", "small_completed",
            "large_completed", "forgotten_gpu_hours", "preemptions"]  # fmt: skip
    rows = [[n] + [f"{r[k]:,.0f}" if isinstance(r[k], float) else r[k] for k in keys] for n, r in g.items()]
    fig2 = bar_figure(
        list(g),
        {
            "p50 wait, small (min)": [(r["small_wait_p50_s"] or 0) / 60 for r in g.values()],
            "p90 wait, small (min)": [(r["small_wait_p90_s"] or 0) / 60 for r in g.values()],
        },  # fmt: skip
        "Time to feedback for small experiments, same workload and seed",
        "minutes from submission to start (pending at the horizon: counted to it)",
    )
    fig2.update_layout(xaxis_title="guardrails", legend_title="percentile")
    wl = s["workload"]
    c3 = (
        f"On {wl['small']} small, {wl['large']} large and {wl['forgotten']} forgotten experiments over {DAYS:.0f} days "
        f"on {NODES * 8} GPUs, the design ({s['design']['label']}) starts {de['small_started']} of "
        f"{de['small_arrived']} small experiments (strongest baseline {sb['small_started']}, no guardrails "
        f"{no['small_started']}), at p90 "
        f"{(de['small_wait_p90_s'] or 0) / 60:,.0f} min against {(sb['small_wait_p90_s'] or 0) / 60:,.0f} min for the "
        f"strongest baseline ({strong}) and {(no['small_wait_p90_s'] or 0) / 60:,.0f} min with no guardrails; forgotten "
        f"runs burn {de['forgotten_gpu_hours']:,.0f} GPU-hours vs {sb['forgotten_gpu_hours']:,.0f} and "
        f"{no['forgotten_gpu_hours']:,.0f}; it completes {de['large_completed']} large experiments vs "
        f"{sb['large_completed']} and refuses {de['rejected_at_admission']} at admission."
    )
    spec = {k: v for k, v in s["design"]["spec"].items() if k != "label"}
    same = [k for k, v in s.get("guardrail_specs", {}).items() if v == spec]
    if same:
        agree = "and the two runs agree" if g["design"] == g[same[0]] else "yet the two runs differ"
        c3 += f" The design's guardrails are the same as the '{same[0]}' baseline's, {agree}."
    secs.append(
        Section(
            "3. Guardrails for experimentation at scale",
            fig_html(fig2, "l13guard") + table_html(["guardrails", *keys], rows),
            c3,
        )
    )
    f.append(c3)
    ro = s["rollout"]
    rows = [
        [r["policy"], r["detector"], f"{r['bad_change_alive_min']:,.1f}", f"{r['bad_exposure_fleet_min']:,.1f}",
         f"{r['false_rollbacks_per_100_good']:.1f}", f"{r['good_change_full_rollout_min']:,.1f}"]
        for r in ro
    ]  # fmt: skip
    least = min(ro, key=lambda r: r["bad_exposure_fleet_min"])
    fastest = min(ro, key=lambda r: r["bad_change_alive_min"])
    fr = {
        k: [r["false_rollbacks_per_100_good"] for r in ro if r["detector"].startswith(k)] for k in ("fast", "careful")
    }
    slow = max(ro, key=lambda r: r["good_change_full_rollout_min"])
    quick_ = min(ro, key=lambda r: r["good_change_full_rollout_min"])
    c4 = (
        f"A bad change (0.5 sigma on one per-minute sample) does the least damage under {least['policy']} with the "
        f"{least['detector']} detector ({least['bad_exposure_fleet_min']:.1f} fleet-minutes of exposure), though it lives "
        f"{least['bad_change_alive_min']:.0f} min; it is caught fastest under {fastest['policy']} / {fastest['detector']} "
        f"({fastest['bad_change_alive_min']:.0f} min, exposure {fastest['bad_exposure_fleet_min']:.1f}). The fast "
        f"detector falsely rolls back {min(fr['fast']):.1f}-{max(fr['fast']):.1f} of 100 good changes against "
        f"{min(fr['careful']):.1f}-{max(fr['careful']):.1f} for the careful one; a good change's full rollout takes "
        f"{slow['good_change_full_rollout_min']:,.0f} min under {slow['policy']} / {slow['detector']} against "
        f"{quick_['good_change_full_rollout_min']:,.0f} min under {quick_['policy']} / {quick_['detector']}."
    )
    html4, c4s = render_rollback(s["rollback"])
    secs.append(Section("4. Rollback speed vs correctness: rollout policies simulated", html4, c4s))
    f.append(c4s)
    secs.append(
        Section(
            "4b. Cross-check: the samples a detector needs (closed form)",
            table_html(
                [
                    "rollout",
                    "detector",
                    "bad change alive (min)",
                    "exposure (fleet-min)",
                    "false rollbacks / 100 good",
                    "good change full rollout (min)",
                ],
                rows,
            ),  # fmt: skip
            c4,
        )
    )
    f.append(c4)
    sub = "Seed section 13; every number computed by this run (workloads and scenarios written beside this report)."
    return render_page(f"Lab 13: {TITLE}", secs, findings=f, subtitle=sub)
