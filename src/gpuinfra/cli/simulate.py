"""``simulate``, ``scenarios``, ``schema``: replay a scenario; list the built-ins; the scenario file schema."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, Interrupted, check_input_file, err, esc, out
from gpuinfra.errors import UserError
from gpuinfra.units import MAX_SEED, check_all, safe_file_name


def simulate(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario YAML; default: the embedded openb scenario.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run directory (default runs/NAME-seedN).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    builtin: Annotated[
        str | None, typer.Option(help="Run a built-in scenario by name (see `gpuinfra scenarios`).")
    ] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    events: Annotated[bool, typer.Option(help="Write the event log (events.jsonl).")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Replay a workload on a cluster and write summary.json, metrics, event log and report.html."""
    check_all(
        [
            (seed, "--seed", dict(lo=0, hi=MAX_SEED)),
        ]
    )
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gpuinfra.io import manifest
    from gpuinfra.io.scenario import (
        builtin_scenario_text,
        builtin_scenarios,
        default_scenario_text,
        load_scenario,
        parse_scenario,
    )
    from gpuinfra.report.tables import invariants_ok, run_summary_rows
    from gpuinfra.run import simulate as run_sim
    from gpuinfra.run import write_run_dir

    if scenario is not None and builtin is not None:
        raise UserError("give a scenario file or --builtin, not both", where="command line")
    if scenario is not None:
        if str(scenario) in builtin_scenarios() and not scenario.exists():
            raise UserError(
                f"'{scenario}' is a built-in scenario name, not a file",
                where="SCENARIO",
                expected="a scenario YAML path here; built-ins are run with --builtin",
                fix=f"run `gpuinfra simulate --builtin {scenario}`",
            )
        check_input_file(scenario, "SCENARIO", "scenario file")
        sc, base = load_scenario(scenario)
    elif builtin is not None:
        sc, base = parse_scenario(builtin_scenario_text(builtin), f"builtin:{builtin}"), None
    else:
        sc, base = parse_scenario(default_scenario_text(), "builtin:openb-default"), None
    eff_seed = sc.seed if seed is None else seed
    # the scenario's name is user data: one safe path component under runs/, never ../ or /
    target = out_dir or Path("runs") / safe_file_name(f"{sc.name}-seed{eff_seed}")
    manifest.prepare(target, "simulate", force=force)
    t0 = time.perf_counter()
    progress = Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}% of trace time"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )
    try:
        with progress:
            task = progress.add_task(esc(sc.name), total=100.0)
            res = run_sim(
                sc,
                base,
                seed=seed,
                log_events=events,
                progress=lambda frac: progress.update(task, completed=100.0 * frac),
            )
            progress.update(task, completed=100.0)
    except KeyboardInterrupt:
        raise Interrupted(
            f"simulate {sc.name} while replaying", f"nothing written; {target} is as it was before"
        ) from None
    t_sim = time.perf_counter() - t0
    try:
        files = write_run_dir(res, target, report=report, events=events)
    except KeyboardInterrupt:
        raise Interrupted(
            f"simulate {sc.name} while writing {target}",
            f"nothing: {target} is as it was before (the run was written to a temporary directory, now removed)",
        ) from None
    table = Table(title=f"{sc.name} (seed {eff_seed})", show_header=False)
    for k, v in run_summary_rows(res.summary, t_sim):
        table.add_row(k, v)
    out.print(table)
    out.print(f"wrote {target}/: " + ", ".join(p.name for p in files))
    if not invariants_ok(res.summary):
        err.print("[red]an invariant was violated: this is a gpuinfra bug, please report it[/]", markup=True)
        raise typer.Exit(1)


def schema(
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file instead of stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Print the JSON Schema of scenario files."""
    from gpuinfra.io.scenario import Scenario

    text = json.dumps(Scenario.model_json_schema(), indent=2, sort_keys=True)
    if out_file:
        from gpuinfra.io.atomic import check_output_file, write_text

        check_output_file(out_file, force=force, where="--out")
        write_text(out_file, text + "\n", "--out")
    else:
        sys.stdout.write(text + "\n")


def scenarios() -> None:
    """List the built-in scenarios, each with the description its own file gives."""
    from gpuinfra.io.scenario import builtin_scenarios
    from gpuinfra.io.scenario_load import builtin_scenario_text, parse_scenario

    t = Table("scenario", "description", title="built-in scenarios (gpuinfra simulate --builtin NAME)")
    for n in builtin_scenarios():
        sc = parse_scenario(builtin_scenario_text(n), f"{n}.yaml")
        t.add_row(n, " ".join(sc.description.split()) or "-")
    out.print(t)
