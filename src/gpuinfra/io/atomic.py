"""Atomic, owned outputs: every file is written under a temporary name in its own directory and
renamed into place, so a reader (or a SIGKILL) never sees half a file.

``os.replace`` is atomic on POSIX within one file system, which is why the temporary file lives
beside the target, not in ``/tmp``. A failure (an exception, Ctrl-C) removes the temporary file
and leaves any earlier file at the target untouched.

Path problems the user can fix (the target is a directory, a parent is a file, the name is too
long, no permission) raise :class:`gpuinfra.errors.UserError` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from gpuinfra.errors import UserError

_TMP_PREFIX = ".gpuinfra-tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def path_error(e: OSError, path: Path, where: str | None = None, verb: str = "write") -> UserError:
    """A :class:`UserError` for an OSError on ``path`` that the user can act on."""
    reasons = {
        errno.ENAMETOOLONG: ("the file name is too long", "use a shorter name (most file systems allow 255 bytes)"),
        errno.ENOTDIR: ("a parent of this path is a file, not a directory", "choose a path under a directory"),
        errno.EISDIR: ("this path is a directory", "name a file inside it"),
        errno.EACCES: ("permission denied", "choose a directory you can write to"),
        errno.EPERM: ("permission denied", "choose a directory you can write to"),
        errno.EROFS: ("the file system is read-only", "choose a writable directory"),
        errno.ENOSPC: ("no space left on the device", "free space or choose another disk"),
        errno.EEXIST: ("a file already exists where a directory is needed", "choose another path"),
    }
    what, fix = reasons.get(e.errno or 0, (e.strerror or str(e), "check the path"))
    shown = str(path) if len(str(path)) <= 200 else str(path)[:200] + "..."
    return UserError(f"cannot {verb} '{shown}': {what}", where=where, fix=fix)


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISREG, "a file"),
)


def file_kind(mode: int) -> str:
    """What an ``st_mode`` stands for, in words ("a file" for a regular file, "a character device",
    "a FIFO (named pipe)", ...)."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def existing_kind(path: Path, where: str | None = None) -> str | None:
    """What exists at ``path`` (following symlinks: a link is what it points at), in the words of
    :func:`file_kind`, or None when nothing does (a dangling symlink counts as nothing).

    Raises:
        UserError: when ``path`` cannot be examined (permission, a parent that is a file ...).
    """
    try:
        return file_kind(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            return None  # a parent is a file: the writer's own checks say so
        raise path_error(e, Path(path), where, verb="examine") from None


def refuse_special(path: Path, where: str | None, *, want: str = "a file") -> None:
    """Refuse an existing ``path`` that is not ``want`` ("a file", meaning a regular file, or "a
    directory"): a device, a FIFO, a socket, a directory where a file is expected, or a symlink to
    one of those. Outputs are written by renaming a new file onto the path, which would silently
    replace such an entry (a device node would become a regular file), so this holds even with
    ``--force``.

    Raises:
        UserError: naming ``where``, the path and what it is.
    """
    kind = existing_kind(path, where)
    if kind is None or kind == want:
        return
    link = " (through a symbolic link)" if Path(path).is_symlink() else ""
    if want == "a directory":
        raise UserError(f"'{path}' is {kind}{link}, not a directory", where=where, fix="choose a directory path")
    raise UserError(
        f"'{path}' is {kind}{link}, not a regular file; an output never replaces it, even with --force",
        where=where,
        expected="a new path or an existing regular file",
        fix="choose another path",
    )


def ensure_dir(path: Path, where: str | None = None) -> None:
    """``mkdir -p path``, with path problems as UserError (including an existing non-directory)."""
    try:
        refuse_special(path, where, want="a directory")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno == errno.ENOENT:  # /proc, /sys: the parent exists but takes no new entries
            raise UserError(
                f"cannot create the directory '{path}': its file system does not allow new entries there",
                where=where,
                expected="a directory this user can create and write",
                fix="choose a path under your home directory or the current directory",
            ) from None
        raise path_error(e, path, where) from None


def _probe_writable(path: Path, where: str | None) -> None:
    """Create and remove a temporary file in directory ``path``; path problems as UserError."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        if e.errno == errno.ENOENT:  # /proc, /sys: the directory "exists" but takes no files
            raise UserError(
                f"cannot write in '{path}': its file system does not allow new files there",
                where=where,
                expected="a directory this user can write",
                fix="choose a path under your home directory or the current directory",
            ) from None
        raise path_error(e, path, where) from None


def check_writable_dir(path: Path, where: str | None = None) -> bool:
    """``mkdir -p path`` and prove a file can be created in it (a temporary file, removed again),
    before any work whose output would land there. Returns whether ``path`` was created here.

    Raises:
        UserError: naming ``where``, the path and why (a parent is a file, permission, read-only,
            a file system such as /proc that takes no new entries).
    """
    path = Path(path)
    created = not path.exists()
    ensure_dir(path, where)
    _probe_writable(path, where)
    return created


@contextlib.contextmanager
def atomic_path(path: Path, where: str | None = None, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on any
    exception remove it. For writers that want a file name (pyarrow, pandas, plotly). The file
    gets ``mode`` (default: 0o666 less the umask, as a plain ``open`` would give it); the
    temporary file is 0o600 until then, so a secret is never readable by others."""
    path = Path(path)
    ensure_dir(path.parent, where)
    refuse_special(path, where)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    except OSError as e:
        raise path_error(e, path, where) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, (0o666 & ~_umask()) if mode is None else mode)
        refuse_special(path, where)  # again: something may have been created there meanwhile
        try:
            os.replace(tmp_path, path)
        except OSError as e:
            raise path_error(e, path, where) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_bytes(path: Path, data: bytes, where: str | None = None, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + rename), with ``mode`` as
    :func:`atomic_path`. Returns ``path``."""
    with atomic_path(path, where, mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def write_text(path: Path, text: str, where: str | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically. Returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), where)


def write_with(path: Path, writer: Callable[[Path], object], where: str | None = None) -> Path:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``. Returns ``path``."""
    with atomic_path(path, where) as tmp:
        writer(tmp)
    return Path(path)


def check_new_file(path: Path, *, force: bool, where: str) -> None:
    """Refuse to overwrite an existing regular file unless ``force``; refuse always anything else that
    exists there (a directory, device, FIFO, socket, or a symlink to one: :func:`refuse_special`).

    Raises:
        UserError: naming ``where`` (the option) and the path.
    """
    path = Path(path)
    refuse_special(path, where)
    if existing_kind(path, where) is not None and not force:
        raise UserError(
            f"'{path}' already exists", where=where, fix="choose another name, or pass --force to replace it"
        )


def check_output_file(path: Path, *, force: bool, where: str) -> None:
    """The checks of a single-file output option (``--csv``, ``--html``, ``schema -o``, ...),
    before any work: :func:`check_new_file`, then the file's directory must already exist and take
    a new file. A file output never creates directories (a typo in a parent would otherwise make
    a tree silently); only the run/output *directories* a command owns (``lab -o``, ``simulate
    --out``, ``export sharing -o``, ...) are created, by :func:`check_writable_dir`.

    Raises:
        UserError: naming ``where`` and the path: a directory, an existing file without ``force``,
            a missing parent directory ("create it first"), a parent that is a file, no permission.
    """
    path = Path(path)
    check_new_file(path, force=force, where=where)
    parent = path.parent
    if parent.is_dir():
        _probe_writable(parent, where)
        return
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise UserError(
            f"cannot write '{path}': '{ancestor}' is a file, not a directory",
            where=where,
            fix="choose a path under a directory",
        )
    raise UserError(
        f"the directory '{parent}' does not exist",
        where=where,
        expected="a file in an existing directory (file outputs do not create directories)",
        fix=f"create it first (mkdir -p {shlex.quote(str(parent))}) or choose another path",
    )
