"""The ``gpuinfra`` command: parse, call, print. No logic a test cannot reach without the CLI."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gpuinfra import __version__
from gpuinfra.errors import EXIT_USER_ERROR, UserError

app = typer.Typer(
    name="gpuinfra",
    help="The AI Infra Engineer Framework, executable: GPU cluster models, a simulator, real interfaces, labs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
catalog_app = typer.Typer(
    help="Browse the packaged facts: GPU and CPU models, node shapes, prices.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")
trace_app = typer.Typer(help="Read, check and convert job traces.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")

out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"gpuinfra {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """gpuinfra: run `gpuinfra simulate` for the default scenario."""


@app.command()
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
) -> None:
    """Replay a workload on a cluster and write summary.json, metrics, event log and report.html."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gpuinfra.io.scenario import (
        builtin_scenario_text,
        default_scenario_text,
        load_scenario,
        parse_scenario,
    )
    from gpuinfra.run import simulate as run_sim
    from gpuinfra.run import write_run_dir

    if scenario is not None and builtin is not None:
        raise UserError("give a scenario file or --builtin, not both", where="command line")
    if scenario is not None:
        sc, base = load_scenario(scenario)
    elif builtin is not None:
        sc, base = parse_scenario(builtin_scenario_text(builtin), f"builtin:{builtin}"), None
    else:
        sc, base = parse_scenario(default_scenario_text(), "builtin:openb-default"), None
    eff_seed = sc.seed if seed is None else seed
    target = out_dir or Path("runs") / f"{sc.name}-seed{eff_seed}"
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
    with progress:
        task = progress.add_task(sc.name, total=100.0)
        res = run_sim(
            sc, base, seed=seed, log_events=events, progress=lambda frac: progress.update(task, completed=100.0 * frac)
        )
        progress.update(task, completed=100.0)
    t_sim = time.perf_counter() - t0
    files = write_run_dir(res, target, report=report)
    if not events:
        (target / "events.jsonl").unlink(missing_ok=True)
    s = res.summary
    g = s["gpu_time"]
    table = Table(title=f"{sc.name} (seed {eff_seed})", show_header=False)
    table.add_row("cluster", f"{s['cluster']['nodes']:,} nodes, {s['cluster']['gpus']:,} GPUs")
    table.add_row(
        "pods",
        f"{s['workload']['pods']:,} ({s['workload']['gpu_pods']:,} GPU, "
        f"{s['workload']['shared_gpu_pods']:,} shared-GPU)",
    )
    table.add_row(
        "GPU-hours",
        f"capacity {g['capacity_gpu_hours']:,.0f}, allocated {g['allocated_gpu_hours']:,.0f} "
        f"({100 * g['allocation_ratio']:.3f}%), idle {g['idle_gpu_hours']:,.0f}",
    )
    w = s["pods"]["wait_s"]
    if s["pods"]["started"]:
        table.add_row("wait (s)", f"p50 {w['p50']:,.0f}, p90 {w['p90']:,.0f}, p99 {w['p99']:,.0f}, max {w['max']:,.0f}")
    table.add_row("outcomes", ", ".join(f"{k} {v:,}" for k, v in s["pods"]["outcomes"].items() if v))
    c = s["cost"]
    table.add_row("cost (USD)", f"allocated {c['allocated_usd']:,.0f}, idle {c['idle_usd']:,.0f}")
    inv = s["invariants"]
    table.add_row(
        "invariants",
        f"GPU-time balance {'ok' if inv['gpu_time_balance']['ok'] else 'VIOLATED'}, "
        f"no over-commit {'ok' if inv['no_overcommit']['ok'] else 'VIOLATED'}",
    )
    ev = s["engine"]["events"]
    table.add_row(
        "engine",
        f"{ev:,} events, {s['engine']['scheduling_cycles']:,} cycles in {t_sim:.2f} s "
        f"({ev / max(t_sim, 1e-9):,.0f} events/s)",
    )
    out.print(table)
    out.print(f"wrote {target}/: " + ", ".join(p.name for p in files))
    if not (inv["gpu_time_balance"]["ok"] and inv["no_overcommit"]["ok"]):
        err.print("[red]an invariant was violated: this is a gpuinfra bug, please report it[/]")
        raise typer.Exit(1)


@app.command()
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
) -> None:
    """The FGD paper's fill experiment: place pods until demand reaches --load x capacity; record
    unallocated GPUs and fragmentation at every 1% of arrived load."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gpuinfra.fill import parse_policies, parse_seeds, parse_workloads, run_grid, write_fill

    ws, ps, ss = parse_workloads(workload), parse_policies(policy), parse_seeds(seeds)
    if nodes not in ("gpu_node", "all_node"):
        raise UserError(f"unknown node list '{nodes}'", where="--nodes", expected="gpu_node or all_node")
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
    with prog:
        task = prog.add_task("runs", total=len(ws) * len(ps) * len(ss))
        results = run_grid(
            ws, ps, ss, load=load, nodes=nodes, workers=workers, progress=lambda k, n: prog.update(task, completed=k)
        )
    wall = time.perf_counter() - t0
    files, summ = write_fill(results, out_dir, load=load, nodes=nodes, report=report)
    t = Table("workload", "policy", "seeds", "at arrived %", "unallocated %", "fragmented %", "failed pods")
    for w, pols in summ["by_workload"].items():
        for p, v in sorted(pols.items(), key=lambda kv: kv[1]["unalloc_pct_mean"] or 0):
            t.add_row(
                w,
                p,
                str(v["seeds"]),
                str(v["ref_arrived_pct"]),
                f"{v['unalloc_pct_mean']:.2f} +- {v['unalloc_pct_stdev']:.2f}",
                f"{v['frag_amount_pct_mean']:.2f}",
                f"{v['failed_pods_mean']:.0f}",
            )
    out.print(t)
    out.print(
        f"{len(results)} run(s) in {wall:.1f} s ({wall / max(len(results), 1):.2f} s per run); wrote "
        + ", ".join(str(f) for f in files)
    )


@app.command()
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
) -> None:
    """Run one scenario under several scheduler policies and report them side by side."""
    from gpuinfra.compare import SCHEMA, compare_fill, compare_replay, parse_compare_policies, replay_table
    from gpuinfra.io.results import write_json
    from gpuinfra.io.scenario import default_scenario_text, load_scenario, parse_scenario

    pols = parse_compare_policies(policies)
    if scenario is not None:
        sc, base = load_scenario(scenario)
    else:
        sc, base = parse_scenario(default_scenario_text(), "builtin:openb-default"), None
    if mode not in ("replay", "fill"):
        raise UserError(f"unknown mode '{mode}'", where="--mode", expected="replay or fill")
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if mode == "fill":
        from gpuinfra.fill import summarize_results
        from gpuinfra.io.scenario import build
        from gpuinfra.report.fill_report import render_fill_report

        b = build(sc, base, seed=seed)
        results = compare_fill(b, pols, load)
        cluster = {"node_list": f"scenario {sc.name}", "nodes": b.cluster.n_nodes, "gpus": b.cluster.n_gpus}
        summ = summarize_results(results, load=load, cluster=cluster) | {"schema": SCHEMA, "mode": "fill"}
        write_json(out_dir / "summary.json", summ)
        (out_dir / "report.html").write_text(render_fill_report(summ, results))
        for p, v in next(iter(summ["by_workload"].values())).items():
            out.print(
                f"{p:14s} unallocated {v['unalloc_pct_mean']:.2f}% at {v['ref_arrived_pct']}% arrived, "
                f"{v['failed_pods_mean']:.0f} failed pods"
            )
    else:
        from gpuinfra.report.compare_report import render_compare_report

        runs = compare_replay(sc, base, pols, seed)
        table = replay_table(runs)
        write_json(
            out_dir / "summary.json",
            {
                "schema": SCHEMA,
                "mode": "replay",
                "scenario": sc.name,
                "seed": seed if seed is not None else sc.seed,
                "policies": table,
            },
        )
        (out_dir / "report.html").write_text(render_compare_report(sc.name, table, runs))
        t = Table(
            "policy",
            "allocation %",
            "mean unallocated GPUs",
            "mean fragmented GPUs",
            "wait p90 s",
            "pending at end",
            "idle USD",
        )
        for p, v in table.items():
            t.add_row(
                p,
                f"{100 * (v['allocation_ratio'] or 0):.3f}",
                f"{v['mean_unallocated_gpus']:,.1f}",
                f"{v['mean_fragmented_gpus']:,.1f}",
                f"{v['wait_s']['p90'] or 0:,.0f}",
                str(v["pending_at_end"]),
                f"{v['idle_usd'] or 0:,.0f}",
            )
        out.print(t)
    out.print(f"{len(pols)} run(s) in {time.perf_counter() - t0:.1f} s; wrote {out_dir}/summary.json, report.html")


@app.command()
def health(
    dmesg: Annotated[
        Path | None, typer.Option("--dmesg", help="Kernel log (dmesg, journalctl -k) with NVRM Xid lines.")
    ] = None,
    nvidia_smi: Annotated[Path | None, typer.Option("--nvidia-smi", help="Saved `nvidia-smi -q` output.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON (a list).")] = False,
    tree: Annotated[
        bool, typer.Option("--tree", help="Print the decision tree itself (Mermaid flowchart) and exit.")
    ] = False,
) -> None:
    """Classify a GPU node's Xid and ECC evidence and say what to do: none, restart_app, reset_gpu,
    reboot_node or drain_and_replace (the most severe is the node's verdict)."""
    from gpuinfra.io.health import parse_kernel_log, parse_nvidia_smi_q, read_text
    from gpuinfra.models.faults import decision_tree_mermaid, escalate, verdict

    if tree:
        sys.stdout.write(decision_tree_mermaid())
        return
    if dmesg is None and nvidia_smi is None:
        raise UserError("nothing to read", where="command line", expected="--dmesg FILE and/or --nvidia-smi FILE")
    findings, notes = [], []
    if dmesg is not None:
        ev = parse_kernel_log(read_text(dmesg), str(dmesg))
        findings += ev.findings
        notes.append(f"{dmesg}: {ev.lines_read:,} lines, {ev.lines_read - ev.lines_ignored:,} with Xids")
    if nvidia_smi is not None:
        ev = parse_nvidia_smi_q(read_text(nvidia_smi), str(nvidia_smi))
        findings += ev.findings
        notes.append(f"{nvidia_smi}: {len(ev.gpus_seen)} GPU(s)")
    findings = escalate(findings)
    if as_json:
        sys.stdout.write(json.dumps([f.as_json() for f in findings], indent=2) + "\n")
        return
    t = Table("source", "gpu", "xid", "class", "action", "reason", show_lines=False)
    for f in findings:
        t.add_row(f.source, f.gpu or "-", "-" if f.xid is None else str(f.xid), f.cls, f.action, f.reason)
    if findings:
        out.print(t)
    for n in notes:
        out.print(f"[dim]{n}[/]")
    v = verdict(findings)
    worst = [f for f in findings if f.action == v]
    why = worst[0].reason if worst else "no fault evidence found"
    out.print(f"node verdict: [bold]{v}[/] ({why})")


@app.command()
def roofline(
    op: Annotated[
        str,
        typer.Option(
            help="gemm:M,N,K | elementwise:N | embedding:TOKENS,DIM | attention:B,H,S,D | "
            "layer:TOKENS,HIDDEN,FFN,HEADS,SEQ | layer-bwd:TOKENS,HIDDEN,FFN,HEADS,SEQ"
        ),
    ],
    devices: Annotated[
        str, typer.Option("--devices", help="Comma-separated GPU or CPU models (gpuinfra catalog gpus|cpus).")
    ] = "T4,A100-80GB,H100,B200",
    dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32")] = "bf16",
) -> None:
    """Roofline estimate of an operation (or a transformer layer's operations) on GPUs and CPUs:
    time, what bounds it, and why."""
    from gpuinfra.models import roofline as rl

    kind, _, args = op.partition(":")
    makers = {
        "gemm": (rl.gemm, 3),
        "elementwise": (rl.elementwise, 1),
        "embedding": (rl.embedding, 2),
        "attention": (rl.attention, 4),
        "layer": (rl.transformer_layer, 5),
        "layer-bwd": (lambda *a, dtype: rl.transformer_layer(*a, dtype=dtype, backward=True), 5),
    }
    try:
        fn, nargs = makers[kind]
        nums = [int(x) for x in args.split(",")]
        if len(nums) != nargs or any(x <= 0 for x in nums):
            raise ValueError
    except (KeyError, ValueError):
        raise UserError(
            f"bad --op '{op}'",
            where="--op",
            expected="gemm:M,N,K, elementwise:N, embedding:TOKENS,DIM, attention:B,H,S,D "
            "or layer[-bwd]:TOKENS,HIDDEN,FFN,HEADS,SEQ",
        ) from None
    made = fn(*nums, dtype=dtype if dtype in rl.BYTES else "bf16")
    ops = made if isinstance(made, list) else [made]
    devs = [x.strip() for x in devices.split(",") if x.strip()]
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


mig_app = typer.Typer(help="MIG: profiles, placements and what still fits a GPU.", no_args_is_help=True)
app.add_typer(mig_app, name="mig")


@mig_app.command("profiles")
def mig_profiles_cmd(gpu: Annotated[str, typer.Argument(help="A MIG-capable GPU: A100-40GB, A100-80GB, H100, H200")]):
    """The GPU-instance profiles of a GPU: slices, memory, SMs, max count, valid start slots."""
    from gpuinfra.models.mig import mig_profiles

    t = Table("profile", "id", "compute", "memory slices", "GiB", "SMs", "max", "start slots")
    for p in mig_profiles(gpu):
        t.add_row(
            p.name,
            str(p.profile_id),
            f"{p.compute_slices}/7",
            f"{p.memory_slices}/8",
            f"{p.memory_gib:g}",
            str(p.sm_count) if p.sm_count else "-",
            str(p.max_count),
            ",".join(map(str, p.placements)),
        )
    out.print(t)


@mig_app.command("fit")
def mig_fit(
    gpu: Annotated[str, typer.Argument(help="A MIG-capable GPU")],
    want: Annotated[str, typer.Option(help="The profile to place, e.g. 2g.10gb")],
    have: Annotated[str, typer.Option(help="Existing instances: PROFILE@START_SLOT, comma-separated")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Whether and where a profile still fits a GPU that already has some instances, and why not."""
    from gpuinfra.models.mig import mig_profiles, parse_have, placements, profile, stranded_slices, why_not

    state = parse_have(gpu, have)
    p = profile(gpu, want)
    where = placements(state, p)
    reasons = {s: why_not(state, p, s) for s in p.placements if s not in where}
    stranded = stranded_slices(state, [q for q in mig_profiles(gpu) if not q.media_engines])
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "gpu": gpu,
                    "want": want,
                    "have": [str(i) for i in state],
                    "fits": bool(where),
                    "start_slots": where,
                    "why_not": {str(k): v for k, v in reasons.items()},
                    "stranded_memory_slices": stranded,
                },
                indent=2,
            )
            + "\n"
        )
        return
    if where:
        out.print(f"{want} fits at start slot(s) {', '.join(map(str, where))}")
    else:
        out.print(f"{want} does not fit:")
    for s, why in reasons.items():
        out.print(f"  slot {s}: {why}")
    if stranded:
        out.print(f"free memory slices no profile can use now (MIG fragmentation): {', '.join(map(str, stranded))}")


lab_app = typer.Typer(help="Labs: run a seed section's activities and write its report.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")


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
    res = build_site(out_dir, quick=quick, on_lab=lambda n, title: err.print(f"lab {n}: {escape(title)}"))
    for n, why in sorted(res.failed.items()):
        err.print(f"[bold red]section {n} failed:[/] {escape(why)}", highlight=False, soft_wrap=True)
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
) -> None:
    """Run lab N (also: `gpuinfra lab N`)."""
    from gpuinfra.labs import registry

    labs = registry()
    if number not in labs:
        raise UserError(
            f"there is no lab {number}",
            where="lab number",
            expected="one of " + ", ".join(str(n) for n in sorted(labs)),
            fix="see `gpuinfra lab list`",
        )
    target = out_dir or Path("runs") / f"lab{number}"
    t0 = time.perf_counter()
    with err.status(f"lab {number}: {labs[number].title}"):
        report = labs[number].run(target, design=design, quick=quick, workers=workers)
    out.print(f"lab {number} ({labs[number].title}) in {time.perf_counter() - t0:.1f} s: wrote {report}")


@app.command()
def schema(
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of scenario files."""
    from gpuinfra.io.scenario import Scenario

    text = json.dumps(Scenario.model_json_schema(), indent=2, sort_keys=True)
    if out_file:
        out_file.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    from gpuinfra.io.scenario import builtin_scenarios

    for n in builtin_scenarios():
        out.print(n)


@app.command()
def plugins() -> None:
    """List the scheduler plugins a scenario's profile can name."""
    from gpuinfra.sim import plugins as _  # noqa: F401
    from gpuinfra.sim.scheduler import REGISTRY

    t = Table("plugin", "extension point", "contract")
    for name, cls in sorted(REGISTRY.items()):
        kind = next(b.__name__.replace("Plugin", "") for b in cls.__mro__[1:] if b.__name__.endswith("Plugin"))
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        t.add_row(name, kind, doc)
    out.print(t)


@catalog_app.command("gpus")
def catalog_gpus(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """GPU models with their limits and sources."""
    from dataclasses import asdict

    from gpuinfra.catalog import gpu_models

    if as_json:
        sys.stdout.write(json.dumps([asdict(m) for m in gpu_models()], indent=2) + "\n")
        return
    t = Table(
        "model", "GiB", "mem BW GB/s", "SMs", "FP16/BF16 TF", "FP32 TF", "NVLink GB/s", "PCIe", "TDP W", "MIG", "ev"
    )

    def f(x: float | None, scale: float = 1.0) -> str:
        return "-" if x is None else f"{x / scale:g}"

    for m in gpu_models():
        t.add_row(
            m.name,
            f(m.memory_gib),
            f(m.mem_bw_bytes_per_s, 1e9),
            f(m.sm_count),
            f(m.fp16_tensor_dense_flops, 1e12),
            f(m.fp32_flops, 1e12),
            f(m.nvlink_bw_bytes_per_s, 1e9),
            f(m.pcie_gen),
            f(m.tdp_w),
            "yes" if m.mig else "",
            m.evidence,
        )
    out.print(t)
    out.print(
        "Sources: `gpuinfra catalog gpus --json` (field 'source'); evidence P primary, S secondary, "
        "D derived, U unverified."
    )


@catalog_app.command("cpus")
def catalog_cpus() -> None:
    """CPU models for the roofline: cores, clocks, SIMD, FLOP/s, memory bandwidth, sources."""
    from gpuinfra.catalog.cpus import cpu_models

    t = Table(
        "CPU", "kind", "year", "cores", "GHz base/boost", "SIMD", "FP32 TFLOP/s", "BF16 TFLOP/s", "GB/s", "W", "ev."
    )
    for m in cpu_models().values():
        t.add_row(
            m.name,
            m.kind,
            str(m.year),
            str(m.cores),
            f"{m.base_ghz}/{m.boost_ghz}",
            m.simd,
            f"{m.fp32_flops / 1e12:.2f}",
            f"{m.bf16_flops / 1e12:.2f}",
            f"{m.mem_bw_bytes_per_s / 1e9:.0f}",
            f"{m.tdp_w:.0f}",
            m.evidence,
        )
    out.print(t)
    out.print("sources: src/gpuinfra/catalog/data/cpus.csv and CPU_SOURCES.md (recalled launch specs, tagged U)")


@catalog_app.command("shapes")
def catalog_shapes() -> None:
    """Node shapes (cloud instance types and the openb trace's nodes)."""
    from gpuinfra.catalog import node_shapes

    t = Table("shape", "GPU", "GPUs", "vCPU", "memory GiB")
    for s in node_shapes():
        t.add_row(s.name, s.gpu_model, str(s.gpus), f"{s.cpu_milli / 1000:g}", f"{s.memory_mib / 1024:g}")
    out.print(t)


@catalog_app.command("prices")
def catalog_prices(
    model: Annotated[str, typer.Argument(help="GPU model, e.g. H100")],
    cloud: Annotated[str | None, typer.Option()] = None,
    region: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Median USD per GPU-hour of a model in the packaged price catalog."""
    from gpuinfra.catalog import gpu_hour_price

    p = gpu_hour_price(model, cloud=cloud, region=region)
    out.print(f"{p.gpu_model}: on-demand {p.on_demand_usd} USD/GPU-h, spot {p.spot_usd} USD/GPU-h")
    out.print(f"[dim]{p.source}[/]")


@trace_app.command("check")
def trace_check(
    path: Annotated[str, typer.Argument(help="A generic trace (CSV/Parquet), or openb:NAME")],
) -> None:
    """Read every row of a trace and report what it holds (or the first bad row)."""
    from gpuinfra.io.traces import openb_pod_list, read_generic, read_openb_pods
    from gpuinfra.sim.workload import PodTable

    if path.startswith("openb:"):
        pods = read_openb_pods(openb_pod_list(path.split(":", 1)[1]))
    else:
        pods = read_generic(Path(path))
    pt = PodTable(pods)
    out.print(
        f"{path}: {len(pt):,} rows read, {int((pt.num_gpu > 0).sum()):,} ask for GPUs, "
        f"{pt.total_gpu_request():,.1f} GPUs requested in all, submit times "
        f"{pt.submit_s.min():.0f}..{pt.submit_s.max():.0f} s"
    )


@trace_app.command("convert")
def trace_convert(
    source: Annotated[str, typer.Argument(help="openb:NAME or a generic trace")],
    dest: Annotated[Path, typer.Argument(help="Output .csv or .parquet in the generic format")],
) -> None:
    """Convert a trace to gpuinfra's generic format (CSV or Parquet)."""
    from gpuinfra.io.traces import openb_pod_list, read_generic, read_openb_pods, write_generic

    pods = (
        read_openb_pods(openb_pod_list(source.split(":", 1)[1]))
        if source.startswith("openb:")
        else read_generic(Path(source))
    )
    write_generic(pods, dest)
    out.print(f"wrote {len(pods):,} rows to {dest}")


from gpuinfra.cli_topology import (  # noqa: E402
    alerts_app,
    collective,
    export_app,
    incident,
    memory_app,
    metrics_app,
    probe_app,
    reliability,
    scale,
    sharing_app,
    topo_app,
)

app.add_typer(topo_app, name="topo")
app.add_typer(memory_app, name="memory")
app.add_typer(probe_app, name="probe")
app.add_typer(metrics_app, name="metrics")
app.add_typer(alerts_app, name="alerts")
app.add_typer(export_app, name="export")
app.add_typer(sharing_app, name="sharing")
from gpuinfra.cli_artifact import artifact_app, compat_app  # noqa: E402

app.add_typer(artifact_app, name="artifact")
app.add_typer(compat_app, name="compat")
from gpuinfra.cli_execution import checkpoint_app, io_app  # noqa: E402

app.add_typer(checkpoint_app, name="checkpoint")
app.add_typer(io_app, name="io")
from gpuinfra.cli_lifecycle import cost_app, upgrade_app  # noqa: E402

app.add_typer(upgrade_app, name="upgrade")
app.add_typer(cost_app, name="cost")

from gpuinfra.cli_deploy import precision_app, rollout_app, security_app  # noqa: E402

app.add_typer(precision_app, name="precision")
app.add_typer(rollout_app, name="rollout")
app.add_typer(security_app, name="security")
app.command()(collective)
app.command()(scale)
app.command()(reliability)
app.command()(incident)
from gpuinfra.cli_serving import serving_app  # noqa: E402

app.add_typer(serving_app, name="serving")
from gpuinfra.cli_node import node_app  # noqa: E402

app.add_typer(node_app, name="node")


def main() -> None:
    # `gpuinfra lab 6` is short for `gpuinfra lab run 6`
    if len(sys.argv) > 2 and sys.argv[1] == "lab" and sys.argv[2].isdigit():
        sys.argv.insert(2, "run")
    try:
        app()
    except UserError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except typer.Abort:
        sys.exit(130)


if __name__ == "__main__":
    main()
