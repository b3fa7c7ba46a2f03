"""Layers (design.md): models/ imports only catalog/, errors and the pure helpers; never io/, sim/,
analysis/, obs/, report/, labs/ or the CLI. Built-in topologies come from catalog data."""

import ast
from pathlib import Path

import gpuinfra
from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.catalog.topologies import builtin_specs
from gpuinfra.models.topology import BUILTINS, builtin, default_for_gpu

SRC = Path(gpuinfra.__file__).parent
BELOW = ("gpuinfra.io", "gpuinfra.sim", "gpuinfra.analysis", "gpuinfra.obs", "gpuinfra.report", "gpuinfra.labs")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_models_do_not_import_lower_layers():
    bad = {
        f"{p.name}: {m}"
        for p in (SRC / "models").glob("*.py")
        for m in _imports(p)
        if m.startswith(BELOW) or m.startswith("gpuinfra.cli")
    }
    assert not bad


def test_builtin_nodes_are_catalog_data():
    assert builtin_specs() == BUILTINS
    for name, spec in BUILTINS.items():
        assert spec.source and spec.matrix_text().strip()
        t = builtin(name)
        assert t.gpu.name == gpu_model(spec.gpu).name
    assert default_for_gpu("H100-SXM") == "dgx-h100" and default_for_gpu("A100-40GB") == "dgx-a100"
    assert default_for_gpu("T4") is None
