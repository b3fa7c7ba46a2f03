"""``roofline``: time and bound of an operation (or a transformer layer) on GPUs and CPUs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import out
from gpuinfra.models.roofline import OP_SPEC_HELP


def roofline(
    op: Annotated[str, typer.Option(help=OP_SPEC_HELP)],
    devices: Annotated[
        str, typer.Option("--devices", help="Comma-separated GPU or CPU models (gpuinfra catalog gpus|cpus).")
    ] = "T4,A100-80GB,H100,B200",
    dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32")] = "bf16",
) -> None:
    """Roofline estimate of an operation (or a transformer layer's operations) on GPUs and CPUs:
    time, what bounds it, and why."""
    from gpuinfra.models import roofline as rl
    from gpuinfra.units import parse_names

    ops = rl.parse_op(op, dtype)
    devs = parse_names(devices)
    if len(ops) > 1:
        t = Table("operation", "FLOP/byte", *[f"{d}" for d in devs])
        totals = dict.fromkeys(devs, 0.0)
        for o in ops:
            cells = []
            for d in devs:
                e = rl.estimate(o, d, dtype)
                totals[d] += e.time_s
                cells.append(f"{e.time_s * 1e6:,.1f} us {e.bound[:3]}")
            t.add_row(o.name, f"{o.intensity:,.1f}", *cells)
        t.add_row("total", "", *[f"{totals[d] * 1e3:,.3f} ms" for d in devs])
        out.print(t)
        return
    o = ops[0]
    t = Table("device", "time", "bound by", "FLOP/byte", "ridge FLOP/byte", "achieved TFLOP/s")
    for d in devs:
        e = rl.estimate(o, d, dtype)
        t.add_row(
            e.device,
            f"{e.time_s * 1e6:,.1f} us",
            e.bound,
            f"{o.intensity:,.1f}",
            f"{e.ridge:,.0f}",
            f"{e.achieved_flops / 1e12:,.1f}",
        )
    out.print(f"{o.name}: {o.flops:,.0f} FLOP, {o.bytes:,.0f} bytes (launch overhead: 5 us GPU, 2 us CPU, assumed)")
    out.print(t)
