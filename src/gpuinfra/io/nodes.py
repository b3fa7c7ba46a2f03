"""A node's topology from what a user names: a built-in node or a saved `nvidia-smi topo -m` file."""

from __future__ import annotations

from pathlib import Path

from gpuinfra.errors import UserError


def load_topology(node: str, gpu: str | None = None):
    """A built-in node name (``models.topology.BUILTINS``), or a saved ``nvidia-smi topo -m`` file
    whose GPU model comes from ``gpu`` (link rates depend on it).

    Raises:
        UserError: neither a built-in nor a file, a bad matrix, or a file without ``gpu``.
    """
    from gpuinfra.io.health import read_text
    from gpuinfra.io.topo import parse_topo
    from gpuinfra.models.topology import BUILTINS, builtin, from_matrix

    if node in BUILTINS:
        return builtin(node, gpu)
    p = Path(node)
    if not p.is_file():
        raise UserError(
            f"'{node}' is neither a built-in node nor a file",
            where="NODE",
            expected="one of " + ", ".join(BUILTINS) + " or a saved `nvidia-smi topo -m` output",
        )
    m = parse_topo(read_text(p), str(p))[0]
    if gpu is None:
        raise UserError(
            f"{p}: a matrix does not name its GPU model, and link rates depend on it",
            where="--gpu",
            fix="pass --gpu, e.g. --gpu H100-SXM (see `gpuinfra catalog gpus`)",
        )
    return from_matrix(m, gpu, name=p.name, source=str(p))


def parse_gpus(text: str | None) -> int | list[str] | None:
    """``--gpus``: a count (``8``) or GPU indices (``0,1,4,5`` -> ``["GPU0", "GPU1", "GPU4", "GPU5"]``).

    Raises:
        UserError: neither a count nor non-negative integer indices.
    """
    if text is None:
        return None
    t = text.strip()
    if t.isdigit():
        return int(t)
    from gpuinfra.units import parse_ints

    return [f"GPU{i}" for i in parse_ints(t, "--gpus", "a count (8) or GPU indices (0,1,4,5)")]
