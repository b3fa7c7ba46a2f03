"""Command groups for execution, checkpoints and data I/O: ``gpuinfra checkpoint`` and ``gpuinfra io``.

Each command parses, calls the library (models/checkpoint.py, models/storage.py,
models/pipeline.py) and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, _console
from gpuinfra.units import MAX_SEED, check_all

checkpoint_app = typer.Typer(help="Checkpoint size, cost and interval for a training job.", no_args_is_help=True)
io_app = typer.Typer(help="Storage tiers and input pipelines: where the GPU waits for data.", no_args_is_help=True)
out = _console()


def _min(s: float) -> str:
    return f"{s / 60:,.1f} min" if s >= 60 else f"{s:,.2f} s"


@checkpoint_app.command("plan")
def checkpoint_plan(
    gpus: Annotated[int, typer.Option(help="GPUs of the job.")] = 16384,
    params: Annotated[float, typer.Option(help="Model parameters (e.g. 405e9).")] = 405e9,
    storage: Annotated[str, typer.Option(help="Storage tier (see `gpuinfra io tiers`).")] = "nfs-flash",
    mode: Annotated[str, typer.Option(help="sync or async saving.")] = "async",
    interval: Annotated[float | None, typer.Option(help="Evaluate this interval too (minutes).")] = None,
    precision: Annotated[str, typer.Option(help="Training precision (state layout).")] = "bf16-mixed",
    optimizer: Annotated[str, typer.Option(help="Optimizer (state layout).")] = "adam",
    gpus_per_node: Annotated[int, typer.Option(help="GPUs per node.")] = 8,
    gpu: Annotated[str, typer.Option(help="GPU model (PCIe generation for the device-to-host copy).")] = "H100-SXM",
    node_shape: Annotated[str, typer.Option(help="Node shape giving host memory.")] = "aws:p5.48xlarge",
    rate: Annotated[float | None, typer.Option(help="Failures per 1,000 node-days (default: Llama 3's 3.8).")] = None,
    requeue: Annotated[float, typer.Option(help="Minutes in the queue before each restart.")] = 0.0,
    writers_per_node: Annotated[int, typer.Option(help="Concurrent writers per node.")] = 1,
    replicate_to: Annotated[
        str, typer.Option(help="Durable tier that checkpoints on a node-local tier are copied to.")
    ] = "s3",
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    html: Annotated[Path | None, typer.Option(help="Write the trade-off curve as an HTML figure.")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Recommend a checkpoint interval and show the ETTR trade-off against the interval."""
    if html is not None:
        from gpuinfra.io.atomic import check_output_file

        check_output_file(html, force=force, where="--html")
    check_all(
        [
            (gpus, "--gpus", dict(lo=1, hi=10_000_000)),
            (params, "--params", dict(lo=0, hi=1e15, lo_open=True)),
            (interval, "--interval", dict(lo=0, hi=1e7, lo_open=True)),
            (gpus_per_node, "--gpus-per-node", dict(lo=1, hi=1024)),
            (rate, "--rate", dict(lo=0, hi=1e6)),
            (requeue, "--requeue", dict(lo=0, hi=1e7)),
            (writers_per_node, "--writers-per-node", dict(lo=1, hi=1024)),
        ]
    )
    from gpuinfra.models.checkpoint import CheckpointJob, plan

    kw = {} if rate is None else {"rate_per_1000_node_days": rate}
    job = CheckpointJob(
        params=params,
        gpus=gpus,
        gpus_per_node=gpus_per_node,
        gpu=gpu,
        precision=precision,
        optimizer=optimizer,
        storage=storage,
        mode=mode,
        interval_s=interval * 60 if interval is not None else None,
        writers_per_node=writers_per_node,
        replicate_to=replicate_to,
        node_shape=node_shape,
        requeue_s=requeue * 60,
        **kw,
    )
    p = plan(job)
    if html is not None:
        from gpuinfra.report.checkpoint_fig import write_plan_html

        write_plan_html(p, html, where="--html")
    if json_out:
        out.print_json(json.dumps(p.as_dict(), default=float))
        return
    c, r = p.cost, p.recommended
    out.print(
        f"[bold]{escape(f'{params:g}')} parameters on {gpus:,} GPUs ({job.nodes:,} nodes), {escape(storage)}, {mode}[/]"
    )
    out.print(
        f"checkpoint {c.size_bytes / 1e12:,.2f} TB ({c.bytes_per_param:g} B/param), {c.node_shard_bytes / 1e9:,.1f} GB "
        f"per node; device->host {_min(c.d2h_s)}, persist {_min(c.persist_s)} (bound by {c.persist_bound_by}), "
        f"GPUs blocked {_min(c.blocking_s)} per checkpoint, durable {_min(c.durable_lag_s)} later; "
        f"restart {_min(c.restart_s)}"
    )
    out.print(
        f"MTBF {p.mtbf_s / 3600:,.2f} h; Young {_min(p.young_s)}, Daly {_min(p.daly_s)}; "
        f"[bold]recommended every {_min(r.interval_s)}: ETTR {r.ettr:.3f}[/]"
    )
    t = Table("interval", "ETTR", "stalls", "lost work", "detection", "requeue", "restart")
    rows = [e for e in p.curve[::6]] + ([p.fixed] if p.fixed else []) + [r]
    for e in sorted(rows, key=lambda e: e.interval_s):
        mark = " *" if e is r else (" (given)" if e is p.fixed else "")
        t.add_row(
            _min(e.interval_s) + mark,
            f"{e.ettr:.3f}",
            f"{e.stalls:.1%}",
            f"{e.lost_work:.1%}",
            f"{e.detection:.1%}",
            f"{e.requeue:.1%}",
            f"{e.restart:.1%}",
        )
    out.print(t)
    if html is not None:
        out.print(f"wrote {escape(str(html))}")


@io_app.command("tiers")
def io_tiers() -> None:
    """The packaged storage tiers with their sources."""
    from gpuinfra.models.storage import tiers

    t = Table()
    t.add_column("tier", no_wrap=True)
    for h in ("scope", "first byte", "stream read", "node read", "aggregate read", "max streams", "durable", "source"):
        t.add_column(h)
    for x in tiers().values():
        t.add_row(
            x.name,
            x.scope,
            f"{x.first_byte_s * 1e3:g} ms",
            f"{x.per_stream_read / 1e9:g} GB/s",
            f"{x.node_read / 1e9:g} GB/s",
            "-" if x.aggregate_read == float("inf") else f"{x.aggregate_read / 1e9:g} GB/s",
            f"{x.max_streams:,}",
            "yes" if x.durable else "no",
            escape(x.source[:80]),
        )
    out.print(t)


@io_app.command("profile")
def io_profile(
    pipeline: Annotated[
        Path | None, typer.Argument(help="Pipeline YAML (`pipeline:` and optional `redesigns:`).")
    ] = None,
    storage: Annotated[str | None, typer.Option(help="Dataset storage tier.")] = None,
    nodes: Annotated[int | None, typer.Option(help="Nodes reading the dataset.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="files (one object per sample) or shards.")] = None,
    workers: Annotated[int | None, typer.Option(help="CPU workers per GPU.")] = None,
    readers: Annotated[int | None, typer.Option(help="Read streams per GPU.")] = None,
    prefetch: Annotated[int | None, typer.Option(help="Requests in flight per reader (0: no prefetch).")] = None,
    decode_on: Annotated[str | None, typer.Option(help="cpu or gpu.")] = None,
    cache: Annotated[str | None, typer.Option(help="none, minio, lru or partitioned.")] = None,
    cache_gb: Annotated[float | None, typer.Option(help="Cache per node, GB.")] = None,
    epoch: Annotated[int | None, typer.Option(help="1 = cold first epoch.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the LRU cache's access order.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show where an input pipeline stalls: stage rates, the bound, GPU idle time and its cost."""
    check_all([(seed, "--seed", dict(lo=0, hi=MAX_SEED)), (cache_gb, "--cache-gb", dict(lo=0, hi=1e9))])
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.io.designs import PipelineFile, load_model
    from gpuinfra.models.pipeline import compare
    from gpuinfra.sim.kernel import Rngs

    f = load_model(pipeline, PipelineFile) if pipeline is not None else PipelineFile()
    over = {
        k: v
        for k, v in {
            "storage": storage,
            "nodes": nodes,
            "format": fmt,
            "workers_per_gpu": workers,
            "readers_per_gpu": readers,
            "prefetch_depth": prefetch,
            "decode_on": decode_on,
            "cache": cache,
            "cache_bytes_per_node": cache_gb * 1e9 if cache_gb is not None else None,
            "epoch": epoch,
        }.items()
        if v is not None
    }
    base = f.pipeline
    if not base.usd_per_gpu_hour:
        over["usd_per_gpu_hour"] = gpu_hour_price(base.gpu).on_demand_usd or 0.0
    from gpuinfra.io.designs import validate_pipeline

    base = validate_pipeline(base.model_dump() | over, "command line")
    res = compare(base, f.redesigns, Rngs(seed).stream("cache"))
    if json_out:
        out.print_json(json.dumps({k: v.as_dict() for k, v in res.items()}, default=float))
        return
    names = list(res)
    t = Table("stage (samples/s per GPU)", *names)
    for st in res["baseline"].stages:
        t.add_row(st, *[f"{res[n].stages[st]:,.0f}" for n in names])
    t.add_row("[bold]achieved[/]", *[f"[bold]{res[n].achieved_per_gpu:,.0f}[/]" for n in names])
    t.add_row("bound by", *[escape(res[n].bound_by) for n in names])
    t.add_row("stall fraction", *[f"{res[n].stall_fraction:.1%}" for n in names])
    t.add_row("cache hit ratio", *[f"{res[n].hit_ratio:.0%}" for n in names])
    t.add_row("idle GPU-h per day", *[f"{res[n].idle_gpu_hours_per_day:,.1f}" for n in names])
    t.add_row("idle cost per day", *[f"${res[n].idle_usd_per_day:,.0f}" for n in names])
    t.add_row("epoch (min)", *[f"{res[n].epoch_hours * 60:,.1f}" for n in names])
    out.print(t)
    b = res["baseline"]
    out.print(
        f"baseline: the GPU waits {b.gpu_idle_fraction:.0%} of the time; the slowest stage is "
        f"{escape(b.bound_by)} ({b.stages[b.bound_by]:,.0f} samples/s per GPU against "
        f"{b.compute_only_per_gpu:,.0f} it can consume)"
    )
