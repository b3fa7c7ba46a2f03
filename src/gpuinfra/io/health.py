"""Readers of real node evidence: kernel logs (Xid lines and the NVRM lines that name a failed
GPU) and ``nvidia-smi -q`` output.

Every line that looks like an Xid is either understood or reported as unreadable; nothing is
guessed. Lines with no Xid are counted, not reported, unless they are NVRM's report of a dead GPU:
"The NVIDIA GPU <bus> (PCI ID: ...) installed in this system has fallen off the bus and is not
responding to commands." (printed over one to three NVRM lines), "GPU <bus>: GPU has fallen off the
bus." (the Xid 79 fault) and "GPU <bus>: RmInitAdapter failed!" (the Xid 143 fault).
Each finding keeps the second the line was logged (dmesg ``[ secs.usecs]``, ``dmesg -T``,
syslog/journald or ISO prefixes) so that one event reported on several lines counts once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gpuinfra.errors import UserError
from gpuinfra.models.faults import Finding, classify_xid
from gpuinfra.textfile import read_text

__all__ = ["Evidence", "parse_kernel_log", "parse_nvidia_smi_q", "read_text"]

XID_RE = re.compile(
    r"NVRM: Xid \((?:PCI:)?([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-9a-fA-F])?)"
    r"(?: GPU-I:\d+(?: GPU-CI:\d+)?)?\): (\d+)(?:,\s*(.*))?$"
)
BUS = r"([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-9a-fA-F])?)"
FALLEN_OFF_RE = re.compile(r"NVRM: The NVIDIA GPU " + BUS + r"\b.*?has fallen off the bus")
FALLEN_START_RE = re.compile(r"NVRM: The NVIDIA GPU " + BUS + r"\b")
GPU_MSG_RE = re.compile(r"NVRM: GPU " + BUS + r": (GPU has fallen off the bus|RmInitAdapter failed!?.*)")
_TIME_RES = (
    re.compile(r"^\[\s*(\d+)\.\d+\]"),  # dmesg: seconds since boot
    re.compile(r"^\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]"),  # dmesg -T
    re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)"),  # ISO (journalctl -o short-iso)
    re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) "),  # syslog / journald
)


@dataclass
class Evidence:
    findings: list[Finding] = field(default_factory=list)
    lines_read: int = 0
    lines_ignored: int = 0
    gpus_seen: set[str] = field(default_factory=set)


def bus_id(raw: str) -> str:
    """A PCI bus id as Xid lines print it: 'domain:bus:device', lower case, 4-digit domain
    ('00000000:B3:00.0' and '0000:b3:00.0' -> '0000:b3:00')."""
    dom, bus, dev = raw.lower().split(".")[0].split(":")
    return f"{dom[-4:]}:{bus}:{dev}"


def _time_key(line: str) -> str | None:
    for i, rx in enumerate(_TIME_RES):
        m = rx.match(line)
        if m:
            return ("boot+" if i == 0 else "") + m.group(1)
    return None


def _nvrm_body(line: str) -> str:
    i = line.find("NVRM:")
    return line[i + 5 :].strip() if i >= 0 else line.strip()


def parse_kernel_log(text: str, label: str) -> Evidence:
    """Findings from a kernel log (dmesg, ``dmesg -T``, journald, syslog): every Xid line and every
    NVRM line naming a failed GPU; Xid 45 lines that name their cause follow that Xid's finding."""
    ev = Evidence()
    lines = text.splitlines()
    skip_to = 0
    for n, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        ev.lines_read += 1
        if n <= skip_to:
            continue
        where = f"{label}:{n}"
        t = _time_key(line.lstrip())
        if "NVRM" in line and "Xid" not in line:
            m = FALLEN_START_RE.search(line)
            if m and "fallen off the bus" not in line:  # the message continues on the next lines
                joined, k = line, n
                while k < min(n + 3, len(lines)) and "fallen off the bus" not in joined:
                    nxt = lines[k]
                    if "Xid" in nxt or not ("NVRM:" in nxt or nxt[:1].isspace()):
                        break
                    joined += " " + _nvrm_body(nxt)
                    k += 1
                if "fallen off the bus" in joined:
                    line, skip_to = joined, k
            m = FALLEN_OFF_RE.search(line) or GPU_MSG_RE.search(line)
            if m:
                gpu = bus_id(m.group(1))
                dead = "fallen off the bus" in line
                ev.gpus_seen.add(gpu)
                ev.findings.append(
                    Finding(
                        " ".join(line.split()),
                        gpu,
                        None,
                        "hardware",
                        "reboot_node" if dead else "reset_gpu",
                        (
                            "the driver reports the GPU fallen off the bus with no Xid line: the Xid 79 fault "
                            "(PCIe link, hardware or power); reboot the node (catalog RESTART_BM)"
                            if dead
                            else "the driver could not initialise the GPU (RmInitAdapter failed): the Xid 143 "
                            "fault GPU_INIT_ERROR; reset the GPU (catalog RESET_GPU), contact support if it persists"
                        ),
                        where,
                        t,
                        79 if dead else 143,
                    )
                )
                continue
        if "Xid" not in line or "NVRM" not in line:
            ev.lines_ignored += 1
            continue
        m = XID_RE.search(line)
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
                    t,
                )
            )
            continue
        gpu, xid, rest = bus_id(m.group(1)), int(m.group(2)), m.group(3) or ""
        cls, action, reason = classify_xid(xid, rest)
        if xid == 45:
            cause = re.search(r"caused by previous Xid\s+(\d+)", rest, re.IGNORECASE)
            prior = (
                next((f for f in reversed(ev.findings) if f.gpu == gpu and f.xid == int(cause.group(1))), None)
                if cause
                else None
            )
            if prior is not None:
                cls, action = prior.cls, prior.action
                reason = f"Xid 45 caused by previous Xid {prior.xid} ({prior.source}): follows it: {prior.reason}"
        ev.gpus_seen.add(gpu)
        ev.findings.append(Finding(line.strip(), gpu, xid, cls, action, reason, where, t))
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
