"""Lab 8: data, storage and I/O: "Why Fast GPUs Don't Matter With Slow I/O" (seed section 8).

Activities (seed 8.6), each a step below:
1. Explain why data access, not compute, limits GPU efficiency: the same input pipeline feeding
   GPUs of rising speed (published ResNet-50 rates, facts 4.1): the achieved rate stops rising.
2. Analyze how storage latency and throughput affect utilization: every storage tier, files vs
   shards, prefetch depth; a shared filesystem as nodes are added; a cold first epoch vs warm.
3. Profile GPU idle time from a slow pipeline: DS-Analyzer's differential method (compute-only,
   fully cached, cold), then the cluster-level cost: the same training jobs replayed on the
   simulator with their steps stretched by the pipeline's stall.
4. Redesign a pipeline for locality and throughput (``--design FILE``: a pipeline file with
   ``redesigns:``; default ``designs/lab8-pipeline.yaml``), side by side with each single
   built-in lever; the headline compares the design with the best of them.
5. Present: the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.io.designs import PipelineFile, load_model
from gpuinfra.labs import write_lab
from gpuinfra.labs._jobs import simulate_jobs
from gpuinfra.models.pipeline import Pipeline, Profile, compare, profile, scale_nodes
from gpuinfra.models.storage import tiers
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.sim.execution import KindSpec
from gpuinfra.sim.kernel import Rngs
from gpuinfra.sim.workload import Pod

TITLE = "Why Fast GPUs Don't Matter With Slow I/O"
DESIGN = "a YAML input pipeline (pipeline:) and its redesigns (redesigns:)"
DESIGN_EXAMPLE = "lab8-pipeline.yaml"
DEFAULT_DESIGN = Path(__file__).parent / "designs" / DESIGN_EXAMPLE
GPU_RATES = {
    "V100 FP32": ("V100-16GB", 367.0),
    "A100 TF32": ("A100-80GB", 938.0),
    "V100 AMP": ("V100-16GB", 1200.0),
    "A100 AMP": ("A100-80GB", 2470.0),
}
"""ResNet-50 v1.5 images/s per GPU, NVIDIA DeepLearningExamples README, 21.03 container (facts 4.1 [P])."""
LEVERS = {
    "prefetch depth 8": {"prefetch_depth": 8},
    "12 CPU workers per GPU": {"workers_per_gpu": 12},
    "GPU decode (DALI/nvJPEG)": {"decode_on": "gpu"},
    "sharded records (256 MB)": {"format": "shards"},
    "local cache (NVMe, 2nd epoch)": {"cache": "minio", "cache_tier": "local-nvme", "cache_bytes_per_node": 200e9},
}
"""The single built-in redesigns the lab compares a design with."""


def _row(name: str, p: Profile) -> dict[str, Any]:
    return {"name": name, **p.as_dict()}


def explain(base: Pipeline) -> dict[str, Any]:
    rows = []
    for label, (gpu, rate) in GPU_RATES.items():
        p = profile(base.model_copy(update={"gpu": gpu, "samples_per_s_per_gpu": rate}))
        rows.append(
            {
                "gpu": label,
                "compute_only": rate,
                "achieved": p.achieved_per_gpu,
                "bound_by": p.bound_by,
                "stall": p.stall_fraction,
            }
        )
    return {"rows": rows}


def storage_effects(base: Pipeline, rng) -> dict[str, Any]:
    tiers_rows = []
    for t in tiers():
        if t == "host-dram":
            continue
        for fmt in ("files", "shards"):
            p = profile(base.model_copy(update={"storage": t, "format": fmt, "decode_on": "gpu"}), rng)
            tiers_rows.append(
                {
                    "tier": t,
                    "format": fmt,
                    "read": p.stages["read (storage)"],
                    "achieved": p.achieved_per_gpu,
                    "util": 1 - p.gpu_idle_fraction,
                    "bound": p.read_bound_by,
                }
            )
    depth = []
    for d in (1, 2, 4, 8, 16, 32):
        p = profile(base.model_copy(update={"prefetch_depth": d, "decode_on": "gpu"}), rng)
        depth.append({"depth": d, "achieved": p.achieved_per_gpu, "util": 1 - p.gpu_idle_fraction})
    shared = base.model_copy(
        update={"storage": "nfs-flash", "format": "shards", "decode_on": "gpu", "readers_per_gpu": 2}
    )
    nodes = [1, 8, 16, 32, 64, 128, 256]
    contention = [
        {"nodes": n, "achieved": p.achieved_per_gpu, "util": 1 - p.gpu_idle_fraction, "bound": p.read_bound_by}
        for n, p in scale_nodes(shared, nodes, rng)
    ]
    epochs = []
    for policy in ("minio", "lru", "partitioned"):
        for e in (1, 2):
            p = profile(
                base.model_copy(
                    update={"cache": policy, "cache_bytes_per_node": 100e9, "epoch": e, "decode_on": "gpu"}
                ),
                rng,
            )
            epochs.append(
                {
                    "policy": policy,
                    "epoch": e,
                    "hit": p.hit_ratio,
                    "achieved": p.achieved_per_gpu,
                    "util": 1 - p.gpu_idle_fraction,
                }
            )
    return {"tiers": tiers_rows, "depth": depth, "contention": contention, "epochs": epochs}


DATA_KINDS = {
    # name: (bytes per node, nodes at once, write?, needs durability, pattern)
    "training dataset (one epoch, sharded)": (
        140e9,
        64,
        False,
        False,
        "read by every node each epoch; a copy may be cached",
    ),
    "checkpoint burst (70B, 64 nodes)": (70e9 * 14 / 64, 64, True, True, "written by every node at once, read rarely"),
    "model weights for serving (70B bf16, 16 replicas)": (140e9, 16, False, False, "read at every replica start"),
}
"""Data an AI job produces and consumes (seed 8.4): sizes follow the checkpoint layouts and a 70B
model; the node counts are the lab's assumptions."""


def data_kinds() -> dict[str, Any]:
    """Seconds for each kind of data on each tier, and the fastest tier that meets its durability."""
    from gpuinfra.models.storage import throughput

    out = {}
    for name, (nbytes, nodes, write, durable, pattern) in DATA_KINDS.items():
        times = {}
        for t in tiers().values():
            if t.name == "host-dram":
                continue
            streams = 10 if t.name == "s3" else 1
            tp = throughput(t, nodes, streams, nbytes / streams, write=write)
            times[t.name] = {"s": nbytes / tp.per_node, "durable": t.durable, "bound": tp.bound_by}
        ok = {k: v for k, v in times.items() if v["durable"] or not durable}
        best = min(ok, key=lambda k: ok[k]["s"])
        out[name] = {"pattern": pattern, "needs_durability": durable, "nodes": nodes, "times": times, "best": best}
    return out


def idle_profile(base: Pipeline, seeds: list[int], jobs: int, quick: bool) -> dict[str, Any]:
    """DS-Analyzer's differential stalls, then the same jobs on the simulator, stretched by them."""
    cold = profile(base.model_copy(update={"epoch": 1}))
    cached = profile(
        base.model_copy(
            update={"cache": "minio", "cache_bytes_per_node": base.dataset_bytes, "cache_tier": "host-dram"}
        )
    )
    compute = base.samples_per_s_per_gpu
    diff = {
        "compute_only": compute,
        "fully_cached": cached.achieved_per_gpu,
        "cold": cold.achieved_per_gpu,
        "prep_stall": 1 - cached.achieved_per_gpu / compute,
        "fetch_stall": cached.achieved_per_gpu / compute - cold.achieved_per_gpu / compute,
    }
    runs = {}
    nodes = 8 if quick else 16
    for label, prof in (("as is", cold), ("data never stalls", None)):
        mk, alloc, wait = [], [], []
        for s in seeds:
            rng = Rngs(s).stream("lab8-jobs")
            gaps = rng.exponential(1800.0, jobs)
            work = 6 * 3600.0 * np.exp(0.5 * rng.standard_normal(jobs))
            stretch = 1.0 if prof is None else compute / prof.achieved_per_gpu
            pods = [
                Pod(
                    f"job-{k:03d}",
                    float(gaps[: k + 1].sum()),
                    float(work[k] * stretch),
                    8000,
                    65536,
                    8,
                    1000,
                    owner="train",
                )
                for k in range(jobs)
            ]
            r = simulate_jobs(
                pods,
                [KindSpec(owner="train", kind="training", image_gb=0, warmup_s=0, teardown_s=0)],
                nodes,
                gpu=base.gpu,
                seed=s,
            )
            ends = [float(x) for x in r.run.end_s]
            mk.append(max(ends) / 3600)
            alloc.append(r.run.invariants.allocated_gpu_hours)
            wait.append(float(np.mean(r.run.first_start_s - r.run.pods.submit_s)) / 3600)
        runs[label] = {
            "makespan_h": float(np.mean(mk)),
            "allocated_gpu_hours": float(np.mean(alloc)),
            "mean_wait_h": float(np.mean(wait)),
        }
    idle_h = runs["as is"]["allocated_gpu_hours"] - runs["data never stalls"]["allocated_gpu_hours"]
    return {
        "differential": diff,
        "cold": cold.as_dict(),
        "runs": runs,
        "idle_gpu_hours": idle_h,
        "jobs": jobs,
        "nodes": nodes,
    }


def redesign(base: Pipeline, f: PipelineFile, rng) -> dict[str, Any]:
    levers = compare(base, LEVERS, rng)
    mine = compare(base, f.redesigns, rng) if f.redesigns else {}
    mine.pop("baseline", None)
    out = {"baseline": _row("baseline", levers.pop("baseline"))}
    out["levers"] = {k: _row(k, v) for k, v in levers.items()}
    out["design"] = {k: _row(k, v) for k, v in mine.items()}
    best_lever = max(out["levers"], key=lambda k: out["levers"][k]["achieved_per_gpu"])
    best_design = max(out["design"], key=lambda k: out["design"][k]["achieved_per_gpu"]) if out["design"] else None
    out["best_lever"], out["best_design"] = best_lever, best_design
    return out


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    f = load_model(design or DEFAULT_DESIGN, PipelineFile)
    price = gpu_hour_price(f.pipeline.gpu).on_demand_usd or 0.0
    base = f.pipeline.model_copy(update={"usd_per_gpu_hour": f.pipeline.usd_per_gpu_hour or price})
    rng = Rngs(0).stream("cache")
    seeds = [0, 1] if quick else [0, 1, 2, 3, 4]
    s = {
        "schema": "gpuinfra.lab8/1",
        "quick": quick,
        "usd_per_gpu_hour": base.usd_per_gpu_hour,
        "design_file": str(design or DEFAULT_DESIGN),
        "pipeline": base.model_dump(),
        "explain": explain(base),
        "storage": storage_effects(base, rng),
        "data_kinds": data_kinds(),
        "idle": idle_profile(base, seeds, 24 if quick else 64, quick),
        "redesign": redesign(base, f, rng),
    }
    return write_lab(out_dir, s, render(s))


def render(s: dict[str, Any]) -> str:
    f: list[str] = []
    secs: list[Section] = []
    price = s["usd_per_gpu_hour"]
    ex = s["explain"]["rows"]
    fig = bar_figure(
        [r["gpu"] for r in ex],
        {
            "compute-only rate": [r["compute_only"] for r in ex],
            "achieved with the pipeline": [r["achieved"] for r in ex],
        },
        "ResNet-50 per GPU: what the GPU could do and what the pipeline lets it do",
        "images/s per GPU",
    )
    fast, slow = ex[-1], ex[0]
    claim1 = (
        f"The same pipeline lets {slow['gpu']} run at {slow['achieved']:,.0f} of its {slow['compute_only']:,.0f} images/s per GPU, "
        f"but {fast['gpu']} only at {fast['achieved']:,.0f} of {fast['compute_only']:,.0f} ({fast['stall']:.0%} stalled, bound by {fast['bound_by']}): "
        f"a {fast['compute_only'] / slow['compute_only']:.1f}x faster GPU buys {fast['achieved'] / slow['achieved']:.1f}x."
    )
    secs.append(
        Section(
            "1. Why data access, not compute, limits the GPU",
            fig_html(fig, "explain"),
            claim1,
            "Compute-only rates: NVIDIA DeepLearningExamples ResNet-50 v1.5 (facts 4.1); the pipeline is the lab's (or the design file's) baseline.",
        )
    )
    f.append(claim1)
    st = s["storage"]
    rows = [
        [r["tier"], r["format"], f"{r['read']:,.0f}", f"{r['achieved']:,.0f}", f"{r['util']:.0%}", r["bound"]]
        for r in st["tiers"]
    ]
    fig2 = line_figure(
        {"GPU utilization": [(r["nodes"], r["util"]) for r in st["contention"]]},
        "A shared NFS read by more and more nodes (shards, GPU decode)",
        "nodes reading the dataset",
        "GPU utilization (fraction)",
    )
    fig2b = line_figure(
        {"GPU utilization": [(r["depth"], r["util"]) for r in st["depth"]]},
        "Latency hiding: requests in flight per reader (S3, one object per image)",
        "prefetch depth (requests in flight per reader)",
        "GPU utilization (fraction)",
    )
    worst = min(st["tiers"], key=lambda r: r["util"])
    bestt = max(st["tiers"], key=lambda r: r["util"])
    c0, cN = st["contention"][0], st["contention"][-1]
    ep = {(r["policy"], r["epoch"]): r for r in st["epochs"]}
    claim2 = (
        f"With decode on the GPU, storage alone decides: {worst['tier']} with {worst['format']} keeps the GPU {worst['util']:.0%} busy, {bestt['tier']} with {bestt['format']} {bestt['util']:.0%}. "
        f"Latency is the small-file killer: S3 serves one JPEG per {1e3 * tiers()['s3'].first_byte_s:.0f} ms first byte, so sharded records or deeper prefetch recover throughput. "
        f"A shared NFS feeding {c0['nodes']} node keeps utilization {c0['util']:.0%}; at {cN['nodes']} nodes {cN['util']:.0%} ({cN['bound']}-bound). "
        f"A 100 GB cache of the 140 GB dataset hits {ep[('minio', 2)]['hit']:.0%} in the second epoch if it never evicts, {ep[('lru', 2)]['hit']:.0%} as an LRU page cache, "
        f"{ep[('partitioned', 2)]['hit']:.0%} partitioned across nodes; the first epoch is always cold (0 %)."
    )
    secs.append(
        Section(
            "2. How storage latency and throughput set utilization",
            fig_html(fig2, "storage")
            + fig_html(fig2b, "depth")
            + table_html(["tier", "format", "read images/s/GPU", "achieved", "GPU util", "read bound by"], rows),
            claim2,
            "Tiers from catalog/data/storage_tiers.csv (S3 first byte, per-connection and per-instance limits from facts 4.2; NFS figures are stated assumptions).",
        )
    )
    f.append(claim2)
    dk = s["data_kinds"]
    tnames = list(next(iter(dk.values()))["times"])
    rows = [
        [n, v["pattern"], "yes" if v["needs_durability"] else "no"]
        + [f"{v['times'][t]['s']:,.0f}" + ("" if v["times"][t]["durable"] else " (not durable)") for t in tnames]
        + [v["best"]]
        for n, v in dk.items()
    ]
    ck = next(v for v in dk.values() if v["needs_durability"])
    fastest_any = min(ck["times"], key=lambda t: ck["times"][t]["s"])
    claim2b = (
        "Each kind of data wants its own tier: "
        + "; ".join(f"{n} is fastest on {v['best']} ({v['times'][v['best']]['s']:,.0f} s)" for n, v in dk.items())
        + f". For checkpoints the fastest tier overall is {fastest_any} ({ck['times'][fastest_any]['s']:,.0f} s), "
        + (
            "which is durable."
            if ck["times"][fastest_any]["durable"]
            else "but it does not outlive its node, so it can only be a first level."
        )
    )
    secs.append(
        Section(
            "2b. Checkpoints, artifacts and model storage: durability and access patterns",
            table_html(
                ["data", "access pattern", "must outlive the node", *[f"{t} (s)" for t in tnames], "fastest that fits"],
                rows,
            ),
            claim2b,
            "Seconds to move each node's share with all nodes at once (S3 with 10 parallel requests, the AWS CLI default); shared tiers divide their ceilings.",
        )
    )
    f.append(claim2b)
    idl = s["idle"]
    dd = idl["differential"]
    ra, rb = idl["runs"]["as is"], idl["runs"]["data never stalls"]
    claim3 = (
        f"DS-Analyzer's differential method on the baseline: compute-only {dd['compute_only']:,.0f} images/s, fully cached {dd['fully_cached']:,.0f}, cold {dd['cold']:,.0f}: "
        f"prep stall {dd['prep_stall']:.0%}, fetch stall {dd['fetch_stall']:.0%}. Replayed on a {idl['nodes']}-node cluster, the same {idl['jobs']} training jobs hold "
        f"{ra['allocated_gpu_hours']:,.0f} GPU-hours as they are against {rb['allocated_gpu_hours']:,.0f} if data never stalled: {idl['idle_gpu_hours']:,.0f} GPU-hours idle on I/O "
        f"(${idl['idle_gpu_hours'] * price:,.0f}), makespan {ra['makespan_h']:.1f} h vs {rb['makespan_h']:.1f} h and mean queue wait {ra['mean_wait_h']:.1f} h vs {rb['mean_wait_h']:.1f} h."
    )
    fig3 = bar_figure(
        ["as is", "data never stalls"],
        {"allocated GPU-hours": [ra["allocated_gpu_hours"], rb["allocated_gpu_hours"]]},
        "The same jobs on the same cluster",
        "GPU-hours",
    )
    secs.append(
        Section(
            "3. Profile: GPU idle time from a slow pipeline and its cost",
            fig_html(fig3, "idle"),
            claim3,
            "Cluster run: sim/engine with the execution subsystem; job sizes and arrivals drawn from the run's seeded stream; invariants checked.",
        )
    )
    f.append(claim3)
    rd = s["redesign"]
    allr = {"baseline": rd["baseline"], **rd["levers"], **{f"design: {k}": v for k, v in rd["design"].items()}}
    fig4 = bar_figure(
        list(allr),
        {"achieved images/s per GPU": [v["achieved_per_gpu"] for v in allr.values()]},
        "Redesigns side by side",
        "images/s per GPU",
    )
    rows = [
        [
            k,
            f"{v['achieved_per_gpu']:,.0f}",
            v["bound_by"],
            f"{v['stall_fraction']:.0%}",
            f"{v['idle_gpu_hours_per_day']:,.0f}",
            f"${v['idle_usd_per_day']:,.0f}",
            f"{v['epoch_hours'] * 60:.1f}",
        ]
        for k, v in allr.items()
    ]
    bl = rd["levers"][rd["best_lever"]]
    if rd["best_design"]:
        dv = rd["design"][rd["best_design"]]
        saved = (bl["idle_usd_per_day"] - dv["idle_usd_per_day"]) * 30
        verdict = "beats" if dv["achieved_per_gpu"] > bl["achieved_per_gpu"] else "does not beat"
        claim4 = (
            f"The design's best redesign ({rd['best_design']}) {verdict} the best single lever ({rd['best_lever']}): {dv['achieved_per_gpu']:,.0f} against {bl['achieved_per_gpu']:,.0f} images/s per GPU "
            f"(baseline {rd['baseline']['achieved_per_gpu']:,.0f}), now bound by {dv['bound_by']}; idle GPU cost ${dv['idle_usd_per_day']:,.0f}/day against ${bl['idle_usd_per_day']:,.0f} "
            f"(${saved:,.0f} over 30 days). One lever only moves the bottleneck to the next stage."
        )
    else:
        claim4 = f"The design file has no redesigns; the best single lever is {rd['best_lever']} at {bl['achieved_per_gpu']:,.0f} images/s per GPU."
    secs.append(
        Section(
            "4. Redesign: locality and throughput",
            fig_html(fig4, "redesign")
            + table_html(
                ["pipeline", "images/s/GPU", "bound by", "stall", "idle GPU-h/day", "idle $/day", "epoch min"], rows
            ),
            claim4,
        )
    )
    f.append(claim4)
    sub = "Seed section 8, every activity computed now: storage tiers and caches (models/storage.py), the pipeline's stages (models/pipeline.py, reusing the CPU-GPU feeding model), cluster runs on the simulator."
    return render_page(f"Lab 8: {TITLE}", secs, findings=f, subtitle=sub)
