"""`nvidia-smi topo -m` files: the reader lives in :mod:`gpuinfra.models.topomatrix` (pure, so
the topology model may use it); re-exported here for file-reading code."""

from gpuinfra.models.topomatrix import CELL, LEGACY, TopoMatrix, parse_topo, rank

__all__ = ["CELL", "LEGACY", "TopoMatrix", "parse_topo", "rank"]
