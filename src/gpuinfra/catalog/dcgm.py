"""dcgm-exporter's counter files (catalog/data/dcgm, byte copies, Apache-2.0; SOURCE.md):
the metric names, Prometheus types and help texts that gpuinfra's counters and exports use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import data_path


@dataclass(frozen=True)
class DcgmField:
    name: str
    type: str
    help: str
    enabled: bool
    """Uncommented in the exporter's default-counters.csv (exported by default)."""


@cache
def dcgm_fields() -> dict[str, DcgmField]:
    """Every field named in default-counters.csv, enabled or commented out; first entry wins."""
    out: dict[str, DcgmField] = {}
    for raw in data_path("dcgm", "default-counters.csv").read_text().splitlines():
        line = raw.strip()
        enabled = not line.startswith("#")
        body = line.lstrip("#").strip()
        if not body.startswith("DCGM_") or body.count(",") < 2:
            continue
        name, typ, help_ = (x.strip() for x in body.split(",", 2))
        if name not in out or (enabled and not out[name].enabled):
            out[name] = DcgmField(name, typ, help_, enabled)
    return out


def field(name: str) -> DcgmField:
    return dcgm_fields()[name]
