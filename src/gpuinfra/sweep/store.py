"""The results of one sweep in one embedded DuckDB file (``sweep.duckdb``), and its run directories.

Only the sweep's parent process opens the database; workers return their results and the parent
writes each run directory atomically (temporary directory, fsync, ``record.json`` last, rename)
and then records the run in one transaction. A run is in the database only if its directory is
complete; a complete directory missing from the database (a kill between the rename and the
commit) is recorded from its ``record.json`` on resume, never recomputed. Schema: docs/sweeps.md.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpuinfra.errors import UserError

DB_NAME = "sweep.duckdb"
RUNS_DIR = "runs"
RECORD = "record.json"
STORE_SCHEMA = "gpuinfra.sweep-store/1"

HEADLINE: dict[str, dict[str, tuple[str, str]]] = {
    # column -> (path into summary.json, unit)
    "replay": {
        "allocation_ratio": ("gpu_time.allocation_ratio", "share of GPU-time"),
        "idle_gpu_hours": ("gpu_time.idle_gpu_hours", "GPU-h"),
        "wait_mean_s": ("pods.wait_s.mean", "s"),
        "wait_p50_s": ("pods.wait_s.p50", "s"),
        "wait_p90_s": ("pods.wait_s.p90", "s"),
        "wait_p99_s": ("pods.wait_s.p99", "s"),
        "completed": ("pods.outcomes.completed", "pods"),
        "pending_at_end": ("pending.at_end", "pods"),
        "queue_mean_length": ("queue.mean_length", "pods"),
        "allocated_usd": ("cost.allocated_usd", "USD"),
        "idle_usd": ("cost.idle_usd", "USD"),
        "gpus": ("cluster.gpus", "GPUs"),
    },
    "fill": {
        "unalloc_pct": ("headline.unalloc_pct", "% of GPU capacity"),
        "frag_amount_pct": ("headline.frag_amount_pct", "% of GPU capacity"),
        "alloc_pct": ("headline.alloc_pct", "% of GPU capacity"),
        "arrived_pct": ("headline.arrived_pct", "% of GPU capacity"),
        "failed_pods": ("headline.failed_pods", "pods"),
        "failed_gpus": ("headline.failed_gpus", "GPUs"),
        "placed": ("headline.placed", "pods"),
    },
}


def leaf(summary: dict[str, Any], path: str) -> Any:
    node: Any = summary
    for k in path.split("."):
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, float]]:
    """Every finite numeric leaf of a nested dict/list as (dotted path, value); bools as 0/1."""
    out: list[tuple[str, float]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += flatten(v, f"{prefix}[{i}]")
    elif isinstance(obj, bool) or isinstance(obj, (int, float)) and math.isfinite(obj):
        out.append((prefix, float(obj)))
    return out


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_run_dir_atomic(runs_dir: Path, run_id: str, files: dict[str, bytes], record: dict[str, Any]) -> Path:
    """Write ``runs_dir/run_id`` so that it either exists complete or not at all.

    Files go to ``.tmp-RUN-PID``, each fsynced, ``record.json`` last, then the directory is
    renamed into place and its parent fsynced. Returns the final directory.
    """
    final = runs_dir / run_id
    tmp = runs_dir / f".tmp-{run_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, data in [*files.items(), (RECORD, json.dumps(record, sort_keys=True, indent=1).encode())]:
        with open(tmp / name, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    if final.exists():  # a complete directory of the same run: identical content by determinism
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(runs_dir)
    return final


def clean_partial(runs_dir: Path) -> int:
    """Remove half-written run directories (``.tmp-*``) left by a killed sweep; returns how many."""
    n = 0
    if runs_dir.is_dir():
        for p in runs_dir.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


class Store:
    """The sweep's DuckDB file: tables ``sweep``, ``configs``, ``runs``, ``metrics``."""

    def __init__(self, out_dir: Path, kind: str) -> None:
        import duckdb

        self.out_dir = out_dir
        self.kind = kind
        self.path = out_dir / DB_NAME
        try:
            self.con = duckdb.connect(str(self.path))
            self._create(kind)
        except duckdb.Error as e:
            raise UserError(
                f"cannot open the sweep database ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                where=str(self.path),
                expected="the DuckDB file a sweep run wrote (it may be damaged, or not a DuckDB file)",
                fix=f"move it aside (mv {self.path} {self.path}.bad) and rerun with --resume: the finished runs "
                f"under {out_dir / RUNS_DIR} are recovered into a new database; or start the sweep without "
                "--resume in a new --out",
            ) from None

    def _create(self, kind: str) -> None:
        cols = ", ".join(f"{c} DOUBLE" for c in HEADLINE[kind])
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS sweep (schema VARCHAR, name VARCHAR, kind VARCHAR, spec_hash VARCHAR, "
            "spec JSON, source VARCHAR, base VARCHAR, seeds JSON, gpuinfra_version VARCHAR, created_at TIMESTAMP)"
        )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS configs (config_id VARCHAR PRIMARY KEY, label VARCHAR, params JSON, "
            "scenario_hash VARCHAR)"
        )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, config_id VARCHAR, seed BIGINT, "
            "scenario_hash VARCHAR, params JSON, gpuinfra_version VARCHAR, run_dir VARCHAR, wall_s DOUBLE, "
            f"finished_at TIMESTAMP, {cols})"
        )
        self.con.execute("CREATE TABLE IF NOT EXISTS metrics (run_id VARCHAR, metric VARCHAR, value DOUBLE)")

    def close(self) -> None:
        self.con.close()

    def header(self) -> dict[str, Any] | None:
        row = self.con.execute("SELECT spec_hash, name, kind FROM sweep").fetchone()
        return None if row is None else {"spec_hash": row[0], "name": row[1], "kind": row[2]}

    def init(self, plan, version: str) -> None:
        from gpuinfra.sweep.spec import canonical

        self.con.execute("BEGIN TRANSACTION")
        self.con.execute(
            "INSERT INTO sweep VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                STORE_SCHEMA,
                plan.spec.name,
                plan.spec.kind,
                plan.spec_hash,
                canonical(plan.spec.model_dump(mode="json")),
                plan.source,
                plan.base_label,
                json.dumps(plan.seeds),
                version,
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        self.con.executemany(
            "INSERT INTO configs VALUES (?, ?, ?, ?)",
            [[c.config_id, c.label, canonical(c.params), plan_scenario_hash(plan, c)] for c in plan.configs],
        )
        self.con.execute("COMMIT")

    def done(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT run_id FROM runs").fetchall()}

    def record(self, rec: dict[str, Any], run_dir: Path) -> None:
        """Insert one finished run (its headline columns and every numeric summary leaf) atomically."""
        summary = rec["summary"]
        head = [leaf(summary, p) for p, _ in HEADLINE[self.kind].values()]
        head = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in head]
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                f"INSERT INTO runs VALUES ({', '.join(['?'] * (9 + len(head)))})",
                [
                    rec["run_id"],
                    rec["config_id"],
                    rec["seed"],
                    rec["scenario_hash"],
                    json.dumps(rec["params"], sort_keys=True),
                    rec["gpuinfra_version"],
                    str(run_dir.relative_to(self.out_dir)),
                    rec["wall_s"],
                    datetime.now(UTC).replace(tzinfo=None),
                    *head,
                ],
            )
            self.con.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?)", [[rec["run_id"], k, v] for k, v in flatten(summary)]
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise


def plan_scenario_hash(plan, cfg) -> str:
    from gpuinfra.sweep.spec import canonical, sha

    if plan.spec.kind == "replay":
        doc = dict(plan.scenarios[cfg.config_id])
        doc.pop("seed", None)
        return sha(canonical(doc))
    return sha(canonical({"fill": fill_point(cfg.params)}))


def fill_point(params: dict[str, Any]) -> dict[str, Any]:
    """A fill configuration with the defaults of ``gpuinfra fill`` filled in."""
    return {"workload": "default", "policy": "fgd", "load": 1.3, "nodes": "gpu_node"} | {
        k: (v.lower() if k == "policy" else v) for k, v in params.items()
    }
