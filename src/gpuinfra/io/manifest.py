"""Run-directory manifests: what a finished run wrote, so readers can tell complete from cut short.

A run directory (``simulate --out``, ``fill``, ``compare``, ``lab``, ``metrics export``) ends with
``manifest.json``, written **last** and atomically::

    {"schema": "gpuinfra.manifest/1", "gpuinfra": "0.1.0", "command": "simulate",
     "params": {...}, "files": [{"path": "summary.json", "bytes": 1234, "sha256": "..."}, ...]}

Paths are relative to the directory and sorted, ``params`` holds only the inputs that shape the
content (no output paths, no clock), so the same inputs give the same manifest bytes. A directory
without a manifest, or whose files no longer match it, is an interrupted or altered run:
:func:`verify` refuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from gpuinfra.errors import UserError
from gpuinfra.io.atomic import ensure_dir, path_error, write_text

MANIFEST = "manifest.json"
SCHEMA = "gpuinfra.manifest/1"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entries(root: Path, files: list[Path] | None) -> list[dict[str, Any]]:
    if files is None:
        top = root / MANIFEST
        files = [p for p in root.rglob("*") if p.is_file() and p != top and not p.name.startswith(".gpuinfra-tmp-")]
    rel = sorted({Path(p).resolve().relative_to(root.resolve()).as_posix() for p in files})
    return [{"path": r, "bytes": (root / r).stat().st_size, "sha256": sha256_file(root / r)} for r in rel]


def write_manifest(
    root: Path, command: str, params: dict[str, Any] | None = None, files: list[Path] | None = None
) -> Path:
    """Write ``root/manifest.json`` listing ``files`` (default: every file under ``root``) with
    sizes and SHA-256. Call it after the last data file is in place. Returns the manifest path."""
    from gpuinfra import __version__

    body = {
        "schema": SCHEMA,
        "gpuinfra": __version__,
        "command": command,
        "params": params or {},
        "files": _entries(Path(root), files),
    }
    return write_text(Path(root) / MANIFEST, json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of ``root`` as written, or None when there is none or it does not parse."""
    try:
        body = json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("schema") != SCHEMA or not isinstance(body.get("files"), list):
        return None
    return body


def verify(root: Path, command: str | None = None, where: str | None = None) -> dict[str, Any]:
    """Check that ``root`` is a finished run (of ``command``, if given): a manifest exists and
    every file it lists has the recorded size and SHA-256. Returns the manifest.

    Raises:
        UserError: no directory, no or unreadable manifest, another command's run, or a file
            missing, truncated or changed since the run finished.
    """
    root = Path(root)
    try:
        is_dir = root.is_dir()
    except OSError as e:
        raise path_error(e, root, where, "read") from None
    if not is_dir:
        raise UserError(f"'{root}' is not a directory", where=where, expected="a run directory")
    m = read_manifest(root)
    if m is None:
        raise UserError(
            f"'{root}' has no valid {MANIFEST}: the run did not finish (interrupted or killed) or was not "
            "written by gpuinfra",
            where=where,
            fix="run the command again into an empty directory",
        )
    if command is not None and m.get("command") != command:
        raise UserError(
            f"'{root}' holds a run of `gpuinfra {m.get('command')}`",
            where=where,
            expected=f"a run directory of `gpuinfra {command}`",
        )
    for f in m["files"]:
        p = root / str(f.get("path", ""))
        try:
            ok = p.is_file() and p.stat().st_size == f.get("bytes") and sha256_file(p) == f.get("sha256")
        except OSError:
            ok = False
        if not ok:
            raise UserError(
                f"'{p}' is missing or differs from the run's {MANIFEST} (size or SHA-256)",
                where=where,
                fix="the run directory was cut short or altered; run the command again",
            )
    return m


def prepare(root: Path, command: str, *, force: bool, where: str = "--out", same: dict[str, Any] | None = None) -> None:
    """Check, before any work, that ``root`` may receive a run of ``command``: it does not exist,
    is empty, holds a finished run of the same command (it will be replaced), or ``force``.
    ``same``: manifest params that must also match for the earlier run to count as the same command's
    (e.g. the scenario's name and SHA-256, so a default ``-o`` is not silently reused by another
    scenario); a key the earlier manifest lacks is not compared.

    Raises:
        UserError: ``root`` is a file, or a non-empty directory that is not a finished run of
            ``command`` (with the ``same`` params) and ``force`` is not set.
    """
    root = Path(root)
    try:
        exists, is_dir = root.exists(), root.is_dir()
        entries = list(root.iterdir()) if is_dir else []
    except OSError as e:
        raise path_error(e, root, where) from None
    if exists and not is_dir:
        raise UserError(f"'{root}' is a file", where=where, expected="a directory for the run's files")
    if not entries or force:
        return
    m = read_manifest(root)
    if m is not None and m.get("command") == command:
        before = m.get("params") or {}
        differ = [k for k, v in (same or {}).items() if k in before and before[k] != v]
        if not differ:
            return
        named = [k for k in differ if not k.endswith("sha256")]
        told = "; ".join(f"{k} '{before[k]!s:.80}' there, '{same[k]!s:.80}' now" for k in named)  # type: ignore[index]
        raise UserError(
            f"'{root}' holds a `gpuinfra {command}` run with other inputs: "
            + (told or f"same name, different contents ({', '.join(differ)})"),
            where=where,
            fix="choose another directory (-o/--out), or pass --force to replace that run",
        )
    what = f"a run of `gpuinfra {m.get('command')}`" if m else "files that are not a finished gpuinfra run"
    raise UserError(
        f"'{root}' is not empty: it holds {what}",
        where=where,
        fix=f"choose a new directory, or pass --force to write {command}'s files into it",
    )


def begin(root: Path, where: str = "--out", create: bool = True) -> None:
    """Start writing a run into ``root``: create it (unless ``create`` is False: the writer will)
    and remove an earlier finished run's manifest first, then the files it listed, so an
    interruption from here on leaves no valid manifest."""
    root = Path(root)
    if create:
        ensure_dir(root, where)
    elif not root.is_dir():
        return
    old = read_manifest(root)
    with contextlib.suppress(FileNotFoundError):
        (root / MANIFEST).unlink()
    for f in (old or {}).get("files", []):
        p = (root / str(f.get("path", ""))).resolve()
        if root.resolve() in p.parents:
            with contextlib.suppress(OSError):
                p.unlink()
