"""Sweeps: expansion, bad input, atomic run directories, SIGKILL + --resume, workers dying with the
sweep, DuckDB contents, t-intervals, and the same code path on a local Ray head."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.sweep import load_spec, parse_spec, plan, report, run_sweep
from gpuinfra.sweep.runner import check_ray_address
from gpuinfra.sweep.spec import set_path, split_path
from gpuinfra.sweep.store import RECORD, clean_partial, write_run_dir_atomic
from tests.procs import alive, children

SCENARIO = """\
name: small
seed: 5
cluster:
  pools:
    - {name: t4, gpu_model: T4, gpus_per_node: 4, cpu_milli: 32000, memory_mib: 131072, count: 2}
workload:
  generator: {jobs: 60, arrival_rate_per_hour: 40, duration_median_s: 900,
              gpus: {1: 0.7, 2: 0.2, 4: 0.1}, shared_gpu_fraction: 0.3}
"""

SWEEP = """\
name: tiny
scenario: small.yaml
seeds: [1, 2]
params:
  cluster.pools[0].count: [1, 3]
  policy: [scenario, bestfit]
report: {x: idle_gpu_hours, y: wait_p99_s}
"""


def _write(tmp: Path, sweep: str = SWEEP) -> Path:
    (tmp / "small.yaml").write_text(SCENARIO)
    (tmp / "tiny.yaml").write_text(sweep)
    return tmp / "tiny.yaml"


def _plan(path: Path):
    return plan(load_spec(path), str(path), path.parent)


def gi(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def _db_rows(out: Path) -> tuple[list, list]:
    """Everything a sweep recorded that is a result (not a wall time or a timestamp)."""
    import duckdb

    con = duckdb.connect(str(out / "sweep.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT * EXCLUDE (wall_s, finished_at) FROM runs ORDER BY run_id").fetchall()
        metrics = con.execute("SELECT * FROM metrics ORDER BY run_id, metric").fetchall()
    finally:
        con.close()
    return runs, metrics


def _dir_bytes(out: Path) -> dict[str, bytes]:
    files = {}
    for p in sorted((out / "runs").rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == RECORD:
                rec = json.loads(data)
                rec.pop("wall_s")
                data = json.dumps(rec, sort_keys=True).encode()
            files[str(p.relative_to(out))] = data
    return files


# ---------------------------------------------------------------- expansion and paths


def test_paths_split_and_set_inside_the_scenario_document():
    assert split_path("cluster.pools[0].count") == ["cluster", "pools", 0, "count"]
    doc = {"cluster": {"pools": [{"count": 1}]}, "workload": {"generator": {"jobs": 5}}}
    set_path(doc, "cluster.pools[0].count", 7)
    set_path(doc, "workload.generator.jobs", 9)
    assert doc == {"cluster": {"pools": [{"count": 7}]}, "workload": {"generator": {"jobs": 9}}}
    with pytest.raises(UserError, match="(?i)did you mean 'jobs'"):
        set_path(doc, "workload.generator.jbos", 1)
    with pytest.raises(UserError, match="index 3 is past its end"):
        set_path(doc, "cluster.pools[3].count", 1)
    with pytest.raises(UserError, match="malformed"):
        split_path("cluster..pools")


def test_grid_is_the_product_of_values_times_seeds_and_ids_are_stable(tmp_path):
    p = _plan(_write(tmp_path))
    assert len(p.configs) == 4 and len(p.runs) == 8
    assert {tuple(c.params.values()) for c in p.configs} == {
        (1, "scenario"),
        (1, "bestfit"),
        (3, "scenario"),
        (3, "bestfit"),
    }
    # the varied field lands in each configuration's scenario
    assert sorted(doc["cluster"]["pools"][0]["count"] for doc in p.scenarios.values()) == [1, 1, 3, 3]
    again = _plan(tmp_path / "tiny.yaml")
    assert [k.run_id for k in again.runs] == [k.run_id for k in p.runs] and again.spec_hash == p.spec_hash


def test_random_search_draws_through_the_seeded_stream(tmp_path):
    text = SWEEP.replace(
        "cluster.pools[0].count: [1, 3]", "workload.generator.arrival_rate_per_hour: {loguniform: [10, 80]}"
    )
    text = text.replace("name: tiny", "name: tiny\nsearch: random\nsamples: 5\nsearch_seed: 3")
    a = _plan(_write(tmp_path, text))
    b = _plan(tmp_path / "tiny.yaml")
    rates = [c.params["workload.generator.arrival_rate_per_hour"] for c in a.configs]
    assert rates == [c.params["workload.generator.arrival_rate_per_hour"] for c in b.configs]
    assert all(10 <= r <= 80 for r in rates) and len(set(rates)) == len(rates)


# ---------------------------------------------------------------- bad input: exit 2, one message


@pytest.mark.parametrize(
    "params, message",
    [
        ("  workload.generator.arival_rate_per_hour: [10, 20]\n", "did you mean 'arrival_rate_per_hour'"),
        ("  clustr.pools[0].count: [1]\n", "did you mean 'cluster'"),
        ("  cluster.pools[0].count: []\n", "empty grid"),
        ("  cluster.pools[0].count: [0]\n", "invalid scenario"),
        ("  policy: [fgdd]\n", "did you mean 'fgd'"),
        ("  quotas.reclaim: [true]\n", "not set in the base scenario"),
    ],
)
def test_bad_parameters_are_named_before_any_run(tmp_path, params, message):
    text = SWEEP.split("params:\n")[0] + "params:\n" + params
    with pytest.raises(UserError, match="(?i)" + message) as e:
        _plan(_write(tmp_path, text))
    assert "params" in str(e.value)


def test_unknown_sweep_field_and_empty_params_are_refused():
    with pytest.raises(UserError, match="(?i)seedz.*unknown field.*did you mean 'seeds'"):
        parse_spec("name: x\nscenario: synthetic-small\nseeds: [1]\nseedz: 3\nparams: {policy: [fgd]}\n", "s.yaml")
    with pytest.raises(UserError, match="empty grid: no parameters"):
        plan(parse_spec("name: x\nscenario: synthetic-small\nseeds: [1]\nparams: {}\n", "s.yaml"), "s.yaml")


def test_a_key_given_twice_is_refused_with_both_lines():
    # PyYAML would keep the second `seeds:` silently; the sweep reads YAML as scenarios do
    text = "name: x\nscenario: synthetic-small\nseeds: [1]\nparams: {policy: [fgd]}\nseeds: [2, 3]\n"
    with pytest.raises(UserError, match=r"duplicate key 'seeds' \(first at line 3\)") as e:
        parse_spec(text, "s.yaml")
    assert "s.yaml:5" in str(e.value)


def test_cli_bad_input_exits_2_with_one_message(tmp_path):
    text = SWEEP.split("params:\n")[0] + "params:\n  workload.generator.arival_rate_per_hour: [10]\n"
    r = gi("sweep", str(_write(tmp_path, text)), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "did you mean 'arrival_rate_per_hour'" in r.stderr.lower()
    assert not (tmp_path / "o").exists()


def test_a_ray_address_that_does_not_answer_is_refused_within_seconds(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(UserError, match="no Ray head answers"):
        check_ray_address(f"127.0.0.1:{port}")
    with pytest.raises(UserError, match="bad Ray address"):
        check_ray_address("nowhere")
    assert time.monotonic() - t0 < 10  # not a timing benchmark: a hang guard
    r = gi("sweep", str(_write(tmp_path)), "-o", str(tmp_path / "o"), "--ray", f"127.0.0.1:{port}")
    assert r.returncode == 2 and "no Ray head answers" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- atomic directories, store, resume


def test_a_run_directory_is_complete_or_absent(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    d = write_run_dir_atomic(runs, "r1", {"a.txt": b"x"}, {"run_id": "r1"})
    assert sorted(p.name for p in d.iterdir()) == ["a.txt", RECORD]
    (runs / ".tmp-r2-99").mkdir()  # what a kill mid-write leaves
    (runs / ".tmp-r2-99" / "a.txt").write_bytes(b"half")
    assert clean_partial(runs) == 1 and sorted(p.name for p in runs.iterdir()) == ["r1"]


def test_sweep_records_every_run_and_resume_recomputes_nothing(tmp_path):
    p = _plan(_write(tmp_path))
    out = tmp_path / "out"
    res = run_sweep(p, out, workers=1)
    assert res.computed == 8 and res.total == 8
    runs, metrics = _db_rows(out)
    assert len(runs) == 8 and len(metrics) > 8 * 50  # every numeric leaf of every summary
    # a finished directory whose database row was lost (kill between rename and commit) is
    # recorded from its record.json, and a half-written one is removed, on resume
    import duckdb

    con = duckdb.connect(str(out / "sweep.duckdb"))
    lost = runs[0][0]
    con.execute("DELETE FROM runs WHERE run_id = ?", [lost])
    con.execute("DELETE FROM metrics WHERE run_id = ?", [lost])
    con.close()
    (out / "runs" / ".tmp-x-1").mkdir()
    again = run_sweep(p, out, resume=True, workers=1)
    assert (again.computed, again.recovered, again.skipped, again.cleaned) == (0, 1, 7, 1)
    assert _db_rows(out) == (runs, metrics)
    with pytest.raises(UserError, match="already holds a sweep"):
        run_sweep(p, out, workers=1)
    changed = _plan(_write(tmp_path, SWEEP.replace("[1, 2]", "[1, 2, 3]")))
    with pytest.raises(UserError, match="different definition"):
        run_sweep(changed, out, resume=True, workers=1)


def test_report_gives_bootstrap_intervals_over_seeds(tmp_path):
    p = _plan(_write(tmp_path))
    out = tmp_path / "out"
    run_sweep(p, out, workers=1)
    rep = report(out)
    assert len(rep.table) == 4 and set(rep.table["n"]) == {2}
    import duckdb

    con = duckdb.connect(str(out / "sweep.duckdb"), read_only=True)
    cid, vals = con.execute(
        "SELECT config_id, list(wait_p99_s ORDER BY seed) FROM runs GROUP BY config_id ORDER BY config_id LIMIT 1"
    ).fetchone()
    con.close()
    row = rep.table[rep.table["config_id"] == cid].iloc[0]
    a, b = vals
    assert row["wait_p99_s_mean"] == pytest.approx((a + b) / 2)
    # two seeds: every resample mean is a, b or (a+b)/2, so the interval's ends are among those and
    # inside [min, max] of the seeds: never below zero for a wait
    ends = {a, b, (a + b) / 2}
    assert any(row["wait_p99_s_lo"] == pytest.approx(e) for e in ends)
    assert any(row["wait_p99_s_hi"] == pytest.approx(e) for e in ends)
    assert (
        min(a, b) - 1e-9 <= row["wait_p99_s_lo"] <= row["wait_p99_s_mean"] <= row["wait_p99_s_hi"] <= max(a, b) + 1e-9
    )
    assert report(out).table.equals(rep.table)  # seeded through gpuinfra.rng: the same bytes again
    from gpuinfra.sweep.report import write_html

    page = write_html(rep, out / "report.html").read_text()
    assert "99th-percentile wait (s)" in page and "idle GPU-hours (GPU-h)" in page and "policy bestfit" in page
    assert "bootstrap" in page


def test_bootstrap_interval_stays_within_skewed_nonnegative_seeds():
    """The newcomer's case: five skewed p99 waits whose t-interval went below zero."""
    import numpy as np
    from scipy.stats import t

    from gpuinfra.rng import Rngs
    from gpuinfra.sweep.report import bootstrap_interval

    v = np.array([0.0, 0.0, 12.0, 40.0, 3181.0])
    half = t.ppf(0.975, 4) * v.std(ddof=1) / math.sqrt(5)
    assert v.mean() - half < 0  # what Student t said
    lo, hi = bootstrap_interval(v, 0.95, Rngs(1).stream("bootstrap:x"))
    assert 0 <= lo <= v.mean() <= hi <= v.max()


def test_readable_titles_and_durations():
    from gpuinfra.cli.sweep import _dur
    from gpuinfra.sweep.report import config_title, fmt_interval, metric_title, param_title

    assert param_title("cluster.pools[1].count") == "pools[1] nodes"
    assert param_title("faults[0].rate_per_day") == "faults[0] rate per day"
    assert metric_title("idle_gpu_hours", "GPU-h") == "idle GPU-hours (GPU-h)"
    assert (
        config_title({"cluster.pools[1].count": 1, "workload.generator.arrival_rate_per_hour": 20})
        == "pools[1] nodes 1, arrival rate (pods/h) 20"
    )
    assert fmt_interval(17530.0, 15000.0, 20000.0, "s") == "4.9 h [4.2 h, 5.6 h]"
    assert fmt_interval(90.0, float("nan"), float("nan"), "s") == "90 s"
    assert fmt_interval(0.54, 0.4952, 0.5805, "") == "0.540 [0.495, 0.581]"  # one precision for mean and bounds
    assert _dur(0.03) == "< 0.1 s" and _dur(0.5) == "0.5 s" and _dur(2.5) == "2.5 s" and _dur(600) == "10.0 min"


def _finished(out: Path) -> list[Path]:
    return [d for d in (out / "runs").glob("*-s*") if not d.name.startswith(".tmp-")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_sigkill_mid_sweep_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    text = SWEEP.replace("[1, 2]", "[1, 2, 3]")
    path = _write(tmp_path, text)
    whole = tmp_path / "whole"
    run_sweep(_plan(path), whole, workers=2)

    out = tmp_path / "killed"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpuinfra.cli", "sweep", str(path), "-o", str(out), "--workers", "2", "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: set[int] = set()
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:  # kill once some runs are recorded and others are not
            workers.update(children(proc.pid))
            done = _finished(out) if (out / "runs").exists() else []
            if len(done) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail("the sweep finished before it could be killed; make it bigger")
            time.sleep(0.05)
        workers.update(children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {d.name: d.stat().st_ino for d in _finished(out)}  # a .tmp-* one may be there too
    assert 3 <= len(before) < 12
    # worker processes never outlive the sweep
    assert workers, "the sweep started no worker processes"
    t0 = time.monotonic()
    while any(alive(w) for w in workers) and time.monotonic() - t0 < 20:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "a worker outlived the killed sweep"

    r = gi("sweep", str(path), "-o", str(out), "--resume", "--workers", "2", "-q")
    assert r.returncode == 0, r.stderr
    computed = int(r.stdout.split(" runs computed")[0].split()[-1])
    assert computed == 12 - len(before)  # nothing that finished is computed again
    assert {d: (out / "runs" / d).stat().st_ino for d in before} == before
    assert _db_rows(out) == _db_rows(whole)
    assert _dir_bytes(out) == _dir_bytes(whole)
    assert not list((out / "runs").glob(".tmp-*"))


# ---------------------------------------------------------------- the same code path on Ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_same_sweep_on_a_local_ray_head_gives_the_same_results(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra gpuinfra[ray]; not installed here")
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the `ray` command of the Ray extra is not installed beside this Python")
    text = SWEEP.replace("  policy: [scenario, bestfit]\n", "")
    path = _write(tmp_path, text)
    local = tmp_path / "local"
    run_sweep(_plan(path), local, workers=1)

    port = _free_port()
    import tempfile

    ray_tmp = Path(tempfile.mkdtemp(prefix="gi-ray-", dir="/tmp"))  # Ray's socket paths must be short
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={ray_tmp}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            try:
                check_ray_address(f"127.0.0.1:{port}", 1.0)
                break
            except UserError:
                if head.poll() is not None:
                    pytest.fail("ray start --head exited")
                time.sleep(0.5)
        on_ray = tmp_path / "on_ray"
        res = run_sweep(_plan(path), on_ray, ray_address=f"127.0.0.1:{port}")
        assert res.backend == "ray" and res.computed == 4
        assert _db_rows(on_ray) == _db_rows(local)
        assert _dir_bytes(on_ray) == _dir_bytes(local)
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head and the services it started, by our own group id
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_report_escapes_hostile_parameter_values(tmp_path):
    payload = "</script><script>alert(1)</script><b>[/bold]"
    text = SWEEP.split("params:\n")[0] + f"params:\n  description: ['{payload}', plain]\n"
    text = text.replace("seeds: [1, 2]", "seeds: [1]")
    p = _plan(_write(tmp_path, text))
    out = tmp_path / "out"
    run_sweep(p, out, workers=1)
    from gpuinfra.sweep.report import write_html

    page = write_html(report(out), out / "report.html").read_text()
    assert "<script>alert(1)" not in page and "</script><script>alert" not in page
    r = gi("sweep", "report", str(out))  # rich markup in a value is printed, not interpreted
    assert r.returncode == 0 and "[/bold]" in r.stdout


@pytest.mark.parametrize("content", [b"junk", b"", None])
def test_report_on_a_file_that_is_not_a_sweep_database_is_one_message(tmp_path, content):
    import duckdb

    db = tmp_path / "sweep.duckdb"
    if content is None:  # a valid DuckDB file without the sweep's tables
        duckdb.connect(str(db)).close()
    else:
        db.write_bytes(content)
    with pytest.raises(UserError, match="not a sweep database"):
        report(tmp_path)


# ---------------------------------------------------------------- loading checks (attacker trial)


def test_a_repeated_seed_is_refused_at_its_line(tmp_path):
    path = _write(tmp_path, SWEEP.replace("seeds: [1, 2]", "seeds: [1, 1]"))
    with pytest.raises(UserError) as e:
        _plan(path)
    msg = str(e.value)
    assert "tiny.yaml:3: seeds" in msg and "seed 1 listed more than once" in msg


def test_a_bad_report_axis_is_refused_when_the_sweep_is_loaded(tmp_path):
    path = _write(
        tmp_path, SWEEP.replace("report: {x: idle_gpu_hours", "report:\n  x: idle_gpu_hour\n  y: wait_p99_s\n#")
    )
    with pytest.raises(UserError) as e:
        _plan(path)
    msg = str(e.value)
    assert "tiny.yaml:8: report.x" in msg and "idle_gpu_hours" in msg and "--x" not in msg


def test_a_port_that_answers_but_is_not_a_ray_gcs_is_refused_fast(tmp_path):
    pytest.importorskip("grpc")
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve():  # accepts and answers garbage: a TCP service that is not a Ray head
        for _ in range(4):
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                c.sendall(b"HTTP/1.1 404 Not Found\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(UserError, match="not a Ray head's GCS"):
            check_ray_address(f"127.0.0.1:{port}", 2.0)
    finally:
        srv.close()


def test_a_corrupt_database_with_resume_says_how_to_fix_it(tmp_path):
    path = _write(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    (out / "sweep.yaml").write_text("name: tiny\n")
    (out / "sweep.duckdb").write_bytes(b"not a database at all" * 100)
    with pytest.raises(UserError) as e:
        run_sweep(_plan(path), out, workers=1, resume=True)
    msg = str(e.value)
    assert "sweep.duckdb" in msg and "To fix" in msg and "move it aside" in msg and "--resume" in msg


def test_estimate_is_start_up_plus_the_slower_of_workers_and_the_writing_parent():
    from gpuinfra.sweep.runner import estimate

    # 10 runs on 4 workers: 3 rounds of 2 s; the parent writes 10 x 0.1 s meanwhile (not the pace)
    assert estimate(10, 4, 2.0, startup_s=3.0, setup_s=0.5, record_s=0.1) == pytest.approx(0.5 + 3 + 6 + 0.1)
    # 10 runs on 10 workers of 0.2 s each, but the parent needs 1 s per run: the parent sets the pace
    assert estimate(10, 10, 0.2, startup_s=3.0, record_s=1.0) == pytest.approx(3 + 10 + 1)
    assert estimate(7, 2, 1.5) == pytest.approx(4 * 1.5)  # --per-run-s alone: ceil(7 / 2) rounds


def test_plan_times_runs_through_the_sweeps_own_worker_writer_and_database(tmp_path, monkeypatch):
    """measure() must cost what run_sweep costs: the spawned worker's start-up, execute() in it, the
    atomic run directory and the DuckDB insert (issue: the plan counted the replay's CPU time only)."""
    import tempfile

    from gpuinfra.sweep import runner

    p = _plan(_write(tmp_path))
    seen: dict[str, list] = {"write": [], "record": []}
    real_write, real_record = runner.write_run_dir_atomic, runner.Store.record

    def write(runs_dir, run_id, files, record):
        seen["write"].append((run_id, sorted(files)))
        return real_write(runs_dir, run_id, files, record)

    def record(self, rec, run_dir):
        seen["record"].append(rec["run_id"])
        return real_record(self, rec, run_dir)

    monkeypatch.setattr(runner, "write_run_dir_atomic", write)
    monkeypatch.setattr(runner.Store, "record", record)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t"))
    (tmp_path / "t").mkdir()
    c = runner.measure(p, sample=2)
    picked = [p.runs[0].run_id, p.runs[-1].run_id]  # spread over the grid: first and last
    assert [r for r, _ in seen["write"]] == picked and seen["record"] == picked
    assert all("summary.json" in names for _, names in seen["write"])  # the run's real files were written
    assert c.sample == 2 and c.startup_s > 0 and c.run_wall_s > 0 and c.run_cpu_s > 0 and c.record_s > 0
    assert list((tmp_path / "t").iterdir()) == []  # the trial sweep directory is removed


FIXED = """\
name: fixed
seed: 1
cluster:
  pools:
    - {name: v100, gpu_model: V100-32GB, gpus_per_node: 8, cpu_milli: 96000, memory_mib: 786432, count: 2}
workload: {trace: "openb:default", limit: 40}
horizon_s: 100000
"""


def test_report_titles_pools_by_name_and_says_once_when_seeds_change_nothing(tmp_path):
    """A fixed trace, first-fit placement, no faults: nothing draws from the seed, so every seed's
    metrics are identical; the report must say so instead of printing [x, x] intervals, head the
    pool parameter with the pool's name from the recorded scenario, and not put '(s)' over cells
    written in min or h."""
    (tmp_path / "fixed.yaml").write_text(FIXED)
    (tmp_path / "sw.yaml").write_text(
        "name: fx\nscenario: fixed.yaml\nseeds: [1, 2, 3]\nparams:\n  cluster.pools[0].count: [1, 2]\n"
        "report: {x: idle_gpu_hours, y: wait_p99_s}\n"
    )
    out = tmp_path / "out"
    run_sweep(_plan(tmp_path / "sw.yaml"), out, workers=1)
    import duckdb

    con = duckdb.connect(str(out / "sweep.duckdb"), read_only=True)
    spread = con.execute(
        "SELECT max(v) - min(v) FROM (SELECT run_id, metric, value v FROM metrics) m JOIN runs USING (run_id) "
        "WHERE metric <> 'seed' GROUP BY config_id, metric ORDER BY 1 DESC LIMIT 1"
    ).fetchone()[0]
    con.close()
    rep = report(out)
    assert (
        rep.seeds_identical
        == (
            rep.table[[c for c in rep.table if c.endswith("_hi")]].fillna(0).to_numpy()
            == rep.table[[c for c in rep.table if c.endswith("_lo")]].fillna(0).to_numpy()
        ).all()
    )
    assert rep.seeds_identical and spread == 0
    assert rep.pool_names == ("v100",) and rep.param_title("cluster.pools[0].count") == "v100 pool nodes"
    r = gi("sweep", "report", str(out))
    assert r.returncode == 0, r.stderr
    assert "Seeds change nothing here" in r.stdout and "v100 pool nodes" in r.stdout
    assert " [" not in r.stdout.split("┃")[-1]  # no interval brackets in any cell
    assert "wait (s)" not in r.stdout  # durations are written in s, min or h per cell
    # the generated workload of the other sweep does vary with the seed: intervals stay
    p = _plan(_write(tmp_path))
    run_sweep(p, tmp_path / "o2", workers=1)
    assert not report(tmp_path / "o2").seeds_identical
