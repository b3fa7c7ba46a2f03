"""The simulate run directory appears whole or not at all (io/rundir.py, run.write_run_dir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import gpuinfra.run as run_mod
from gpuinfra.io import manifest
from gpuinfra.io.rundir import TMP_TAG, staged_run_dir
from gpuinfra.io.scenario import parse_scenario
from gpuinfra.run import simulate, write_run_dir

SMALL = """\
name: tiny
seed: 3
cluster: {openb: gpu_node}
workload: {trace: "openb:default", limit: 150}
prices:
  overrides:
    G1: {same_as: V100-32GB, source: test}
    G2: {same_as: V100-32GB, source: test}
    G3: {same_as: V100-32GB, source: test}
"""


@pytest.fixture(scope="module")
def out():
    return simulate(parse_scenario(SMALL, "tiny.yaml"), None)


def _litter(d):
    return [p.name for p in d.parent.iterdir() if TMP_TAG in p.name or ".gpuinfra-old-" in p.name]


def _interrupt_second_parquet(monkeypatch):
    real = run_mod.write_parquet
    calls = []

    def flaky(p, df):
        calls.append(p)
        if len(calls) == 2:  # after summary.json and metrics.parquet, before pods.parquet
            raise KeyboardInterrupt
        return real(p, df)

    monkeypatch.setattr(run_mod, "write_parquet", flaky)


def test_an_interrupted_write_leaves_no_directory_and_no_temp(out, tmp_path, monkeypatch):
    d = tmp_path / "run"
    _interrupt_second_parquet(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        write_run_dir(out, d, report=False)
    assert not d.exists() and _litter(d) == []


def test_an_interrupted_rewrite_leaves_the_old_run_unchanged(out, tmp_path, monkeypatch):
    d = tmp_path / "run"
    write_run_dir(out, d, report=False)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    _interrupt_second_parquet(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        write_run_dir(out, d, report=False)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    manifest.verify(d, "simulate")
    assert _litter(d) == []


def test_a_rewrite_replaces_the_run_and_keeps_the_users_own_files(out, tmp_path):
    d = tmp_path / "run"
    write_run_dir(out, d, report=False, events=True)
    (d / "notes.txt").write_text("mine")
    files = write_run_dir(out, d, report=False, events=False)
    assert all(p.parent == d and p.exists() for p in files)
    assert not (d / "events.jsonl").exists()  # the old run's file is gone with it
    assert (d / "notes.txt").read_text() == "mine"
    m = manifest.verify(d, "simulate")
    assert "events.jsonl" not in {f["path"] for f in m["files"]}
    assert _litter(d) == []


def test_a_stale_temp_of_a_killed_run_is_removed_by_the_next(out, tmp_path):
    d = tmp_path / "run"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".run{TMP_TAG}{int(dead.stdout)}"
    stale.mkdir()
    (stale / "summary.json").write_text("{}")
    write_run_dir(out, d, report=False)
    assert not stale.exists() and json.loads((d / "summary.json").read_text())
    # a temp of a process that still runs (this one's parent) is not touched
    live = tmp_path / f".run{TMP_TAG}{os.getppid()}"
    live.mkdir()
    with staged_run_dir(d):
        pass
    assert live.exists()


def test_a_symlinked_or_dangling_target_is_refused_not_replaced(tmp_path):
    from gpuinfra.errors import UserError
    from gpuinfra.io.rundir import staged_run_dir

    real = tmp_path / "realdir"
    real.mkdir()
    (tmp_path / "linkdir").symlink_to(real)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("linkdir", "dangling"):
        with pytest.raises(UserError, match="symbolic link"), staged_run_dir(tmp_path / name):
            pass
        assert (tmp_path / name).is_symlink()  # the user's link is still there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "linkdir", "realdir"]  # no debris
