"""``trace check|convert``: read every row of a trace; convert it to the generic format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpuinfra.cli._common import FORCE_HELP, check_input_file, out
from gpuinfra.errors import UserError

trace_app = typer.Typer(help="Read, check and convert job traces.", no_args_is_help=True)


def read_pods(ref: str) -> list:
    """The pods of a trace reference: ``openb:NAME`` (a packaged pod list) or a generic trace file."""
    from gpuinfra.io.traces import openb_pod_list, read_generic, read_openb_pods
    from gpuinfra.units import trace_ref

    name, path = trace_ref(ref)
    if path is not None:
        check_input_file(path, "TRACE", "trace file")
    return read_openb_pods(openb_pod_list(name)) if name is not None else read_generic(path)


@trace_app.command("check")
def trace_check(
    path: Annotated[str, typer.Argument(help="A generic trace (CSV/Parquet), or openb:NAME")],
) -> None:
    """Read every row of a trace and report what it holds (or the first bad row)."""
    from gpuinfra.sim.workload import PodTable

    pt = PodTable(read_pods(path))
    out.print(
        f"{path}: {len(pt):,} rows read, {int((pt.num_gpu > 0).sum()):,} ask for GPUs, "
        f"{pt.total_gpu_request():,.1f} GPUs requested in all, submit times "
        f"{pt.submit_s.min():.0f}..{pt.submit_s.max():.0f} s"
    )


@trace_app.command("convert")
def trace_convert(
    source: Annotated[str, typer.Argument(help="openb:NAME or a generic trace")],
    dest: Annotated[Path, typer.Argument(help="Output .csv or .parquet in the generic format")],
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Convert a trace to gpuinfra's generic format (CSV or Parquet)."""
    from gpuinfra.io.atomic import check_output_file, write_with
    from gpuinfra.io.traces import write_generic

    check_output_file(dest, force=force, where="DEST")
    if dest.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"cannot write '{dest.name}'", where="DEST", expected="a .csv or .parquet file name")
    pods = read_pods(source)
    write_with(dest, lambda tmp: write_generic(pods, tmp), "DEST")
    out.print(f"wrote {len(pods):,} rows to {dest}")
