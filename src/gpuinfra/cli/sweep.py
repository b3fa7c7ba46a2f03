"""``gpuinfra sweep``: run, plan and report sweeps (parse, call ``gpuinfra.sweep``, print)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from gpuinfra.cli._common import _console
from gpuinfra.errors import UserError

if TYPE_CHECKING:  # click comes with typer's own copy; only the type is named here
    import click


class _DefaultRun(TyperGroup):
    """``gpuinfra sweep FILE ...`` is short for ``gpuinfra sweep run FILE ...``."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


sweep_app = typer.Typer(
    cls=_DefaultRun,
    help=(
        "Sweeps: a grid or random search over scenario parameters x seeds, results in DuckDB.\n\n"
        "Shorthand: `gpuinfra sweep NAME|FILE [OPTIONS]` is `gpuinfra sweep run NAME|FILE [OPTIONS]` "
        "(e.g. `gpuinfra sweep capacity-plan -o sweeps/cap`)."
    ),
    no_args_is_help=True,
)
out = _console()
err = _console(stderr=True)

SweepArg = Annotated[str, typer.Argument(help="A sweep YAML file or a built-in sweep (`gpuinfra sweep list`).")]


def _plan(sweep: str):
    from gpuinfra.sweep import load_spec, plan

    spec = load_spec(sweep)
    p = Path(sweep)
    return plan(spec, sweep, p.parent.resolve() if p.exists() else None)


@sweep_app.command("run")
def run_cmd(
    sweep: SweepArg,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Sweep directory (default sweeps/NAME).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed or interrupted sweep in --out.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, max=512, help="Local worker processes (default: CPUs).")] = None,
    ray: Annotated[
        str | None, typer.Option("--ray", help="Run on the Ray cluster at HOST:PORT (needs gpuinfra[ray]).")
    ] = None,
    html: Annotated[bool, typer.Option(help="Also write report.html in every run directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run every configuration x seed; each run directory is written atomically and recorded in sweep.duckdb."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from gpuinfra.sweep import run_sweep

    pl = _plan(sweep)
    out_dir = out_dir or Path("sweeps") / pl.spec.name
    err.print(
        f"sweep [bold]{escape(pl.spec.name)}[/]: {len(pl.configs)} configurations x {len(pl.seeds)} seeds = "
        f"{len(pl.runs)} runs -> {escape(str(out_dir))}",
        highlight=False,
    )
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )
    state: dict = {}

    def tick(done: int, total: int, run_id: str) -> None:
        if "task" not in state:
            state["task"] = progress.add_task("runs", total=total, completed=done)
        progress.update(state["task"], completed=done, description=f"runs {escape(run_id)}" if run_id else "runs")

    try:
        with progress:
            res = run_sweep(pl, out_dir, resume=resume, workers=workers, ray_address=ray, report=html, progress=tick)
    except KeyboardInterrupt:
        err.print(
            f"interrupted: every finished run is kept in {escape(str(out_dir))}; continue with "
            f"`gpuinfra sweep {escape(sweep)} -o {escape(str(out_dir))} --resume`",
            highlight=False,
        )
        raise typer.Exit(130) from None
    out.print(
        f"{res.computed} runs computed, {res.skipped} already done, {res.recovered} recovered from their directories"
        f"{f', {res.cleaned} half-written removed' if res.cleaned else ''}; {res.backend} backend, "
        f"{res.workers} workers, {res.wall_s:.1f} s. Results: {escape(str(out_dir / 'sweep.duckdb'))}; "
        f"compare: gpuinfra sweep report {escape(str(out_dir))}",
        highlight=False,
    )


@sweep_app.command("plan")
def plan_cmd(
    sweep: SweepArg,
    workers: Annotated[int | None, typer.Option(min=1, max=512, help="Local workers to project for.")] = None,
    ray_workers: Annotated[str, typer.Option(help="Ray cluster sizes (worker CPUs) to project for.")] = "8,32,128",
    sample: Annotated[int, typer.Option(min=1, max=50, help="Runs to time here, spread over the grid.")] = 2,
    per_run_s: Annotated[
        float | None, typer.Option(min=0.0, help="Skip timing: use this many seconds per run.")
    ] = None,
) -> None:
    """Print the sweep's size and its projected run time (locally and on Ray) before running it."""
    import math
    import os

    from gpuinfra.sweep.runner import estimate, measure
    from gpuinfra.units import parse_names

    pl = _plan(sweep)
    names = parse_names(ray_workers, "--ray-workers")  # an empty item is refused, never skipped
    try:
        sizes = [int(x) for x in names]
        if not sizes or min(sizes) < 1 or max(sizes) > 1_000_000:
            raise ValueError
    except ValueError:
        raise UserError(
            f"bad --ray-workers '{ray_workers}'",
            where="--ray-workers",
            expected="comma-separated integers from 1 to 1,000,000 (worker CPUs)",
        ) from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n_runs = len(pl.runs)
    w = max(1, min(workers or os.cpu_count() or 1, n_runs))  # as run_sweep starts them
    t = Table(title=f"sweep {escape(pl.spec.name)}: {len(pl.configs)} configurations x {len(pl.seeds)} seeds")
    t.add_column("where")
    t.add_column("workers", justify="right")
    t.add_column("runs", justify="right")
    t.add_column("projected wall", justify="right")
    if per_run_s is None:
        err.print(
            f"timing {min(sample, n_runs)} run(s) here through the sweep's own worker and writer ...", highlight=False
        )
        c = measure(pl, sample)
        # w workers on fewer cores import one after another: start-up x ceil(w / cores) here.
        local = estimate(
            n_runs,
            w,
            c.run_wall_s,
            startup_s=c.startup_s * math.ceil(w / cores),
            setup_s=c.setup_s,
            record_s=c.record_s,
        )
        t.add_row("this machine", str(w), f"{n_runs:,}", _dur(local))
        for n in sizes:
            ray_s = estimate(n_runs, n, c.run_cpu_s, startup_s=c.startup_s, setup_s=c.setup_s, record_s=c.record_s)
            t.add_row("Ray cluster", str(n), f"{n_runs:,}", _dur(ray_s))
        out.print(t)
        out.print(
            f"measured here ({c.sample} run(s) spread over the grid, through the sweep's own code): worker start-up "
            f"(spawn + imports) {c.startup_s:.2f} s, once per worker; database setup {c.setup_s:.2f} s, once; per run "
            f"{c.run_wall_s:.2f} s wall ({c.run_cpu_s:.2f} s CPU) in a worker, plus {c.record_s:.3f} s in the sweep's "
            "own process writing the run directory (fsync'd) and inserting it into DuckDB.\n"
            "Projection: setup + start-up + max(ceil(runs / workers) x per-run, runs x writing) + writing. This "
            f"machine uses the wall time per run as loaded now ({cores} core(s); start-up x ceil(workers / cores)); "
            "Ray uses the CPU time per run (a core of its own per worker, as fast as this one) and one start-up. "
            "Not included: this command's own start (Python and gpuinfra imports, about 1-3 s), other load arriving "
            "later, and for Ray its per-task overhead and the transfer of each run's files to the driver; "
            "runs that differ in size from the sample (larger pools, more pods) shift the per-run time.",
            highlight=False,
        )
        return
    t.add_row("this machine", str(w), f"{n_runs:,}", _dur(estimate(n_runs, w, per_run_s)))
    for n in sizes:
        t.add_row("Ray cluster", str(n), f"{n_runs:,}", _dur(estimate(n_runs, n, per_run_s)))
    out.print(t)
    out.print(
        f"per run: {per_run_s:.2f} s (given with --per-run-s). Projection: ceil(runs / workers) x per-run time only: "
        "worker start-up (spawn + imports, seconds), writing each run directory and the DuckDB insert are not "
        "included; drop --per-run-s to measure them.",
        highlight=False,
    )


@sweep_app.command("report")
def report_cmd(
    directory: Annotated[Path, typer.Argument(help="The sweep directory (holding sweep.duckdb).")],
    x: Annotated[str | None, typer.Option(help="Metric on the x axis (default: the sweep file's report.x).")] = None,
    y: Annotated[str | None, typer.Option(help="Metric on the y axis.")] = None,
    confidence: Annotated[
        float | None, typer.Option(help="Bootstrap-interval level over seeds (default 0.95).")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Where to write the HTML report (default DIR/report.html).")] = None,
) -> None:
    """Compare configurations: mean and percentile-bootstrap interval over seeds per metric; a trade-off plot."""
    from gpuinfra.sweep import report
    from gpuinfra.sweep.report import cell, column_title, seeds_note, write_html

    rep = report(directory, x=x, y=y, confidence=confidence)
    what = (
        "value (identical over seeds)"
        if rep.seeds_identical
        else f"mean [{100 * rep.confidence:g} % bootstrap interval]"
    )
    t = Table(title=f"sweep {escape(rep.name)}: {what} over seeds")
    for p in rep.params:  # the varied parameters, headed by their readable names
        t.add_column(escape(rep.param_title(p)), overflow="fold")
    t.add_column("seeds", justify="right")
    shown = list(dict.fromkeys([rep.y, rep.x, *rep.metrics]))[:4]
    for m in shown:
        t.add_column(escape(column_title(m, rep.units[m])), justify="right")
    for _, r in rep.table.iterrows():
        t.add_row(*(escape(str(r[p])) for p in rep.params), str(r["n"]), *(cell(rep, r, m) for m in shown))
    out.print(t)
    if rep.seeds_identical:
        out.print(escape(seeds_note(rep)), highlight=False)
    if any(rep.units[m] == "s" for m in shown):
        out.print("Durations: each cell in s, min or h as written in it.", highlight=False)
    path = write_html(rep, html or Path(directory) / "report.html")
    out.print(f"{rep.runs_done} of {rep.runs_expected} runs recorded; report: {escape(str(path))}", highlight=False)


@sweep_app.command("list")
def list_cmd() -> None:
    """The built-in sweeps."""
    from gpuinfra.sweep import load_spec
    from gpuinfra.sweep.builtin import builtin_sweeps

    t = Table(title="built-in sweeps")
    t.add_column("name")
    t.add_column("description")
    for n in builtin_sweeps():
        t.add_row(n, escape(load_spec(n).description))
    out.print(t)


def _dur(s: float) -> str:
    """A projected wall time for people: "< 0.1 s", "0.5 s", "12 s", "5.0 min", "2.1 h"."""
    if s < 0.1:
        return "< 0.1 s"
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
