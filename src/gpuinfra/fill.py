"""The FGD fill experiment as a grid: workloads x policies x seeds, in parallel processes.

Writes ``fill.csv`` (workload, policy, seed, arrived_pct, alloc_pct, unalloc_pct,
frag_amount_pct, frag_ratio_pct), ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
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
from gpuinfra.sim.fill import FillResult, run_fill
from gpuinfra.sim.workload import Pod
from gpuinfra.units import parse_names

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


def parse_workloads(text: str) -> list[str]:
    if text.strip() == "all":
        return list(OPENB_POD_LISTS)
    items = parse_names(text)
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


@cache
def load_workload(w: str) -> tuple[Pod, ...]:
    if w in OPENB_POD_LISTS:
        return tuple(read_openb_static(openb_pod_list(w)))
    path = Path(w)
    with open(path, newline="") as fh:
        header = fh.readline()
    cols = {c.strip() for c in header.split(",")}
    if {"name", "num_gpu", "gpu_milli", "cpu_milli"} <= cols:
        return tuple(read_openb_static(TraceSource(w, path)))
    return tuple(read_generic(path))


def _one(args: tuple[str, str, int, float, str]) -> FillResult:
    w, policy, seed, load, nodes = args
    return run_fill(
        _pools(nodes),
        list(load_workload(w)),
        policy,
        seed,
        load=load,
        workload=Path(w).stem if w not in OPENB_POD_LISTS else w,
    )


def run_grid(
    workloads: list[str],
    policies: list[str],
    seeds: list[int],
    *,
    load: float = 1.3,
    nodes: str = "gpu_node",
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[FillResult]:
    if not 0 < load <= 10:
        raise UserError(f"--load {load} is out of range", where="--load", expected="a share of capacity in (0, 10]")
    for w in workloads:  # read once here so bad input fails before any work starts
        load_workload(w)
    _pools(nodes)
    tasks = [(w, p, s, load, nodes) for w in workloads for p in policies for s in seeds]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    results: list[FillResult] = []
    if workers == 1:
        for k, t in enumerate(tasks):
            results.append(_one(t))
            if progress:
                progress(k + 1, len(tasks))
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for k, r in enumerate(ex.map(_one, tasks, chunksize=1)):
                results.append(r)
                if progress:
                    progress(k + 1, len(tasks))
    return results


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
