"""``metrics export|serve`` and ``alerts export|evaluate``: telemetry under exporter names, alert rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, err, esc, out, warn
from gpuinfra.errors import UserError
from gpuinfra.units import MAX_SEED, check_all

metrics_app = typer.Typer(
    help="Telemetry under dcgm-exporter / kube-state-metrics names: export, serve.", no_args_is_help=True
)
alerts_app = typer.Typer(
    help="Prometheus alert rules for GPUs: export, evaluate against ground truth.", no_args_is_help=True
)


SAMPLES_PER_NODE_STEP = 88
"""Samples the built-in telemetry scenario writes per node per sampling step (measured: 1 node,
2 hours at 30 s gave 21,030 samples over 240 steps)."""
MAX_SAMPLES = 20_000_000
"""Most samples one command generates (a few GB of Python objects beyond it)."""


def _check_samples(nodes: int, hours: float, interval: float) -> None:
    steps = hours * 3600 / interval
    samples = SAMPLES_PER_NODE_STEP * nodes * steps
    if samples > MAX_SAMPLES:
        raise UserError(
            f"{nodes} node(s) x {hours:g} h at one sample per {interval:g} s is about {samples:,.0f} samples",
            where="--nodes/--hours/--interval",
            expected=f"at most {MAX_SAMPLES:,} samples per command",
            fix="fewer nodes or hours, or a longer --interval",
        )


def _telemetry(nodes: int, hours: float, seed: int, interval: float, run: Path | None = None, max_nodes: int = 8):
    if run is not None:
        from gpuinfra.io.results import open_run_dir
        from gpuinfra.sim.telemetry_run import telemetry_from_run

        open_run_dir(run, "simulate", where="--run")

        return telemetry_from_run(run, hours=hours, interval_s=interval, max_nodes=max_nodes)
    from gpuinfra.obs.simulate import simulate_telemetry

    _check_samples(nodes, hours, interval)

    return simulate_telemetry(nodes=nodes, hours=hours, interval_s=interval, seed=seed)


@metrics_app.command("export")
def metrics_export(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for metrics.om (OpenMetrics) and truth.json.")
    ] = Path("runs/metrics"),
    nodes: Annotated[int, typer.Option(help="Nodes of 8 GPUs (built-in telemetry scenario).")] = 4,
    hours: Annotated[float, typer.Option(help="Hours of telemetry.")] = 6.0,
    interval: Annotated[float, typer.Option(help="Sampling interval, s (dcgm-exporter default 30).")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    run: Annotated[
        Path | None, typer.Option(help="A run directory from `gpuinfra simulate`: export its pods' GPUs instead.")
    ] = None,
    max_nodes: Annotated[int, typer.Option(help="With --run: at most this many nodes (the busiest).")] = 8,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Write a simulation's series as OpenMetrics with timestamps; load with
    `promtool tsdb create-blocks-from openmetrics metrics.om DIR`."""
    check_all(
        [
            (nodes, "--nodes", dict(lo=1, hi=1000)),
            (hours, "--hours", dict(lo=0 if run else 1, hi=8760, lo_open=run is not None)),
            (interval, "--interval", dict(lo=1, hi=3600)),
            (seed, "--seed", dict(lo=0, hi=MAX_SEED)),
            (max_nodes, "--max-nodes", dict(lo=1, hi=10_000)),
        ]
    )
    from gpuinfra.io import manifest
    from gpuinfra.io.atomic import write_with
    from gpuinfra.io.results import write_json
    from gpuinfra.obs.export import write_openmetrics

    manifest.prepare(out_dir, "metrics export", force=force)
    tel = _telemetry(nodes, hours, seed, interval, run, max_nodes)
    manifest.begin(out_dir)
    counted: list[int] = []
    write_with(out_dir / "metrics.om", lambda tmp: counted.append(write_openmetrics(tel, tmp)))
    n = counted[0]
    write_json(
        out_dir / "truth.json",
        {"incidents": [i.__dict__ for i in tel.truth], "noise": tel.noise, "start_unix": tel.start_unix},
    )
    params = {"nodes": nodes, "hours": hours, "interval": interval, "seed": seed, "max_nodes": max_nodes}
    params["run"] = None if run is None else run.name
    manifest.write_manifest(out_dir, "metrics export", params, [out_dir / "metrics.om", out_dir / "truth.json"])
    out.print(
        f"wrote {out_dir / 'metrics.om'}: {n:,} samples of {sum(len(v) for v in tel.series.values())} series; truth.json: {len(tel.truth)} incidents",
        highlight=False,
    )


@metrics_app.command("serve")
def metrics_serve(
    bind: Annotated[
        str, typer.Option(help="Address to bind (127.0.0.1 by default; 0.0.0.0 exposes it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (dcgm-exporter uses 9400).")] = 9400,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second (1 = real time).")] = 1.0,
    nodes: Annotated[int, typer.Option(help="Nodes of 8 GPUs.")] = 4,
    hours: Annotated[float, typer.Option(help="Hours of telemetry to replay.")] = 6.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    duration: Annotated[
        float, typer.Option(help="Stop after this many real seconds (0: until Ctrl-C or the end).")
    ] = 0.0,
) -> None:
    """Serve a simulation's current values on /metrics while it replays."""
    check_all(
        [
            (port, "--port", dict(lo=0, hi=65535)),
            (speed, "--speed", dict(lo=0, hi=1_000_000, lo_open=True)),
            (nodes, "--nodes", dict(lo=1, hi=1000)),
            (hours, "--hours", dict(lo=1, hi=8760)),
            (seed, "--seed", dict(lo=0, hi=MAX_SEED)),
            (duration, "--duration", dict(lo=0, hi=1e7)),
        ]
    )
    import time as _time

    from gpuinfra.obs.export import MetricsServer

    if bind not in ("127.0.0.1", "localhost", "::1"):
        warn(
            f"--bind {bind} exposes /metrics beyond this machine (no authentication, no TLS); "
            "bind 127.0.0.1 unless a scraper elsewhere needs it"
        )
    tel = _telemetry(nodes, hours, seed, 30.0)
    srv = MetricsServer(tel, bind, port, speed).start()
    out.print(f"serving http://{bind}:{srv.port}/metrics at {speed:g}x; Ctrl-C stops", highlight=False)
    end = (tel.times[-1] / speed) if speed > 0 else float("inf")
    t0 = _time.monotonic()
    try:
        while _time.monotonic() - t0 < (duration or end):
            _time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    out.print("stopped", highlight=False)


@alerts_app.command("export")
def alerts_export(
    rule_set: Annotated[str, typer.Option("--set", help="designed or naive.")] = "designed",
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the rule file here (default: stdout).")
    ] = None,
    check: Annotated[bool, typer.Option(help="Also run `promtool check rules` on it.")] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Write a Prometheus rule file for GPU alerts."""
    from gpuinfra.io.atomic import check_output_file, write_text
    from gpuinfra.obs.export import run_promtool
    from gpuinfra.obs.rules import RULE_SETS, rule_file

    if rule_set not in RULE_SETS:
        raise UserError(f"unknown rule set '{rule_set}'", where="--set", expected=", ".join(RULE_SETS))
    if out_file is not None:
        check_output_file(out_file, force=force, where="--out")
    text = rule_file(RULE_SETS[rule_set]())
    if out_file is None:
        sys.stdout.write(text)
    else:
        write_text(out_file, text, "--out")
        out.print(f"wrote {out_file}", highlight=False)
    if check:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "rules.yml"
            p.write_text(text)
            r = run_promtool("check", "rules", str(p))
        err.print((r.stdout + r.stderr).strip(), highlight=False)
        if r.returncode != 0:
            raise typer.Exit(1)


@alerts_app.command("evaluate")
def alerts_evaluate(
    nodes: Annotated[int, typer.Option(help="Nodes of 8 GPUs.")] = 4,
    hours: Annotated[float, typer.Option(help="Hours of telemetry.")] = 6.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    promtool_check: Annotated[
        bool,
        typer.Option("--promtool/--no-promtool", help="Check agreement with `promtool test rules` (small clusters)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print scores as JSON.")] = False,
) -> None:
    """Run the naive and designed rule sets over simulated telemetry with known incidents: precision, recall, time to detect, pages per day."""
    check_all(
        [
            (nodes, "--nodes", dict(lo=1, hi=1000)),
            (hours, "--hours", dict(lo=1, hi=8760)),
            (seed, "--seed", dict(lo=0, hi=MAX_SEED)),
        ]
    )
    from gpuinfra.obs.evaluate import evaluate
    from gpuinfra.obs.rules import RULE_SETS

    tel = _telemetry(nodes, hours, seed, 30.0)
    res = {name: evaluate(fn(), tel) for name, fn in RULE_SETS.items()}
    if promtool_check:
        import tempfile

        from gpuinfra.obs.export import check_with_promtool

        with tempfile.TemporaryDirectory() as d:
            agree = {name: check_with_promtool(fn(), tel, Path(d) / name) for name, fn in RULE_SETS.items()}
    if as_json:
        payload = {k: v.as_dict() for k, v in res.items()}
        if promtool_check:
            payload["promtool"] = {k: {x: y for x, y in v.items() if x != "test_output"} for k, v in agree.items()}
        json.dump(payload, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return
    for name, ev in res.items():
        d = ev.as_dict()
        prec = "-" if d["precision"] is None else f"{d['precision']:.0%}"
        out.print(
            f"[bold]{esc(name)}[/]: recall {d['recall']:.0%} of {ev.n_incidents} incidents, precision {prec}, {d['pages_per_day']:.0f} pages/day",
            highlight=False,
            markup=True,
        )
        t = Table("rule", "pages", "true", "precision", "caught/targeted", "mean time to detect")
        for s in ev.scores:
            t.add_row(
                s.rule,
                str(s.episodes),
                str(s.true_episodes),
                "-" if s.precision is None else f"{s.precision:.0%}",
                f"{s.caught}/{s.targeted}",
                "-" if s.mean_ttd_s is None else f"{s.mean_ttd_s / 60:.1f} min",
            )
        out.print(t)
    if promtool_check:
        for name, a in agree.items():
            out.print(
                f"promtool ({name}): check {'ok' if a['check_ok'] else 'FAILED'}, test rules {'agree' if a['test_ok'] else 'DISAGREE'} over {a['evaluations']} evaluations, {a['expected_alerts']} alerts",
                highlight=False,
            )
