"""`nvidia-smi topo -m` files: the reader lives in :mod:`gpuinfra.models.topomatrix` (pure, so
the topology model may use it); re-exported here for file-reading code, with :func:`read_topo_file`."""

from __future__ import annotations

from pathlib import Path

from gpuinfra.models.topomatrix import CELL, LEGACY, MAX_GPUS, TopoMatrix, parse_topo, rank
from gpuinfra.textfile import MAX_FILE_BYTES, read_text_file

__all__ = ["CELL", "LEGACY", "MAX_GPUS", "TopoMatrix", "parse_topo", "rank", "read_topo_file"]


def read_topo_file(path: str | Path) -> str:
    """The text of a ``nvidia-smi topo -m`` file, at most :data:`gpuinfra.textfile.MAX_FILE_BYTES`
    (4 MiB, the bound of configuration files: one node's matrix of :data:`MAX_GPUS` GPUs and 256
    columns is under 1 MiB). Raises UserError for a larger, missing or undecodable file."""
    return read_text_file(path, max_bytes=MAX_FILE_BYTES)
