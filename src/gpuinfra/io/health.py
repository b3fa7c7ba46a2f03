"""Readers of real node evidence: kernel logs (Xid lines and the NVRM lines that name a failed
GPU) and ``nvidia-smi -q`` output.

Every line that looks like an Xid is either understood or reported as unreadable; nothing is
guessed. Lines with no Xid are counted, not reported, unless they are NVRM's report of a dead GPU:
"The NVIDIA GPU <bus> (PCI ID: ...) installed in this system has fallen off the bus and is not
responding to commands." (printed over one to three NVRM lines), "GPU <bus>: GPU has fallen off the
bus." / "GPU lost from the bus" (the Xid 79 fault) and "GPU <bus>: RmInitAdapter failed!" /
"rm_init_adapter failed, device minor number N" (the driver could not initialise the GPU: the
Xid 143 fault, GPU_INIT_ERROR).
NVSwitch SXid lines ("nvidia-nvswitch0: SXid (PCI:0000:c3:00.0): 20009, Non-fatal, Link 28 ...", the
format of the driver's SXid print, NVIDIA open-gpu-kernel-modules src/common/nvswitch) are reported as
``investigate``: gpuinfra carries no SXid catalog (NVIDIA documents SXids in the Fabric Manager User
Guide), so it names them and guesses no action. So are Xids not in the catalog and NVRM Xid lines it
cannot read: each needs a person, never a silent "none".
Each finding keeps the second the line was logged (dmesg ``[ secs.usecs]``, ``dmesg -T``,
syslog/journald or ISO prefixes) so that one event reported on several lines counts once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
SXID_RE = re.compile(r"(nvidia-nvswitch\d*): SXid \((?:PCI:)?" + BUS + r"\): (\d+)(?:,\s*(.*))?$")
GPU_MSG_RE = re.compile(
    r"NVRM: GPU " + BUS + r": (GPU has fallen off the bus|GPU lost from the bus|RmInitAdapter failed!?.*"
    r"|rm_init_adapter failed.*)"
)
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
    notes: list[str] = field(default_factory=list)
    """What the input could not say (a GPU block without ECC fields), for the verdict's reader."""
    unreported: list[str] = field(default_factory=list)
    """Memory-error fields printed as a placeholder ('N/A', '[Not Supported]'): not judged, listed."""


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
                dead = "fallen off the bus" in line or "lost from the bus" in line
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
                            "fault GPU_INIT_ERROR; reset the GPU (catalog RESET_GPU), power-cycle the node if it "
                            "stays down"
                        ),
                        where,
                        t,
                        79 if dead else 143,
                    )
                )
                continue
        if "SXid" in line:
            sm = SXID_RE.search(line)
            ev.findings.append(
                Finding(
                    line.strip(),
                    bus_id(sm.group(2)) if sm else None,
                    None,
                    "nvswitch" if sm else "unparsed",
                    "investigate",
                    (
                        f"NVSwitch SXid {int(sm.group(3))} on {sm.group(1)}"
                        + (f" ({sm.group(4).split(',')[0].strip()})" if sm.group(4) else "")
                        + ": gpuinfra has no SXid catalog; look it up in NVIDIA's Fabric Manager User Guide "
                        "before acting (no action guessed)"
                        if sm
                        else "an NVSwitch SXid line gpuinfra cannot read: check it by hand"
                    ),
                    where,
                    t,
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
                    "investigate",
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


class _Block(dict):
    """{'Section/Sub/Key': value} of one GPU block, with ``lines``: {key: its line number}."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}


def _sections(text: str) -> list[tuple[str, dict[str, str], int]]:
    """(GPU bus id, {'Section/Sub/Key': value}, first line) per GPU block of nvidia-smi -q. A key
    that repeats within a block (one 'Process ID' per process) is stored as 'Key#2', 'Key#3', ...
    in the order printed. The dict's ``lines`` attribute maps each key to its line number."""
    gpus: list[tuple[str, dict[str, str], int]] = []
    cur: _Block | None = None
    seen: dict[str, int] = {}
    """times each key path has occurred in the current block (linear, whatever the repeats)"""
    stack: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        m = re.match(r"^GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$", raw)
        if m:
            cur, seen = _Block(), {}
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
                path = "/".join([s for _, s in stack] + [key])
                i = seen[path] = seen.get(path, 0) + 1
                key = path if i == 1 else f"{path}#{i}"
                cur[key] = val
                cur.lines[key] = n
                continue
            stack.append((indent, key))
        else:
            stack.append((indent, body))
    return gpus


def parse_nvidia_smi_q(text: str, label: str) -> Evidence:
    """Findings from ``nvidia-smi -q`` text or ``nvidia-smi -q -x`` XML: row remapping, retired
    pages, DRAM and SRAM ECC (the SRAM threshold flag of 550+ drivers), the GPU recovery action and
    clock-event reasons (thermal, power brake), by :func:`gpuinfra.io.probe.probe_findings`.
    Raises UserError when the text holds no GPU block."""
    from gpuinfra.io.probe import parse_nvidia_smi_probe, probe_findings

    probe = parse_nvidia_smi_probe(text, label)
    is_xml = text.lstrip().startswith("<")
    where_of = {} if is_xml else {i: f"{label}:{line}" for i, (_, _, line) in enumerate(_sections(text))}
    ev = Evidence(lines_read=len(text.splitlines()))
    for d in probe.devices:
        ev.gpus_seen.add(d.pci_bus_id or f"GPU{d.index}")
    ev.findings = probe_findings(probe, where_of or {d.index: f"{label} GPU{d.index}" for d in probe.devices})
    blind = [d for d in probe.devices if not any(getattr(d, f) is not None for f in MEMORY_ERROR_FIELDS)]
    if blind:
        names = ", ".join(d.pci_bus_id or f"GPU{d.index}" for d in blind[:8]) + (" ..." if len(blind) > 8 else "")
        ev.notes.append(
            f"{label}: {len(blind)} of {len(probe.devices)} GPU(s) ({names}) show no ECC, retired-page or "
            "row-remapping fields: memory errors cannot be judged from this file (save the full "
            "`nvidia-smi -q` output, not a -d subset, from a GPU with ECC enabled)"
        )
    groups: dict[tuple[str, str], int] = {}
    for d in probe.devices:
        if d in blind:
            continue
        for k, v in d.not_reported.items():
            if k.split("/", 1)[0].lower().replace(" ", "_") in _MEMORY_SECTIONS:
                groups[(k, v)] = groups.get((k, v), 0) + 1
    if groups:
        listed = "; ".join(f"{k} = {v} on {n} GPU(s)" for (k, v), n in list(groups.items())[:12])
        more = f"; and {len(groups) - 12} more field(s)" if len(groups) > 12 else ""
        ev.unreported.append(f"{label}: not reported by nvidia-smi, so not judged: {listed}{more}")
    return ev


_MEMORY_SECTIONS = {"ecc_errors", "ecc_mode", "retired_pages", "remapped_rows"}
"""Top-level nvidia-smi -q sections (text or XML names) whose fields carry memory-error evidence."""


MEMORY_ERROR_FIELDS = (
    "ecc_enabled",
    "ecc_volatile_corrected",
    "ecc_volatile_uncorrected",
    "ecc_aggregate_corrected",
    "ecc_aggregate_uncorrected",
    "retired_pages_sbe",
    "retired_pages_dbe",
    "remapped_rows_correctable",
    "remapped_rows_uncorrectable",
)
"""The probe fields that carry memory-error evidence (io/probe.DeviceProbe); a GPU block with none
of them says nothing about ECC."""
