"""Outputs never replace something that is not a regular file (a device, a FIFO, a socket, a
directory, or a symlink to one), even with --force: the atomic writer renames a new file onto the
path, which would turn a device node or a pipe into a regular file."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io import atomic
from tests.clirunner import gi

TOPO = str(Path(__file__).parents[1] / "fixtures" / "topology" / "8xH100-sxm-nv18-no-nics.txt")


def _fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe"
    os.mkfifo(p)
    return p


@pytest.mark.parametrize("force", [False, True])
def test_a_fifo_is_refused_even_with_force(tmp_path, force):
    p = _fifo(tmp_path)
    with pytest.raises(UserError, match=r"FIFO \(named pipe\), not a regular file") as e:
        atomic.check_output_file(p, force=force, where="--html")
    assert "--html" in str(e.value)
    assert stat.S_ISFIFO(os.lstat(p).st_mode)


def test_the_atomic_writer_itself_refuses_a_fifo_and_a_symlink_to_one(tmp_path):
    p = _fifo(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(p)
    for target in (p, link):
        with pytest.raises(UserError, match="FIFO"):
            atomic.write_text(target, "x", where="--out")
    assert stat.S_ISFIFO(os.lstat(p).st_mode) and link.is_symlink()
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".gpuinfra-tmp-")]


def test_a_socket_and_a_directory_are_named(tmp_path):
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        with pytest.raises(UserError, match="is a socket"):
            atomic.check_output_file(sock_path, force=True, where="--csv")
    finally:
        s.close()
    with pytest.raises(UserError, match="is a directory, not a regular file"):
        atomic.check_output_file(tmp_path, force=True, where="--csv")


@pytest.mark.parametrize(("fmt", "word"), [(stat.S_IFCHR, "a character device"), (stat.S_IFBLK, "a block device")])
def test_a_device_is_refused_with_force(tmp_path, monkeypatch, fmt, word):
    # a device node is simulated through os.stat: tests never touch /dev
    target = tmp_path / "dev-like"
    real_stat = os.stat

    def fake_stat(p, *a, **k):
        if Path(p) == target:
            return os.stat_result((fmt | 0o666, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        return real_stat(p, *a, **k)

    monkeypatch.setattr(atomic.os, "stat", fake_stat)
    with pytest.raises(UserError, match=f"is {word}, not a regular file"):
        atomic.check_output_file(target, force=True, where="--html")
    with pytest.raises(UserError, match=word):
        atomic.write_text(target, "x", where="--html")
    assert not os.path.lexists(target)


def test_a_run_directory_that_is_a_fifo_is_named(tmp_path):
    p = _fifo(tmp_path)
    with pytest.raises(UserError, match=r"FIFO \(named pipe\), not a directory"):
        atomic.check_writable_dir(p, "--out")


def test_cli_topo_show_html_onto_a_fifo_with_force_is_exit_2(tmp_path):
    p = _fifo(tmp_path)
    r = gi("topo", "show", TOPO, "--gpu", "H100-SXM", "--html", p, "--force")
    assert r.returncode == 2 and "FIFO" in r.output and "--html" in r.output, r.output[-2000:]
    assert "Traceback" not in r.output and "wrote" not in r.output
    assert stat.S_ISFIFO(os.lstat(p).st_mode)
    # a regular file is still replaced with --force
    f = tmp_path / "t.html"
    f.write_text("old")
    r = gi("topo", "show", TOPO, "--gpu", "H100-SXM", "--html", f, "--force")
    assert r.returncode == 0 and f.read_text() != "old", r.output[-2000:]
