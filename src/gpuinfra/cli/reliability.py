"""``reliability`` and ``incident``: a large job under the fleet's failure mix; incident scenarios."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, out
from gpuinfra.errors import UserError
from gpuinfra.units import check_all

MAX_RELIABILITY_WORK = 5e8
"""Failures x nodes x seeds one command may simulate: each failure draws its node over all nodes,
so the work grows with both (2,000 nodes x 10,000 failures took about 2 s on the 2-core machine)."""


def _check_budget(spec, seeds: int) -> None:
    mean_weight = 1 + spec.lemon_fraction * (spec.lemon_factor - 1)
    failures = spec.rate_per_1000_node_days / 1000 * spec.nodes * spec.days * mean_weight
    work = failures * spec.nodes * seeds
    if work > MAX_RELIABILITY_WORK:
        raise UserError(
            f"about {failures:,.0f} failures per run x {spec.nodes:,} nodes x {seeds} seed(s) would take about "
            f"{work / 1e7:,.0f} s",
            where="--nodes/--days/--rate/--seeds",
            expected=f"at most {MAX_RELIABILITY_WORK:.0e} failure-node draws per command",
            fix="shorten --days, lower --rate or --nodes, or use fewer --seeds",
        )


def reliability(
    nodes: Annotated[int, typer.Option(help="Nodes in the job (8 GPUs each).")] = 256,
    days: Annotated[float, typer.Option(help="How long the job runs.")] = 30.0,
    policy: Annotated[str, typer.Option(help="naive, cordon, spares or spares+quarantine.")] = "spares",
    spares: Annotated[int, typer.Option(help="Spare nodes (spares policies).")] = 8,
    lemon_fraction: Annotated[float, typer.Option(help="Share of lemon nodes.")] = 0.0,
    lemon_factor: Annotated[float, typer.Option(help="How many times as often a lemon fails.")] = 10.0,
    checkpoint_min: Annotated[float, typer.Option(help="Checkpoint interval, minutes.")] = 60.0,
    restart_min: Annotated[float, typer.Option(help="Restart overhead, minutes.")] = 10.0,
    rate: Annotated[
        float, typer.Option(help="Unexpected interruptions per 1,000 node-days (default: Llama 3's).")
    ] = 0.0,
    seeds: Annotated[int, typer.Option(help="Independent runs to average.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """A large training job under the fleet's failure mix: ETTR and GPU-hours lost by cause, per remediation policy."""
    check_all(
        [
            (nodes, "--nodes", dict(lo=1, hi=100_000)),
            (days, "--days", dict(lo=0, hi=3650, lo_open=True)),
            (spares, "--spares", dict(lo=0, hi=100_000)),
            (lemon_fraction, "--lemon-fraction", dict(lo=0, hi=1)),
            (lemon_factor, "--lemon-factor", dict(lo=1, hi=1000)),
            (checkpoint_min, "--checkpoint-min", dict(lo=0, hi=525_600, lo_open=True)),
            (restart_min, "--restart-min", dict(lo=0, hi=525_600)),
            (rate, "--rate", dict(lo=0, hi=1_000_000)),
            (seeds, "--seeds", dict(lo=1, hi=1000)),
        ]
    )
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.models.reliability import LLAMA3_RATE_PER_1000_NODE_DAYS, JobSpec, expected_ettr, simulate
    from gpuinfra.report.tables import reliability_rows

    price = gpu_hour_price("H100-SXM").on_demand_usd or 0.0
    spec = JobSpec(
        nodes=nodes,
        days=days,
        policy=policy,
        spares=spares,
        lemon_fraction=lemon_fraction,
        lemon_factor=lemon_factor,
        checkpoint_interval_s=checkpoint_min * 60,
        restart_s=restart_min * 60,
        rate_per_1000_node_days=rate or LLAMA3_RATE_PER_1000_NODE_DAYS,
        usd_per_gpu_hour=price,
    )
    _check_budget(spec, seeds)
    runs = [simulate(spec, seed=s) for s in range(max(seeds, 1))]
    if as_json:
        json.dump([r.as_dict() for r in runs], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    out.print(
        f"{nodes} nodes x 8 GPUs, {days:g} days, policy {policy}, {seeds} runs; failure rate {spec.rate_per_1000_node_days:.2f} per 1,000 node-days",
        highlight=False,
    )
    t = Table("", "mean", "per run")
    for row in reliability_rows(runs, price):
        t.add_row(*row)
    out.print(t)
    out.print(f"closed form (no repair waits, no lemons): ETTR {expected_ettr(spec):.4f}", highlight=False)


def incident(
    name: Annotated[
        str, typer.Argument(help="thermal-straggler, nccl-hang, xid79-storm, oom-crash-loop or poisoned-gpu")
    ],
    action: Annotated[
        str | None, typer.Option(help="The responder's action (default: the hurried one); see --help of each.")
    ] = None,
    postmortem: Annotated[Path | None, typer.Option(help="Write the postmortem (Markdown) here.")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Run an incident scenario: signals over time, the debugging path, the cost of the action, a postmortem."""
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.errors import did_you_mean
    from gpuinfra.io.atomic import check_output_file, write_text
    from gpuinfra.models.incidents import INCIDENTS

    if name not in INCIDENTS:
        raise UserError(f"unknown incident '{name}'", expected=", ".join(INCIDENTS), fix=did_you_mean(name, INCIDENTS))
    fn, actions = INCIDENTS[name]
    act = action or actions[0]
    if act not in actions:
        raise UserError(f"unknown action '{act}' for {name}", where="--action", expected=" or ".join(actions))
    if postmortem is not None:
        check_output_file(postmortem, force=force, where="--postmortem")
    inc = fn(act, usd=gpu_hour_price("H100-SXM").on_demand_usd or 0.0)
    md = inc.postmortem_markdown()
    if postmortem is not None:
        write_text(postmortem, md, "--postmortem")
    sys.stdout.write(md)
