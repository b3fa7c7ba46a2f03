"""``memory scenarios|run``: PyTorch's caching allocator, simulated."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, check_input_file, esc, out
from gpuinfra.errors import UserError

memory_app = typer.Typer(help="GPU memory: PyTorch's caching allocator, simulated.", no_args_is_help=True)


@memory_app.command("scenarios")
def memory_scenarios() -> None:
    """The built-in allocation scenarios."""
    from gpuinfra.models.memory_trace import SCENARIOS

    t = Table("scenario", "what it shows")
    for name, (_, what) in SCENARIOS.items():
        t.add_row(name, what)
    out.print(t)


def operation_counts(rows: list[dict], total: int) -> dict[str, int]:
    """Operations of a replay: ``total`` in the trace, ``ran`` (completed), ``failed`` (raised an
    OOM; their process stopped there) and ``skipped`` (never attempted because their process had
    stopped). ``rows`` are :func:`gpuinfra.models.memory_trace.run_trace` rows, one per attempt."""
    ran = sum(1 for r in rows if r["ok"])
    failed = len(rows) - ran
    return {"total": total, "ran": ran, "failed": failed, "skipped": total - len(rows)}


@memory_app.command("run")
def memory_run(
    trace: Annotated[
        Path | None, typer.Argument(help="An allocation trace (format: gpuinfra.models.memory_trace).")
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="A built-in scenario instead of a file (gpuinfra memory scenarios).")
    ] = None,
    config: Annotated[
        str | None, typer.Option(help="PYTORCH_CUDA_ALLOC_CONF to use (overrides the trace's config line).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the memory timeline and segment map (self-contained HTML).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Replay allocations through the caching-allocator model: reserved vs allocated, fragmentation, OOMs."""
    from gpuinfra.io.atomic import check_output_file, write_text
    from gpuinfra.models.memory import format_size
    from gpuinfra.models.memory_trace import read_trace, run_trace
    from gpuinfra.models.memory_trace import scenario as get_scenario
    from gpuinfra.report.tables import memory_peaks

    if (trace is None) == (scenario is None):
        raise UserError("give a trace file or --scenario NAME (one of them)", where="gpuinfra memory run")
    if trace is not None:
        check_input_file(trace, "TRACE", "allocation trace")
    if html is not None:
        check_output_file(html, force=force, where="--html")  # before the model runs, not after
    tr = get_scenario(scenario) if scenario else read_trace(trace)
    r = run_trace(tr, config)
    peaks = memory_peaks(r.rows)
    counts = operation_counts(r.rows, len(tr.ops))
    peak_alloc, peak_res, peak_split = peaks["peak_allocated"], peaks["peak_reserved"], peaks["peak_inactive_split"]
    if as_json:
        json.dump(
            {
                "trace": tr.label,
                "gpu": tr.gpu_name,
                "config": r.config,
                "operations": len(r.rows),
                "operations_total": counts["total"],
                "operations_ran": counts["ran"],
                "operations_failed": counts["failed"],
                "operations_skipped": counts["skipped"],
                "ooms": r.ooms,
                "memory_stats": r.stats,
                "peak_allocated": peak_alloc,
                "peak_reserved": peak_res,
                "peak_inactive_split": peak_split,
                "timeline": r.rows,
            },
            sys.stdout,
            indent=1,
        )
        sys.stdout.write("\n")
    else:
        head = f"{tr.label} on {tr.gpu_name} ({format_size(tr.total)}), PYTORCH_CUDA_ALLOC_CONF={r.config}"
        out.print(head, highlight=False)
        tally = f"{counts['ran']} of {counts['total']} operations ran"
        if r.ooms:
            tally += f"; {counts['failed']} raised an OOM"
            if counts["skipped"]:
                tally += f"; {counts['skipped']} did not run (their process had stopped at its OOM)"
        out.print(tally, highlight=False)
        for o in r.ooms:
            before = sum(1 for row in r.rows if row["ok"] and row["step"] < o["step"])
            what = (
                f"OOM at line {o['line']} ({o['proc']}: alloc {o['name']} {format_size(o['size'])}) "
                f"after {before} operation{'' if before == 1 else 's'} had run; process {o['proc']} stopped there"
            )
            out.print(f"[bold red]{esc(what)}:[/] {esc(o['message'])}", highlight=False, markup=True)
        if not r.ooms:
            out.print("no OOM", highlight=False)
        main_stopped = any(o["proc"] == "main" for o in r.ooms)
        t = Table("", "bytes", title="memory of process main " + ("when it stopped" if main_stopped else "at the end"))
        t.add_row("peak allocated", format_size(peak_alloc))
        t.add_row("peak reserved", format_size(peak_res))
        t.add_row("peak inactive split (fragmentation)", format_size(peak_split))
        for k in (
            "allocated_bytes.all.current",
            "reserved_bytes.all.current",
            "inactive_split_bytes.all.current",
            "num_alloc_retries",
            "num_ooms",
        ):
            v = r.stats[k]
            t.add_row(k, format_size(v) if "bytes" in k else str(v))
        out.print(t)
    if html is not None:
        from gpuinfra.report.html import fig_html
        from gpuinfra.report.memory_fig import segment_figure, timeline_figure
        from gpuinfra.report.page import Section, render_page

        secs = [
            Section("Over time", fig_html(timeline_figure(r.rows, f"{tr.label}: {r.config}"), "tl")),
            Section(
                "Segments and blocks at the end" + (" (the OOM)" if r.oom else ""),
                fig_html(segment_figure(r.snapshot, "segments of process main"), "seg"),
            ),
        ]
        write_text(html, render_page(f"Memory: {tr.label}", secs), "--html")
        if not as_json:
            out.print(f"wrote {html}")
    if r.ooms:
        raise typer.Exit(1)
