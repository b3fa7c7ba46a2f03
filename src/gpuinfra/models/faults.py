"""GPU fault findings and the decision tree that turns them into an action.

Pure functions: findings in (from kernel logs, nvidia-smi, simulations), a node verdict out.
The tree, as data in the order it is applied:

1. each Xid maps to its catalog action (catalog/xid.py), except where its text carries the answer:
   Xid 154 states the recovery action NVML reports ("GPU recovery action changed from 0x0 (None)
   to 0x2 (Node Reboot Required)"), decoded by its label or its NVML code; the NVLink 5 Xids
   144-150 are resolved per sub-code from the catalog's decode sheet (unit, IntrInfo, Error
   Status); Xid 45 "caused by previous Xid N" follows Xid N;
2. a GPU reported dead without an Xid line ("NVRM: The NVIDIA GPU ... has fallen off the bus")
   is the Xid 79 fault; a GPU the driver could not initialise ("RmInitAdapter failed") is the
   Xid 143 fault (GPU Initialization Error, RESET_GPU);
3. memory state from ``nvidia-smi -q``: a row-remapping failure means drain and replace (RMA);
   a pending remap or pending page retirement needs a GPU reset to take effect; volatile
   uncorrectable ECC errors need a reset; the SRAM threshold flag, or more than 4 aggregate SRAM
   uncorrectable errors (an RMA heuristic, stas00/ml-engineering [S]), means drain and replace
   (the catalog's WORKFLOW_XID_48: "check the SRAM threshold flag; if set RUN_FIELDDIAG");
   thermal or power slowdown is reported, no action;
4. escalation: the same GPU hitting poisoning hardware Xids (48, 64, 79, 140) in more than one
   event is an RMA candidate: drain and replace. Lines on one GPU within the same second are one
   event (the driver reports one fault on several lines);
5. evidence with no known action (an Xid not in the catalog, an unreadable Xid line, an NVSwitch
   SXid, an nvidia-smi value gpuinfra does not know) is ``investigate``: a person looks first;
6. the node verdict is the most severe action of all findings (``investigate`` ranks above
   ``none`` and below every catalog action).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from gpuinfra.catalog.xid import (
    ACTIONS,
    BUCKET_ACTION,
    NvLink5Rule,
    nvlink5_rules,
    recovery_action,
    xid_catalog,
)

RMA_XIDS = (48, 64, 79, 140)


@dataclass(frozen=True, slots=True)
class Finding:
    source_line: str
    gpu: str | None
    """PCI bus id as the source wrote it (Xid lines: domain:bus:device)."""
    xid: int | None
    cls: str
    action: str
    reason: str
    source: str = ""
    """file:line the finding came from."""
    t_key: str | None = None
    """The second the line was logged (as the log prints it), when the line carries a timestamp."""
    equiv_xid: int | None = None
    """For evidence without an Xid line: the Xid whose fault it is (fallen off the bus: 79)."""

    def as_json(self) -> dict:
        return {
            "source_line": self.source_line,
            "gpu": self.gpu,
            "xid": self.xid,
            "class": self.cls,
            "action": self.action,
            "reason": self.reason,
            "source": self.source,
            "time": self.t_key,
            "same_fault_as_xid": self.equiv_xid,
        }


# What NVIDIA's Xid Catalog resolution buckets ask an operator to do, in words (NVIDIA Xid
# Catalog, docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html, "Resolution" column and
# the per-Xid workflows it names; paraphrased).
RESOLUTION_BUCKETS = {
    "IGNORE": "nothing to do for the GPU",
    "RESTART_APP": "restart the application",
    "RESET_GPU": "reset the GPU",
    "RESTART_BM": "reboot the bare-metal node",
    "RESTART_VM": "restart the virtual machine",
    "RESTART_FM": "restart Fabric Manager",
    "CHECK_UVM": "check the CUDA unified-memory (nvidia-uvm) driver",
    "CHECK_MECHANICALS": "check power cables and seating",
    "UPDATE_SWFW": "update the driver or firmware",
    "CONTACT_SUPPORT": "contact NVIDIA support",
    "RUN_FIELDDIAG": "run NVIDIA field diagnostics",
    "WORKFLOW_XID_13": "the Xid 13 workflow: repeats on one GPU mean diagnostics, else the application",
    "WORKFLOW_XID_31": "the Xid 31 workflow: repeats on one GPU mean diagnostics, else the application",
    "WORKFLOW_XID_45": "the Xid 45 workflow: follow the other Xid, alone restart Fabric Manager",
    "WORKFLOW_XID_48": "the double-bit ECC workflow: reset the GPU; with Xid 63/64 drain and reset",
    "WORKFLOW_NVLINK_ERR": "the NVLink error workflow: reset the GPU or reboot the node to clear the link",
    "WORKFLOW_NVLINK5_ERR": "the NVLink 5 workflow: decode the sub-code",
    "XID_154": "the action the driver's recovery-action text names",
}


def bucket_meaning(code: str) -> str:
    """The resolution bucket in words; the code itself when gpuinfra has no wording for it."""
    return RESOLUTION_BUCKETS.get(code, code)


def severity(action: str) -> int:
    return ACTIONS.index(action)


_NVL5 = re.compile(
    r"^\s*(?P<unit>[A-Za-z0-9_/]+(?: Degraded)?)\s+(?P<fatal>Fatal|Nonfatal|Non-fatal)?\b.*?\((?P<regs>[^)]*)\)"
)
_CAUSE = re.compile(r"caused by previous Xid\s+(\d+)", re.IGNORECASE)
_RECOVERY = re.compile(r"to\s+(0x[0-9a-fA-F]+)\s*(?:\(([^)]*)\))?")


def decode_nvlink5(xid: int, text: str) -> tuple[str, str] | None:
    """(action, reason) for an NVLink 5 Xid (144-150) from its message
    ``<unit> <Fatal|Nonfatal> XC# i# Link ## (<intrInfo> <errorStatus> ...)``, by the catalog's
    "XID 144-150 Decode" sheet; None when the unit or registers are not in the sheet."""
    m = _NVL5.match(text)
    if not m:
        return None
    regs = [r for r in re.split(r"[\s,]+", m.group("regs")) if r]
    try:
        vals = [int(r, 16) for r in regs]
    except ValueError:
        return None
    if not vals:
        return None
    intr, status = vals[0], (vals[1] if len(vals) > 1 else 0)
    unit = m.group("unit")
    names = set(unit.split("/"))
    rules = [r for r in nvlink5_rules() if r.xid == xid and names & set(r.units)]
    if not rules:
        return None
    field = (intr >> 20) & 0x3F
    rules = [r for r in rules if r.field == field] or []
    if not rules:
        return None
    exact = [r for r in rules if r.error_status is None or r.error_status == status]
    if not exact:  # a status with several bits: each bit is its own row
        bits = [1 << b for b in range(32) if status >> b & 1]
        exact = [r for r in rules if r.error_status in bits]
        if len(exact) != len(bits):
            return None
    v2 = (intr & 0x7F) == rules[0].subcode_v2 and (intr & 0x3FF) != rules[0].subcode_v1
    a2_bit = (intr >> 7 & 1) if v2 else (intr >> 10 & 1)

    def act(r: NvLink5Rule) -> str:
        return BUCKET_ACTION[r.action2] if (r.action2 and a2_bit) else r.action

    worst = max(exact, key=lambda r: severity(act(r)))
    action = act(worst)
    bucket = worst.action2 if (worst.action2 and a2_bit) else worst.catalog_action
    reason = (
        f"Xid {xid} {unit} sub-code {field} (IntrInfo 0x{intr:08x}, Error Status 0x{status:08x}): "
        f"catalog decode {bucket}, investigate {worst.investigatory_action}, severity {worst.severity}"
    )
    if bucket == "XID_154_EVAL":
        reason += "; an Xid 154 on this GPU names the action, else restart the application"
    return action, reason


def classify_xid(xid: int, text: str) -> tuple[str, str, str]:
    """(class, action, reason) for one Xid and the text after it."""
    cat = xid_catalog().get(xid)
    if cat is None:
        return (
            "unknown",
            "investigate",
            f"Xid {xid} is not in gpuinfra's catalog (NVIDIA's Xid Catalog, Xids 1-172): "
            "look it up before acting (no action guessed)",
        )
    if xid == 154:
        m = _RECOVERY.search(text)
        if m:
            ra = recovery_action(int(m.group(1), 16), m.group(2))
            if ra is not None:
                label = (m.group(2) or ra.nvml_name).strip()
                return (
                    cat.cause_class,
                    ra.action,
                    f"Xid 154 {cat.mnemonic}: the driver's recovery action is now {m.group(1)} '{label}' "
                    f"({ra.nvml_name}): {ra.meaning}",
                )
        return (cat.cause_class, "none", "Xid 154 without a readable recovery action: follow the other Xids")
    if cat.catalog_action == "WORKFLOW_NVLINK5_ERR":
        dec = decode_nvlink5(xid, text)
        if dec is not None:
            return (cat.cause_class, dec[0], f"{cat.mnemonic}: {dec[1]}")
        fatal = re.search(r"\bFatal\b", text) is not None
        return (
            cat.cause_class,
            "reset_gpu" if fatal else "none",
            f"Xid {xid} {cat.mnemonic}: sub-code not in the catalog's decode sheet; "
            + (
                "a Fatal NVLink error puts the GPU in 'drain and reset' (catalog severity note)"
                if fatal
                else "not marked Fatal: decode IntrInfo/Error Status by hand"
            ),
        )
    if xid == 45:
        m = _CAUSE.search(text)
        if m:
            cause = int(m.group(1))
            other = xid_catalog().get(cause)
            if other is not None and other.xid != 45:
                act = other.action if other.catalog_action not in ("WORKFLOW_NVLINK5_ERR", "XID_154") else "none"
                return (
                    other.cause_class,
                    act,
                    f"Xid 45 {cat.mnemonic} caused by previous Xid {cause} ({other.mnemonic}): not solo, so it "
                    f"follows Xid {cause} (catalog WORKFLOW_XID_45)",
                )
        return (
            cat.cause_class,
            "none",
            f"Xid 45 {cat.mnemonic}: an application torn down (Ctrl-C, kill, reset); with other Xids follow them, "
            "solo restart Fabric Manager (catalog WORKFLOW_XID_45)",
        )
    reason = f"Xid {xid} {cat.mnemonic} ({cat.description}): "
    reason += (
        f"NVIDIA's immediate action {cat.catalog_action} ({bucket_meaning(cat.catalog_action)})"
        if cat.catalog_action
        else "gpuinfra's action"
    )
    if cat.notes:
        reason += f"; {cat.notes}"
    return (cat.cause_class, cat.action, reason)


def _events(fs: list[Finding]) -> list[Finding]:
    """One finding per event. Lines of one GPU within the same second are one event (the driver
    reports one fault on several lines). Evidence without an Xid line (NVRM's 'fallen off the
    bus', printed again each time something touches the dead GPU) is a state, not new events: it
    counts once per GPU, and not at all when the GPU has an Xid 79 line for the same fault."""
    seen: set[str] = set()
    out = []
    has_xid79 = any(f.xid == 79 for f in fs)
    state_counted = False
    for f in fs:
        if f.xid is None:
            if has_xid79 or state_counted or (f.t_key is not None and f.t_key in seen):
                continue
            state_counted = True
        if f.t_key is not None:
            if f.t_key in seen:
                continue
            seen.add(f.t_key)
        out.append(f)
    return out


def escalate(findings: list[Finding]) -> list[Finding]:
    """Add an RMA finding for each GPU that hit poisoning hardware Xids in more than one event."""
    by_gpu: dict[str, list[Finding]] = {}
    for f in findings:
        if f.gpu and (f.xid in RMA_XIDS or f.equiv_xid in RMA_XIDS):
            by_gpu.setdefault(f.gpu, []).append(f)
    out = list(findings)
    for gpu, all_fs in sorted(by_gpu.items()):
        fs = _events(all_fs)
        if len(fs) > 1:
            seen = Counter(f.xid or f.equiv_xid for f in fs)
            xids = ", ".join(f"{x}" if n == 1 else f"{x} x{n}" for x, n in sorted(seen.items()))
            out.append(
                Finding(
                    f"(derived from {len(fs)} events on {len(all_fs)} lines)",
                    gpu,
                    None,
                    "hardware",
                    "drain_and_replace",
                    f"repeated hardware Xids ({xids}) on one GPU in {len(fs)} separate events: an RMA candidate; "
                    "drain it and replace",
                    fs[-1].source,
                )
            )
    return out


def verdict(findings: list[Finding]) -> str:
    return max((f.action for f in findings), key=severity, default="none")


def decision_tree() -> list[tuple[str, str, str]]:
    """The tree above as edges (from, to, label), from the data it applies: evidence kind ->
    cause class -> action, for every Xid of the catalog and the nvidia-smi memory rules."""
    edges: dict[tuple[str, str], list[str]] = {}
    for x in xid_catalog().values():
        edges.setdefault(("Xid in kernel log", x.cause_class), []).append(str(x.xid))
        edges.setdefault((x.cause_class, x.action), []).append(str(x.xid))
    for ev, cls, act in (
        ("nvidia-smi -q", "row remap failure", "drain_and_replace"),
        ("nvidia-smi -q", "row remap / page retirement pending", "reset_gpu"),
        ("nvidia-smi -q", "volatile uncorrectable ECC", "reset_gpu"),
        ("nvidia-smi -q", "SRAM threshold exceeded / aggregate SRAM uncorrectable > 4", "drain_and_replace"),
        ("NVRM line without Xid", "GPU fallen off the bus (= Xid 79)", "reboot_node"),
        ("nvidia-smi -q", "thermal / power slowdown", "none"),
        ("repeated on one GPU", "Xid 48/64/79/140 in two events", "drain_and_replace"),
        ("Xid in kernel log", "Xid not in the catalog / unreadable Xid line", "investigate"),
        ("NVSwitch SXid in kernel log", "SXid (no SXid catalog in gpuinfra)", "investigate"),
        ("nvidia-smi -q", "unknown value of a health field", "investigate"),
    ):
        edges.setdefault((ev, cls), []).append("")
        edges.setdefault((cls, act), []).append("")
    return [(a, b, ", ".join(x for x in v if x)) for (a, b), v in edges.items()]


def decision_tree_mermaid() -> str:
    """The tree as a Mermaid flowchart (renders in GitHub, GitLab and most wikis)."""
    ids: dict[str, str] = {}

    def node(name: str) -> str:
        if name not in ids:
            ids[name] = f"n{len(ids)}"
        return ids[name]

    lines = ["flowchart LR"]
    for a, b, label in decision_tree():
        edge = f'-- "Xid {label}" -->' if label else "-->"
        lines.append(f'  {node(a)}["{a}"] {edge} {node(b)}["{b}"]')
    return "\n".join(lines) + "\n"
