"""``health``: classify a node's Xid and ECC evidence and say what to do."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import check_input_file, esc, out
from gpuinfra.errors import UserError

EXIT_ACTION_NEEDED = 1
"""Exit code when the node's verdict is not none: an action (restart_app or more severe) or ``investigate``
(evidence gpuinfra cannot map to an action: a person must look); 0 when none; 2 bad input."""


def health(
    dmesg: Annotated[
        Path | None, typer.Option("--dmesg", help="Kernel log (dmesg, journalctl -k) with NVRM Xid lines.")
    ] = None,
    nvidia_smi: Annotated[Path | None, typer.Option("--nvidia-smi", help="Saved `nvidia-smi -q` output.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON (a list).")] = False,
    tree: Annotated[
        bool, typer.Option("--tree", help="Print the decision tree itself (Mermaid flowchart) and exit.")
    ] = False,
) -> None:
    """Classify a GPU node's Xid and ECC evidence and say what to do: none, investigate, restart_app,
    reset_gpu, reboot_node or drain_and_replace (the most severe is the node's verdict). investigate:
    an Xid not in the catalog, an unreadable Xid line, an NVSwitch SXid or an unknown nvidia-smi value.

    Exit codes: 0 the verdict is none (nothing to do), 1 a person must act (any other verdict,
    investigate included), 2 bad input (missing or unreadable file, nothing to read)."""
    from gpuinfra.io.health import parse_kernel_log, parse_nvidia_smi_q, read_text
    from gpuinfra.models.faults import decision_tree_mermaid, escalate, verdict

    if tree:
        sys.stdout.write(decision_tree_mermaid())
        return
    if dmesg is None and nvidia_smi is None:
        raise UserError("nothing to read", where="command line", expected="--dmesg FILE and/or --nvidia-smi FILE")
    for path, where in ((dmesg, "--dmesg"), (nvidia_smi, "--nvidia-smi")):
        if path is not None:
            check_input_file(path, where)
    findings, notes = [], []
    blind = unreported = False
    if dmesg is not None:
        text = _log_text(read_text(dmesg), dmesg, "--dmesg", "a kernel log (dmesg, journalctl -k)")
        ev = parse_kernel_log(text, str(dmesg))
        findings += ev.findings
        notes.append(f"{dmesg}: {ev.lines_read:,} lines, {ev.lines_read - ev.lines_ignored:,} with Xids")
        if not ev.findings and not _looks_like_kernel_log(text):
            notes.append(
                f"{dmesg}: no line carries a kernel log timestamp, NVRM or kernel: tag; is this the node's "
                "kernel log? (`dmesg -T` or `journalctl -k` output)"
            )
    if nvidia_smi is not None:
        ev = parse_nvidia_smi_q(
            _log_text(read_text(nvidia_smi), nvidia_smi, "--nvidia-smi", "saved `nvidia-smi -q` output"),
            str(nvidia_smi),
        )
        findings += ev.findings
        notes.append(f"{nvidia_smi}: {len(ev.gpus_seen)} GPU(s)")
        notes += ev.notes + ev.unreported
        blind, unreported = bool(ev.notes), bool(ev.unreported)
    findings = escalate(findings)
    v = verdict(findings)
    if as_json:
        sys.stdout.write(json.dumps([f.as_json() for f in findings], indent=2) + "\n")
        raise typer.Exit(EXIT_ACTION_NEEDED if v != "none" else 0)
    if findings:
        out.print(findings_table(findings))
    for n in notes:
        out.print(f"[dim]{esc(n)}[/]", markup=True)
    worst = [f for f in findings if f.action == v]
    why = worst[0].reason if worst else "no fault evidence found"
    if not worst and blind:
        why += "; memory errors not judged: the nvidia-smi file has no ECC fields (see above)"
    elif not worst and unreported:
        why += "; some memory-error fields are not reported by nvidia-smi (listed above)"
    out.print(f"node verdict: [bold]{esc(v)}[/] ({esc(why)})", markup=True)
    if v != "none":
        raise typer.Exit(EXIT_ACTION_NEEDED)


MAX_TABLE_ROWS = 40
"""Rows the terminal table shows; more findings are grouped per GPU x Xid, and more groups are
counted ("N more rows"). ``--json`` always lists every finding."""


def findings_table(findings: list) -> Table:
    """The findings as a terminal table: one row each when there are at most :data:`MAX_TABLE_ROWS`,
    else one row per (GPU, Xid, class, action) with its count and first/last source line, at most
    :data:`MAX_TABLE_ROWS` of them (the most severe first) and a last row saying how many are left out."""
    from gpuinfra.models.faults import severity

    if len(findings) <= MAX_TABLE_ROWS:
        t = Table("source", "gpu", "xid", "class", "action", "reason", show_lines=False)
        for f in findings:
            t.add_row(
                esc(f.source), esc(f.gpu or "-"), "-" if f.xid is None else str(f.xid), f.cls, f.action, esc(f.reason)
            )
        return t
    groups: dict[tuple, list] = {}
    for f in findings:
        groups.setdefault((f.gpu or "-", f.xid, f.cls, f.action), []).append(f)
    keys = sorted(groups, key=lambda k: (-severity(k[3]), -len(groups[k]), k[0], -1 if k[1] is None else k[1]))
    t = Table("gpu", "xid", "count", "first", "last", "class", "action", "reason", show_lines=False)
    t.caption = f"{len(findings):,} findings grouped per GPU x Xid (--json lists each)"
    for k in keys[:MAX_TABLE_ROWS]:
        fs = groups[k]
        t.add_row(
            esc(k[0]), "-" if k[1] is None else str(k[1]), f"{len(fs):,}", esc(fs[0].source), esc(fs[-1].source),
            k[2], k[3], esc(fs[0].reason),
        )  # fmt: skip
    if len(keys) > MAX_TABLE_ROWS:
        t.add_row(f"... {len(keys) - MAX_TABLE_ROWS:,} more rows (--json for all)", *[""] * 7)
    return t


def _log_text(text: str, path: Path, where: str, what: str) -> str:
    """``text`` unless it is empty or holds a NUL character (binary data; undecodable bytes are
    already refused by :func:`gpuinfra.textfile.read_text`): then one UserError naming the file and
    the first offending line (exit 2), not a "none" verdict read from the wrong file.

    Other control characters (ESC, BEL, ...) are accepted: real kernel logs carry them inside a
    line (a process name is user data, e.g. ``comm=...`` of an OOM or segfault line); every place
    that prints a line escapes them (``errors.neutralise`` on the terminal, ``\\u001b`` in JSON)."""
    if not text.strip():
        raise UserError(f"'{path}' is empty", where=where, expected=what)
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise UserError(
            f"'{path}' holds a NUL character on line {line}: binary data, not text",
            where=f"{where} ({path}:{line})",
            expected=what,
            fix="give the text output of the tool (for example `dmesg -T > node.log`)",
        )
    return text


def _looks_like_kernel_log(text: str) -> bool:
    """Whether any of the first 10,000 lines looks like a kernel log line: a dmesg ``[   12.345]`` or
    ``dmesg -T`` ``[Mon ...]`` stamp, a syslog/journald ``kernel:`` tag, or NVRM."""
    import re

    rx = re.compile(r"^\s*\[[^\]]+\]|\bkernel:|NVRM")
    return any(rx.search(line) for line in text.splitlines()[:10_000])
