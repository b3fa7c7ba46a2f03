"""``roofline``: time and bound of an operation (or a transformer layer) on GPUs and CPUs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import out
from gpuinfra.errors import UserError
from gpuinfra.models.roofline import OP_SPEC_HELP


def roofline(
    op: Annotated[str, typer.Option(help=OP_SPEC_HELP)],
    devices: Annotated[
        str, typer.Option("--devices", help="Comma-separated GPU or CPU models (gpuinfra catalog gpus|cpus).")
    ] = "T4,A100-80GB,H100,B200",
    dtype: Annotated[
        str, typer.Option(help="bf16, fp16, fp32, or auto: bf16 where a device has it, else fp16 (e.g. T4), else fp32")
    ] = "auto",
) -> None:
    """Roofline estimate of an operation (or a transformer layer's operations) on GPUs and CPUs:
    time, what bounds it, and why."""
    from gpuinfra.models import roofline as rl
    from gpuinfra.units import parse_names

    if dtype != "auto" and dtype not in ("bf16", "fp16", "fp32"):
        raise UserError(f"unknown dtype '{dtype}'", where="--dtype", expected="bf16, fp16, fp32 or auto")
    devs = parse_names(devices, "--devices")
    if not devs:
        raise UserError(f"no device in '{devices}'", where="--devices", expected="comma-separated GPU or CPU models")
    prec = {d: rl.auto_precision(d) if dtype == "auto" else dtype for d in devs}
    # bytes per element: bf16 and fp16 are both 2, so one op list serves every device unless fp32 is mixed in
    ops_by = {p: rl.parse_op(op, p) for p in dict.fromkeys(prec.values())}
    ops = ops_by[prec[devs[0]]]
    if dtype == "auto":
        out.print("dtype auto: " + ", ".join(f"{d} {p}" for d, p in prec.items()), highlight=False)
    if len(ops) > 1:
        t = Table("operation", "FLOP/byte", *[f"{d}" for d in devs])
        totals = dict.fromkeys(devs, 0.0)
        for i, o in enumerate(ops):
            cells = []
            for d in devs:
                e = rl.estimate(ops_by[prec[d]][i], d, prec[d])
                totals[d] += e.time_s
                cells.append(f"{e.time_s * 1e6:,.1f} us {e.bound[:3]}")
            t.add_row(o.name, f"{o.intensity:,.1f}", *cells)
        t.add_row("total", "", *[f"{totals[d] * 1e3:,.3f} ms" for d in devs])
        out.print(t)
        return
    o = ops[0]
    t = Table("device", "time", "bound by", "FLOP/byte", "ridge FLOP/byte", "achieved TFLOP/s")
    for d in devs:
        od = ops_by[prec[d]][0]
        e = rl.estimate(od, d, prec[d])
        t.add_row(
            e.device,
            f"{e.time_s * 1e6:,.1f} us",
            e.bound,
            f"{od.intensity:,.1f}",
            f"{e.ridge:,.0f}",
            f"{e.achieved_flops / 1e12:,.1f}",
        )
    out.print(f"{o.name}: {o.flops:,.0f} FLOP, {o.bytes:,.0f} bytes (launch overhead: 5 us GPU, 2 us CPU, assumed)")
    out.print(t)
