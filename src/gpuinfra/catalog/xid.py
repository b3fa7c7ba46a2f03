"""The Xid catalog: what each NVIDIA Xid means and what to do about it.

Rows of ``data/xid.csv`` come from NVIDIA's "Xid Catalog" (docs.nvidia.com/deploy/xid-errors,
Ampere and later) as summarised in facts/gpu.md 4.1: mnemonic, description, NVIDIA's immediate
action bucket (``catalog_action``), and gpuinfra's normalised ``action`` (one of ``ACTIONS``)
with whether the GPU is poisoned until that action runs. ``cause_class`` is a derived
classification (application, driver, memory, nvlink, pcie, hardware, system).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows

ACTIONS = ("none", "restart_app", "reset_gpu", "reboot_node", "drain_and_replace")
"""Normalised actions, least to most severe."""


@dataclass(frozen=True, slots=True)
class Xid:
    xid: int
    mnemonic: str
    description: str
    cause_class: str
    catalog_action: str
    action: str
    poisons_gpu: bool
    notes: str
    source: str


@cache
def xid_catalog() -> dict[int, Xid]:
    out = {}
    for r in read_csv_rows("xid.csv"):
        x = Xid(
            int(r["xid"]),
            r["mnemonic"],
            r["description"],
            r["cause_class"],
            r["catalog_action"],
            r["action"],
            r["poisons_gpu"] == "true",
            r["notes"],
            r["source"],
        )
        if x.action not in ACTIONS:
            raise ValueError(f"xid.csv: Xid {x.xid} has unknown action {x.action}")
        out[x.xid] = x
    return out
