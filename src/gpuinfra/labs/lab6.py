"""Lab 6: GPU scheduling and placement: "Why 'Any Free GPU' Is a Lie" (seed section 6).

Activities (seed 6.7), each a step below:
1. Explain why GPU scheduling cannot rely on naive bin-packing.
2. Analyze how placement decisions affect cost and reliability.
3. Design a GPU scheduling policy under competing workload demands (``--design FILE``).
4. Simulate scheduling outcomes under different policy constraints.
5. Present: the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import yaml

from gpuinfra.errors import UserError
from gpuinfra.fill import run_grid
from gpuinfra.io.scenario import QuotasSpec, SchedulerSpec, default_scenario_text, parse_scenario, with_quotas
from gpuinfra.io.traces import openb_node_list, read_openb_nodes
from gpuinfra.report.fill_report import COLORS, curve_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.rng import Rngs
from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.fill import PAPER_POLICIES, run_fill
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.scheduler import Framework
from gpuinfra.sim.workload import Pod, PodTable

TITLE = "Why 'Any Free GPU' Is a Lie"
DESIGN = Path(__file__).parent / "designs" / "lab6-policy.yaml"


# -- 1. Explain -------------------------------------------------------------------------------


def explain_counting() -> dict[str, Any]:
    """Three small clusters where the GPU count says yes and the scheduler says no."""
    cases = []

    def case(title, pools, held, pod, why):
        c = ClusterState.from_pools(pools)
        pods = PodTable([pod])
        for node, devs, milli in held:
            from gpuinfra.sim.cluster import Allocation

            c.allocate(Allocation(-1, node, devs, milli, 0, 0))
        free_gpus = float(np.where(c.dev_free > 0, c.dev_free, 0).sum()) / 1000
        r = Framework(Profile(), c, pods, Rngs(0).stream("scheduler")).schedule(0)
        cases.append(
            {
                "case": title,
                "free_gpus_by_count": free_gpus,
                "asks": pod.num_gpu * pod.gpu_milli / 1000,
                "placed": r.alloc is not None,
                "scheduler_says": r.status.message() if r.alloc is None else f"placed on node {r.alloc.node}",
                "why": why,
            }
        )

    case(
        "2-GPU job on two half-empty nodes",
        [NodePool("n", "A100-80GB", 2, 64000, 262144, 2)],
        [(0, (0,), 1000), (1, (0,), 1000)],
        Pod("train", 0, 1, 8000, 32768, 2, 1000),
        "a pod's GPUs must be on one node; 1 + 1 free is not 2",
    )
    case(
        "half-GPU pod on two 30%-free GPUs",
        [NodePool("n", "T4", 2, 64000, 262144, 1)],
        [(0, (0,), 700), (0, (1,), 700)],
        Pod("infer", 0, 1, 4000, 8192, 1, 500),
        "a shared-GPU pod must fit on one GPU; 0.3 + 0.3 is not 0.5",
    )
    case(
        "V100-only pod with free T4s",
        [NodePool("t", "T4", 4, 64000, 262144, 1), NodePool("v", "V100-32GB", 4, 64000, 262144, 1)],
        [(1, (0, 1, 2, 3), 1000)],
        Pod("cuda-v100", 0, 1, 4000, 8192, 1, 1000, ("V100-32GB",)),
        "GPU models are not interchangeable; 4 free T4s do not serve a V100 job",
    )
    return {"cases": cases}


# -- 2./4. fill runs -----------------------------------------------------------------------------


@dataclass
class Lab6Config:
    seeds: list[int]
    constraint_lists: list[str]
    constraint_policies: list[str]
    mixed_jobs: int


def config(quick: bool) -> Lab6Config:
    if quick:
        return Lab6Config([1], ["default", "gpushare60", "gpuspec33", "multigpu50"], ["bestfit", "packing", "fgd"], 600)
    return Lab6Config(
        [1, 2, 3],
        ["default", "gpushare20", "gpushare60", "gpushare100", "gpuspec10", "gpuspec33", "multigpu20", "multigpu50"],
        list(PAPER_POLICIES),
        3000,
    )


def price_per_gpu_hour() -> tuple[float, str]:
    """Capacity-weighted mean USD per GPU-hour of the openb cluster under the default scenario's price book."""
    from gpuinfra.io.scenario import _price_book

    sc = parse_scenario(default_scenario_text(), "builtin:openb-default")
    pools = read_openb_nodes(openb_node_list("gpu_node"))
    models = tuple(dict.fromkeys(p.gpu_model for p in pools if p.gpu_model))
    book = _price_book(sc.prices, models)
    gpus = {m: sum(p.count * p.gpus_per_node for p in pools if p.gpu_model == m) for m in models}
    priced = {m: book.usd_per_gpu_hour[m] for m in models if book.usd_per_gpu_hour[m] is not None}
    avg = sum(priced[m] * gpus[m] for m in priced) / sum(gpus[m] for m in priced)
    return avg, "capacity-weighted mean of the default scenario's price book (G1-G3 priced as V100-32GB, an assumption)"


def blast_radius(pools: list[NodePool], quick: bool) -> dict[str, Any]:
    """Pods lost when one node fails, at 60% arrived load, packing vs spreading placement."""
    from gpuinfra.io.traces import openb_pod_list, read_openb_static

    base = read_openb_static(openb_pod_list("default"))
    out = {}
    for policy in ("mostallocated", "bestfit", "fgd", "spread"):
        r = run_fill(pools, base, policy, 1, load=0.6 if quick else 0.6, snapshot_pct=60)
        snap = r.snapshot or {"pods_per_node": [0], "gpus_per_node": [0]}
        pods = np.array(snap["pods_per_node"])
        gpus = np.array(snap["gpus_per_node"])
        used = pods > 0
        out[policy] = {
            "nodes_in_use": int(used.sum()),
            "nodes_empty": int((~used).sum()),
            "mean_pods_lost_per_node_failure": float(pods.mean()),
            "mean_pods_lost_if_failed_node_was_in_use": float(pods[used].mean()) if used.any() else 0.0,
            "max_pods_on_one_node": int(pods.max()),
            "p99_pods_on_one_node": float(np.percentile(pods, 99)),
            "max_gpus_of_work_on_one_node": float(gpus.max()),
            "pods_hist": np.bincount(pods).tolist(),
        }
    return out


# -- 3. Design ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    scheduler: SchedulerSpec
    quotas: QuotasSpec | None = None

    def profile(self) -> Profile:
        return with_quotas(self.scheduler.profile(), self.quotas)

    def as_yaml(self) -> str:
        d: dict[str, Any] = {"scheduler": self.scheduler.model_dump(mode="json")}
        if self.quotas is not None:
            d["quotas"] = self.quotas.model_dump(mode="json")
        return yaml.safe_dump(d, sort_keys=False)


def load_design(path: Path | None) -> tuple[Design, str]:
    """A design is a `scheduler:` block (as in a scenario) and, optionally, a `quotas:` block."""
    p = path or DESIGN
    label = str(p) if path else "builtin:lab6-policy.yaml"
    if not p.exists():
        raise UserError("design file not found", where=str(p), fix="give a YAML file with a `scheduler:` block")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"YAML syntax error: {e}", where=label) from None
    if not isinstance(data, dict) or "scheduler" not in data:
        raise UserError(
            "a design needs a `scheduler:` block",
            where=label,
            expected="scheduler: {queue_sort, filters, scores, reserve, preemption}, optional quotas:",
        )
    extra = set(data) - {"scheduler", "quotas"}
    if extra:
        raise UserError(
            f"unknown top-level key(s) {', '.join(sorted(extra))}",
            where=label,
            expected="scheduler and (optionally) quotas",
        )
    from pydantic import ValidationError

    try:
        q = data.get("quotas")
        return Design(
            SchedulerSpec.model_validate(data["scheduler"]), QuotasSpec.model_validate(q) if q is not None else None
        ), label
    except ValidationError as e:
        err = e.errors()[0]
        raise UserError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}", where=label) from None


def mixed_workload(n: int, seed: int) -> list[Pod]:
    """Competing demand: long multi-GPU training (priority 0) and short shared-GPU inference (priority 100).

    Illustrative parameters (not measurements): 12 jobs an hour, training 40% of them, 2/4/8 GPUs,
    log-normal duration with median 3 h; inference 60%, 250 or 500 milli of one GPU, median 20 min.
    On 96 GPUs that offers a load near saturation (the lab computes and reports it), where the
    policy has to choose who waits.
    """
    rng = Rngs(seed).stream("workload")
    t = np.cumsum(rng.exponential(3600.0 / 12.0, size=n))
    pods = []
    for j in range(n):
        if rng.random() < 0.4:
            g = int(rng.choice([2, 4, 8], p=[0.4, 0.35, 0.25]))
            pods.append(
                Pod(
                    f"train-{j:05d}",
                    float(t[j]),
                    float(3 * 3600 * np.exp(0.8 * rng.standard_normal())),
                    8000 * g,
                    65536 * g,
                    g,
                    1000,
                    (),
                    0,
                    "BE",
                    "training",
                )
            )
        else:
            m = int(rng.choice([250, 500]))
            pods.append(
                Pod(
                    f"infer-{j:05d}",
                    float(t[j]),
                    float(1200 * np.exp(0.6 * rng.standard_normal())),
                    4000,
                    16384,
                    1,
                    m,
                    (),
                    100,
                    "LS",
                    "inference",
                )
            )
    return pods


def offered_load(pods: list[Pod], gpus: int) -> float:
    """GPU-time the pods ask for, over the GPU-time the cluster offers while they arrive."""
    span = max(p.submit_s for p in pods) - min(p.submit_s for p in pods)
    return sum(p.gpu_milli_total / 1000 * p.duration_s for p in pods) / max(span * gpus, 1e-9)


def evaluate_designs(design: Design, quick: bool) -> dict[str, Any]:
    pools = [NodePool("a100", "A100-80GB", 8, 96000, 1179648, 12)]
    pods = mixed_workload(config(quick).mixed_jobs, 7)
    candidates = {
        "FIFO + first fit": Profile(queue_sort="FIFO", preemption=False),
        "FIFO + spread": SchedulerSpec(
            queue_sort="FIFO", scores=[{"name": "LeastAllocated"}], preemption=False
        ).profile(),
        "priority + preemption + best fit": SchedulerSpec(
            scores=[{"name": "BestFit"}], reserve="PolicyDevices"
        ).profile(),
        "design": design.profile(),
    }
    out = {}
    for name, prof in candidates.items():
        eng = ReplayEngine(
            ClusterState.from_pools(pools), PodTable(pods), prof, 7, sample_interval_s=3600, log_events=False
        )
        r = eng.run()
        res = {}
        for owner in ("training", "inference"):
            idx = [i for i in range(len(r.pods)) if r.pods.owners[i] == owner]
            w = np.array([r.start_s[i] - r.pods.submit_s[i] for i in idx if not np.isnan(r.start_s[i])])
            res[owner] = {
                "pods": len(idx),
                "wait_p50_s": float(np.percentile(w, 50)) if len(w) else None,
                "wait_p90_s": float(np.percentile(w, 90)) if len(w) else None,
                "wait_p99_s": float(np.percentile(w, 99)) if len(w) else None,
            }
        tot = r.recorder.totals()
        cap = tot["allocated"] + tot["idle"] + tot["unavailable"]
        res["allocation_ratio"] = tot["allocated"] / cap if cap else 0.0
        res["mean_fragmented_gpus"] = float(r.recorder.frag_ms.sum()) / max(r.horizon_s - r.recorder.start_s, 1) / 1000
        res["makespan_h"] = (r.horizon_s - r.recorder.start_s) / 3600
        res["preemptions"] = int(r.preemptions)
        res["victims"] = int(r.preempted_times.sum())
        res["lost_gpu_hours"] = float(sum(ms for _, _, ms in r.lost_runs)) / 3.6e6
        out[name] = res
    return out


# -- the lab -----------------------------------------------------------------------------------


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    cfg = config(quick)
    spec, design_label = load_design(design)
    out_dir.mkdir(parents=True, exist_ok=True)
    pools = read_openb_nodes(openb_node_list("gpu_node"))
    n_gpus = sum(p.count * p.gpus_per_node for p in pools)

    # 1. Explain
    ex = explain_counting()
    default_runs = run_grid(["default"], list(PAPER_POLICIES), cfg.seeds, workers=workers)
    at100 = {
        r.policy: next(x for x in r.rows if x["arrived_pct"] == 100) for r in default_runs if r.seed == cfg.seeds[0]
    }
    first_fail = {}
    for r in default_runs:
        if r.seed != cfg.seeds[0]:
            continue
        # the first arrived-load percentage where allocation fell 1 point behind arrived demand
        first_fail[r.policy] = next((x["arrived_pct"] for x in r.rows if x["arrived_pct"] - x["alloc_pct"] > 1.0), None)

    # 2. Analyze: cost and reliability
    price, price_src = price_per_gpu_hour()
    cost = {
        p: {
            "unallocated_gpus": v["unalloc_pct"] / 100 * n_gpus,
            "usd_per_day": v["unalloc_pct"] / 100 * n_gpus * price * 24,
        }
        for p, v in at100.items()
    }
    blast = blast_radius(pools, quick)

    # 3. Design
    designs = evaluate_designs(spec, quick)

    # 4. Simulate under policy constraints
    cons = run_grid(cfg.constraint_lists, cfg.constraint_policies, cfg.seeds, workers=workers)
    cons_tab: dict[str, dict[str, float]] = {}
    for w in cfg.constraint_lists:
        cons_tab[w] = {}
        for p in cfg.constraint_policies:
            vals = [
                next(x["unalloc_pct"] for x in r.rows if x["arrived_pct"] == 100)
                for r in cons
                if r.workload == w and r.policy == p
            ]
            cons_tab[w][p] = float(np.mean(vals))

    summary = {
        "schema": "gpuinfra.lab6/1",
        "quick": quick,
        "seeds": cfg.seeds,
        "explain": ex,
        "fill_at_100pct": at100,
        "allocation_lags_demand_from_pct": first_fail,
        "price_usd_per_gpu_hour": price,
        "price_source": price_src,
        "idle_cost": cost,
        "blast_radius_at_60pct": blast,
        "design": {
            "file": design_label,
            "results": designs,
            "offered_load": offered_load(mixed_workload(cfg.mixed_jobs, 7), 96),
        },
        "constraints_unalloc_pct_at_100": cons_tab,
    }
    from gpuinfra.io.results import write_json

    write_json(out_dir / "summary.json", summary)
    html = render(summary, default_runs, n_gpus, spec)
    (out_dir / "report.html").write_text(html)
    return out_dir / "report.html"


def render(s: dict[str, Any], default_runs, n_gpus: int, spec: Design) -> str:
    f: list[str] = []
    sections: list[Section] = []
    # 1
    rows = [
        [
            c["case"],
            f"{c['free_gpus_by_count']:g}",
            f"{c['asks']:g}",
            "yes" if c["placed"] else "no",
            c["scheduler_says"],
        ]
        for c in s["explain"]["cases"]
    ]
    refused = sum(1 for c in s["explain"]["cases"] if not c["placed"] and c["free_gpus_by_count"] >= c["asks"])
    sections.append(
        Section(
            "1. Explain: a GPU count is not a placement",
            table_html(["case", "GPUs free by count", "pod asks", "fits?", "the scheduler says"], rows),
            claim=f"In {refused} of {len(rows)} small clusters the free-GPU count covers the "
            "request and the pod still cannot run.",
            text=" ".join(c["why"][:1].upper() + c["why"][1:] + "." for c in s["explain"]["cases"]),
        )
    )
    at = s["fill_at_100pct"]
    best = min(at, key=lambda p: at[p]["unalloc_pct"])
    worst = max(at, key=lambda p: at[p]["unalloc_pct"])
    lag = s["allocation_lags_demand_from_pct"]
    sections.append(
        Section(
            "1. Explain, at cluster scale: the openb trace filled to 130%",
            fig_html(
                curve_figure(
                    default_runs, "default", "unalloc_pct", "Unallocated GPU share as pods arrive", "% of GPU capacity"
                ),
                "lab6-fill",
            ),
            claim=(
                f"When arrived demand equals capacity, {worst} leaves {at[worst]['unalloc_pct']:.1f}% of the "
                f"{n_gpus:,} GPUs unallocated ({at[worst]['unalloc_pct'] / 100 * n_gpus:,.0f} GPUs) and {best} "
                f"{at[best]['unalloc_pct']:.1f}%, although by count every one of them is free to take a pod."
            ),
            text=(
                f"Allocation first falls a point behind arrived demand at {lag.get(worst)}% load under {worst} and at "
                f"{lag.get(best)}% under {best}: from there on pods fail while GPUs sit idle, because the idle GPUs are "
                "the wrong shape (partly used, on the wrong model, or too few on one node)."
            ),
        )
    )
    f.append(sections[-1].claim)
    # 2 cost
    cost = s["idle_cost"]
    rows = [
        [p, f"{at[p]['unalloc_pct']:.2f}", f"{cost[p]['unallocated_gpus']:,.0f}", f"{cost[p]['usd_per_day']:,.0f}"]
        for p in sorted(cost, key=lambda p: cost[p]["usd_per_day"])
    ]
    diff = cost[worst]["usd_per_day"] - cost[best]["usd_per_day"]
    sections.append(
        Section(
            "2. Analyze: placement is a cost lever",
            table_html(["policy", "unallocated % at 100% load", "stranded GPUs", "USD per day"], rows, {1, 2, 3}),
            claim=f"On a full cluster, {best} instead of {worst} puts about ${diff:,.0f} a day of GPUs "
            f"back to work (at ${s['price_usd_per_gpu_hour']:.2f} per GPU-hour).",
            text=f"Price: {s['price_source']}.",
        )
    )
    f.append(sections[-1].claim)
    # 2 reliability
    b = s["blast_radius_at_60pct"]
    fig = go.Figure()
    for p, v in b.items():
        h = np.array(v["pods_hist"])
        fig.add_trace(go.Bar(x=np.arange(len(h)), y=h, name=p, marker_color=COLORS.get(p, None)))
    fig.update_layout(
        title="Pods per node at 60% load", xaxis_title="pods on the node", yaxis_title="nodes", barmode="group"
    )
    rows = [
        [
            p,
            v["nodes_in_use"],
            v["nodes_empty"],
            f"{v['mean_pods_lost_if_failed_node_was_in_use']:.2f}",
            v["max_pods_on_one_node"],
            f"{v['max_gpus_of_work_on_one_node']:.2f}",
        ]
        for p, v in b.items()
    ]
    pack, spread = b["mostallocated"], b["spread"]
    sections.append(
        Section(
            "2. Analyze: placement is a reliability lever",
            table_html(
                [
                    "policy",
                    "nodes in use",
                    "nodes empty",
                    "pods lost per failure of a busy node",
                    "max pods on a node",
                    "max GPUs of work on a node",
                ],
                rows,
                {1, 2, 3, 4, 5},
            )
            + fig_html(fig, "lab6-blast"),
            claim=(
                f"Packing (MostAllocated) leaves {pack['nodes_empty']:,} nodes empty, spare capacity for whole-node "
                f"jobs and drains, but a failure of a busy node takes {pack['mean_pods_lost_if_failed_node_was_in_use']:.1f} "
                f"pods on average (up to {pack['max_pods_on_one_node']}); spreading leaves {spread['nodes_empty']:,} empty "
                f"and loses {spread['mean_pods_lost_if_failed_node_was_in_use']:.1f} (up to {spread['max_pods_on_one_node']})."
            ),
        )
    )
    f.append(sections[-1].claim)
    # 3 design
    d = s["design"]["results"]
    rows = [
        [
            n,
            f"{v['inference']['wait_p90_s']:,.0f}",
            f"{v['inference']['wait_p99_s']:,.0f}",
            f"{v['training']['wait_p90_s']:,.0f}",
            f"{100 * v['allocation_ratio']:.1f}",
            f"{v['mean_fragmented_gpus']:.1f}",
            v["victims"],
            f"{v['lost_gpu_hours']:,.1f}",
            f"{v['makespan_h']:.1f}",
        ]
        for n, v in d.items()
    ]
    base = {n: v for n, v in d.items() if n != "design"}
    best_base = min(base, key=lambda n: base[n]["inference"]["wait_p90_s"] or 0)
    dv = d["design"]
    sections.append(
        Section(
            "3. Design: a policy for competing training and inference demand",
            table_html(
                [
                    "policy",
                    "inference wait p90 s",
                    "inference wait p99 s",
                    "training wait p90 s",
                    "allocation %",
                    "mean fragmented GPUs",
                    "pods preempted",
                    "GPU-hours lost to preemption",
                    "makespan h",
                ],
                rows,
                {1, 2, 3, 4, 5, 6, 7, 8},
            ),
            claim=(
                f"The design ({s['design']['file']}) gives inference a 90th-percentile wait of "
                f"{dv['inference']['wait_p90_s']:,.0f} s against {base[best_base]['inference']['wait_p90_s']:,.0f} s for "
                f"the best baseline ({best_base}), while training's p90 wait is {dv['training']['wait_p90_s']:,.0f} s "
                f"(baseline {base[best_base]['training']['wait_p90_s']:,.0f} s); it preempted {dv['victims']:,} pods "
                f"and threw away {dv['lost_gpu_hours']:,.1f} GPU-hours of their work to get there."
            ),
            text=(
                "12 nodes of 8 x A100-80GB; training jobs (2-8 GPUs, hours) and inference pods (a quarter or half "
                f"of a GPU, minutes) arrive together, offering {100 * s['design']['offered_load']:.0f}% of the "
                "cluster's GPU-time over the arrival period. The design under test:"
            ),
        )
    )
    sections[-1].html += "<pre>" + html_escape(spec.as_yaml()) + "</pre>"
    f.append(sections[-1].claim)
    # 4 constraints
    cons = s["constraints_unalloc_pct_at_100"]
    pols = list(next(iter(cons.values())))
    fig = go.Figure()
    for p in pols:
        fig.add_trace(go.Bar(x=list(cons), y=[cons[w][p] for w in cons], name=p, marker_color=COLORS.get(p)))
    fig.update_layout(
        title="Unallocated GPUs at 100% arrived load, by workload constraint",
        barmode="group",
        yaxis_title="% of capacity",
    )
    spread_w = {w: max(v.values()) - min(v.values()) for w, v in cons.items()}
    wmax = max(spread_w, key=spread_w.get)
    hardest = max(cons, key=lambda w: min(cons[w].values()))
    sections.append(
        Section(
            "4. Simulate: outcomes under different policy constraints",
            fig_html(fig, "lab6-constraints"),
            claim=(
                f"The policy matters most on {wmax} (a {spread_w[wmax]:.1f}-point spread between policies) and the "
                f"hardest workload is {hardest}, where even the best policy leaves {min(cons[hardest].values()):.1f}% "
                "unallocated."
            ),
            text=(
                "gpushareNN: NN% of GPU demand from GPU-sharing pods; gpuspecNN: NN% of GPU pods restricted to a GPU "
                "model; multigpuNN: NN% of demand from multi-GPU pods (Alibaba openb variants)."
            ),
        )
    )
    f.append(sections[-1].claim)
    sub = (
        f"Seed section 6, every activity run now: {'quick' if s['quick'] else 'full'} mode, seeds {s['seeds']}. "
        "Alibaba openb trace (Weng et al., ATC '23) on its 1,213-node, 6,212-GPU cluster."
    )
    return render_page(f"Lab 6: {TITLE}", sections, findings=f, subtitle=sub)
