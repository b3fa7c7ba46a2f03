"""Loading YAML input files (scenarios, lab design files) with every problem named by file and line.

What is refused here, before any model sees the data, and why:

- text that is not UTF-8 (a UTF-8 BOM is accepted) or UTF-16/UTF-32 with a BOM: one message
  naming the file and the line of the first undecodable byte (:func:`decode_text`);
- files over :data:`MAX_FILE_BYTES` (a scenario is a page of YAML);
- duplicate keys in one mapping (YAML 1.2 says keys are unique; PyYAML silently keeps the last);
- nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` nodes, or aliases whose
  expansion would exceed :data:`MAX_EXPANDED_NODES` (the "billion laughs" alias bomb) or that
  refer to themselves; without these bounds a crafted file exhausts the recursion limit or memory;
- scalars PyYAML cannot construct (a 5,000-digit integer, a 30th of February).

:func:`validate` then checks the data against a pydantic model and reports *every* problem,
each with its file:line and field path; an unknown key is named with the closest known key
("did you mean"), and the "field required" error for that closest key is dropped, since the
typo is the problem.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gpuinfra.errors import UserError, UserErrors
from gpuinfra.io.scenario_schema import Scenario
from gpuinfra.textfile import read_text_file

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences (a scenario nests 5 deep)."""
MAX_NODES = 200_000
"""YAML nodes in one file, counted while composing."""
MAX_EXPANDED_NODES = 200_000
"""Nodes after expanding every alias: bounds the work of validating a file with aliases."""

M = TypeVar("M", bound=BaseModel)


# -- YAML ----------------------------------------------------------------------------------------


class _Refused(yaml.composer.ComposerError):
    """A bound of this loader was exceeded (not a syntax error)."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader with bounded depth and size, duplicate keys recorded, and constructor
    ``ValueError``s turned into YAML errors with their position."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self.duplicates: list[tuple[str, int, int]] = []
        """(key, line, line of the first occurrence)"""

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._nodes += 1
        event = self.peek_event()
        if self._depth > MAX_DEPTH:
            raise _Refused(None, None, f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        if self._nodes > MAX_NODES:
            raise _Refused(None, None, f"more than {MAX_NODES:,} YAML nodes", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, OverflowError, TypeError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value {str(node.value)[:40]!r} ({e})", node.start_mark
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base constructor refuses unhashable keys with their position
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append((str(key), line, seen[key]))
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse alias cycles, and aliases whose expansion exceeds the node or depth bounds."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    state: dict[int, int] = {}  # 1: on the path, 2: done
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        k = id(node)
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            kids = [x for kv in node.value for x in kv]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if leaving:
            size[k] = 1 + sum(size[id(c)] for c in kids)
            depth[k] = 1 + max((depth[id(c)] for c in kids), default=0)
            state[k] = 2
            if size[k] > MAX_EXPANDED_NODES or depth[k] > MAX_DEPTH:
                what = (
                    f"expands to more than {MAX_EXPANDED_NODES:,} nodes"
                    if size[k] > MAX_EXPANDED_NODES
                    else f"nests deeper than {MAX_DEPTH} levels"
                )
                raise _Refused(None, None, f"this value {what} once its aliases are expanded", node.start_mark)
            continue
        if state.get(k) == 2:
            continue
        if state.get(k) == 1:
            raise _Refused(None, None, "an alias refers to its own anchor", node.start_mark)
        state[k] = 1
        stack.append((node, True))
        for c in kids:
            if state.get(id(c)) == 1:
                raise _Refused(None, None, "an alias refers to its own anchor", c.start_mark)
            if state.get(id(c)) != 2:
                stack.append((c, False))


SYNTAX_DOC_DEFAULT = "see docs/scenarios.md for the scenario format and `gpuinfra schema` for its fields"
"""The hint of a YAML syntax error when the caller names no document (scenario files)."""


def _yaml_error(e: yaml.YAMLError, label: str, doc: str | None = None) -> UserError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if isinstance(e, yaml.reader.ReaderError):
        return UserError(f"character {e.character!r} is not allowed in YAML", where=f"{label} (character {e.position})")
    where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
    problem = getattr(e, "problem", None) or str(e)
    if isinstance(e, _Refused):
        return UserError(
            f"YAML refused: {problem}",
            where=where,
            expected=f"at most {MAX_DEPTH} levels of nesting and {MAX_EXPANDED_NODES:,} nodes with aliases expanded",
            fix="write the structure out plainly; no gpuinfra input needs deep nesting or many aliases",
        )
    return UserError(
        f"YAML syntax error: {problem}",
        where=where,
        expected="valid YAML (`key: value` lines, consistent indentation)",
        fix=doc or SYNTAX_DOC_DEFAULT,
    )


def load_yaml(text: str, label: str, *, doc: str | None = None) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text with the bounds above; returns the data and its node tree (for line numbers).

    ``doc``: where the file's format is documented, the hint a syntax error ends with (default
    :data:`SYNTAX_DOC_DEFAULT`, the scenario docs); each file kind's loader passes its own.

    Raises :class:`UserError` (or :class:`UserErrors` for several duplicate keys) naming the
    file, line and column.
    """
    try:
        loader = _BoundedLoader(text)
    except yaml.YAMLError as e:
        raise _yaml_error(e, label, doc) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_expansion(root)
        data = loader.construct_document(root)
    except yaml.YAMLError as e:
        raise _yaml_error(e, label, doc) from None
    except RecursionError:  # pragma: no cover - the depth bound comes first
        raise UserError("YAML nests too deeply", where=label, expected=f"at most {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise UserErrors(
            [
                UserError(f"duplicate key '{k}' (first at line {first})", where=f"{label}:{line}")
                for k, line, first in loader.duplicates
            ],
            where=label,
            fix="keep one of each key: YAML keys are unique, and the last one would silently win",
        )
    return data, root


def line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of the value (or, for the last path element, the key) at ``path``; the
    line of the nearest enclosing node when the path does not exist."""
    for n, key in enumerate(path):
        last = n == len(path) - 1
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    nxt = k if last else v
                    break
            if nxt is None:
                return node.start_mark.line + 1
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None


def line_in_text(text: str, path: tuple[Any, ...]) -> int | None:
    """:func:`line_of` for YAML text (None if the text does not load)."""
    try:
        _, root = load_yaml(text, "")
    except UserError:
        return None
    return line_of(root, path)


# -- validation against a model ---------------------------------------------------------------


def _unwrap(tp: Any) -> list[Any]:
    """The alternatives of an annotation, with Annotated and None removed."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [x for a in typing.get_args(tp) for x in _unwrap(a) if x is not type(None)]
    return [tp]


def _type_at(root: Any, loc: tuple[Any, ...]) -> Any:
    """The annotation at a pydantic error location, walking models, lists and dicts."""
    cur = [root]
    for part in loc:
        nxt = []
        for tp in (x for t in cur for x in _unwrap(t)):
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
                if part in tp.model_fields:
                    nxt.append(tp.model_fields[part].annotation)
            elif origin in (list, tuple) and isinstance(part, int):
                nxt.append(typing.get_args(tp)[0])
            elif origin is dict:
                nxt.append(typing.get_args(tp)[1] if part != "[key]" else typing.get_args(tp)[0])
        cur = nxt
        if not cur:
            return None
    return cur[0] if cur else None


def field_path(loc: tuple[Any, ...]) -> str:
    """('cluster', 'pools', 0, 'count') -> 'cluster.pools[0].count'."""
    out = ""
    for x in loc:
        if isinstance(x, int):
            out += f"[{x}]"
        elif x == "[key]":
            out += " (key)"
        else:
            out += ("." if out else "") + str(x)
    return out or "(top level)"


@dataclass(frozen=True)
class Problem:
    """One problem at a location of a YAML document."""

    loc: tuple[Any, ...]
    msg: str
    fix: str | None = None


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    tp = _type_at(model, loc) if loc else model
    for t in _unwrap(tp) if tp is not None else []:
        if isinstance(t, type) and issubclass(t, BaseModel):
            return list(t.model_fields)
    return []


def closest(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (difflib ratio >= 0.6, or equal ignoring case)."""
    low = {c.lower(): c for c in choices}
    if word.lower() in low:
        return low[word.lower()]
    got = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return got[0] if got else None


def model_problems(model: type[BaseModel], data: Any, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Every validation problem of ``data`` against ``model``, locations prefixed with ``prefix``.

    Unknown keys carry a "did you mean" for the closest known key of their mapping; a "field
    required" error for a key that an unknown sibling is a typo of is left out.
    """
    try:
        model.model_validate(data)
        return []
    except ValidationError as e:
        errors = e.errors(include_url=False)
    out: list[Problem] = []
    suggested: set[tuple[Any, ...]] = set()
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and loc:
            known = _known_fields(model, loc[:-1])
            near = closest(str(loc[-1]), known)
            if near:
                suggested.add((*loc[:-1], near))
            fix = f"did you mean '{near}'?" if near else ("known keys: " + ", ".join(known) if known else None)
            out.append(Problem(prefix + loc, "unknown field", fix))
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            continue
        if err["type"] == "missing" and loc in suggested:
            continue
        msg = err["msg"].removeprefix("Value error, ")  # a validator's own sentence, without pydantic's tag
        if err["type"] not in ("missing",) and "input" in err and not isinstance(err["input"], dict | list):
            shown = repr(err["input"])
            msg += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
        out.append(Problem(prefix + loc, msg))
    return out


def problems_error(problems: list[Problem], root: yaml.Node | None, label: str, fix: str | None = None) -> UserErrors:
    """One :class:`UserErrors` listing ``problems`` in file order, each as FILE:LINE: field: message."""
    items = []
    for p in problems:
        line = line_of(root, p.loc) if root is not None and p.loc else None
        items.append(
            (
                line or 0,
                UserError(f"{field_path(p.loc)}: {p.msg}", where=f"{label}:{line}" if line else label, fix=p.fix),
            )
        )
    items.sort(key=lambda x: x[0])
    return UserErrors([u for _, u in items], where=label, fix=fix)


FIELD_DOCS = {
    "Scenario": "see `gpuinfra schema` for every field, its type and range (docs/scenarios.md: the format)",
    "ForecastFile": "see docs/capacity.md (`gpuinfra capacity plan`) for the forecast format",
    "WhatIfSpec": "see docs/capacity.md (`gpuinfra spot whatif`) for the spec's fields",
}
"""Where the fields of each validated model are documented (the hint a validation error ends with).
`gpuinfra schema` prints the scenario schema only, so it is the hint for scenarios alone."""

DESIGNS_DIR = Path(__file__).resolve().parents[1] / "labs" / "designs"
"""The labs' shipped ``--design`` files: each is the documented example of its lab's fields."""

_LAB_DESIGN = re.compile(r"\blab (\d+) design\b")


def design_doc(lab: int) -> str:
    """The hint for lab ``lab``'s ``--design`` file: its shipped design(s) under
    ``src/gpuinfra/labs/designs/`` (a commented example of every field), else the README's lab list."""
    # lab 11's lab11-baseline-estate.yaml is the lab's fixed estate, not a design
    shipped = sorted(
        p.name
        for p in DESIGNS_DIR.glob(f"lab{lab}-*")
        if p.suffix in (".yaml", ".yml", ".txt") and "-baseline-" not in p.name
    )
    if not shipped:
        return f"see README.md (`gpuinfra lab {lab} --design`) for what the design holds"
    names = " or ".join(f"src/gpuinfra/labs/designs/{n}" for n in shipped)
    return f"see the shipped lab {lab} design {names} for its fields"


def doc_for(model: type, what: str = "") -> str | None:
    """Where a file validated against ``model`` is documented: :data:`FIELD_DOCS`, else (for a
    lab design, ``what`` = 'a lab N design') the lab's shipped design; None when unknown."""
    if model.__name__ in FIELD_DOCS:
        return FIELD_DOCS[model.__name__]
    m = _LAB_DESIGN.search(what)
    return design_doc(int(m.group(1))) if m else None


def validate(
    model: type[M],
    text: str,
    label: str,
    *,
    extra: typing.Callable[[Any], list[Problem]] | None = None,
    what: str = "the file",
    fix: str | None = "",
) -> tuple[M, Any]:
    """Load ``text`` (:func:`load_yaml`) and validate it against ``model``; every problem listed.

    ``extra`` adds checks the model cannot express (for a scenario: plugin names and args).
    ``fix`` (default: where ``model``'s fields are documented, :data:`FIELD_DOCS`) ends the message.
    Returns the model instance and the node tree. Raises :class:`UserError`/:class:`UserErrors`.
    """
    if fix == "":
        fix = doc_for(model, what)
    data, root = load_yaml(text, label, doc=fix or f"see the documentation of {what} for its format")
    if not isinstance(data, dict):
        raise UserError(
            f"{what} must be a YAML mapping",
            where=label,
            expected=f"key: value lines, found {type(data).__name__ if data is not None else 'an empty document'}",
        )
    problems = model_problems(model, data)
    if extra is not None:
        problems += extra(data)
    if problems:
        raise problems_error(problems, root, label, fix=fix)
    return model.model_validate(data), root


# -- scenarios -------------------------------------------------------------------------------


_KIND = {
    "QueueSortPlugin": "queue-sort plugin",
    "FilterPlugin": "filter plugin",
    "ScorePlugin": "score plugin",
    "ReservePlugin": "reserve plugin",
}


def scheduler_problems(data: Any) -> list[Problem]:
    """Plugin names and plugin args of a scenario's ``scheduler:`` block (raw data), as problems.

    A plugin name must be registered for its extension point; ``plugin_args`` keys must name a
    registered plugin; each plugin's args (and each score entry's ``args``) must match the
    plugin's declared schema (:mod:`gpuinfra.sim.plugin_args`).
    """
    from gpuinfra.sim import plugins  # noqa: F401  (fills the registry)
    from gpuinfra.sim.framework import REGISTRY, FilterPlugin, Plugin, QueueSortPlugin, ReservePlugin, ScorePlugin
    from gpuinfra.sim.plugin_args import args_schema

    if not isinstance(data, dict) or not isinstance(data.get("scheduler"), dict):
        return []
    s = data["scheduler"]
    out: list[Problem] = []

    def plugin(loc: tuple[Any, ...], name: Any, kind: type) -> bool:
        if not isinstance(name, str):
            return False
        if name in REGISTRY and issubclass(REGISTRY[name], kind):
            return True
        choices = sorted(n for n, c in REGISTRY.items() if issubclass(c, kind))
        near = closest(name, choices)
        out.append(
            Problem(
                loc,
                f"unknown {_KIND.get(kind.__name__, 'plugin')} '{name}'",
                f"did you mean '{near}'?" if near else "one of " + ", ".join(choices),
            )
        )
        return False

    def args(loc: tuple[Any, ...], name: str, value: Any) -> None:
        if isinstance(value, dict):
            out.extend(model_problems(args_schema(name), value, loc))

    plugin(("scheduler", "queue_sort"), s.get("queue_sort"), QueueSortPlugin)
    plugin(("scheduler", "reserve"), s.get("reserve"), ReservePlugin)
    if isinstance(s.get("filters"), list):
        for i, f in enumerate(s["filters"]):
            plugin(("scheduler", "filters", i), f, FilterPlugin)
    if isinstance(s.get("scores"), list):
        for i, e in enumerate(s["scores"]):
            if isinstance(e, dict) and plugin(("scheduler", "scores", i, "name"), e.get("name"), ScorePlugin):
                args(("scheduler", "scores", i, "args"), e["name"], e.get("args"))
    if isinstance(s.get("plugin_args"), dict):
        for name, a in s["plugin_args"].items():
            if plugin(("scheduler", "plugin_args", name), name, Plugin):
                args(("scheduler", "plugin_args", name), name, a)
    return out


def read_design_yaml(path: str | Path, label: str | None = None, *, lab: int | None = None) -> Any:
    """A lab design file's YAML through the scenario loader's boundary: encodings (UTF-8/16 with a
    BOM), size bound, duplicate keys, alias and nesting bounds, syntax errors with file:line
    (ending with the lab's shipped design, :func:`design_doc`, when ``lab`` is given)."""
    label = label or str(path)
    doc = design_doc(lab) if lab is not None else "see the shipped designs under src/gpuinfra/labs/designs/"
    data, _ = load_yaml(read_text_file(path, label), label, doc=doc)
    return data


def load_model_file(
    path: str | Path,
    model: type[M],
    label: str | None = None,
    *,
    extra: typing.Callable[[Any], list[Problem]] | None = None,
    what: str = "the file",
    fix: str | None = "",
) -> M:
    """Read a YAML input file (:func:`gpuinfra.io.text.read_text_file`) and validate it against
    ``model`` (:func:`validate`): the one call a lab's ``--design`` loader needs, e.g.
    ``load_model_file(path, Lab6Design, extra=scheduler_problems, what="a design")``.
    """
    label = label or str(path)
    obj, _ = validate(model, read_text_file(path, label), label, extra=extra, what=what, fix=fix)
    return obj


def parse_scenario(text: str, label: str) -> Scenario:
    """Validate scenario YAML text; every problem is listed with ``label``:line and its field path."""
    sc, _ = validate(Scenario, text, label, extra=scheduler_problems, what="a scenario")
    sc._label, sc._text = label, text
    return sc


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario file; returns it and the directory paths are relative to."""
    p = Path(path)
    label = str(path)
    if not p.exists():
        raise UserError(
            "scenario file not found",
            where=label,
            fix="check the path, or run `gpuinfra simulate` with no argument for the default scenario",
        )
    return parse_scenario(read_text_file(p, label), label), p.resolve().parent


def default_scenario_text() -> str:
    return resources.files("gpuinfra").joinpath("scenarios", "openb-default.yaml").read_text()


def builtin_scenarios() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("gpuinfra").joinpath("scenarios").iterdir() if p.name.endswith(".yaml")
    )


def builtin_scenario_text(name: str) -> str:
    if name not in builtin_scenarios():
        raise UserError(f"unknown built-in scenario '{name}'", expected="one of " + ", ".join(builtin_scenarios()))
    return resources.files("gpuinfra").joinpath("scenarios", f"{name}.yaml").read_text()


def upgrade_locator(sc: Any) -> Any:
    """field path of the upgrade block (``upgrade.pdbs.OWNER.minAvailable``) -> ``FILE:LINE`` of the
    scenario (None for a scenario built in code)."""

    def at(field: str) -> str | None:
        if sc._text is None:
            return None
        path: tuple[Any, ...]
        if field.startswith("upgrade.pdbs."):
            rest = field[len("upgrade.pdbs.") :]
            key = next((k for k in ("minAvailable", "maxUnavailable") if rest.endswith("." + k)), None)
            path = ("upgrade", "pdbs", rest[: -len(key) - 1], key) if key else ("upgrade", "pdbs", rest)
        else:
            path = tuple(field.split("."))
        line = line_in_text(sc._text, path)
        return f"{sc._label}:{line}" if line else sc._label

    return at
