"""A sweep file: a base scenario, parameters by dotted path, a grid or random search, seeds.

A sweep expands into *configurations* (one value per parameter) times *seeds*; each
(configuration, seed) is one *run* with a stable id, so a killed sweep resumes by id.

``kind: replay`` varies any field of a scenario by its path into the YAML document
(``scheduler.scores``, ``cluster.pools[0].count``, ``workload.generator.arrival_rate_per_hour``)
plus ``policy`` (a fill policy name applied as ``gpuinfra compare`` does, or ``scenario``).
``kind: fill`` runs the FGD fill experiment (Weng et al., ATC'23) with parameters ``workload``
(an openb pod list), ``policy``, ``load`` (share of capacity offered) and ``nodes``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.rng import Rngs

SPEC_SCHEMA = "gpuinfra.sweep/1"
FILL_PARAMS = ("workload", "policy", "load", "nodes")
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
MAX_RUNS = 100_000
"""A sweep larger than this is refused before any work (split it or use random search)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportSpec(_Model):
    x: str | None = Field(None, description="metric on the x axis of the trade-off plot (a runs column)")
    y: str | None = Field(None, description="metric on the y axis")
    confidence: float = Field(0.95, gt=0, lt=1, description="two-sided bootstrap-interval level over seeds")


class SweepSpec(_Model):
    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    kind: Literal["replay", "fill"] = "replay"
    scenario: str | None = Field(
        None, description="replay: a built-in scenario name or a YAML path (relative to this file)"
    )
    seeds: list[int] | str = Field(description="seeds per configuration: [1, 2, 3] or '1-10'")
    search: Literal["grid", "random"] = "grid"
    samples: int | None = Field(None, ge=1, le=MAX_RUNS, description="random search: configurations drawn")
    search_seed: int = Field(0, ge=0, description="random search: seed of the draw (gpuinfra.rng stream 'sweep')")
    params: dict[str, Any] = Field(description="dotted path -> list of values (grid) or a distribution (random)")
    report: ReportSpec = Field(default_factory=ReportSpec)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)  # field path -> 1-based line in the file


@dataclass(frozen=True)
class Config:
    """One point of the sweep: a value per parameter path."""

    config_id: str
    params: dict[str, Any]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())


@dataclass(frozen=True)
class RunKey:
    config: Config
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.config.config_id}-s{self.seed}"


@dataclass
class Plan:
    """A validated sweep: the spec, where it came from, its configurations and seeds."""

    spec: SweepSpec
    source: str
    base_dir: Path | None
    base: dict[str, Any] | None  # replay: the base scenario as a JSON-able document
    base_label: str
    seeds: list[int]
    configs: list[Config]
    spec_hash: str
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)  # config_id -> scenario document

    @property
    def runs(self) -> list[RunKey]:
        return [RunKey(c, s) for c in self.configs for s in self.seeds]


def _short(v: Any) -> str:
    s = json.dumps(v, sort_keys=True, separators=(",", ":")) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."


def canonical(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): what ids and hashes are computed over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


_SEG = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """``cluster.pools[0].count`` -> ['cluster', 'pools', 0, 'count']; UserError if malformed."""
    segs: list[str | int] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        if text[pos] == "." and segs and pos + 1 < len(text):
            pos += 1
        m = _SEG.match(text, pos)
        if not m:
            raise UserError(
                f"malformed parameter path '{path}'",
                where=f"params.{path}",
                expected="dotted names with [N] list indexes, e.g. cluster.pools[0].count",
            )
        segs.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not segs or isinstance(segs[0], int):
        raise UserError(f"malformed parameter path '{path}'", where=f"params.{path}", expected="a field name first")
    return segs


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at ``path`` inside the scenario document ``doc`` (in place).

    Every segment must already exist in the document (the base scenario with its defaults
    filled in), so a typo is named with the closest field; raises UserError otherwise.
    """
    segs = split_path(path)
    node: Any = doc
    walked = ""
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        here = (
            f"{walked}.{seg}"
            if isinstance(seg, str) and walked
            else (f"{walked}[{seg}]" if isinstance(seg, int) else seg)
        )
        if isinstance(seg, int):
            if not isinstance(node, list):
                raise UserError(
                    f"'{walked}' is not a list", where=f"params.{path}", expected="a name after it, not [N]"
                )
            if seg >= len(node):
                raise UserError(
                    f"'{walked}' has {len(node)} entries, index {seg} is past its end",
                    where=f"params.{path}",
                    expected=f"an index 0..{len(node) - 1}",
                )
        else:
            if not isinstance(node, dict):
                raise UserError(
                    f"'{walked}' is a {type(node).__name__}, it has no field '{seg}'",
                    where=f"params.{path}",
                    expected="a path that ends where the value is",
                )
            if seg not in node:
                hint = did_you_mean(seg, [str(k) for k in node])
                raise UserError(
                    f"unknown parameter path '{path}': '{walked or 'scenario'}' has no field '{seg}'",
                    where=f"params.{path}",
                    expected="one of " + ", ".join(sorted(str(k) for k in node)),
                    fix=hint or "see docs/scenarios.md for the scenario fields",
                )
        if last:
            node[seg] = value
            return
        nxt = node[seg]
        if nxt is None:
            raise UserError(
                f"'{here}' is not set in the base scenario, so '{path}' cannot be varied",
                where=f"params.{path}",
                fix=f"give '{here}' a value in the base scenario first",
            )
        node = nxt
        walked = here


def _parse_seeds(seeds: list[int] | str) -> list[int]:
    from gpuinfra.units import check_seed, parse_seeds

    if isinstance(seeds, str):
        try:
            out = parse_seeds(seeds, where="seeds")
        except UserError as e:
            raise UserError(e.what, where="seeds", expected=e.expected, fix=e.fix) from None
    else:
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:  # a repeated seed would be one run counted once: the sweep would have fewer seeds than written
            raise UserError(
                f"seed{'s' if len(repeated) > 1 else ''} {', '.join(map(str, repeated))} "
                f"listed more than once ({seeds})",
                where="seeds",
                expected="distinct seeds: the same seed is the same run (same bytes), so a repeat adds nothing",
                fix="list each seed once, e.g. [1, 2, 3], or give a range '1-5'",
            )
        out = list(seeds)
    if not out:
        raise UserError("no seeds", where="seeds", expected="at least one seed, e.g. [1, 2, 3] or '1-5'")
    for s in out:
        check_seed(s, "seeds")
    return out


def _finite(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


def _values(path: str, spec: Any) -> list[Any]:
    if not isinstance(spec, list):
        raise UserError(
            f"grid values of '{path}' must be a list, got {type(spec).__name__}",
            where=f"params.{path}",
            expected="a YAML list of values, e.g. [1, 2, 4] (distributions need search: random)",
        )
    if not spec:
        raise UserError(f"empty grid: '{path}' has no values", where=f"params.{path}", expected="at least one value")
    seen: set[str] = set()
    for v in spec:
        key = json.dumps(v, sort_keys=True, separators=(",", ":"))
        if key in seen:
            raise UserError(
                f"'{path}' lists the value {_short(v)} more than once",
                where=f"params.{path}",
                expected="distinct values: a repeated value is the same configuration twice, and its seeds would "
                "count twice in the statistics",
                fix="remove the repeated value",
            )
        seen.add(key)
    return spec


def _draw(path: str, spec: Any, rng) -> Any:
    if isinstance(spec, list):
        if not spec:
            raise UserError(f"empty choice for '{path}'", where=f"params.{path}", expected="at least one value")
        return spec[int(rng.integers(len(spec)))]
    if not (isinstance(spec, dict) and len(spec) == 1):
        raise UserError(
            f"bad distribution for '{path}'",
            where=f"params.{path}",
            expected="a list of choices or one of {uniform: [a, b]}, {loguniform: [a, b]}, "
            "{randint: [a, b]}, {choice: [...]}",
        )
    ((kind, arg),) = spec.items()
    if kind not in DISTRIBUTIONS:
        raise UserError(
            f"unknown distribution '{kind}' for '{path}'",
            where=f"params.{path}",
            expected=", ".join(DISTRIBUTIONS),
            fix=did_you_mean(str(kind), DISTRIBUTIONS),
        )
    if kind == "choice":
        return _draw(path, arg, rng)
    ok = isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, (int, float)) and math.isfinite(a) for a in arg)
    if not ok or arg[1] < arg[0] or (kind == "loguniform" and arg[0] <= 0):
        raise UserError(
            f"bad bounds {arg!r} for {kind} of '{path}'",
            where=f"params.{path}.{kind}",
            expected="[low, high] with low <= high (finite; loguniform: low > 0)",
        )
    lo, hi = arg
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(int(lo), int(hi) + 1))


def _policy_names(kind: str) -> list[str]:
    from gpuinfra.sim.fill import POLICIES

    return list(POLICIES) + (["scenario"] if kind == "replay" else [])


def _check_policy(kind: str, value: Any, path: str) -> None:
    names = _policy_names(kind)
    if not isinstance(value, str) or value.lower() not in names:
        raise UserError(
            f"unknown policy {value!r}",
            where=f"params.{path}",
            expected="one of " + ", ".join(names),
            fix=did_you_mean(str(value), names),
        )


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file (or a built-in sweep by name); UserError on any problem."""
    from gpuinfra.sweep.builtin import builtin_sweep_text, builtin_sweeps

    p = Path(path)
    if str(path) in builtin_sweeps() and not p.exists():
        return parse_spec(builtin_sweep_text(str(path)), f"builtin:{path}")
    if not p.exists():
        raise UserError(
            f"no sweep file or built-in sweep named '{path}'",
            where=str(path),
            expected="a YAML file or one of " + ", ".join(builtin_sweeps()),
            fix=did_you_mean(str(path), builtin_sweeps()) or "check the path",
        )
    if p.is_dir():
        raise UserError(f"'{path}' is a directory", where=str(path), expected="a sweep YAML file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text ({e.reason} at byte {e.start})", where=str(path)) from None
    return parse_spec(text, str(path))


def parse_spec(text: str, label: str) -> SweepSpec:
    from gpuinfra.io.scenario_load import load_yaml

    # the scenario loader's YAML reader: duplicate keys (PyYAML keeps the last silently), alias
    # bombs and deep nesting refused, syntax errors at file:line
    data, _ = load_yaml(text, label, doc="see docs/sweeps.md ('The sweep file') for the format")
    if not isinstance(data, dict):
        raise UserError("a sweep file is a YAML mapping", where=label, expected="name:, scenario:, seeds:, params:")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        problems = []
        fields = list(SweepSpec.model_fields)
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                hint = did_you_mean(
                    str(err["loc"][-1]), fields if len(err["loc"]) == 1 else list(ReportSpec.model_fields)
                )
                msg = "unknown field" + (f" ({hint})" if hint else "")
            problems.append(f"{loc}: {msg}")
        raise UserError("; ".join(problems), where=label, expected="the fields of docs/sweeps.md") from None
    spec._lines = _field_lines(text)
    return spec


def _field_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level field and of each ``params`` entry (``params.PATH``)."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # safe_load read it; a composer quirk only costs the line numbers
        return lines
    if not isinstance(root, yaml.MappingNode):
        return lines
    for k, v in root.value:
        lines[str(k.value)] = k.start_mark.line + 1
        if k.value in ("params", "report") and isinstance(v, yaml.MappingNode):
            for pk, _ in v.value:
                lines[f"{k.value}.{pk.value}"] = pk.start_mark.line + 1
    return lines


def _located(e: UserError, spec: SweepSpec, source: str) -> UserError:
    """``e`` with its field path (``seeds``, ``params.PATH``...) prefixed by the sweep file and line."""
    where = e.where or ""
    field = where.split(".", 1)[0].split("[", 1)[0]
    if field not in SweepSpec.model_fields:
        return e  # already names a file (the base scenario's) or nothing of the spec
    line = None
    for key in sorted(spec._lines, key=len, reverse=True):
        if where == key or where.startswith(key + "."):
            line = spec._lines[key]
            break
    head = f"{source}:{line}" if line else source
    return UserError(e.what, where=f"{head}: {where}", expected=e.expected, fix=e.fix)


def plan(spec: SweepSpec, source: str, base_dir: Path | None = None) -> Plan:
    """Expand and validate a sweep: every configuration is built and checked before any run.

    Raises:
        UserError: naming ``source``, the line and the field (``seeds``, ``params.PATH``...).
    """
    try:
        return _plan(spec, source, base_dir)
    except UserError as e:
        if type(e) is not UserError:
            raise
        raise _located(e, spec, source) from None


def _check_report(spec: SweepSpec) -> None:
    """``report.x``/``report.y`` name a metric the sweep's kind records (store.HEADLINE), checked when
    the file is loaded rather than when ``sweep report`` reads the finished sweep."""
    from gpuinfra.sweep.store import HEADLINE

    metrics = list(HEADLINE[spec.kind])
    for axis in ("x", "y"):
        m = getattr(spec.report, axis)
        if m is not None and m not in metrics:
            raise UserError(
                f"unknown metric '{m}' for the {axis} axis of a {spec.kind} sweep",
                where=f"report.{axis}",
                expected="one of " + ", ".join(metrics),
                fix=did_you_mean(m, metrics) or f"name one of them, or leave report.{axis} out for the default",
            )


def _plan(spec: SweepSpec, source: str, base_dir: Path | None) -> Plan:
    seeds = _parse_seeds(spec.seeds)
    _check_report(spec)
    if not spec.params:
        raise UserError("empty grid: no parameters", where="params", expected="at least one parameter path")
    for p in spec.params:
        split_path(p)
    if spec.search == "grid":
        if spec.samples is not None:
            raise UserError("samples is for search: random", where="samples", fix="remove it or set search: random")
        axes = [(p, _values(p, v)) for p, v in spec.params.items()]
        n = math.prod(len(v) for _, v in axes) * len(seeds)
        if n > MAX_RUNS:
            raise UserError(f"the grid has {n:,} runs", where="params", expected=f"at most {MAX_RUNS:,}")
        points = [dict(zip([p for p, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]
    else:
        if spec.samples is None:
            raise UserError("random search needs samples", where="samples", expected="the number of configurations")
        rng = Rngs(spec.search_seed).stream("sweep")
        points = [{p: _draw(p, v, rng) for p, v in spec.params.items()} for _ in range(spec.samples)]
        if spec.samples * len(seeds) > MAX_RUNS:
            raise UserError("too many runs", where="samples", expected=f"samples x seeds <= {MAX_RUNS:,}")

    base: dict[str, Any] | None = None
    base_label = ""
    scenarios: dict[str, dict[str, Any]] = {}
    if spec.kind == "replay":
        if not spec.scenario:
            raise UserError(
                "a replay sweep needs a base scenario", where="scenario", expected="a built-in name or a YAML path"
            )
        from gpuinfra import api

        ref = spec.scenario
        if base_dir is not None and not (Path(ref).is_absolute()) and ref not in api.builtins():
            ref = str(base_dir / ref)
        sc = api.scenario(ref)
        base = sc.model_dump(mode="json")
        base_label = spec.scenario
        sc_base_dir = getattr(sc, "_base_dir", None)
        base_dir = Path(sc_base_dir) if sc_base_dir is not None else None
    else:
        if spec.scenario:
            raise UserError(
                "a fill sweep takes no scenario", where="scenario", expected="params workload, policy, load, nodes"
            )
        for p in spec.params:
            if p not in FILL_PARAMS:
                raise UserError(
                    f"unknown parameter path '{p}' for a fill sweep",
                    where=f"params.{p}",
                    expected="one of " + ", ".join(FILL_PARAMS),
                    fix=did_you_mean(p, FILL_PARAMS),
                )
        base_label = "fill"

    configs: list[Config] = []
    seen: set[str] = set()
    for point in points:
        try:
            cid = sha(canonical({"kind": spec.kind, "base": base_label, "params": point}), 12)
        except ValueError:  # .inf / .nan: JSON (ids, results) has no such numbers
            bad = next(k for k, v in point.items() if not _finite(v))
            raise UserError(
                f"'{bad}' has a value that is not a finite number ({_short(str(point[bad]))})",
                where=f"params.{bad}",
                expected="finite numbers (no .inf or .nan)",
            ) from None
        if cid in seen:  # random search may draw the same point twice: one configuration
            continue
        seen.add(cid)
        cfg = Config(cid, point)
        if spec.kind == "replay":
            scenarios[cid] = _scenario_doc(base, point, base_dir)
        else:
            _check_fill(point)
        configs.append(cfg)
    spec_hash = sha(canonical({"schema": SPEC_SCHEMA, "spec": spec.model_dump(mode="json"), "base": base}))
    return Plan(spec, source, base_dir, base, base_label, seeds, configs, spec_hash, scenarios)


def _scenario_doc(base: dict[str, Any] | None, point: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """The scenario document of one configuration, validated as the scenario loader would."""
    from gpuinfra.io.scenario import Scenario

    assert base is not None
    doc = json.loads(json.dumps(base))
    policy = None
    for path, value in point.items():
        if path == "policy":
            _check_policy("replay", value, path)
            policy = value.lower()
            continue
        set_path(doc, path, value)
    try:
        sc = Scenario.model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        # the parameter that sets this field (paths written cluster.pools[1].count, locs cluster.pools.1.count)
        setter = next(
            (k for k in point if (n := re.sub(r"\[(\d+)\]", r".\1", k)) == loc or loc.startswith(n + ".")), None
        )
        raise UserError(
            f"the configuration {_short(point)} makes an invalid scenario: {loc}: {err['msg']}",
            where=f"params.{setter}" if setter else "params",
            fix="change the values of the parameters that set this field",
        ) from None
    if policy and policy != "scenario":
        from gpuinfra.compare import with_policy

        sc = with_policy(sc, policy)
    return sc.model_dump(mode="json")


def _check_fill(point: dict[str, Any]) -> None:
    from gpuinfra.fill import parse_workloads
    from gpuinfra.io.traces import OPENB_POD_LISTS  # noqa: F401  (names listed in the message)

    if "policy" in point:
        _check_policy("fill", point["policy"], "policy")
    if "workload" in point:
        if not isinstance(point["workload"], str):
            raise UserError("workload must be a name", where="params.workload", expected="an openb pod list name")
        try:
            parse_workloads(point["workload"])
        except UserError as e:
            raise UserError(e.what, where="params.workload", expected=e.expected, fix=e.fix) from None
    if "load" in point:
        v = point["load"]
        if not isinstance(v, (int, float)) or not 0 < v <= 10:
            raise UserError(
                f"load {v!r} is out of range", where="params.load", expected="a share of capacity in (0, 10]"
            )
    if "nodes" in point and point["nodes"] not in ("gpu_node", "all_node"):
        raise UserError(f"unknown node list {point['nodes']!r}", where="params.nodes", expected="gpu_node or all_node")
