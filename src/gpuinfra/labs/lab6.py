"""Lab 6: GPU scheduling and placement: "Why 'Any Free GPU' Is a Lie" (seed section 6).

Activities (seed 6.7), each a step below:
1. Explain why GPU scheduling cannot rely on naive bin-packing.
2. Analyze how placement decisions affect cost and reliability.
3. Design a GPU scheduling policy under competing workload demands (``--design FILE``).
4. Simulate scheduling outcomes under different policy constraints.
5. Present: the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import yaml

from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.fill import run_grid
from gpuinfra.io.scenario import QuotasSpec, SchedulerSpec, default_scenario_text, parse_scenario, with_quotas
from gpuinfra.io.scenario_load import read_design_yaml
from gpuinfra.io.traces import openb_node_list, read_openb_nodes
from gpuinfra.report.fill_report import COLORS, curve_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import count
from gpuinfra.rng import Rngs
from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.fill import BEYOND_PAPER_POLICIES, PAPER_POLICIES, run_fill
from gpuinfra.sim.framework import (
    REGISTRY,
    FilterPlugin,
    Plugin,
    Profile,
    QueueSortPlugin,
    ReservePlugin,
    ScorePlugin,
)
from gpuinfra.sim.scheduler import Framework
from gpuinfra.sim.workload import Pod, PodTable, mixed_training_inference

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


BLAST_POLICIES = ("mostallocated", "bestfit", "fgd", "spread")


def blast_radius(pools: list[NodePool], quick: bool, tick: Callable[[], None] | None = None) -> dict[str, Any]:
    """Pods lost when one node fails, at 60% arrived load, packing vs spreading placement."""
    from gpuinfra.io.traces import openb_pod_list, read_openb_static

    base = read_openb_static(openb_pod_list("default"))
    out = {}
    for policy in BLAST_POLICIES:
        r = run_fill(pools, base, policy, 1, load=0.6, snapshot_pct=60)
        if tick:
            tick()
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
    data = read_design_yaml(p, label, lab=6)
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
        design = Design(
            SchedulerSpec.model_validate(data["scheduler"]), QuotasSpec.model_validate(q) if q is not None else None
        )
    except ValidationError as e:
        # the same blocks through the located loader: every problem with FILE:LINE and the user's value
        from gpuinfra.io.design_schema import Lab6Design
        from gpuinfra.io.scenario_load import load_model_file

        load_model_file(p, Lab6Design, label, what="a lab 6 design")
        err = e.errors()[0]  # not reached: the loader raises on the same data
        raise UserError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}", where=label) from None
    check_plugins(design.scheduler, label)
    return design, label


def check_plugins(spec: SchedulerSpec, label: str) -> None:
    """Every plugin the design names exists at its extension point, checked before any run.

    Raises UserError naming the design file and the field (``scheduler.scores[1].name``), the
    plugins that would fit there and the closest name.
    """
    from gpuinfra.sim import plugins  # noqa: F401  (fills the registry)

    named: list[tuple[str, str, type[Plugin]]] = [("scheduler.queue_sort", spec.queue_sort, QueueSortPlugin)]
    named += [(f"scheduler.filters[{j}]", n, FilterPlugin) for j, n in enumerate(spec.filters)]
    named += [(f"scheduler.scores[{j}].name", e.name, ScorePlugin) for j, e in enumerate(spec.scores)]
    named.append(("scheduler.reserve", spec.reserve, ReservePlugin))
    for field_name, name, kind in named:
        cls = REGISTRY.get(name)
        if cls is None or not issubclass(cls, kind):
            choices = sorted(n for n, c in REGISTRY.items() if issubclass(c, kind))
            point = kind.__name__.removesuffix("Plugin")
            raise UserError(
                f"unknown {point} plugin '{name}'" if cls is None else f"'{name}' is not a {point} plugin",
                where=f"{label}: {field_name}",
                expected=f"a {point} plugin: " + ", ".join(choices),
                fix=did_you_mean(name, choices) or "list plugins with `gpuinfra plugins`",
            )


def mixed_workload(n: int, seed: int) -> list[Pod]:
    """The mixed training + inference workload (sim/workload.mixed_training_inference), seeded."""
    return mixed_training_inference(n, Rngs(seed).stream("workload"))


def offered_load(pods: list[Pod], gpus: int) -> float:
    """GPU-time the pods ask for, over the GPU-time the cluster offers while they arrive."""
    span = max(p.submit_s for p in pods) - min(p.submit_s for p in pods)
    return sum(p.gpu_milli_total / 1000 * p.duration_s for p in pods) / max(span * gpus, 1e-9)


def evaluate_designs(design: Design, quick: bool, tick: Callable[[], None] | None = None) -> dict[str, Any]:
    """The design and three baselines replayed on one mixed training + inference workload.

    Per policy and owner class: pods, pods never started, wait p50/p90/p99 (s, started pods);
    plus allocation ratio, mean fragmented GPUs, makespan (h), preemptions and GPU-hours lost.
    ``tick`` is called after each replay (progress)."""
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
            w = np.array([r.first_start_s[i] - r.pods.submit_s[i] for i in idx if not np.isnan(r.first_start_s[i])])
            res[owner] = {
                "pods": len(idx),
                "not_started": int(sum(1 for i in idx if np.isnan(r.first_start_s[i]))),
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
        if tick:
            tick()
    return out


# -- the lab -----------------------------------------------------------------------------------


ProgressFn = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called after each of the lab's runs."""


@contextmanager
def _progress(total: int, progress: ProgressFn | None) -> Iterator[Callable[[str], None]]:
    """Yields ``advance(step)``, to call after each run.

    With a ``progress`` callback it reports ``(step, done, total)`` there. Otherwise, when stderr
    is already under a rich live display (the CLI's status spinner redirects it), one line per
    finished step is printed above that display; else a transient rich progress bar of its own.
    """
    import sys
    import time

    from rich.console import Console
    from rich.file_proxy import FileProxy
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    done = 0
    if progress is not None:

        def report(step: str) -> None:
            nonlocal done
            done += 1
            progress(step, done, total)

        yield report
        return
    if isinstance(sys.stderr, FileProxy):
        # plain writes to the proxy land above the live display (a rich Console would bypass it)
        t0 = time.perf_counter()
        current = [""]

        def say(step: str) -> None:
            sys.stderr.write(f"lab 6 [{done}/{total}] {step}: done ({time.perf_counter() - t0:.0f} s)\n")
            sys.stderr.flush()

        def line(step: str) -> None:
            nonlocal done
            if current[0] and step != current[0]:
                say(current[0])
            current[0] = step
            done += 1
            if done == total:
                say(step)

        yield line
        return
    prog = Progress(
        TextColumn("[bold]lab 6[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with prog:
        task = prog.add_task("", total=total)
        yield lambda step: prog.update(task, advance=1, description=escape(step))


def _mean_rows(runs, policy: str) -> list[dict[str, float]]:
    """The policy's fill rows averaged over its seeds (rows every 1% of arrived load)."""
    rs = [r for r in runs if r.policy == policy]
    n = min(len(r.rows) for r in rs)
    return [{k: float(np.mean([r.rows[t][k] for r in rs])) for k in rs[0].rows[t]} for t in range(n)]


def run(
    out_dir: Path,
    design: Path | None = None,
    quick: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Run every activity; write summary.json and report.html under ``out_dir``; return the report.

    A ``design`` file is checked (YAML, fields, plugin names) before any run: UserError naming the
    file and field. ``progress(step, done, total)`` is called after each fill run and replay."""
    cfg = config(quick)
    spec, design_label = load_design(design)  # a bad design fails here, before any run
    out_dir.mkdir(parents=True, exist_ok=True)
    pools = read_openb_nodes(openb_node_list("gpu_node"))
    n_gpus = sum(p.count * p.gpus_per_node for p in pools)
    fill_policies = [*PAPER_POLICIES, *BEYOND_PAPER_POLICIES]
    n_default = len(fill_policies) * len(cfg.seeds)
    n_cons = len(cfg.constraint_lists) * len(cfg.constraint_policies) * len(cfg.seeds)
    total = n_default + len(BLAST_POLICIES) + 4 + n_cons

    with _progress(total, progress) as advance:
        # 1. Explain
        ex = explain_counting()
        default_runs = run_grid(
            ["default"],
            fill_policies,
            cfg.seeds,
            workers=workers,
            progress=lambda k, n: advance("fill: default pod list"),
        )
        rows = {p: _mean_rows(default_runs, p) for p in fill_policies}
        at100 = {p: next(x for x in rows[p] if x["arrived_pct"] == 100) for p in fill_policies}
        # the first arrived-load percentage where allocation fell 1 point behind arrived demand (seed mean)
        first_fail = {
            p: next((x["arrived_pct"] for x in rows[p] if x["arrived_pct"] - x["alloc_pct"] > 1.0), None)
            for p in fill_policies
        }

        # 2. Analyze: cost and reliability
        price, price_src = price_per_gpu_hour()
        cost = {
            p: {
                "unallocated_gpus": v["unalloc_pct"] / 100 * n_gpus,
                "usd_per_day": v["unalloc_pct"] / 100 * n_gpus * price * 24,
            }
            for p, v in at100.items()
        }
        blast = blast_radius(pools, quick, tick=lambda: advance("blast radius at 60% load"))

        # 3. Design
        designs = evaluate_designs(spec, quick, tick=lambda: advance("design vs baselines (replay)"))

        # 4. Simulate under policy constraints
        cons = run_grid(
            cfg.constraint_lists,
            cfg.constraint_policies,
            cfg.seeds,
            workers=workers,
            progress=lambda k, n: advance("fill: constrained pod lists"),
        )
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
        "schema": "gpuinfra.lab6/2",
        "quick": quick,
        "seeds": cfg.seeds,
        "explain": ex,
        "paper_policies": list(PAPER_POLICIES),
        "beyond_paper_policies": list(BEYOND_PAPER_POLICIES),
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
    from gpuinfra.labs import write_lab_file

    return write_lab_file(out_dir / "report.html", html)


def best_baseline(base: dict[str, Any], cls: str) -> str:
    """The baseline with the lowest p99 wait for pods of ``cls`` (then p90, then fewest never
    started); a baseline under which none of them started ranks last."""

    def key(n: str) -> tuple[float, float, int]:
        v = base[n][cls]
        inf = float("inf")
        p99 = v["wait_p99_s"] if v["wait_p99_s"] is not None else inf
        p90 = v["wait_p90_s"] if v["wait_p90_s"] is not None else inf
        return (p99, p90, v.get("not_started", 0))

    return min(base, key=key)


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
    paper = [p for p in s["paper_policies"] if p in at]
    beyond = [p for p in s["beyond_paper_policies"] if p in at]
    best = min(paper, key=lambda p: at[p]["unalloc_pct"])
    worst = max(paper, key=lambda p: at[p]["unalloc_pct"])
    # the headline compares the run's best policy with the strongest other policy of the same run (paper or
    # gpuinfra variant), never with the weakest one
    lead = min(at, key=lambda p: at[p]["unalloc_pct"])
    rival = min((p for p in at if p != lead), key=lambda p: at[p]["unalloc_pct"], default=None)
    lag = s["allocation_lags_demand_from_pct"]
    seeds = f"mean of {count(len(s['seeds']), 'seed')}"
    sections.append(
        Section(
            "1. Explain, at cluster scale: the openb trace filled to 130%",
            fig_html(
                curve_figure(
                    [r for r in default_runs if r.policy in paper],
                    "default",
                    "unalloc_pct",
                    "Unallocated GPU share as pods arrive (the paper's six policies)",
                    "unallocated GPUs (% of capacity)",
                ),
                "lab6-fill",
            ),
            claim=(
                f"When arrived demand equals capacity, even the best policy of this run, {lead}, leaves "
                f"{at[lead]['unalloc_pct']:.1f}% of the {n_gpus:,} GPUs unallocated "
                f"({at[lead]['unalloc_pct'] / 100 * n_gpus:,.0f} GPUs)"
                + (
                    f", against {at[rival]['unalloc_pct']:.1f}% under the strongest other policy, {rival}"
                    if rival
                    else ""
                )
                + f" ({seeds}), although by count every one of them is free to take a pod."
            ),
            text=(
                f"Allocation first falls a point behind arrived demand at {lag.get(worst)}% load under {worst} "
                f"(the weakest of the paper's policies, {at[worst]['unalloc_pct']:.1f}% unallocated) and at "
                f"{lag.get(best)}% under {best}: from there on pods fail while GPUs sit idle, because the idle GPUs are "
                "the wrong shape (partly used, on the wrong model, or too few on one node). The six policies are the "
                "FGD paper's (Weng et al., ATC '23), scored as its artifact scores them."
            ),
        )
    )
    f.append(sections[-1].claim)
    # 1b beyond the paper
    if beyond:
        counterpart = {"clustering-milli": "clustering", "packing-tightest": "packing"}
        rows = []
        for p in beyond:
            base_p = counterpart.get(p)
            rows.append(
                [
                    p,
                    base_p or "",
                    f"{at[p]['unalloc_pct']:.2f}",
                    f"{at[base_p]['unalloc_pct']:.2f}" if base_p in at else "",
                    f"{at[p]['unalloc_pct'] - at['fgd']['unalloc_pct']:+.2f}" if "fgd" in at else "",
                ]
            )
        top = min(beyond, key=lambda p: at[p]["unalloc_pct"])
        gain = at[counterpart[top]]["unalloc_pct"] - at[top]["unalloc_pct"] if counterpart.get(top) in at else None
        vs_fgd = at[top]["unalloc_pct"] - at["fgd"]["unalloc_pct"] if "fgd" in at else None
        claim = f"gpuinfra's own variant {top} leaves {at[top]['unalloc_pct']:.2f}% unallocated"
        if gain is not None:
            claim += f", {abs(gain):.2f} points {'less' if gain > 0 else 'more'} than the paper's {counterpart[top]}"
        if vs_fgd is not None:
            claim += f" and {abs(vs_fgd):.2f} points {'more' if vs_fgd > 0 else 'less'} than FGD"
        sections.append(
            Section(
                "1. Beyond the paper: gpuinfra's own clustering and packing",
                table_html(
                    ["policy", "the paper's counterpart", "unallocated %", "counterpart's unallocated %", "vs FGD"],
                    rows,
                    {2, 3, 4},
                ),
                claim=claim + f" ({seeds}, 100% arrived load).",
                text=(
                    "clustering-milli groups pods by their exact milli request (the paper's GpuClustering by a "
                    "category: share, k-gpu) and clusters CPU-only pods too; packing-tightest sends a shared pod to "
                    "the tightest partly used GPU of the whole cluster and packs whole-GPU pods onto the fullest node "
                    "(the paper's GpuPacking scores in capped integer steps, so many nodes tie). They are not the "
                    "paper's baselines and are not counted as such in the comparisons above."
                ),
            )
        )
        f.append(sections[-1].claim)
    # 2 cost: FGD against the strongest baseline of this run (any other policy, paper or not)
    cost = s["idle_cost"]
    kind = {p: ("paper" if p in paper else "gpuinfra variant") for p in cost}
    rows = [
        [
            p,
            kind[p],
            f"{at[p]['unalloc_pct']:.2f}",
            f"{cost[p]['unallocated_gpus']:,.0f}",
            f"{cost[p]['usd_per_day']:,.0f}",
        ]
        for p in sorted(cost, key=lambda p: cost[p]["usd_per_day"])
    ]
    price = s["price_usd_per_gpu_hour"]
    if "fgd" in cost and len(cost) > 1:
        baselines = [p for p in cost if p != "fgd"]
        strongest = min(baselines, key=lambda p: cost[p]["usd_per_day"])
        paper_strongest = min((p for p in baselines if p in paper), key=lambda p: cost[p]["usd_per_day"])
        diff = cost[strongest]["usd_per_day"] - cost["fgd"]["usd_per_day"]  # unrounded
        gpus = cost[strongest]["unallocated_gpus"] - cost["fgd"]["unallocated_gpus"]
        if diff >= 0:
            claim = (
                f"On a full cluster FGD keeps about {gpus:,.0f} more GPUs at work than the strongest baseline of this "
                f"run ({strongest}, {kind[strongest]}): about ${diff:,.0f} a day at ${price:.2f} per GPU-hour."
            )
        else:
            claim = (
                f"On a full cluster the strongest baseline of this run ({strongest}, {kind[strongest]}) keeps about "
                f"{-gpus:,.0f} more GPUs at work than FGD: FGD would cost about ${-diff:,.0f} a day more at "
                f"${price:.2f} per GPU-hour."
            )
        d_paper = cost[paper_strongest]["usd_per_day"] - cost["fgd"]["usd_per_day"]
        text = (
            f"The strongest of the paper's own baselines is {paper_strongest} "
            f"(${abs(d_paper):,.0f} a day {'more' if d_paper >= 0 else 'less'} than FGD); "
            f"the weakest policy, {max(cost, key=lambda p: cost[p]['usd_per_day'])}, is not a fair comparison. "
            f"Unallocated GPUs at 100% arrived load, {seeds}. Price: {s['price_source']}."
        )
    else:
        claim = f"Unallocated GPUs at 100% arrived load cost ${cost[best]['usd_per_day']:,.0f} a day under {best}."
        text = f"Price: {s['price_source']}."
    sections.append(
        Section(
            "2. Analyze: placement is a cost lever",
            table_html(
                [
                    "policy",
                    "kind",
                    "unallocated % at 100% arrived",
                    "unallocated GPUs at 100% arrived",
                    "cost of the unallocated GPUs (USD per day)",
                ],
                rows,
                {2, 3, 4},
            ),
            claim=claim,
            text=text,
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
        title="Pods per node at 60% load",
        xaxis_title="pods on the node (count)",
        yaxis_title="nodes (count)",
        barmode="group",
        legend_title_text="placement policy",
        showlegend=True,
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
    # 3 design: waits per class, p90 and p99, against the best baseline for that class
    d = s["design"]["results"]

    def sec(v: float | None) -> str:
        return "n/a" if v is None else f"{v:,.0f}"

    rows = [
        [
            n,
            sec(v["inference"]["wait_p90_s"]),
            sec(v["inference"]["wait_p99_s"]),
            v["inference"].get("not_started", 0),
            sec(v["training"]["wait_p90_s"]),
            sec(v["training"]["wait_p99_s"]),
            v["training"].get("not_started", 0),
            f"{100 * v['allocation_ratio']:.1f}",
            f"{v['mean_fragmented_gpus']:.1f}",
            v["victims"],
            f"{v['lost_gpu_hours']:,.1f}",
            f"{v['makespan_h']:.1f}",
        ]
        for n, v in d.items()
    ]
    base = {n: v for n, v in d.items() if n != "design"}
    dv = d["design"]
    parts = []
    for cls in ("inference", "training"):
        best_b = best_baseline(base, cls)
        b = base[best_b][cls]
        parts.append(
            f"{cls} waits p90 {sec(dv[cls]['wait_p90_s'])} s / p99 {sec(dv[cls]['wait_p99_s'])} s"
            + (f" ({dv[cls]['not_started']} never started)" if dv[cls].get("not_started") else "")
            + f" against {sec(b['wait_p90_s'])} s / {sec(b['wait_p99_s'])} s"
            + (f" ({b['not_started']} never started)" if b.get("not_started") else "")
            + f" for the best baseline for {cls} ({best_b})"
        )
    sections.append(
        Section(
            "3. Design: a policy for competing training and inference demand",
            table_html(
                [
                    "policy",
                    "inference wait p90 s",
                    "inference wait p99 s",
                    "inference never started",
                    "training wait p90 s",
                    "training wait p99 s",
                    "training never started",
                    "allocation %",
                    "mean fragmented GPUs",
                    "pods preempted",
                    "GPU-hours lost to preemption",
                    "makespan h",
                ],
                rows,
                set(range(1, 12)),
            ),
            claim=(
                f"The design ({s['design']['file']}): {parts[0]}; {parts[1]}. It preempted {dv['victims']:,} pods "
                f"and threw away {dv['lost_gpu_hours']:,.1f} GPU-hours of their work."
            ),
            text=(
                "12 nodes of 8 x A100-80GB; training jobs (2-8 GPUs, hours) and inference pods (a quarter or half "
                f"of a GPU, minutes) arrive together, offering {100 * s['design']['offered_load']:.0f}% of the "
                "cluster's GPU-time over the arrival period. Waits are of the pods that started; the best baseline "
                "for a class is the one with the lowest p99 wait for it (then p90, then fewest never started). "
                "The design under test:"
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
        xaxis_title="openb pod list (workload constraint)",
        yaxis_title="unallocated GPUs (% of capacity)",
        legend_title_text="policy",
        showlegend=True,
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
