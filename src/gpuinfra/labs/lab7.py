"""Lab 7: AI workload execution models: "Execution Semantics of AI Workloads" (seed section 7).

Activities (seed 7.6), each a step below, every one a run of the simulator with the
``execution`` subsystem (sim/execution.py) and node faults at Llama 3's rate:
1. Explain why training and inference need different execution semantics: one training gang,
   one sharded batch-inference job and a fleet of service replicas on the same GPUs under the
   same faults; blast radius, GPU-hours lost per failure, what "complete" means for each.
2. Analyze retry behaviour across workload types: Never / OnFailure / Always on each kind, and
   on a batch job with an application bug.
3. Design checkpointing for a long-running job (``--design FILE``: storage tier, sync/async,
   interval; default ``designs/lab7-checkpoint.yaml``), evaluated in the closed form and in the
   simulator against the built-in strategies; the headline compares it with the best of them.
4. Compare batch jobs and long-running services under failure as the failure rate grows.
5. Execution phases: GPU-hours per phase and a Chrome/Perfetto trace (``trace.json``).
6. Present: the report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.io.designs import CheckpointFile, load_model
from gpuinfra.labs import write_lab, write_lab_file
from gpuinfra.labs._jobs import DAY, simulate_jobs
from gpuinfra.models.checkpoint import CheckpointJob, cost, daly_interval, evaluate, plan, young_interval
from gpuinfra.models.reliability import LLAMA3_RATE_PER_1000_NODE_DAYS
from gpuinfra.report.checkpoint_fig import plan_figure
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import usd_signed
from gpuinfra.sim.execution import KindSpec, job_pods
from gpuinfra.sim.faults import FaultClass

TITLE = "Execution Semantics of AI Workloads"
DESIGN = "a YAML checkpointing design (storage, mode, interval, replicate_to)"
DESIGN_EXAMPLE = "lab7-checkpoint.yaml"
DEFAULT_DESIGN = Path(__file__).parent / "designs" / DESIGN_EXAMPLE
RATE = LLAMA3_RATE_PER_1000_NODE_DAYS / 1000.0
REPAIR_S = 3600.0
"""A node fault takes the node down for an hour (reboot and health checks) [assumption]."""


def faults(mult: float = 1.0) -> list[FaultClass]:
    """Node faults at ``mult`` x Llama 3's 3.79 interruptions per 1,000 node-days (facts 3.1 [D])."""
    return [FaultClass("node", RATE * mult, "reboot_node", REPAIR_S, scope="node")]


def _ckpt_kind(owner: str, job: CheckpointJob, interval_s: float, policy: str = "Always") -> KindSpec:
    c = cost(job, interval_s)
    return KindSpec(
        owner=owner,
        kind="training",
        restart_policy=policy,
        checkpoint_interval_s=interval_s,
        checkpoint_stall_s=c.blocking_s,
        checkpoint_lag_s=c.durable_lag_s,
        load_gb=c.node_shard_bytes / 1e9,
        storage=job.storage,
    )


def kinds_compare(nodes: int, days: float, seeds: list[int]) -> dict[str, Any]:
    """Activity 1: training gang vs batch shards vs service replicas, same GPUs, same faults."""
    job = CheckpointJob(params=70e9, gpus=nodes * 8, storage="nfs-flash", mode="async")
    work = days * DAY
    horizon = 1.5 * work
    specs = {
        "training": (job_pods("train", "train", nodes, 8, work), _ckpt_kind("train", job, 1800.0)),
        "batch inference": (
            job_pods("batch", "batch", nodes * 8 * 4, 1, work / 4, gang=False),
            KindSpec(owner="batch", kind="batch", load_gb=140.0 / 8, storage="nfs-flash"),
        ),
        "service": (
            job_pods("svc", "svc", nodes, 8, work, gang=False),
            KindSpec(owner="svc", kind="service", load_gb=140.0, storage="nfs-flash", slo_availability=0.999),
        ),
    }
    out: dict[str, Any] = {}
    for name, (pods, kind) in specs.items():
        rows = []
        for s in seeds:
            r = simulate_jobs(pods, [kind], nodes + 2, faults=faults(), seed=s, horizon_s=horizon)
            rows.append((r.jobs(), r.run))
        jobs = [j for jj, _ in rows for j in jj]
        failures = float(np.mean([sum(j["failures"] for j in jj) for jj, _ in rows]))
        phase: dict[str, float] = {}
        for j in jobs:
            for p, v in j["gpu_hours_by_phase"].items():
                phase[p] = phase.get(p, 0.0) + v / len(seeds)
        useful = phase.get("steady", 0.0)
        total = sum(phase.values())
        ends = []
        for _, run in rows:
            ends.append(max((float(x) for x in run.end_s if math.isfinite(x)), default=horizon) / DAY)
        blast = nodes * 8 if name == "training" else 8  # a node's GPUs: its shards, or its replica
        outcome = [j["outcome"] for j in jobs]
        out[name] = {
            "gpus": nodes * 8,
            "failures": failures,
            "blast_radius_gpus": blast,
            "gpu_hours": total,
            "useful_gpu_hours": useful,
            "overhead_gpu_hours": total - useful,
            # per failure: the work it threw away, the peers' wait, and one attempt's start-up on the GPUs it stops
            "overhead_per_failure": (
                (phase.get("lost work", 0.0) + phase.get("waiting for a replacement", 0.0)) / max(failures, 1)
                + (phase.get("startup", 0.0) + phase.get("warm-up", 0.0))
                / max(float(np.mean([sum(j["attempts"] for j in jj) for jj, _ in rows])), 1.0)
            ),
            "by_phase": phase,
            "finished_day": float(np.mean(ends)),
            "outcomes": {o: outcome.count(o) / len(seeds) for o in sorted(set(outcome))},
            "availability": float(np.mean([j["progress"] for j in jobs])) if name == "service" else None,
            # replica-hours not served per failure (a service pays failures as missing capacity)
            # (beyond the first start's startup and warm-up, which every replica pays once)
            "downtime_h_per_failure": (
                max(
                    (1 - float(np.mean([j["progress"] for j in jobs]))) * work * len(pods) / 3600
                    - len(pods) * (sum(jobs[0]["startup_s"].values()) + kind.warmup_s) / 3600,
                    0.0,
                )
                / max(failures, 1)
                if name == "service"
                else None
            ),
        }
    return {"nodes": nodes, "days": days, "seeds": len(seeds), "kinds": out}


def retries(nodes: int, seeds: list[int]) -> dict[str, Any]:
    """Activity 2: restart policies on each kind (hardware faults x 20) and on a buggy batch job."""
    job = CheckpointJob(params=70e9, gpus=nodes * 8, storage="nfs-flash", mode="async")
    work = 2 * DAY
    cases = {
        "training (hardware faults)": lambda pol: (
            job_pods("train", "train", nodes, 8, work),
            _ckpt_kind("train", job, 1800.0, pol),
            faults(100.0),
        ),
        "batch inference (hardware faults)": lambda pol: (
            job_pods("batch", "batch", nodes * 8, 1, work / 4, gang=False),
            KindSpec(owner="batch", kind="batch", restart_policy=pol),
            faults(100.0),
        ),
        "service (hardware faults)": lambda pol: (
            job_pods("svc", "svc", nodes, 8, work, gang=False),
            KindSpec(owner="svc", kind="service", restart_policy=pol),
            faults(100.0),
        ),
        "batch job with a bug (exits 1 after 10 min)": lambda pol: (
            job_pods("buggy", "buggy", 8, 1, 3600.0, gang=False),
            KindSpec(owner="buggy", kind="batch", restart_policy=pol, fails_after_s=600.0),
            None,
        ),
    }
    out: dict[str, dict] = {}
    for case, mk in cases.items():
        out[case] = {}
        for pol in ("Never", "OnFailure", "Always"):
            pods, kind, fc = mk(pol)
            att, gh, prog, ok = [], [], [], []
            for s in seeds:
                jobs = simulate_jobs(pods, [kind], nodes + 2, faults=fc, seed=s, horizon_s=3 * work).jobs()
                att.append(sum(j["attempts"] for j in jobs))
                gh.append(sum(j["gpu_hours"] for j in jobs))
                prog.append(float(np.mean([j["progress"] for j in jobs])))
                ok.append(all(j["outcome"] in ("completed", "served at SLO") for j in jobs))
            out[case][pol] = {
                "attempts": float(np.mean(att)),
                "gpu_hours": float(np.mean(gh)),
                "progress": float(np.mean(prog)),
                "completed_share": float(np.mean(ok)),
            }
    return {"nodes": nodes, "fault_multiplier": 100.0, "work_days": work / DAY, "cases": out}


def checkpoint_design(design: CheckpointFile, nodes: int, days: float, seeds: list[int]) -> dict[str, Any]:
    """Activity 3: the design against built-in strategies, closed form and simulated."""
    base = CheckpointJob(params=405e9 * nodes / 2048, gpus=nodes * 8)
    lam = base.nodes * base.rate_per_1000_node_days / 1000 / DAY

    def interval(job: CheckpointJob, how) -> float:
        if isinstance(how, (int, float)):
            return float(how) * 60.0
        d = cost(job).blocking_s
        if how == "young":
            return young_interval(d, 1 / lam)
        if how == "daly":
            return daly_interval(d, 1 / lam)
        return plan(job).recommended.interval_s

    strategies = {
        "sync to NFS every hour": (CheckpointJob(**{**base.__dict__, "storage": "nfs-flash", "mode": "sync"}), 60),
        "sync to NFS at Young": (CheckpointJob(**{**base.__dict__, "storage": "nfs-flash", "mode": "sync"}), "young"),
        "async to S3 at the optimum": (
            CheckpointJob(**{**base.__dict__, "storage": "s3", "mode": "async", "writers_per_node": 10}),
            "optimal",
        ),
        "no checkpoints": (None, None),
    }
    d = design.checkpoint
    djob = CheckpointJob(
        **{
            **base.__dict__,
            "storage": d.storage,
            "mode": d.mode,
            "writers_per_node": d.writers_per_node,
            "pinned_staging": d.pinned_staging,
            "replicate_to": d.replicate_to,
        }
    )
    strategies[f"design: {design.name}"] = (djob, d.interval)
    work = days * DAY
    horizon = 2 * work
    out: dict[str, dict] = {}
    for name, (job, how) in strategies.items():
        if job is None:
            kind = KindSpec(owner="t", kind="training", restart_policy="Always", load_gb=0.0)
            closed = None
            iv = math.inf
        else:
            iv = interval(job, how)
            kind = _ckpt_kind("t", job, iv)
            closed = evaluate(job, iv).ettr
        finish, kept = [], []
        for s in seeds:
            r = simulate_jobs(
                job_pods("t", "t", nodes, 8, work), [kind], nodes + 2, faults=faults(), seed=s, horizon_s=horizon
            )
            j = r.jobs()[0]
            done = [float(x) for x in r.run.end_s if math.isfinite(x)]
            end = max(done) if j["outcome"] == "completed" and done else horizon
            finish.append(end)
            kept.append(j["progress"] * work)
        out[name] = {
            "interval_min": iv / 60 if math.isfinite(iv) else None,
            "blocking_s": cost(job, iv).blocking_s if job else 0.0,
            "ettr_closed_form": closed,
            "ettr_simulated": float(np.mean([k / f for k, f in zip(kept, finish)])),
            "finish_days": float(np.mean(finish)) / DAY,
            "finished_share": float(np.mean([f < horizon for f in finish])),
            "progress": float(np.mean(kept)) / work,
            "is_design": name.startswith("design:"),
        }
    baselines = {k: v for k, v in out.items() if not v["is_design"]}
    best = max(baselines, key=lambda k: baselines[k]["ettr_simulated"])
    p = plan(CheckpointJob(**{**djob.__dict__, "interval_s": None}))
    return {"nodes": nodes, "days": days, "params": base.params, "strategies": out, "best_baseline": best, "plan": p}


def batch_vs_service(nodes: int, seeds: list[int], mults: list[float]) -> dict[str, Any]:
    """Activity 4: a batch job and a service under growing failure rates."""
    work = 2 * DAY
    rows = []
    for m in mults:
        b_end, b_waste, b_ok, s_av, s_slo = [], [], [], [], []
        for s in seeds:
            rb = simulate_jobs(
                job_pods("b", "b", nodes * 8, 1, work / 2, gang=False),
                [KindSpec(owner="b", kind="batch", load_gb=20.0)],
                nodes + 1,
                faults=faults(m),
                seed=s,
                horizon_s=10 * work,
            )
            jb = rb.jobs()[0]
            b_ok.append(jb["outcome"] == "completed")
            if b_ok[-1]:
                b_end.append(max(float(x) for x in rb.run.end_s if math.isfinite(x)) / (work / 2))
            b_waste.append(1 - jb["gpu_hours_by_phase"].get("steady", 0) / jb["gpu_hours"])
            rs = simulate_jobs(
                job_pods("s", "s", nodes, 8, work, gang=False),
                [KindSpec(owner="s", kind="service", load_gb=140.0, slo_availability=0.999)],
                nodes + 1,
                faults=faults(m),
                seed=s,
                horizon_s=work,
            )
            js = rs.jobs()[0]
            s_av.append(js["progress"])
            s_slo.append(js["outcome"] == "served at SLO")
        rows.append(
            {
                "mult": m,
                "batch_makespan_stretch": float(np.mean(b_end)) if b_end else None,
                "batch_completed_share": float(np.mean(b_ok)),
                "batch_wasted_share": float(np.mean(b_waste)),
                "service_availability": float(np.mean(s_av)),
                "service_slo_met_share": float(np.mean(s_slo)),
            }
        )
    return {"nodes": nodes, "rows": rows}


def phase_risk(nodes: int, seeds: list[int]) -> dict[str, Any]:
    """Activity 5: where a large gang's failures land, by phase (faults at 20x the fleet rate)."""
    job = CheckpointJob(params=405e9 * nodes / 2048, gpus=nodes * 8, storage="nfs-flash", mode="sync")
    kind = _ckpt_kind("t", job, 1800.0)
    fails: dict[str, int] = {}
    hours: dict[str, float] = {}
    for s in seeds:
        j = simulate_jobs(
            job_pods("t", "t", nodes, 8, 30 * DAY), [kind], nodes + 4, faults=faults(20.0), seed=s, horizon_s=3 * DAY
        ).jobs()[0]
        for k, v in j["failures_by_phase"].items():
            fails[k] = fails.get(k, 0) + v
        for k, v in j["gpu_hours_by_phase"].items():
            hours[k] = hours.get(k, 0.0) + v
        startup = j["startup_s"]
    return {
        "nodes": nodes,
        "failures_by_phase": fails,
        "gpu_hours_by_phase": hours,
        "startup_s": startup,
        "seeds": len(seeds),
    }


def phases_trace(out_dir: Path) -> dict[str, Any]:
    """Activity 5: one small training job's attempts as a Chrome/Perfetto trace."""
    job = CheckpointJob(params=7e9, gpus=32, storage="nfs-flash", mode="sync")
    kind = _ckpt_kind("t", job, 1800.0)
    r = simulate_jobs(
        job_pods("t", "t", 4, 8, 0.5 * DAY),
        [kind],
        5,
        faults=faults(400.0),
        seed=4,
        horizon_s=2 * DAY,
        trace_max_attempts=400,
    )
    tr = r.execution.chrome_trace()
    write_lab_file(out_dir / "trace.json", json.dumps(tr))
    j = r.jobs()[0]
    names = sorted({e["name"] for e in tr["traceEvents"] if e["ph"] == "X"})
    return {
        "events": len(tr["traceEvents"]),
        "phases": names,
        "attempts": j["attempts"],
        "by_phase": j["gpu_hours_by_phase"],
        "startup_s": j["startup_s"],
    }


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    d = load_model(design or DEFAULT_DESIGN, CheckpointFile)
    seeds = [0, 1] if quick else [0, 1, 2, 3, 4]
    price = gpu_hour_price("H100-SXM").on_demand_usd or 0.0
    nodes = 16 if quick else 64
    ck_nodes = 64 if quick else 512
    s = {
        "schema": "gpuinfra.lab7/1",
        "quick": quick,
        "usd_per_gpu_hour": price,
        "design_file": str(design or DEFAULT_DESIGN),
        "kinds": kinds_compare(nodes, 7.0 if quick else 14.0, seeds),
        "retries": retries(4 if quick else 8, seeds),
        "checkpoint": checkpoint_design(d, ck_nodes, 7.0 if quick else 14.0, seeds),
        "batch_vs_service": batch_vs_service(
            4 if quick else 8, seeds, [1, 30, 100, 300] if quick else [1, 10, 30, 100, 300]
        ),
        "phases": phases_trace(out_dir),
        "phase_risk": phase_risk(64 if quick else 256, seeds),
    }
    p = s["checkpoint"].pop("plan")
    s["checkpoint"]["plan"] = {"recommended_min": p.recommended.interval_s / 60, "ettr": p.recommended.ettr}
    return write_lab(out_dir, s, render(s, p))


def _finish(v: dict) -> str:
    if v["finished_share"] == 1.0:
        return f"finishes in {v['finish_days']:.2f} days"
    return f"finishes in {v['finished_share']:.0%} of runs within {v['finish_days']:.0f} days ({v['progress']:.0%} of its work done on average)"


def render(s: dict[str, Any], p) -> str:
    f: list[str] = []
    secs: list[Section] = []
    price = s["usd_per_gpu_hour"]
    k = s["kinds"]
    kk = k["kinds"]
    rows = []
    for name, v in kk.items():
        rows.append(
            [
                name,
                f"{v['gpus']:,}",
                f"{v['failures']:.1f}",
                f"{v['blast_radius_gpus']:,}",
                f"{v['overhead_gpu_hours']:,.0f}",
                f"{v['overhead_per_failure']:,.0f}",
                f"{v['useful_gpu_hours'] / v['gpu_hours']:.1%}",
                ", ".join(f"{o} x{n:g}" for o, n in v["outcomes"].items()),
            ]
        )
    tr, ba, sv = kk["training"], kk["batch inference"], kk["service"]
    claim1 = (
        f"Under the same node faults ({tr['failures']:.1f} per run on {tr['gpus']:,} GPUs over {k['days']:g} days), one fault stops "
        f"{tr['blast_radius_gpus']:,} GPUs of the training gang but {ba['blast_radius_gpus']} of the batch job or the service; "
        f"each training failure costs {tr['overhead_per_failure']:,.0f} GPU-hours (lost work, peers waiting, one restart) against "
        f"{ba['overhead_per_failure']:,.0f} for a batch failure and {sv['overhead_per_failure']:,.0f} for a service failure, which instead "
        f"leaves {sv['downtime_h_per_failure'] * 60:,.0f} replica-minutes unserved (availability {sv['availability']:.3%}). "
        f"Training must checkpoint and restart as a gang; inference can retry a shard or a replica alone."
    )
    secs.append(
        Section(
            "1. Training vs inference: execution semantics under the same faults",
            table_html(
                [
                    "kind",
                    "GPUs",
                    "failures",
                    "GPUs stopped per failure",
                    "overhead GPU-h",
                    "overhead per failure",
                    "useful share",
                    "outcome",
                ],
                rows,
            ),
            claim1,
            "Node faults at Llama 3's rate (3.79 per 1,000 node-days, facts 3.1); a struck node reboots for 1 h (assumption). "
            "Training: 70B parameters, async checkpoints to NFS every 30 min; batch: 1-GPU shards retried alone; service: 8-GPU replicas restarted (Always). "
            "Complete means: training reached its step target, batch every shard exited 0, service served at least 99.9 % of its window.",
        )
    )
    f.append(claim1)
    rt = s["retries"]
    rows = []
    for case, pols in rt["cases"].items():
        for pol, v in pols.items():
            rows.append(
                [
                    case,
                    pol,
                    f"{v['attempts']:.1f}",
                    f"{v['gpu_hours']:,.0f}",
                    f"{v['progress']:.0%}",
                    f"{v['completed_share']:.0%}",
                ]
            )
    bug = rt["cases"]["batch job with a bug (exits 1 after 10 min)"]
    trn = rt["cases"]["training (hardware faults)"]
    claim2 = (
        f"With faults at {rt['fault_multiplier']:g}x the fleet rate, Never finishes the training job in {trn['Never']['completed_share']:.0%} of runs "
        f"(progress {trn['Never']['progress']:.0%}) while OnFailure and Always finish it in {trn['OnFailure']['completed_share']:.0%} and "
        f"{trn['Always']['completed_share']:.0%}. On a job with a bug, Always retries forever ({bug['Always']['attempts']:.0f} attempts, "
        f"{bug['Always']['gpu_hours']:,.0f} GPU-hours burned, ${bug['Always']['gpu_hours'] * price:,.0f}) and OnFailure stops at its backoffLimit "
        f"({bug['OnFailure']['attempts']:.0f} attempts, {bug['OnFailure']['gpu_hours']:,.0f} GPU-hours): retries heal transient faults, never bugs."
    )
    secs.append(
        Section(
            "2. Retry behaviour across workload types",
            table_html(["workload", "restart policy", "attempts", "GPU-hours", "progress", "completed"], rows),
            claim2,
            "Kubernetes semantics: OnFailure backs off 10 s doubling to 6 min and gives up after backoffLimit 6; Always backs off to 5 min (CrashLoopBackOff) and never gives up.",
        )
    )
    f.append(claim2)
    c = s["checkpoint"]
    st = c["strategies"]
    dname = next(n for n, v in st.items() if v["is_design"])
    dv, bn = st[dname], c["best_baseline"]
    bv = st[bn]
    rows = [
        [
            n,
            f"{v['interval_min']:.1f}" if v["interval_min"] else "-",
            f"{v['blocking_s']:.1f}",
            f"{v['ettr_closed_form']:.3f}" if v["ettr_closed_form"] is not None else "-",
            f"{v['ettr_simulated']:.3f}",
            f"{v['finish_days']:.2f}",
        ]
        for n, v in st.items()
    ]
    gain = (dv["ettr_simulated"] - bv["ettr_simulated"]) * c["nodes"] * 8 * c["days"] * 24
    verdict = "beats" if dv["ettr_simulated"] > bv["ettr_simulated"] else "does not beat"
    claim3 = (
        f"The design ({dname[8:]}) {verdict} the strongest built-in strategy ({bn}): simulated ETTR {dv['ettr_simulated']:.4f} against "
        f"{bv['ettr_simulated']:.4f}, finishing in {dv['finish_days']:.2f} days against {bv['finish_days']:.2f} "
        f"({gain:+,.0f} GPU-hours of useful work over {c['days']:g} days, {usd_signed(gain * price)}). "
        f"Without checkpoints the job {_finish(st['no checkpoints'])}. The planner recommends every {s['checkpoint']['plan']['recommended_min']:.1f} min for the design's tier and mode "
        f"(the model charges no fixed cost per checkpoint, such as metadata or coordination, so fast tiers get very short intervals)."
    )
    secs.append(
        Section(
            "3. Design: a checkpointing strategy for a long-running job",
            fig_html(plan_figure(p, f"The design's interval trade-off ({c['nodes'] * 8:,} GPUs)"), "plan")
            + table_html(
                ["strategy", "interval min", "GPU stall s", "ETTR closed form", "ETTR simulated", "finish days"], rows
            ),
            claim3,
            f"{c['params'] / 1e9:.0f}B parameters on {c['nodes'] * 8:,} GPUs, {c['days']:g} days of work. "
            "The closed form leaves out image pull and NCCL start-up; the simulation includes them, so its ETTR is lower.",
        )
    )
    f.append(claim3)
    bs = s["batch_vs_service"]["rows"]
    fig = line_figure(
        {
            "batch: makespan / ideal (completed runs)": [
                (r["mult"], r["batch_makespan_stretch"]) for r in bs if r["batch_makespan_stretch"] is not None
            ],
            "batch: completed (share of runs)": [(r["mult"], r["batch_completed_share"]) for r in bs],
            "service: availability": [(r["mult"], r["service_availability"]) for r in bs],
            "service: SLO met (share of runs)": [(r["mult"], r["service_slo_met_share"]) for r in bs],
        },
        "Batch vs service as the failure rate grows",
        "failure rate (x Llama 3's 3.79 per 1,000 node-days)",
        "ratio",
    )
    worst = bs[-1]
    stretch = f"{worst['batch_makespan_stretch']:.2f}x" if worst["batch_makespan_stretch"] is not None else "n/a"
    claim4 = (
        f"At {worst['mult']:g}x the fleet failure rate the batch job completes in {worst['batch_completed_share']:.0%} of runs (each shard may fail 6 times), "
        f"{stretch} slower than ideal with {worst['batch_wasted_share']:.1%} of its GPU-hours wasted, while the service keeps {worst['service_availability']:.2%} availability and meets its "
        f"99.9 % SLO in {worst['service_slo_met_share']:.0%} of runs (at 1x: {bs[0]['service_availability']:.3%}). A batch job absorbs failures as time; a service pays them as downtime."
    )
    secs.append(Section("4. Batch jobs vs long-running services under failure", fig_html(fig, "bvs"), claim4))
    f.append(claim4)
    ph = s["phases"]
    labels = list(kk)
    allp = sorted({p for v in kk.values() for p in v["by_phase"]} - {"steady"})
    fig = bar_figure(
        labels,
        {p: [kk[n]["by_phase"].get(p, 0.0) for n in labels] for p in allp},
        "GPU-hours outside steady work, by lifecycle phase",
        "GPU-hours",
        stacked=True,
    )
    sp = ph["startup_s"]
    claim5 = (
        f"Phases differ in what they hold and risk: the small training job's startup is {sum(sp.values()):.0f} s "
        f"(image pull {sp['image pull']:.0f} s, checkpoint load {sp['data/weights load']:.0f} s, NCCL init {sp['NCCL init']:.0f} s) with all GPUs held and idle; "
        f"its {ph['attempts']} attempts are in trace.json ({ph['events']:,} events, phases {', '.join(ph['phases'])}), which opens in ui.perfetto.dev."
    )
    pr = s["phase_risk"]
    fp, hp = pr["failures_by_phase"], pr["gpu_hours_by_phase"]
    nf = sum(fp.values())
    head = fp.get("startup", 0) + fp.get("warm-up", 0) + fp.get("waiting for a replacement", 0)
    tot_h = sum(hp.values())
    head_h = hp.get("startup", 0) + hp.get("warm-up", 0) + hp.get("waiting for a replacement", 0)
    claim5 += (
        f" On a {pr['nodes'] * 8:,}-GPU gang at 20x the fleet rate, {head} of {nf} failures ({head / max(nf, 1):.0%}) struck before the job "
        f"was back at work (startup {sum(pr['startup_s'].values()):.0f} s, warm-up, or waiting for a replacement), phases that took "
        f"{head_h / tot_h:.1%} of its GPU-hours; hardware faults here do not depend on the phase, so each phase's share of failures "
        f"follows its share of time, and the more often a job restarts, the more of its time is restart."
    )
    rows = [[p, f"{fp.get(p, 0)}", f"{hp.get(p, 0.0):,.0f}"] for p in sorted(set(fp) | set(hp))]
    secs.append(
        Section(
            "5. Execution phases: startup, warm-up, steady state, checkpoints, teardown",
            fig_html(fig, "phases") + table_html(["phase", f"failures ({pr['seeds']} runs)", "GPU-hours"], rows),
            claim5,
        )
    )
    f.append(claim5)
    sub = (
        "Seed section 7, every activity run now on the one simulator (sim/execution.py); numbers are means over seeds."
    )
    return render_page(f"Lab 7: {TITLE}", secs, findings=f, subtitle=sub)
