"""``fill`` and ``compare``: the FGD fill experiment as a grid; one scenario under several policies."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, Interrupted, check_input_file, err, out
from gpuinfra.errors import UserError
from gpuinfra.units import MAX_SEED, check_all


def fill(
    workload: Annotated[
        str,
        typer.Option(
            help="openb pod list(s), comma-separated (default, cpu050, gpushare40, ...), 'all', or a trace file."
        ),
    ] = "default",
    policy: Annotated[
        str,
        typer.Option(
            help="random, dotprod, clustering, packing, bestfit, fgd, firstfit, "
            "spread, mostallocated; comma-separated, 'paper' (first six) or 'all'."
        ),
    ] = "fgd",
    seeds: Annotated[str, typer.Option(help="Seeds: N, A-B or a comma-separated list.")] = "42",
    load: Annotated[float, typer.Option(help="Resample pods until requested GPUs reach this share of capacity.")] = 1.3,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("runs/fill"),
    nodes: Annotated[str, typer.Option(help="openb node list: gpu_node (1,213 nodes) or all_node.")] = "gpu_node",
    workers: Annotated[int | None, typer.Option(help="Parallel processes (default: all cores).")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """The FGD paper's fill experiment: place pods until demand reaches --load x capacity; record
    unallocated GPUs and fragmentation at every 1% of arrived load."""
    check_all(
        [
            (load, "--load", dict(lo=0, hi=10, lo_open=True)),
            (workers, "--workers", dict(lo=1, hi=1024)),
        ]
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gpuinfra.fill import (
        check_grid_budget,
        check_grid_inputs,
        parse_policies,
        parse_workloads,
        run_grid,
        write_fill,
        write_run_csv,
    )
    from gpuinfra.io import manifest
    from gpuinfra.report.tables import FILL_HEADER, fill_rows
    from gpuinfra.units import count_seeds, parse_seeds

    ws, ps = parse_workloads(workload), parse_policies(policy)
    check_grid_budget(len(ws), len(ps), count_seeds(seeds), workers)
    ss = parse_seeds(seeds)
    if nodes not in ("gpu_node", "all_node"):
        raise UserError(f"unknown node list '{nodes}'", where="--nodes", expected="gpu_node or all_node")
    manifest.prepare(out_dir, "fill", force=force)
    t0 = time.perf_counter()
    prog = Progress(
        TextColumn("[bold]fill[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )
    check_grid_inputs(ws, load=load, nodes=nodes)
    manifest.begin(out_dir)
    total = len(ws) * len(ps) * len(ss)
    kept: list[Path] = []
    try:
        with prog:
            task = prog.add_task("runs", total=total)
            results = run_grid(
                ws,
                ps,
                ss,
                load=load,
                nodes=nodes,
                workers=workers,
                progress=lambda k, n: prog.update(task, completed=k),
                on_result=lambda r: kept.append(write_run_csv(r, out_dir / "runs")),
            )
    except KeyboardInterrupt:
        raise Interrupted(
            f"fill grid after {len(kept)} of {total} runs",
            f"{len(kept)} finished run(s) in {out_dir / 'runs'}/ (one CSV each); no manifest.json, so "
            f"{out_dir} reads as an unfinished run",
        ) from None
    wall = time.perf_counter() - t0
    params = {"workloads": ws, "policies": ps, "seeds": seeds}
    files, summ = write_fill(results, out_dir, load=load, nodes=nodes, report=report, params=params)
    t = Table(*FILL_HEADER)
    for row in fill_rows(summ):
        t.add_row(*row)
    out.print(t)
    out.print(
        f"{len(results)} run(s) in {wall:.1f} s ({wall / max(len(results), 1):.2f} s per run); wrote "
        + ", ".join(str(f) for f in files)
    )


def compare(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario YAML (default: the embedded openb scenario).")
    ] = None,
    policies: Annotated[
        str,
        typer.Option(
            help="Comma-separated: scenario, random, dotprod, clustering, packing, "
            "bestfit, fgd, firstfit, spread, mostallocated; or 'paper' / 'all'."
        ),
    ] = "firstfit,bestfit,fgd",
    mode: Annotated[
        str, typer.Option(help="replay (in time) or fill (the FGD experiment on the same pods).")
    ] = "replay",
    load: Annotated[float, typer.Option(help="fill mode: target share of capacity.")] = 1.3,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("runs/compare"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Run one scenario under several scheduler policies and report them side by side."""
    check_all(
        [
            (seed, "--seed", dict(lo=0, hi=MAX_SEED)),
            (load, "--load", dict(lo=0, hi=10, lo_open=True)),
        ]
    )
    from gpuinfra.compare import run_compare
    from gpuinfra.fill import parse_policies
    from gpuinfra.io import manifest
    from gpuinfra.io.atomic import write_text
    from gpuinfra.io.results import write_json
    from gpuinfra.io.scenario import default_scenario_text, load_scenario, parse_scenario
    from gpuinfra.report.tables import COMPARE_HEADER, compare_fill_lines, compare_replay_rows

    pols = parse_policies(policies, "--policies", allow_scenario=True)
    if scenario is not None:
        check_input_file(scenario, "SCENARIO", "scenario file")
        sc, base = load_scenario(scenario)
    else:
        sc, base = parse_scenario(default_scenario_text(), "builtin:openb-default"), None
    if mode not in ("replay", "fill"):
        raise UserError(f"unknown mode '{mode}'", where="--mode", expected="replay or fill")
    # the default -o is shared by every scenario: an earlier compare of another scenario is not replaced silently
    ident = {"scenario": sc.name, "scenario_sha256": hashlib.sha256((sc._text or "").encode()).hexdigest()}
    manifest.prepare(out_dir, "compare", force=force, same=ident)
    t0 = time.perf_counter()
    summ, html = run_compare(sc, base, pols, mode=mode, load=load, seed=seed)
    manifest.begin(out_dir)
    write_json(out_dir / "summary.json", summ)
    write_text(out_dir / "report.html", html)
    manifest.write_manifest(
        out_dir,
        "compare",
        {**ident, "policies": pols, "mode": mode, "load": load, "seed": seed},
        [out_dir / "summary.json", out_dir / "report.html"],
    )
    if mode == "fill":
        for line in compare_fill_lines(summ):
            out.print(line)
    else:
        t = Table(*COMPARE_HEADER)
        for row in compare_replay_rows(summ["policies"]):
            t.add_row(*row)
        out.print(t)
    out.print(f"{len(pols)} run(s) in {time.perf_counter() - t0:.1f} s; wrote {out_dir}/summary.json, report.html")
