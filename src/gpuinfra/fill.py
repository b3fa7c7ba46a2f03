"""The FGD fill experiment as a grid: workloads x policies x seeds, in parallel processes.

Writes ``fill.csv`` (workload, policy, seed, arrived_pct, alloc_pct, unalloc_pct,
frag_amount_pct, frag_ratio_pct), ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import csv
import ctypes
import io
import multiprocessing
import os
import signal
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.io.results import write_json
from gpuinfra.io.traces import (
    OPENB_POD_LISTS,
    TraceSource,
    openb_node_list,
    openb_pod_list,
    read_generic,
    read_openb_nodes,
    read_openb_static,
)
from gpuinfra.sim.fill import PAPER_POLICIES, POLICIES, FillResult, run_fill
from gpuinfra.sim.workload import Pod
from gpuinfra.units import parse_choices, parse_names, safe_file_name

CSV_COLUMNS = (
    "workload",
    "policy",
    "seed",
    "arrived_pct",
    "alloc_pct",
    "unalloc_pct",
    "frag_amount_pct",
    "frag_ratio_pct",
)
FILL_SCHEMA = "gpuinfra.fill/1"


def parse_policies(text: str, where: str = "--policy", *, allow_scenario: bool = False) -> list[str]:
    """Scheduler policy names of the fill experiment (``sim.fill.POLICIES``), comma-separated, or
    ``paper`` (the FGD paper's six) / ``all``; with ``allow_scenario`` also ``scenario`` (the
    scenario's own profile, for ``compare``).

    Raises:
        UserError: an unknown or empty list.
    """
    return parse_choices(
        text,
        list(POLICIES),
        where=where,
        groups={"paper": list(PAPER_POLICIES), "all": list(POLICIES)},
        extra=("scenario",) if allow_scenario else (),
        fix=f"see `gpuinfra {'compare' if allow_scenario else 'fill'} --help`",
    )


def parse_workloads(text: str) -> list[str]:
    if text.strip() == "all":
        return list(OPENB_POD_LISTS)
    items = parse_names(text, "--workload")
    if not items:
        raise UserError(f"no workload given in '{text}'", where="--workload", expected="a comma-separated list")
    for w in items:
        if w not in OPENB_POD_LISTS and not Path(w).exists():
            hint = did_you_mean(w, OPENB_POD_LISTS)
            raise UserError(
                f"unknown workload '{w}'",
                where="--workload",
                expected="an openb pod list (" + ", ".join(OPENB_POD_LISTS) + "), 'all', or a trace file",
                fix=hint or "check the file path",
            )
    return items


@cache
def _pools(nodes: str):
    return read_openb_nodes(openb_node_list(nodes))


def _columns(path: Path) -> set[str]:
    """The column names of a CSV (plain or gzip) or Parquet trace; empty for other suffixes (the
    generic reader then names what it accepts)."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names)
        if name.endswith((".csv", ".csv.gz")):
            import gzip

            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
                return {c.strip() for c in fh.readline().split(",")}
    except (UnicodeDecodeError, OSError, ValueError) as e:
        raise UserError(
            f"cannot read the header of '{path}': {type(e).__name__}",
            where="--workload",
            expected="a UTF-8 CSV (optionally .gz) or a Parquet trace",
        ) from None
    return set()


@cache
def load_workload(w: str) -> tuple[Pod, ...]:
    if w in OPENB_POD_LISTS:
        return tuple(read_openb_static(openb_pod_list(w)))
    path = Path(w)
    cols = _columns(path)
    if {"name", "num_gpu", "gpu_milli", "cpu_milli"} <= cols:
        return tuple(read_openb_static(TraceSource(w, path)))
    return tuple(read_generic(path))


def _one(args: tuple[str, str, int, float, str]) -> FillResult:
    w, policy, seed, load, nodes = args
    if _PARENT_PID is not None and os.getppid() != _PARENT_PID:
        os._exit(1)  # the parent is gone (no PR_SET_PDEATHSIG on this platform): stop, nobody reads the result
    return run_fill(
        _pools(nodes),
        list(load_workload(w)),
        policy,
        seed,
        load=load,
        workload=Path(w).stem if w not in OPENB_POD_LISTS else w,
    )


def _one_indexed(item: tuple[int, tuple[str, str, int, float, str]]) -> tuple[int, FillResult]:
    return item[0], _one(item[1])


_PARENT_PID: int | None = None
PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a Linux process gets when its parent dies (linux/prctl.h)."""


def _worker_init(parent_pid: int) -> None:
    """Make a grid worker die with its parent: PR_SET_PDEATHSIG=SIGKILL on Linux (prctl(2)),
    and a parent-PID check before each task everywhere. Ctrl-C is the parent's to handle."""
    global _PARENT_PID
    _PARENT_PID = parent_pid
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def run_file_name(r: FillResult) -> str:
    """File name of one grid run's rows: ``WORKLOAD--POLICY--seedN.csv`` (unsafe characters as _)."""
    return f"{safe_file_name(r.workload)}--{safe_file_name(r.policy)}--seed{r.seed}.csv"


def write_run_csv(r: FillResult, out_dir: Path) -> Path:
    """Write one finished run's rows (fill.csv's columns) to ``out_dir/run_file_name(r)``, atomically."""
    from gpuinfra.io.atomic import write_text

    return write_text(Path(out_dir) / run_file_name(r), _csv_text(fill_csv_rows([r])))


SECONDS_PER_RUN = 2.0
"""Wall time of one fill run of the ``default`` list on the 1,213-node ``gpu_node`` cluster on the
2-core development machine (docs/benchmarks.md, "Fill": 0.8-2.3 s by policy); ``all_node`` and
larger lists cost more. Used only to estimate a grid's cost before it starts."""
MAX_GRID_RUNS = 20_000
"""Largest grid one ``fill`` command starts (about 11 CPU-hours at SECONDS_PER_RUN): beyond it a
seed range is almost surely a typo; split real sweeps over several commands."""


def check_grid_budget(n_workloads: int, n_policies: int, n_seeds: int, workers: int | None = None) -> int:
    """The number of runs of a grid, refused up front when above :data:`MAX_GRID_RUNS`.

    Raises:
        UserError: with the run count and the estimated time, and how to shrink it.
    """
    runs = n_workloads * n_policies * n_seeds
    if runs > MAX_GRID_RUNS:
        cores = max(1, workers or os.cpu_count() or 1)
        hours = runs * SECONDS_PER_RUN / 3600
        raise UserError(
            f"a grid of {runs:,} runs ({n_workloads} workload(s) x {n_policies} policies x {n_seeds:,} seeds) "
            f"would take about {hours:,.0f} CPU-hours ({hours / cores:,.0f} h on {cores} core(s), at about "
            f"{SECONDS_PER_RUN:g} s per run)",
            where="--seeds",
            expected=f"at most {MAX_GRID_RUNS:,} runs per command",
            fix="use fewer seeds (10 seeds give the paper's error bars), policies or workloads",
        )
    return runs


def check_grid_inputs(workloads: list[str], *, load: float, nodes: str) -> None:
    """Read every workload and the node list once (cached) and check ``load``, so bad input fails
    before any work starts or any file is written.

    Raises:
        UserError: ``load`` outside (0, 10], or an unreadable workload or node list.
    """
    if not 0 < load <= 10:
        raise UserError(f"--load {load} is out of range", where="--load", expected="a share of capacity in (0, 10]")
    for w in workloads:
        load_workload(w)
    _pools(nodes)


def run_grid(
    workloads: list[str],
    policies: list[str],
    seeds: list[int],
    *,
    load: float = 1.3,
    nodes: str = "gpu_node",
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[FillResult], None] | None = None,
) -> list[FillResult]:
    """Run every (workload, policy, seed) fill; results in that nested order.

    With more than one worker the runs go to a process pool whose workers die with this process
    (PR_SET_PDEATHSIG on Linux, a parent check elsewhere) and ignore Ctrl-C; on KeyboardInterrupt
    the pool is terminated and the interrupt re-raised. ``on_result`` is called in this process
    with each run as it finishes (completion order), e.g. to write it at once.

    Raises:
        UserError: ``load`` outside (0, 10], or an unreadable workload/node list.
    """
    check_grid_inputs(workloads, load=load, nodes=nodes)
    tasks = [(w, p, s, load, nodes) for w in workloads for p in policies for s in seeds]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    results: list[FillResult | None] = [None] * len(tasks)
    done = 0

    def finished(k: int, r: FillResult) -> None:
        nonlocal done
        results[k] = r
        done += 1
        if on_result:
            on_result(r)
        if progress:
            progress(done, len(tasks))

    if workers == 1:
        for k, t in enumerate(tasks):
            finished(k, _one(t))
    else:
        methods = multiprocessing.get_all_start_methods()
        # fork: workers inherit the parsed traces (read above) and are this process's children
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ctx.Pool(workers, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
            for k, r in pool.imap_unordered(_one_indexed, list(enumerate(tasks)), chunksize=1):
                finished(k, r)
    return [r for r in results if r is not None]


def _at(r: FillResult, pct: int) -> dict[str, float] | None:
    for row in r.rows:
        if row["arrived_pct"] == pct:
            return row
    return None


def summarize_grid(results: list[FillResult], *, load: float, nodes: str) -> dict[str, Any]:
    pools = _pools(nodes)
    cluster = {
        "node_list": f"openb:{nodes}",
        "nodes": sum(p.count for p in pools),
        "gpus": sum(p.count * p.gpus_per_node for p in pools),
    }
    return summarize_results(results, load=load, cluster=cluster)


def summarize_results(results: list[FillResult], *, load: float, cluster: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for r in results:
        d = asdict(r)
        d.pop("rows")
        d.pop("max_frag_check_error")
        d["at_100pct"] = _at(r, 100)
        d["final"] = r.rows[-1] if r.rows else None
        runs.append(d)
    by: dict[str, dict[str, Any]] = {}
    for w in dict.fromkeys(r.workload for r in results):
        by[w] = {}
        for p in dict.fromkeys(r.policy for r in results if r.workload == w):
            rs = [r for r in results if r.workload == w and r.policy == p]
            ref = min([100] + [r.rows[-1]["arrived_pct"] for r in rs if r.rows])
            u = [row["unalloc_pct"] for r in rs if (row := _at(r, ref))]
            f = [row["frag_amount_pct"] for r in rs if (row := _at(r, ref))]
            by[w][p] = {
                "seeds": len(rs),
                "ref_arrived_pct": ref,
                "unalloc_pct_mean": statistics.fmean(u) if u else None,
                "unalloc_pct_stdev": statistics.stdev(u) if len(u) > 1 else 0.0,
                "frag_amount_pct_mean": statistics.fmean(f) if f else None,
                "failed_pods_mean": statistics.fmean(sum(r.failed.values()) for r in rs),
                "failed_gpus_mean": statistics.fmean(r.failed_gpu_milli / 1000 for r in rs),
            }
    return {
        "schema": FILL_SCHEMA,
        "load": load,
        "cluster": cluster,
        "by_workload": by,
        "runs": runs,
    }


def fill_csv_rows(results: list[FillResult]) -> list[list[Any]]:
    """The rows of fill.csv (without the header) for ``results``, in order."""
    return [
        [r.workload, r.policy, r.seed, row["arrived_pct"]] + [f"{row[c]:.6f}" for c in CSV_COLUMNS[4:]]
        for r in results
        for row in r.rows
    ]


def _csv_text(rows: list[list[Any]]) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    w.writerows(rows)
    return buf.getvalue()


def write_fill(
    results: list[FillResult],
    out: Path,
    *,
    load: float,
    nodes: str,
    report: bool = True,
    params: dict[str, Any] | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Write fill.csv, summary.json and report.html (each atomically), then ``manifest.json``
    (command ``fill``, ``params`` as given) last; returns the data files and the summary.
    Files already in ``out`` (e.g. the per-run files of :func:`run_grid`) are listed too."""
    from gpuinfra.io import manifest
    from gpuinfra.io.atomic import ensure_dir, write_text

    ensure_dir(out, "--out")
    write_text(out / "fill.csv", _csv_text(fill_csv_rows(results)))
    summary = summarize_grid(results, load=load, nodes=nodes)
    write_json(out / "summary.json", summary)
    files = [out / "fill.csv", out / "summary.json"]
    if report:
        from gpuinfra.report.fill_report import render_fill_report

        write_text(out / "report.html", render_fill_report(summary, results))
        files.append(out / "report.html")
    manifest.write_manifest(out, "fill", {"load": load, "nodes": nodes, "report": report, **(params or {})})
    return files, summary
