"""`gpuinfra checkpoint` and `gpuinfra io`: real invocations, in-process and (for exit codes) as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from gpuinfra.cli import app

runner = CliRunner()


def gi(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_checkpoint_plan_table_json_and_html(tmp_path):
    r = runner.invoke(
        app,
        [
            "checkpoint",
            "plan",
            "--gpus",
            "16384",
            "--params",
            "405e9",
            "--storage",
            "nfs-flash",
            "--mode",
            "sync",
            "--interval",
            "60",
            "--html",
            str(tmp_path / "p.html"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "recommended every" in r.output and "Young" in r.output
    html = (tmp_path / "p.html").read_text()
    assert "checkpoint interval (minutes)" in html and "fraction of wall time" in html
    r = runner.invoke(app, ["checkpoint", "plan", "--gpus", "1024", "--params", "70e9", "--json"])
    d = json.loads(r.output)
    assert d["job"]["nodes"] == 128 and 0 < d["recommended"]["ettr"] < 1


def test_io_tiers_lists_the_packaged_tiers():
    r = runner.invoke(app, ["io", "tiers"])
    assert r.exit_code == 0 and "local-nvme" in r.output and "s3" in r.output


def test_checkpoint_larger_than_host_memory_exits_2_with_the_numbers():
    r = gi("checkpoint", "plan", "--gpus", "8", "--params", "405e9")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "5.67 TB" in r.stderr and "2.20 TB" in r.stderr


def test_io_profile_with_a_design_file_and_errors(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("pipeline: {storage: s3}\nredesigns:\n  shards: {format: shards}\n")
    r = runner.invoke(app, ["io", "profile", str(f), "--json"])
    d = json.loads(r.output)
    assert (
        d["baseline"]["bound_by"] == "read (storage)"
        and d["shards"]["achieved_per_gpu"] > d["baseline"]["achieved_per_gpu"]
    )
    f.write_text("pipeline:\n  storage: s3\n  wokers_per_gpu: 3\n")
    r = gi("io", "profile", str(f))
    assert r.returncode == 2 and "p.yaml:3" in r.stderr and "unknown field" in r.stderr
    r = gi("io", "profile", "--workers", "0")
    assert r.returncode == 2 and "0 CPU workers" in r.stderr


EXEC_SCENARIO = """\
name: exec
seed: 1
horizon_s: 86400
cluster:
  pools: [{name: a, gpu_model: H100-SXM, gpus_per_node: 8, cpu_milli: 192000, memory_mib: 2097152, count: 2}]
workload:
  generator: {jobs: 6, arrival_rate_per_hour: 10, duration_median_s: 1200, gpus: {8: 1.0}, owners: {train: 1.0}}
execution:
  kinds: [{owner: train, kind: training, checkpoint_interval_s: 300, checkpoint_stall_s: 5}]
"""


def test_simulate_with_an_execution_block_writes_a_perfetto_trace(tmp_path):
    sc = tmp_path / "exec.yaml"
    sc.write_text(EXEC_SCENARIO)
    r = runner.invoke(app, ["simulate", str(sc), "--out", str(tmp_path / "run"), "--quiet", "--no-report"])
    assert r.exit_code == 0, r.output
    tr = json.loads((tmp_path / "run" / "trace.json").read_text())
    xs = [e for e in tr["traceEvents"] if e["ph"] == "X"]
    assert {"startup", "steady", "checkpoint"} <= {e["name"] for e in xs}
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(s["execution"]["jobs"]) == 6


def test_bad_execution_block_names_line_and_field(tmp_path):
    sc = tmp_path / "exec.yaml"
    sc.write_text(EXEC_SCENARIO.replace("kind: training", "kind: trianing"))
    r = gi("simulate", str(sc), "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 2 and "exec.yaml:9" in r.stderr and "execution" in r.stderr


def test_the_execution_example_runs(tmp_path):
    from pathlib import Path

    ex = Path(__file__).parent.parent / "examples" / "execution.yaml"
    r = runner.invoke(app, ["simulate", str(ex), "--out", str(tmp_path / "run"), "--quiet", "--no-report"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    kinds = {j["kind"] for j in s["execution"]["jobs"]}
    assert kinds == {"training", "batch", "service"} and s["faults"]["pods_killed"] > 0
    assert (tmp_path / "run" / "trace.json").exists()


def test_run_report_shows_phases_per_kind(tmp_path):
    from pathlib import Path

    ex = Path(__file__).parent.parent / "examples" / "execution.yaml"
    r = runner.invoke(app, ["simulate", str(ex), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "run" / "report.html").read_text()
    assert "GPU-hours by lifecycle phase" in html and "workload kind" in html
