"""``lab list|run``: run a seed section's activities and write its report (``gpuinfra lab N`` = ``lab run N``)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._app import LabGroup
from gpuinfra.cli._common import FORCE_HELP, err, out
from gpuinfra.errors import UserError
from gpuinfra.io.atomic import check_writable_dir
from gpuinfra.units import check_all

lab_app = typer.Typer(
    cls=LabGroup, help="Labs: run a seed section's activities and write its report.", no_args_is_help=True
)


@lab_app.command("list")
def lab_list() -> None:
    """List the labs that exist."""
    from gpuinfra.labs import registry

    for n, lab in sorted(registry().items()):
        out.print(f"{n:>3}  {lab.title}")


@lab_app.command("all")
def lab_all(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="New or empty directory for the site.")],
    quick: Annotated[bool, typer.Option("--quick", help="Each lab's quick mode (what CI runs).")] = False,
) -> None:
    """Run every lab and section 0's node check; write one offline site (index, reports, slide decks).

    Exit 1 when a lab failed (the index says which and why), 2 when --out is unusable.
    """
    from gpuinfra.labs.site import build_site

    t0 = time.perf_counter()
    res = build_site(out_dir, quick=quick, on_lab=lambda n, title: err.print(f"lab {n}: {title}"))
    for n, why in sorted(res.failed.items()):
        err.print(f"section {n} failed: {why}")
    out.print(f"site in {time.perf_counter() - t0:.1f} s: {res.index}")
    if res.failed:
        raise typer.Exit(1)


@lab_app.command("run")
def lab_run(
    number: Annotated[int, typer.Argument(help="Seed section number (see `gpuinfra lab list`).")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory (default runs/labN).")] = None,
    design: Annotated[Path | None, typer.Option(help="Your own design file for the Design activity.")] = None,
    quick: Annotated[bool, typer.Option(help="Smaller runs (for tests and CI).")] = False,
    workers: Annotated[int | None, typer.Option(help="Parallel processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Run lab N (also: `gpuinfra lab N`)."""
    check_all(
        [
            (workers, "--workers", dict(lo=1, hi=1024)),
        ]
    )
    from gpuinfra.io import manifest
    from gpuinfra.labs import registry

    labs = registry()
    if number not in labs:
        raise UserError(
            f"there is no lab {number}",
            where="lab number",
            expected="one of " + ", ".join(str(n) for n in sorted(labs)),
            fix="see `gpuinfra lab list`",
        )
    try:
        design_is_file = design is not None and design.is_file()
    except OSError as e:  # e.g. a name too long for the file system
        from gpuinfra.io.atomic import path_error

        raise path_error(e, design, "--design", "read") from None
    if design_is_file:
        # a lab that declares its design schema checks the file before the output directory is touched;
        # a missing file or a lab without designs is refused by the lab's own --design contract
        load_design = getattr(sys.modules.get(labs[number].run.__module__), "load_design", None)
        if callable(load_design):
            load_design(design)
    target = out_dir or Path("runs") / f"lab{number}"
    command = f"lab {number}"
    manifest.prepare(target, command, force=force)
    created = check_writable_dir(target, "--out")
    manifest.begin(target, create=False)
    t0 = time.perf_counter()
    try:
        with err.status(f"lab {number}: {labs[number].title}"):
            report = labs[number].run(target, design=design, quick=quick, workers=workers)
    except BaseException:
        if created:  # a refused --design or a failed run leaves no empty directory behind
            with contextlib.suppress(OSError):
                target.rmdir()
        raise
    params = {"quick": quick, "design": None if design is None else design.name}
    manifest.write_manifest(target, command, params)
    took = time.perf_counter() - t0
    _print_headlines(number, labs[number].title, Path(report))
    out.print(f"lab {number} ({labs[number].title}) in {took:.1f} s: wrote {report}", highlight=False)


def _print_headlines(number: int, title: str, report: Path, n: int = 5) -> None:
    """The lab's computed headlines (its summary.json ``headlines``, else the first sentences of the
    report's findings, as the site index reads them) as one table; nothing when the lab has none."""
    import json

    from gpuinfra.labs.site import headlines

    try:
        html = report.read_text(encoding="utf-8")
        summ_path = report.parent / "summary.json"
        summary = json.loads(summ_path.read_text(encoding="utf-8")) if summ_path.is_file() else {}
    except (OSError, ValueError):
        return
    heads = headlines(summary, html, n=n)
    if not heads:
        return
    t = Table(title=f"lab {number}: {title}", show_header=False, title_justify="left")
    t.add_column("#", justify="right", style="dim")
    t.add_column("headline", overflow="fold")
    for i, h in enumerate(heads, 1):
        t.add_row(str(i), h)
    out.print(t)
