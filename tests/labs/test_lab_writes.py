"""Labs write their files atomically: a write that fails or is killed midway leaves no target file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gpuinfra
import gpuinfra.io.atomic as atomic
from gpuinfra.labs import write_lab, write_lab_file

SRC = str(Path(gpuinfra.__file__).resolve().parents[1])


def _fsync_fails(monkeypatch):
    """Every byte is in the temporary file, then the write fails before the rename."""

    def boom(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", boom)


def test_a_lab_file_write_that_raises_midway_leaves_no_target(tmp_path, monkeypatch):
    _fsync_fails(monkeypatch)
    with pytest.raises(OSError):
        write_lab_file(tmp_path / "figures" / "util.html", "<html>" + "x" * 100_000)
    assert not (tmp_path / "figures" / "util.html").exists()
    assert list((tmp_path / "figures").iterdir()) == []  # no temporary file left either


def test_a_failed_rewrite_keeps_the_earlier_complete_file(tmp_path, monkeypatch):
    target = tmp_path / "table.csv"
    write_lab_file(target, "a,b\n1,2\n")
    _fsync_fails(monkeypatch)
    with pytest.raises(OSError):
        write_lab_file(target, "a,b\n" + "3,4\n" * 10_000)
    assert target.read_text() == "a,b\n1,2\n"


def test_write_lab_failing_on_the_report_leaves_no_report(tmp_path, monkeypatch):
    out = tmp_path / "lab"
    out.mkdir()
    real = atomic.write_bytes

    def fail_on_report(path, data, where=None, mode=None):
        if Path(path).name == "report.html":
            with atomic.atomic_path(path, where, mode) as tmp:
                tmp.write_bytes(data[: len(data) // 2])  # half the page is on disk ...
                raise RuntimeError("killed midway")  # ... when the lab dies
        return real(path, data, where, mode)

    monkeypatch.setattr(atomic, "write_bytes", fail_on_report)
    with pytest.raises(RuntimeError):
        write_lab(out, {"headlines": ["h"]}, "<html>" + "y" * 50_000 + "</html>")
    assert json.loads((out / "summary.json").read_text()) == {"headlines": ["h"]}
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX SIGKILL")
def test_a_lab_killed_during_a_write_leaves_no_file_at_the_target(tmp_path):
    # a child process writes a report and is SIGKILLed after the bytes are written, before the rename
    code = textwrap.dedent(
        f"""
        import os, signal
        import gpuinfra.io.atomic as atomic
        from gpuinfra.labs import write_lab_file
        atomic.os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        write_lab_file({str(tmp_path / "report.html")!r}, "<html>" + "z" * 200_000)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (tmp_path / "report.html").exists()
    # what a kill can leave is a temporary name no reader takes for the report
    assert all(p.name.startswith(".gpuinfra-tmp-") for p in tmp_path.iterdir())
