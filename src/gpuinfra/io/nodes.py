"""A node's topology from what a user names: a built-in node or a saved `nvidia-smi topo -m` file."""

from __future__ import annotations

from pathlib import Path

from gpuinfra.errors import UserError


def load_topology(node: str, gpu: str | None = None, cpu: str | None = None):
    """A built-in node name (``models.topology.BUILTINS``), or a saved ``nvidia-smi topo -m`` file
    whose GPU model comes from ``gpu`` (link rates depend on it) and whose CPU interconnect comes from
    ``cpu`` (a CPU catalog model or NCCL's class, :func:`models.topology.cpu_class`; Sapphire Rapids
    when None). A file's topology carries its assumptions (CPU, PCIe generation, NICs) with their
    sources, as a built-in node does.

    Raises:
        UserError: neither a built-in nor a file, a bad matrix, a file without ``gpu``, an unknown
        ``cpu``, or ``cpu`` with a built-in node (a built-in node states its own CPU).
    """
    from gpuinfra.io.topo import parse_topo, read_topo_file
    from gpuinfra.models.topology import BUILTINS, builtin, cpu_class, from_matrix, matrix_assumptions

    if node in BUILTINS:
        if cpu is not None:
            raise UserError(
                f"--cpu with the built-in node '{node}'",
                where="--cpu",
                expected="a saved `nvidia-smi topo -m` file: a built-in node states its own CPU (its assumption lines)",
            )
        return builtin(node, gpu)
    p = Path(node)
    if not p.is_file():
        raise UserError(
            f"'{node}' is neither a built-in node nor a file",
            where="NODE",
            expected="one of " + ", ".join(BUILTINS) + " or a saved `nvidia-smi topo -m` output",
        )
    m = parse_topo(read_topo_file(p), str(p))[0]
    if gpu is None:
        raise UserError(
            f"{p}: a matrix does not name its GPU model, and link rates depend on it",
            where="--gpu",
            fix="pass --gpu, e.g. --gpu H100-SXM (see `gpuinfra catalog gpus`)",
        )
    cls, why = cpu_class(cpu) if cpu is not None else ("srp", None)
    t = from_matrix(m, gpu, name=p.name, source=str(p), cpu=cls)
    t.assumptions = matrix_assumptions(t, why)
    return t


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
