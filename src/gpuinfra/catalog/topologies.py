"""Built-in node topologies as data: ``data/topology/builtin_nodes.yaml`` names, per node, a real
published ``nvidia-smi topo -m`` matrix (``data/topology/*.txt``, provenance in SOURCE.md), the GPU
model, CPU interconnect and NIC type that set the link rates, the source, and the assumptions.
:mod:`gpuinfra.models.topology` parses the matrix and builds the graph."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml

from gpuinfra.catalog._data import data_path

CPU_CLASSES = ("amd", "skl", "srp", "erp")
NIC_CLASSES = ("ndr", "hdr", "roce400", "roce200", "eth100")


@dataclass(frozen=True)
class BuiltinSpec:
    name: str
    file: str
    """The matrix file under data/topology."""
    gpu: str
    cpu: str
    nic: str
    source: str
    assumptions: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    """Devices to keep (a subset of the matrix); empty keeps all."""
    nic_names: tuple[str, ...] = ()
    """NICs to keep by name (compute NICs only); empty keeps all."""
    assumed_nics: int = 0
    """NICs the matrix does not show, attached to their own host bridges, spread over the sockets."""
    default_for: tuple[str, ...] = ()
    """GPU models this node is the usual one for."""

    def matrix_text(self) -> str:
        """The published matrix, as text."""
        return data_path("topology", self.file).read_text(encoding="utf-8")


@cache
def builtin_specs() -> dict[str, BuiltinSpec]:
    """Every built-in node, by name, in file order."""
    raw = yaml.safe_load(data_path("topology", "builtin_nodes.yaml").read_text(encoding="utf-8"))
    out: dict[str, BuiltinSpec] = {}
    for r in raw["nodes"]:
        s = BuiltinSpec(
            name=r["name"],
            file=r["matrix"],
            gpu=r["gpu"],
            cpu=r["cpu"],
            nic=r["nic"],
            source=r["source"],
            assumptions=tuple(r.get("assumptions", ())),
            keep=tuple(r.get("keep", ())),
            nic_names=tuple(r.get("nic_names", ())),
            assumed_nics=int(r.get("assumed_nics", 0)),
            default_for=tuple(r.get("default_for", ())),
        )
        if s.cpu not in CPU_CLASSES or s.nic not in NIC_CLASSES or not data_path("topology", s.file).exists():
            raise ValueError(f"builtin_nodes.yaml: bad node {s.name}")
        out[s.name] = s
    return out
