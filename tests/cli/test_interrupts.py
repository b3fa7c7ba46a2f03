"""Interruptions clean (issue 13 item 7): workers die with their parent; Ctrl-C says what was
interrupted and what was kept, exit 130; a grid writes each finished run as it completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from gpuinfra import fill as fill_mod
from gpuinfra.io import manifest
from tests.clirunner import gi
from tests.procs import alive, children


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux's")
def test_fill_workers_die_with_a_killed_parent(tmp_path):
    p = subprocess.Popen(
        [sys.executable, "-m", "gpuinfra.cli", "fill", "--workload", "gpushare40", "--policy", "all", "--seeds", "1-20"]
        + ["--workers", "2", "-q", "--out", str(tmp_path / "f")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        kids: list[int] = []
        deadline = time.monotonic() + 120
        while len(kids) < 2 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
            kids = children(p.pid)
        assert len(kids) >= 2, "the pool never started"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 30
        while any(alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(k) for k in kids), "workers outlived their parent"
    finally:
        if p.poll() is None:
            p.kill()
    # the killed grid left no manifest: readers see an unfinished run
    assert manifest.read_manifest(tmp_path / "f") is None


def test_ctrl_c_in_a_grid_says_what_was_kept(tmp_path, monkeypatch):
    real = fill_mod._one
    calls = []

    def one(args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(fill_mod, "_one", one)
    out = tmp_path / "f"
    r = gi(
        "fill", "--workload", "gpushare40", "--policy", "fgd", "--seeds", "1-4", "--load", "0.2", "--workers", "1",
        "-q", "--out", str(out), "--force",
    )  # fmt: skip
    assert r.returncode == 130, r.output
    assert "interrupted: fill grid after 2 of 4 runs" in r.stderr and "kept: 2 finished run(s)" in r.stderr
    assert "Traceback" not in r.output
    kept = sorted(p.name for p in (out / "runs").iterdir())
    assert kept == ["gpushare40--fgd--seed1.csv", "gpushare40--fgd--seed2.csv"]
    assert not (out / "manifest.json").exists()


def test_each_finished_run_is_written_and_listed(tmp_path):
    out = tmp_path / "f"
    r = gi(
        "fill", "--workload", "gpushare40", "--policy", "fgd,bestfit", "--seeds", "1-2", "--load", "0.2",
        "--workers", "2", "-q", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.output
    per_run = sorted((out / "runs").iterdir())
    assert len(per_run) == 4
    # the per-run files hold exactly fill.csv's rows, split by run
    header, *rows = (out / "fill.csv").read_text().splitlines()
    split = [ln for p in per_run for ln in p.read_text().splitlines()[1:]]
    assert sorted(split) == sorted(rows)
    listed = {e["path"] for e in manifest.verify(out, "fill")["files"]}
    assert {f"runs/{p.name}" for p in per_run} <= listed


def test_fill_grid_is_deterministic_across_worker_counts(tmp_path):
    args = ["fill", "--workload", "gpushare40", "--policy", "fgd,random", "--seeds", "3-4", "--load", "0.2", "-q"]
    assert gi(*args, "--workers", "1", "--out", str(tmp_path / "a")).returncode == 0
    assert gi(*args, "--workers", "2", "--out", str(tmp_path / "b")).returncode == 0
    for name in ("fill.csv", "summary.json", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_generic_ctrl_c_exits_130_with_a_message(tmp_path, monkeypatch):
    import gpuinfra.models.reliability as rel

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rel, "simulate", interrupted)
    r = gi("reliability", "--nodes", "8", "--days", "1", "--seeds", "1")
    assert r.returncode == 130 and "interrupted: gpuinfra reliability" in r.stderr, r.output
