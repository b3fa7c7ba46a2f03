"""The Xid catalog: what each NVIDIA Xid means and what to do about it.

Sources, each row carrying its own ``source``:

- ``data/xid.csv``: every row of the "Xids" sheet of NVIDIA's Xid Catalog for Ampere and later
  (docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html), Xid 1-172: mnemonic,
  description, the products it applies to (A100, H100, B100, GB200), NVIDIA's immediate
  (``catalog_action``) and investigatory resolution buckets, and gpuinfra's normalised
  ``action`` (one of :data:`ACTIONS`) with whether the GPU is poisoned until that action runs.
  Rows whose immediate bucket the catalog leaves empty (162-172) carry the action gpuinfra
  assumes and why (``evidence`` D). ``cause_class`` is a derived classification.
- ``data/xid_nvlink5.csv``: the catalog's "XID 144-150 Decode" sheet: the NVLink 5 Xids are
  resolved per sub-code (the unit named in the message, bits of IntrInfo and the Error Status).
- :data:`RECOVERY_ACTIONS`: NVML's ``nvmlDeviceGpuRecoveryAction_t`` (NVML API reference,
  docs.nvidia.com/deploy/nvml-api; values 0-4 as nvidia-ml-py's ``pynvml.py`` defines them), which
  Xid 154 reports as "GPU recovery action changed from 0x0 (None) to 0x2 (...)".

Normalisation of the immediate buckets (the catalog's "Guidance Classes" sheet): RESTART_APP ->
restart_app; IGNORE, XID_154, WORKFLOW_XID_45, UPDATE_SWFW, CONTACT_SUPPORT -> none (nothing the
GPU needs; 154 and 45 are decoded from their text); RESET_GPU, WORKFLOW_XID_48 (solo),
WORKFLOW_NVLINK_ERR, CHECK_UVM -> reset_gpu; RESTART_BM, RESTART_VM -> reboot_node;
CHECK_MECHANICALS -> drain_and_replace (the board must be reseated).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows

ACTIONS = ("none", "investigate", "restart_app", "reset_gpu", "reboot_node", "drain_and_replace")
"""Normalised actions, least to most severe. ``investigate``: evidence gpuinfra cannot map to an action (an Xid
not in the catalog, an Xid line it cannot read, an NVSwitch SXid, an nvidia-smi value it does not know): a
person must look before anything is done, so it is above ``none`` (it is not "nothing to do") and below
every action the catalog names (a known action found beside it still decides the verdict). No catalog
row carries it."""

OPERATOR_ACTIONS = ("reset_gpu", "reboot_node", "drain_and_replace")
"""Actions an operator (not the application) must take: these page."""

BUCKET_ACTION = {
    "RESTART_APP": "restart_app",
    "IGNORE": "none",
    "RESET_GPU": "reset_gpu",
    "RESTART_BM": "reboot_node",
    "RESTART_VM": "reboot_node",
    "XID_154_EVAL": "restart_app",
}
"""Immediate buckets of the 144-150 decode sheet -> action. XID_154_EVAL: 'if an Xid 154 is seen
along with this error, take that action; if no Xid 154 is present, RESTART_APP' (the 154 line is a
finding of its own, so the node verdict takes its action)."""


@dataclass(frozen=True, slots=True)
class Xid:
    xid: int
    mnemonic: str
    description: str
    applies_to: tuple[str, ...]
    """Products the catalog marks YES (A100, H100, B100, GB200); empty: unused on Ampere and later."""
    cause_class: str
    catalog_action: str
    """NVIDIA's immediate resolution bucket (RESTART_APP, RESET_GPU, WORKFLOW_XID_48, ...)."""
    investigatory_action: str
    action: str
    poisons_gpu: bool
    evidence: str
    """P: the catalog's own bucket; D: derived by gpuinfra where the catalog gives none (notes say how)."""
    notes: str
    source: str

    @property
    def needs_operator(self) -> bool:
        """Whether the action is an operator's (reset, reboot, drain), or the row is resolved per
        sub-code (NVLink 5) or by its text (154) and may come out as one."""
        return self.action in OPERATOR_ACTIONS or self.catalog_action in ("WORKFLOW_NVLINK5_ERR", "XID_154")


@dataclass(frozen=True, slots=True)
class NvLink5Rule:
    """One row of the catalog's "XID 144-150 Decode" sheet."""

    xid: int
    units: tuple[str, ...]
    """Sub-component names as the message prints them (before R575, from R575)."""
    subcode_v1: int
    """IntrInfo[9:0] before R575."""
    subcode_v2: int
    """IntrInfo[6:0] from R575."""
    field: int
    """IntrInfo[25:20]: the link-down reason of NETIR_LINK_EVT (0 elsewhere)."""
    error_status: int | None
    """Error Status (second register) this row is for; None: any."""
    catalog_action: str
    action2: str
    """Immediate action when IntrInfo bit 10 (before R575) / bit 7 (from R575) is set ('': none)."""
    investigatory_action: str
    severity: str
    source: str

    @property
    def action(self) -> str:
        return BUCKET_ACTION[self.catalog_action]


@dataclass(frozen=True, slots=True)
class RecoveryAction:
    code: int
    nvml_name: str
    labels: tuple[str, ...]
    """How the driver's Xid 154 text names it (lower case)."""
    action: str
    meaning: str


RECOVERY_ACTIONS: tuple[RecoveryAction, ...] = (
    RecoveryAction(0, "NVML_GPU_RECOVERY_ACTION_NONE", ("none",), "none", "no recovery action needed"),
    RecoveryAction(
        1,
        "NVML_GPU_RECOVERY_ACTION_GPU_RESET",
        ("gpu reset required", "gpu reset", "reset", "pf flr"),
        "reset_gpu",
        "reset the GPU (a PCIe function-level reset)",
    ),
    RecoveryAction(
        2,
        "NVML_GPU_RECOVERY_ACTION_NODE_REBOOT",
        ("node reboot required", "node reboot", "os reboot", "reboot"),
        "reboot_node",
        "reboot the node: a GPU reset is not enough",
    ),
    RecoveryAction(
        3,
        "NVML_GPU_RECOVERY_ACTION_DRAIN_P2P",
        ("drain p2p",),
        "reset_gpu",
        "quiesce peer-to-peer (NVLink) traffic, then read the recovery action again",
    ),
    RecoveryAction(
        4,
        "NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET",
        ("drain and reset",),
        "reset_gpu",
        "the GPU runs at reduced capacity: drain its work, then reset it",
    ),
)
"""NVML nvmlDeviceGpuRecoveryAction_t (nvml.h; NVML API reference) with the labels real Xid 154
lines print: 'Node Reboot Required' and 'GPU Reset Required' (the catalog's example), 'OS Reboot'
(driver 610, a published journal) and 'PF FLR' (a published journal); the action for DRAIN_P2P
is gpuinfra's: the GPU must not take new P2P work until the action is read again [D]."""


def recovery_action(code: int | None, label: str | None) -> RecoveryAction | None:
    """The recovery action an Xid 154 names: by its label when the label is known, else by the
    NVML code; None when neither is known."""
    if label is not None:
        low = " ".join(label.lower().split())
        for r in RECOVERY_ACTIONS:
            if low in r.labels:
                return r
    if code is not None:
        for r in RECOVERY_ACTIONS:
            if r.code == code:
                return r
    return None


@cache
def xid_catalog() -> dict[int, Xid]:
    out = {}
    for r in read_csv_rows("xid.csv"):
        x = Xid(
            int(r["xid"]),
            r["mnemonic"],
            r["description"],
            tuple(p for p in r["applies_to"].split("|") if p),
            r["cause_class"],
            r["catalog_action"],
            r["investigatory_action"],
            r["action"],
            r["poisons_gpu"] == "true",
            r["evidence"],
            r["notes"],
            r["source"],
        )
        if x.action not in ACTIONS:
            raise ValueError(f"xid.csv: Xid {x.xid} has unknown action {x.action}")
        out[x.xid] = x
    return out


@cache
def nvlink5_rules() -> tuple[NvLink5Rule, ...]:
    out = []
    for r in read_csv_rows("xid_nvlink5.csv"):
        rule = NvLink5Rule(
            int(r["xid"]),
            tuple(r["unit"].split("/")),
            int(r["subcode_v1"], 2),
            int(r["subcode_v2"], 2),
            int(r["field_25_20"], 2),
            int(r["error_status"], 16) if r["error_status"] else None,
            r["catalog_action"],
            r["action2"],
            r["investigatory_action"],
            r["severity"],
            r["source"],
        )
        if rule.catalog_action not in BUCKET_ACTION or (rule.action2 and rule.action2 not in BUCKET_ACTION):
            raise ValueError(f"xid_nvlink5.csv: unknown bucket in {r}")
        out.append(rule)
    return tuple(out)


def paging_xids() -> tuple[int, ...]:
    """Every Xid in use on Ampere and later whose resolution may need an operator (reset, reboot,
    drain), from the catalog: what the Xid alert pages on. Xid 154 is left out: the catalog calls
    it "informational only ... always expected to be seen with another Xid requiring a recovery
    action" (and it also reports a return to None), so the other Xid pages."""
    return tuple(
        sorted(
            x.xid
            for x in xid_catalog().values()
            if x.needs_operator and x.cause_class != "unused" and x.catalog_action != "XID_154"
        )
    )
