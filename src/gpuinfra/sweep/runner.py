"""Run a sweep: the same worker function on a local process pool or on a Ray cluster.

A worker computes one run through :mod:`gpuinfra.api` and returns its files as bytes and its
record; it writes nothing. The parent (this process) writes each run directory atomically and
records it in ``sweep.duckdb`` (``store``), so a SIGKILL at any moment loses at most the runs in
flight and never leaves a half-written run that a resume would count as done.

Local worker processes are started with ``spawn`` (direct children of this process) and set
Linux ``PR_SET_PDEATHSIG`` = SIGKILL in their initializer, so they die with the sweep even when it
is killed with SIGKILL; each also checks its parent is still the sweep right after, which closes
the race between the fork and the prctl call.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuinfra.errors import UserError
from gpuinfra.sweep.spec import Plan, RunKey
from gpuinfra.sweep.store import (
    DB_NAME,
    RECORD,
    RUNS_DIR,
    Store,
    clean_partial,
    fill_point,
    plan_scenario_hash,
    write_run_dir_atomic,
)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# ------------------------------------------------------------------ the worker (both backends)


def execute(task: dict[str, Any]) -> dict[str, Any]:
    """Compute one run. ``task``: kind, run_id, config_id, params, seed, scenario (replay), base_dir.

    Returns ``{"record": {...}, "files": {name: bytes}}``; deterministic for a task (same seed,
    same bytes) except ``record.wall_s``.
    """
    from gpuinfra import __version__, api

    t0 = time.perf_counter()
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="gpuinfra-sweep-") as td:
        tdp = Path(td)
        if task["kind"] == "replay":
            sc = api.Scenario.model_validate(task["scenario"])
            sc._base_dir = Path(task["base_dir"]) if task.get("base_dir") else None
            res = api.simulate(sc, seed=task["seed"], log_events=False)
            res.write(tdp, report=bool(task.get("report")))
            summary = res.summary
        else:
            pt = task["fill"]
            grid = api.fill(
                [pt["workload"]], [pt["policy"]], [task["seed"]], load=pt["load"], nodes=pt["nodes"], workers=1
            )
            from gpuinfra.fill import write_fill

            write_fill(grid.results, tdp, load=pt["load"], nodes=pt["nodes"], report=bool(task.get("report")))
            summary = dict(grid.summary)
            r = grid.results[0]
            ref = min(100, r.rows[-1]["arrived_pct"]) if r.rows else None
            row = next((x for x in r.rows if x["arrived_pct"] == ref), None)
            summary["headline"] = {
                "arrived_pct": row["arrived_pct"] if row else None,
                "unalloc_pct": row["unalloc_pct"] if row else None,
                "frag_amount_pct": row["frag_amount_pct"] if row else None,
                "alloc_pct": row["alloc_pct"] if row else None,
                "failed_pods": sum(r.failed.values()),
                "failed_gpus": r.failed_gpu_milli / 1000,
                "placed": r.placed,
            }
        for p in sorted(tdp.iterdir()):
            if p.is_file():
                files[p.name] = p.read_bytes()
    record = {
        "schema": "gpuinfra.sweep-run/1",
        "run_id": task["run_id"],
        "config_id": task["config_id"],
        "params": task["params"],
        "seed": task["seed"],
        "scenario_hash": task["scenario_hash"],
        "gpuinfra_version": __version__,
        "wall_s": time.perf_counter() - t0,
        "summary": summary,
    }
    return {"record": record, "files": files}


def _worker_init(parent_pid: int) -> None:
    """Pool initializer: die with the parent (PR_SET_PDEATHSIG) and ignore Ctrl-C (the parent handles it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _pid() -> int:
    return os.getpid()


# ------------------------------------------------------------------ backends


class LocalBackend:
    """A ``spawn`` process pool whose workers die with this process."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.ex = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )

    def worker_pids(self) -> list[int]:
        return sorted(p.pid for p in (self.ex._processes or {}).values())  # noqa: SLF001

    def submit(self, task: dict[str, Any]) -> Future:
        return self.ex.submit(execute, task)

    def wait_any(self, pending: set) -> tuple[set, set]:
        done, rest = wait(pending, return_when=FIRST_COMPLETED)
        return done, rest

    @staticmethod
    def result(fut: Future) -> dict[str, Any]:
        return fut.result()

    def close(self, cancel: bool = False) -> None:
        self.ex.shutdown(wait=not cancel, cancel_futures=cancel)


def check_ray_address(address: str, timeout_s: float = 3.0) -> tuple[str, int]:
    """Parse ``host:port`` or ``ray://host:port`` and check something answers there within
    ``timeout_s``; UserError (exit 2) otherwise, so a wrong address never hangs."""
    a = address.strip()
    rest = a[len("ray://") :] if a.startswith("ray://") else a
    host, sep, port_s = rest.rpartition(":")
    if not sep or not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise UserError(
            f"bad Ray address '{address}'",
            where="--ray",
            expected="HOST:PORT of the head's GCS (e.g. 127.0.0.1:6379) or ray://HOST:PORT (Ray client)",
        )
    try:
        with socket.create_connection((host, int(port_s)), timeout=timeout_s):
            pass
    except OSError as e:
        raise UserError(
            f"no Ray head answers at {host}:{port_s} ({e.strerror or e})",
            where="--ray",
            expected="the address `ray start --head` printed",
            fix="start the head (`ray start --head --port=6379`) or correct the address",
        ) from None
    if not a.startswith("ray://"):
        _check_gcs(host, int(port_s), timeout_s)
    return host, int(port_s)


GCS_PROBE = "/ray.rpc.NodeInfoGcsService/GetClusterId"
"""The RPC every Ray process calls first on the head's GCS (ray/core/generated/gcs_service_pb2_grpc.py);
an empty request is a valid one."""


def _check_gcs(host: str, port: int, timeout_s: float) -> None:
    """UserError when what answers at ``host:port`` is not a Ray GCS: one gRPC call with a
    ``timeout_s`` deadline. ``ray.init`` would otherwise retry for about 20 s, printing a warning
    each second. Skipped when grpc (a Ray dependency) is not installed."""
    try:
        import grpc
    except ImportError:
        return
    ch = grpc.insecure_channel(f"{host}:{port}")
    try:
        ch.unary_unary(GCS_PROBE, request_serializer=None, response_deserializer=None)(b"", timeout=timeout_s)
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else None
        if code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            detail = e.details() if hasattr(e, "details") else str(e)
            raise UserError(
                f"something answers at {host}:{port}, but not a Ray head's GCS ({code.name.lower()}: {detail})",
                where="--ray",
                expected="the GCS address `ray start --head` printed (default port 6379)",
                fix="check the host and port, or use ray://HOST:10001 for a Ray Client server",
            ) from None
        # any other answer (an auth error, ...) comes from a gRPC server that knows the call: ray.init decides
    finally:
        ch.close()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Ray's C++ core logs to file descriptor 2 directly (gcs_client.cc warnings), which neither
    ``logging_level`` nor ``RAY_BACKEND_LOG_LEVEL`` silences while the driver connects: fd 2 goes to a
    scratch file for the duration, so the one message the CLI prints is ours."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class RayBackend:
    """The same :func:`execute` as a Ray task on the cluster at ``address``."""

    name = "ray"

    def __init__(self, address: str, timeout_s: float = 3.0) -> None:
        check_ray_address(address, timeout_s)  # an address that does not answer is named first
        try:
            import ray
        except ImportError:
            raise UserError("--ray needs the Ray extra", where="--ray", fix="pip install 'gpuinfra[ray]'") from None
        self.ray = ray
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # the C++ core of the driver and its workers
        try:
            with _quiet_stderr():
                ray.init(address=address, logging_level="ERROR", log_to_driver=False, ignore_reinit_error=True)
        except Exception as e:  # noqa: BLE001  (Ray raises ConnectionError, RuntimeError, ...)
            raise UserError(f"cannot join the Ray cluster at {address} ({e})", where="--ray") from None
        self.remote = ray.remote(num_cpus=1, max_retries=2)(execute)
        self.workers = int(ray.cluster_resources().get("CPU", 1))

    def worker_pids(self) -> list[int]:
        return []

    def submit(self, task: dict[str, Any]):
        return self.remote.remote(task)

    def wait_any(self, pending: set) -> tuple[set, set]:
        done, rest = self.ray.wait(list(pending), num_returns=1)
        return set(done), set(rest)

    def result(self, ref) -> dict[str, Any]:
        return self.ray.get(ref)

    def close(self, cancel: bool = False) -> None:
        self.ray.shutdown()


# ------------------------------------------------------------------ the sweep


@dataclass
class SweepOutcome:
    out_dir: Path
    total: int
    skipped: int
    recovered: int
    computed: int
    cleaned: int
    backend: str
    workers: int
    wall_s: float


def _task(plan: Plan, key: RunKey, report: bool) -> dict[str, Any]:
    cfg = key.config
    t: dict[str, Any] = {
        "kind": plan.spec.kind,
        "run_id": key.run_id,
        "config_id": cfg.config_id,
        "params": cfg.params,
        "seed": key.seed,
        "scenario_hash": plan_scenario_hash(plan, cfg),
        "report": report,
    }
    if plan.spec.kind == "replay":
        t["scenario"] = plan.scenarios[cfg.config_id]
        t["base_dir"] = str(plan.base_dir) if plan.base_dir else None
    else:
        t["fill"] = fill_point(cfg.params)
    return t


def prepare_out_dir(plan: Plan, out_dir: Path, resume: bool) -> None:
    """Refuse to mix sweeps: a new sweep needs an empty or absent directory; --resume needs the same sweep."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"'{out_dir}' is a file", where="--out", expected="a directory for the sweep")
    db = out_dir / DB_NAME
    if db.exists() and not resume:
        raise UserError(
            f"'{out_dir}' already holds a sweep",
            where="--out",
            fix="continue it with --resume, or choose another --out",
        )
    started = (out_dir / "sweep.yaml").exists()
    if not db.exists() and out_dir.exists() and any(p.name != RUNS_DIR for p in out_dir.iterdir()) and not started:
        raise UserError(
            f"'{out_dir}' is not empty and holds no sweep", where="--out", fix="choose an empty or new directory"
        )


def run_sweep(
    plan: Plan,
    out_dir: str | Path,
    *,
    resume: bool = False,
    workers: int | None = None,
    ray_address: str | None = None,
    report: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    on_backend: Callable[[Any], None] | None = None,
) -> SweepOutcome:
    """Run every (configuration, seed) of ``plan`` not yet recorded in ``out_dir/sweep.duckdb``.

    ``progress(done, total, run_id)`` is called after each recorded run. Raises UserError for a
    directory holding another sweep, a bad or silent Ray address.
    """
    from gpuinfra import __version__

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    prepare_out_dir(plan, out_dir, resume)
    runs = plan.runs
    # Start the workers before opening the database: nothing of DuckDB's state is near them.
    backend: LocalBackend | RayBackend
    if ray_address:
        backend = RayBackend(ray_address)
    else:
        n = max(1, min(workers or os.cpu_count() or 1, len(runs)))
        backend = LocalBackend(n)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        runs_dir = out_dir / RUNS_DIR
        runs_dir.mkdir(exist_ok=True)
        spec_file = out_dir / "sweep.yaml"
        if not spec_file.exists():
            import yaml

            tmp = out_dir / ".sweep.yaml.tmp"
            tmp.write_text(yaml.safe_dump(plan.spec.model_dump(mode="json"), sort_keys=False))
            os.replace(tmp, spec_file)
        store = Store(out_dir, plan.spec.kind)
        try:
            head = store.header()
            if head is None:
                store.init(plan, __version__)
            elif head["spec_hash"] != plan.spec_hash:
                raise UserError(
                    f"'{out_dir}' holds sweep '{head['name']}' with a different definition",
                    where="--resume",
                    expected="the same sweep file (and base scenario) the sweep was started with",
                    fix="resume with the original file, or start the changed sweep in another --out",
                )
            cleaned = clean_partial(runs_dir)
            done = store.done()
            recovered = 0
            wanted = {k.run_id for k in runs}
            for k in runs:  # finished directories the database missed (killed before the commit)
                rec_path = runs_dir / k.run_id / RECORD
                if k.run_id not in done and rec_path.exists():
                    store.record(json.loads(rec_path.read_text()), rec_path.parent)
                    done.add(k.run_id)
                    recovered += 1
            todo = [k for k in runs if k.run_id not in done]
            total = len(runs)
            skipped = len(wanted & done) - recovered
            finished = total - len(todo)
            if progress:
                progress(finished, total, "")
            if on_backend:
                on_backend(backend)
            computed = 0
            queue: Iterator[RunKey] = iter(todo)
            pending: dict[Any, RunKey] = {}
            window = max(2, 2 * backend.workers)

            def fill_window() -> None:
                while len(pending) < window:
                    k = next(queue, None)
                    if k is None:
                        return
                    pending[backend.submit(_task(plan, k, report))] = k

            fill_window()
            while pending:
                ready, _ = backend.wait_any(set(pending))
                for fut in ready:
                    k = pending.pop(fut)
                    out = backend.result(fut)
                    rec = out["record"]
                    d = write_run_dir_atomic(runs_dir, k.run_id, out["files"], rec)
                    store.record(rec, d)
                    computed += 1
                    finished += 1
                    if progress:
                        progress(finished, total, k.run_id)
                fill_window()
        finally:
            store.close()
    except BaseException:
        backend.close(cancel=True)
        raise
    backend.close()
    return SweepOutcome(
        out_dir, total, skipped, recovered, computed, cleaned, backend.name, backend.workers, time.perf_counter() - t0
    )


def _warm() -> int:
    """Pool start-up probe: import what :func:`execute` imports, in a fresh worker; returns its pid."""
    from gpuinfra import api  # noqa: F401

    return os.getpid()


def _timed_execute(task: dict[str, Any]) -> dict[str, Any]:
    """:func:`execute` plus the worker's CPU seconds for it (``cpu_s``), for :func:`measure`."""
    c0 = time.process_time()
    out = execute(task)
    out["cpu_s"] = time.process_time() - c0
    return out


@dataclass(frozen=True)
class RunCost:
    """What a sweep run costs, measured by :func:`measure` through the sweep's own code path.

    All in seconds. ``startup_s``: wall time to spawn one pool worker (``spawn`` context, the
    initializer) and import the simulator in it, paid once per worker. ``setup_s``: opening and
    initialising ``sweep.duckdb`` (once per sweep). ``run_wall_s`` / ``run_cpu_s``: mean wall / CPU
    time of one run in a warm worker, as the parent sees it (submit to result, pickling included)
    / as the worker's CPU clock counts it. ``record_s``: mean wall time the parent spends per run
    writing the run directory atomically (fsync'd) and inserting it into DuckDB; the parent does
    this for one run at a time while the workers compute the next ones. ``sample``: runs timed.
    """

    sample: int
    startup_s: float
    setup_s: float
    run_wall_s: float
    run_cpu_s: float
    record_s: float


def measure(plan: Plan, sample: int = 2) -> RunCost:
    """Time ``sample`` runs spread evenly over the sweep exactly as :func:`run_sweep` does them:
    one ``spawn`` pool worker (its start-up and imports timed apart), :func:`execute` in it, then in
    this process :func:`write_run_dir_atomic` and :meth:`Store.record` into a temporary sweep
    directory (removed afterwards). Returns a :class:`RunCost`; wall times include whatever else
    loads this machine now, the CPU time does not."""
    runs = plan.runs
    k = max(1, min(sample, len(runs)))
    picks = [runs[round(i * (len(runs) - 1) / max(1, k - 1))] for i in range(k)] if k > 1 else [runs[0]]
    from gpuinfra import __version__

    t0 = time.perf_counter()
    backend = LocalBackend(1)
    try:
        backend.ex.submit(_warm).result()
        startup = time.perf_counter() - t0
        run_wall = run_cpu = record = 0.0
        with tempfile.TemporaryDirectory(prefix="gpuinfra-sweep-plan-") as td:
            out_dir = Path(td)
            runs_dir = out_dir / RUNS_DIR
            runs_dir.mkdir()
            t1 = time.perf_counter()
            store = Store(out_dir, plan.spec.kind)
            try:
                store.init(plan, __version__)
                setup = time.perf_counter() - t1
                for key in picks:
                    t2 = time.perf_counter()
                    out = backend.ex.submit(_timed_execute, _task(plan, key, False)).result()
                    t3 = time.perf_counter()
                    d = write_run_dir_atomic(runs_dir, key.run_id, out["files"], out["record"])
                    store.record(out["record"], d)
                    run_wall += t3 - t2
                    run_cpu += out["cpu_s"]
                    record += time.perf_counter() - t3
            finally:
                store.close()
    finally:
        backend.close()
    n = len(picks)
    return RunCost(n, startup, setup, run_wall / n, run_cpu / n, record / n)


def estimate(
    runs: int, workers: int, per_run_s: float, *, startup_s: float = 0.0, setup_s: float = 0.0, record_s: float = 0.0
) -> float:
    """Projected wall seconds of a sweep of ``runs`` on ``workers`` workers.

    setup + start-up + max(ceil(runs / workers) x per-run, runs x record) + record: the workers
    start together (one start-up), each computes ceil(runs / workers) runs in turn, and the parent
    writes and records the runs one at a time while they compute (so whichever of the two is
    slower sets the pace), then records the last one.
    """
    rounds = math.ceil(runs / max(1, workers))
    return setup_s + startup_s + max(rounds * per_run_s, runs * record_s) + (record_s if runs else 0.0)
