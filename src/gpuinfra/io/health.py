"""Readers of real node evidence: kernel-log Xid lines and ``nvidia-smi -q`` output.

Every line that looks like an Xid is either understood or reported as unreadable; nothing is
guessed. Lines with no Xid are counted, not reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gpuinfra.errors import UserError
from gpuinfra.models.faults import Finding, classify_xid

XID_RE = re.compile(
    r"NVRM: Xid \((?:PCI:)?([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-9a-fA-F])?)\): "
    r"(\d+)(?:,\s*(.*))?$"
)


@dataclass
class Evidence:
    findings: list[Finding] = field(default_factory=list)
    lines_read: int = 0
    lines_ignored: int = 0
    gpus_seen: set[str] = field(default_factory=set)


def read_text(path: Path) -> str:
    if not path.exists():
        raise UserError("file not found", where=str(path), fix="check the path")
    try:
        return path.read_text(errors="strict")
    except UnicodeDecodeError:
        return path.read_bytes().decode("utf-8", errors="replace")


def parse_kernel_log(text: str, label: str) -> Evidence:
    ev = Evidence()
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        ev.lines_read += 1
        if "Xid" not in line or "NVRM" not in line:
            ev.lines_ignored += 1
            continue
        m = XID_RE.search(line)
        where = f"{label}:{n}"
        if not m:
            ev.findings.append(
                Finding(
                    line.strip(),
                    None,
                    None,
                    "unparsed",
                    "none",
                    "an NVRM Xid line gpuinfra cannot read: check it by hand",
                    where,
                )
            )
            continue
        gpu, xid, rest = m.group(1), int(m.group(2)), m.group(3) or ""
        cls, action, reason = classify_xid(xid, rest)
        ev.gpus_seen.add(gpu)
        ev.findings.append(Finding(line.strip(), gpu, xid, cls, action, reason, where))
    return ev


def _sections(text: str) -> list[tuple[str, dict[str, str], int]]:
    """(GPU bus id, {'Section/Sub/Key': value}, first line) per GPU block of nvidia-smi -q."""
    gpus: list[tuple[str, dict[str, str], int]] = []
    cur: dict[str, str] | None = None
    stack: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        m = re.match(r"^GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$", raw)
        if m:
            cur = {}
            gpus.append((m.group(1), cur, n))
            stack = []
            continue
        if cur is None:
            continue
        indent = len(raw) - len(raw.lstrip())
        body = raw.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if ":" in body:
            key, _, val = body.partition(":")
            key, val = key.strip(), val.strip()
            if val:
                cur["/".join([s for _, s in stack] + [key])] = val
                continue
            stack.append((indent, key))
        else:
            stack.append((indent, body))
    return gpus


def _num(v: str | None) -> int | None:
    if v is None:
        return None
    m = re.match(r"^\s*(\d+)", v)
    return int(m.group(1)) if m else None


def parse_nvidia_smi_q(text: str, label: str) -> Evidence:
    ev = Evidence()
    blocks = _sections(text)
    ev.lines_read = len(text.splitlines())
    if not blocks:
        raise UserError(
            "no GPU sections found",
            where=label,
            expected="the output of `nvidia-smi -q` (lines like 'GPU 00000000:5A:00.0')",
        )
    for gpu, kv, line in blocks:
        ev.gpus_seen.add(gpu)
        where = f"{label}:{line}"

        def get(*suffixes: str, kv: dict[str, str] = kv) -> str | None:
            for k, v in kv.items():
                if any(k.endswith(s) for s in suffixes):
                    return v
            return None

        def add(
            key: str, cls: str, action: str, reason: str, kv: dict[str, str] = kv, gpu: str = gpu, where: str = where
        ) -> None:
            ev.findings.append(Finding(f"{key}: {kv.get(key, get(key) or '')}", gpu, None, cls, action, reason, where))

        if (get("Remapped Rows/Remapping Failure Occurred") or "").lower() == "yes":
            add(
                "Remapped Rows/Remapping Failure Occurred",
                "memory",
                "drain_and_replace",
                "row remapping failed: the GPU has no spare rows left for a failing bank; NVIDIA's practice is RMA",
            )
        if (get("Remapped Rows/Pending") or "").lower() == "yes":
            add(
                "Remapped Rows/Pending",
                "memory",
                "reset_gpu",
                "a row remap is pending: it takes effect only after a GPU reset",
            )
        if (get("Retired Pages/Pending Page Blacklist", "Retired Pages/Pending") or "").lower() == "yes":
            add(
                "Retired Pages/Pending Page Blacklist",
                "memory",
                "reset_gpu",
                "pages are pending retirement: they are retired at the next GPU reset or driver reload",
            )
        dram = _num(get("ECC Errors/Volatile/DRAM Uncorrectable", "ECC Errors/Volatile/Double Bit/Total"))
        if dram:
            add(
                "ECC Errors/Volatile/DRAM Uncorrectable",
                "memory",
                "reset_gpu",
                f"{dram} uncorrectable DRAM ECC error(s) since the last reset",
            )
        sram = _num(get("ECC Errors/Aggregate/SRAM Uncorrectable"))
        if sram is not None and sram > 4:
            add(
                "ECC Errors/Aggregate/SRAM Uncorrectable",
                "memory",
                "drain_and_replace",
                f"{sram} aggregate uncorrectable SRAM errors (> 4: an RMA heuristic, stas00/ml-engineering)",
            )
        for key in ("HW Thermal Slowdown", "HW Slowdown", "SW Thermal Slowdown", "HW Power Brake Slowdown"):
            v = get(f"Reasons/{key}", f"Throttle Reasons/{key}", f"Event Reasons/{key}")
            if v and v.lower() == "active":
                add(
                    next(k for k in kv if k.endswith(key)),
                    "thermal",
                    "none",
                    f"{key} is active: the GPU runs below its clocks (check cooling and power); no reset fixes it",
                )
    return ev
