"""``gpuinfra node check``: the section 0 prerequisites of the machine it runs on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpuinfra.cli._common import _console

node_app = typer.Typer(
    help="Read this machine's prerequisites for GPU workloads (seed section 0).", no_args_is_help=True
)
out = _console()

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "cyan", "absent": "dim"}


@node_app.command("check")
def node_check_cmd(
    root: Annotated[Path, typer.Option("--root", help="Read /proc, /sys, /dev, /etc under this directory.")] = Path(
        "/"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    probe: Annotated[
        bool | None,
        typer.Option("--probe/--no-probe", help="Run the loopback socket probe (default: when --root is /)."),
    ] = None,
) -> None:
    """cgroups, namespaces, NUMA, limits, huge pages, GPU driver, container runtime, Kubernetes, DNS, loopback.

    Exit 0 when the machine could be read; the verdicts are in the output.
    """
    from gpuinfra.io.nodecheck import node_check

    rep = node_check(root, probe=probe)
    if as_json:
        out.print_json(json.dumps(rep.as_json()))
        return
    t = Table(title=f"node check ({escape(str(root))})")
    for col in ("area", "check", "verdict", "value", "why it matters"):
        t.add_column(col, overflow="fold")
    for c in rep.checks:
        st = _STYLE.get(c.verdict, "")
        t.add_row(c.area, escape(c.name), f"[{st}]{c.verdict}[/]", escape(c.value), escape(c.why))
    out.print(t)
    counts = ", ".join(f"{n} {v}" for v, n in rep.counts().items() if n)
    out.print(("GPU node" if rep.has_gpu else "no NVIDIA GPU on this machine") + f"; {counts}")
