"""The declared plugin args (sim/plugin_args.py) against what the plugins actually read.

The registry is a second statement of the plugins' arguments, so it can drift. These tests read
the plugin sources (and sim/mig_manager.py, which reads MigFit's args) and check
that every key read from ``args`` is declared, with the same default where the code gives one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

import gpuinfra.sim.mig_manager as mig_manager_module
import gpuinfra.sim.plugins as plugins_pkg
from gpuinfra.sim.framework import REGISTRY
from gpuinfra.sim.plugin_args import PLUGIN_ARGS, args_schema


def _args_reads(tree: ast.AST, receiver: str | None) -> list[tuple[str, ast.expr | None]]:
    """(key, default expression) for every `RECEIVER.args.get("key"[, default])` / `RECEIVER.args["key"]`
    (or, with ``receiver`` None, `args.get(...)` on a local named ``args``)."""
    out = []
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            target, key_node = node.func.value, node.args[0] if node.args else None
            default = node.args[1] if len(node.args) > 1 else None
        elif isinstance(node, ast.Subscript):
            target, key_node, default = node.value, node.slice, None
        if receiver is None:  # a local variable named args
            if not (isinstance(target, ast.Name) and target.id == "args"):
                continue
        elif not (
            isinstance(target, ast.Attribute)
            and target.attr == "args"
            and isinstance(target.value, ast.Name)
            and target.value.id == receiver
        ):
            continue
        if isinstance(key_node, ast.Constant) and isinstance(key_node.value, str):
            out.append((key_node.value, default))
    return out


def _plugin_reads() -> dict[str, list[tuple[str, ast.expr | None]]]:
    reads: dict[str, list] = {}
    for path in Path(plugins_pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            name = next(
                (
                    s.value.value
                    for s in cls.body
                    if isinstance(s, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "name" for t in s.targets)
                    and isinstance(s.value, ast.Constant)
                ),
                None,
            )
            if name:
                reads.setdefault(name, []).extend(_args_reads(cls, "self"))
    # the MIG manager reads MigFit's args from the profile into a local `args`
    manager_tree = ast.parse(Path(mig_manager_module.__file__).read_text())
    reads.setdefault("MigFit", []).extend(_args_reads(manager_tree, None))
    return reads


READS = _plugin_reads()


def test_every_registered_plugin_was_found_in_the_sources():
    assert set(REGISTRY) <= set(READS)


@pytest.mark.parametrize("plugin", sorted(READS))
def test_every_key_a_plugin_reads_is_declared_with_the_same_default(plugin):
    fields = args_schema(plugin).model_fields
    for key, default in READS[plugin]:
        assert key in fields, f"{plugin} reads args['{key}'] but sim/plugin_args.py does not declare it"
        if default is not None:
            try:
                code_default = eval(compile(ast.Expression(default), "<default>", "eval"), {})  # noqa: S307
            except NameError:
                continue  # a named constant: not comparable here
            declared = fields[key].get_default(call_default_factory=True)
            assert declared == code_default, f"{plugin}.{key}: declared {declared!r}, code uses {code_default!r}"


def test_declared_plugins_exist():
    assert set(PLUGIN_ARGS) <= set(REGISTRY)


@pytest.mark.parametrize("plugin", sorted(REGISTRY))
def test_defaults_accepted_and_a_typo_refused(plugin):
    schema = args_schema(plugin)
    schema.model_validate({})
    with pytest.raises(ValidationError) as e:
        schema.model_validate({"no_such_arg": 1})
    assert e.value.errors()[0]["type"] == "extra_forbidden"


def test_non_finite_and_out_of_range_args_refused():
    with pytest.raises(ValidationError):
        args_schema("FGD").model_validate({"typical_threshold": float("nan")})
    with pytest.raises(ValidationError):
        args_schema("MigFit").model_validate({"interval_s": 0})
    with pytest.raises(ValidationError):
        args_schema("DRF").model_validate({"weights": {"a": -1}})
