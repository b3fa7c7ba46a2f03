"""A run directory that appears whole or not at all.

:func:`staged_run_dir` yields a sibling temporary directory (``.NAME.gpuinfra-tmp-PID`` next to the
target) for the writer to fill, and on success renames it into place; an earlier directory at the
target (a finished run of the same command, or any directory under ``--force``, both checked
before by :func:`gpuinfra.io.manifest.prepare`) is renamed aside first and removed after. Entries
of the old directory that the old run's manifest does not list (a user's own files in a directory
given with ``--force``) are moved into the new one unless the new run wrote the same name, as the
in-place writer used to keep them.

An interruption (KeyboardInterrupt or any exception) while writing removes the temporary directory
and leaves the target as it was; Ctrl-C is held back during the renames of the swap. A temporary
directory left by a killed process (SIGKILL) is removed by the next run to the same target once its
process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from gpuinfra.errors import UserError
from gpuinfra.io.atomic import ensure_dir, path_error

TMP_TAG = ".gpuinfra-tmp-"
OLD_TAG = ".gpuinfra-old-"


def _tmp_name(target: Path, pid: int) -> Path:
    return target.parent / f".{target.name}{TMP_TAG}{pid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Remove temporary directories of ``target`` left by processes that no longer run; returns them."""
    target = Path(target)
    gone = []
    if not target.parent.is_dir():
        return gone
    for p in target.parent.glob(f".{target.name}{TMP_TAG}*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    return gone


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Ctrl-C delivered after the block instead of inside it (main thread, POSIX; else a no-op)."""
    can = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if can:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if can:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _owned(target: Path) -> set[str]:
    """Top-level names of ``target`` that its finished run wrote (manifest entries and the manifest)."""
    from gpuinfra.io.manifest import MANIFEST, read_manifest

    m = read_manifest(target) or {}
    return {MANIFEST} | {str(f.get("path", "")).split("/", 1)[0] for f in m.get("files", [])}


def swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` to ``target``; an existing ``target`` is renamed aside, its entries
    not written by its run carried over (unless ``tmp`` has the same name), and removed."""
    with _sigint_held():
        if not target.exists():
            os.rename(tmp, target)
            return
        owned = _owned(target)
        aside = target.parent / f".{target.name}{OLD_TAG}{os.getpid()}"
        if aside.exists():
            shutil.rmtree(aside)
        os.rename(target, aside)
        os.rename(tmp, target)
        for e in sorted(aside.iterdir()):
            if e.name not in owned and not (target / e.name).exists():
                os.rename(e, target / e.name)
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def staged_run_dir(target: Path, where: str = "--out") -> Iterator[Path]:
    """Yield an empty temporary directory beside ``target``; when the block ends normally it becomes
    ``target`` (:func:`swap_into_place`), otherwise it is removed and ``target`` is untouched.

    Raises:
        UserError: the parent of ``target`` cannot be created or written, or ``target`` is a symbolic
            link (the directory is renamed into place, which would replace the link, not write
            through it; a dangling link has no directory to write to).
    """
    target = Path(target)
    if target.is_symlink():
        raise UserError(
            f"'{target}' is a symbolic link (to '{os.readlink(target)}'): a run directory is renamed into place, "
            "which would replace the link",
            where=where,
            expected="a directory path that is not a symbolic link",
            fix=f"give the link's target directly ({where} {os.path.realpath(target)}), or remove the link",
        )
    ensure_dir(target.parent, where)
    clean_stale(target)
    tmp = _tmp_name(target, os.getpid())
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as e:
        raise path_error(e, target, where) from None
    try:
        yield tmp
        swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
