"""GPU fault findings and the decision tree that turns them into an action.

Pure functions: findings in (from kernel logs, nvidia-smi, simulations), a node verdict out.
The tree, as data in the order it is applied:

1. each Xid maps to its catalog action (catalog/xid.py); Xid 154 states the action itself
   ("GPU recovery action changed ... to 0x2 (Node Reboot Required)") and is decoded;
2. memory state from ``nvidia-smi -q``: a row-remapping failure means drain and replace (RMA);
   a pending remap or pending page retirement needs a GPU reset to take effect; volatile
   uncorrectable ECC errors need a reset; more than 4 aggregate SRAM uncorrectable errors is an
   RMA heuristic (stas00/ml-engineering, [S]); thermal or power slowdown is reported, no action;
3. escalation: the same GPU hitting poisoning hardware Xids (48, 64, 79, 140) more than once is
   an RMA candidate: drain and replace;
4. the node verdict is the most severe action of all findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpuinfra.catalog.xid import ACTIONS, xid_catalog

RMA_XIDS = (48, 64, 79, 140)
RECOVERY_154 = {
    "none": "none",
    "drain p2p": "reset_gpu",
    "drain and reset": "reset_gpu",
    "gpu reset required": "reset_gpu",
    "node reboot required": "reboot_node",
}


@dataclass(frozen=True, slots=True)
class Finding:
    source_line: str
    gpu: str | None
    """PCI bus id as the source wrote it."""
    xid: int | None
    cls: str
    action: str
    reason: str
    source: str = ""
    """file:line the finding came from."""

    def as_json(self) -> dict:
        return {
            "source_line": self.source_line,
            "gpu": self.gpu,
            "xid": self.xid,
            "class": self.cls,
            "action": self.action,
            "reason": self.reason,
            "source": self.source,
        }


def severity(action: str) -> int:
    return ACTIONS.index(action)


def classify_xid(xid: int, text: str) -> tuple[str, str, str]:
    """(class, action, reason) for one Xid and the text after it."""
    cat = xid_catalog().get(xid)
    if cat is None:
        return (
            "unknown",
            "none",
            f"Xid {xid} is not in gpuinfra's catalog: look it up in NVIDIA's Xid catalog "
            "before acting (no action guessed)",
        )
    if xid == 154:
        m = re.search(r"to 0x[0-9a-fA-F]+ \(([^)]+)\)", text)
        if m and m.group(1).strip().lower() in RECOVERY_154:
            act = RECOVERY_154[m.group(1).strip().lower()]
            return (cat.cause_class, act, f"Xid 154 {cat.mnemonic}: the driver says '{m.group(1).strip()}'")
        return (cat.cause_class, "none", "Xid 154 without a readable recovery action: follow the other Xids")
    reason = f"Xid {xid} {cat.mnemonic} ({cat.description}): NVIDIA's immediate action {cat.catalog_action}"
    if cat.notes:
        reason += f"; {cat.notes}"
    return (cat.cause_class, cat.action, reason)


def escalate(findings: list[Finding]) -> list[Finding]:
    """Add an RMA finding for each GPU that hit poisoning hardware Xids more than once."""
    by_gpu: dict[str, list[Finding]] = {}
    for f in findings:
        if f.gpu and f.xid in RMA_XIDS:
            by_gpu.setdefault(f.gpu, []).append(f)
    out = list(findings)
    for gpu, fs in sorted(by_gpu.items()):
        if len(fs) > 1:
            xids = ", ".join(str(f.xid) for f in fs)
            out.append(
                Finding(
                    f"(derived from {len(fs)} lines)",
                    gpu,
                    None,
                    "hardware",
                    "drain_and_replace",
                    f"repeated hardware Xids ({xids}) on one GPU: an RMA candidate; drain it and replace",
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
        ("nvidia-smi -q", "aggregate SRAM uncorrectable > 4", "drain_and_replace"),
        ("nvidia-smi -q", "thermal / power slowdown", "none"),
        ("repeated on one GPU", "Xid 48/64/79/140 twice", "drain_and_replace"),
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
