"""Trace readers: the Alibaba GPU trace v2023 ("openb") and gpuinfra's generic job-trace format.

Every row is read or refused: a row that cannot be read raises :class:`UserError` naming the
file, the line and the field, never a silent skip. See ``docs/trace-format.md``.

openb replay semantics (documented, because the trace does not say them):
- a pod arrives at ``creation_time``;
- a pod the real cluster scheduled runs ``deletion_time - scheduled_time`` seconds once
  started (its work is conserved if the simulated scheduler starts it later);
- a pod the real cluster never scheduled (``Pending``) was deleted by its owner at
  ``deletion_time``: it is withdrawn then if still pending, or ends then if it was started.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gpuinfra.catalog._data import data_path
from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.io.scenario_schema import MAX_CPU_MILLI, MAX_MEMORY_MIB
from gpuinfra.sim.cluster import MILLI_PER_GPU, NodePool
from gpuinfra.sim.workload import Pod, Toleration

OPENB_POD_LISTS = (
    "default",
    "cpu0",
    "cpu037",
    "cpu050",
    "cpu072",
    "cpu100",
    "cpu200",
    "cpu235",
    "cpu250",
    "cpu300",
    "gpushare20",
    "gpushare40",
    "gpushare60",
    "gpushare80",
    "gpushare100",
    "gpuspec05",
    "gpuspec10",
    "gpuspec20",
    "gpuspec25",
    "gpuspec33",
    "multigpu20",
    "multigpu30",
    "multigpu40",
    "multigpu50",
)
OPENB_NODE_LISTS = ("gpu_node", "all_node")
OPENB_POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
OPENB_TIME_COLUMNS = ("gpu_spec", "qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time")
GENERIC_REQUIRED = ("job_id", "submit_time_s", "duration_s")
GENERIC_OPTIONAL = (
    "num_gpu",
    "gpu_milli",
    "cpu_milli",
    "memory_mib",
    "gpu_model",
    "priority",
    "qos",
    "owner",
    "delete_time_s",
    "job",
    "node_selector",
    "tolerations",
    "gang_size",
    "mig_profile",
)


@dataclass(frozen=True, slots=True)
class TraceSource:
    label: str
    """What error messages call the file (a path, or openb:NAME for packaged lists)."""
    path: Path


def openb_pod_list(name: str) -> TraceSource:
    if name not in OPENB_POD_LISTS:
        from gpuinfra.errors import did_you_mean

        hint = did_you_mean(name, OPENB_POD_LISTS)
        raise UserError(
            f"unknown openb pod list '{name}'",
            expected="one of " + ", ".join(OPENB_POD_LISTS),
            fix=hint if hint else "use openb:default",
        )
    return TraceSource(f"openb:{name}", data_path("traces", "openb", f"openb_pod_list_{name}.csv.gz"))


def openb_node_list(name: str = "gpu_node") -> TraceSource:
    if name not in OPENB_NODE_LISTS:
        raise UserError(f"unknown openb node list '{name}'", expected="gpu_node or all_node")
    return TraceSource(f"openb:{name}", data_path("traces", "openb", f"openb_node_list_{name}.csv.gz"))


MAX_PARQUET_ROWS = 50_000_000
"""Largest Parquet trace read; the run budget (io/budget.py) is tighter."""
MAX_TRACE_BYTES = 1 << 30
"""Largest trace text read (after gzip): 1 GiB, about ten million rows of the generic format."""


def _read_trace_text(src: TraceSource) -> str:
    """The decoded text of a CSV or CSV.GZ trace (bounded size; encodings as io/text.py)."""
    from gpuinfra.textfile import decode_text

    if not src.path.exists():
        raise UserError("file not found", where=src.label, fix="check the path")
    if not src.path.is_file():
        raise UserError("not a file", where=src.label, expected="a trace file, not a directory")
    try:
        if src.path.suffix == ".gz":
            with gzip.open(src.path, "rb") as fh:
                data = fh.read(MAX_TRACE_BYTES + 1)
        else:
            with open(src.path, "rb") as fh:
                data = fh.read(MAX_TRACE_BYTES + 1)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise UserError(
            f"cannot read file ({e})", where=src.label, expected="a readable CSV or gzip-compressed CSV"
        ) from None
    if len(data) > MAX_TRACE_BYTES:
        raise UserError(
            f"trace is larger than {MAX_TRACE_BYTES:,} bytes",
            where=src.label,
            fix="split the trace, or use workload.limit on a smaller extract",
        )
    return decode_text(data, src.label)


def check_header(
    header: list[str], where: str, required: tuple[str, ...], allowed: tuple[str, ...] | None = None
) -> None:
    """Refuse a header with duplicated, unknown (when ``allowed`` is given) or missing columns,
    naming each, with the closest known column for an unknown one."""
    from gpuinfra.errors import UserErrors

    problems: list[UserError] = []
    seen: set[str] = set()
    for c in header:
        if c in seen:
            problems.append(UserError(f"column '{c}' appears twice", where=where, expected="unique column names"))
        seen.add(c)
    if allowed is not None:
        for c in header:
            if c not in allowed:
                near = difflib.get_close_matches(c, allowed, n=1, cutoff=0.6)
                problems.append(
                    UserError(
                        f"unknown column '{c}'",
                        where=where,
                        fix=f"did you mean '{near[0]}'?" if near else "known columns: " + ", ".join(allowed),
                    )
                )
    missing = [c for c in required if c not in seen]
    if missing:
        problems.append(
            UserError(
                f"missing column(s) {', '.join(missing)}", where=where, expected="a header with " + ", ".join(required)
            )
        )
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise UserErrors(problems, where=where, fix="see docs/trace-format.md for the columns")


def _rows(
    src: TraceSource, required: tuple[str, ...], allowed: tuple[str, ...] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with the header checked and short/long rows refused.

    The line number is the line the record starts on. A field holding a line break (only
    possible inside quotes: an unterminated quote swallows the lines after it) is refused.
    """
    text = _read_trace_text(src)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise UserError("empty file", where=src.label, expected="a CSV header line") from None
        header = [h.strip() for h in header]
        check_header(header, f"{src.label}:1", required, allowed)
        while True:
            start = reader.line_num + 1
            try:
                rec = next(reader)
            except StopIteration:
                return
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            if reader.line_num != start:  # a quoted field held a line break (the reader counts source lines)
                raise UserError(
                    f"a field spans lines {start}-{reader.line_num} (an unterminated quote?)",
                    where=f"{src.label}:{start}",
                    expected="one record per line; quotes closed on the line they open",
                    fix="close the quote or remove it",
                )
            if len(rec) != len(header):
                raise UserError(
                    f"row has {len(rec)} fields, the header has {len(header)} (truncated or malformed row)",
                    where=f"{src.label}:{start}",
                    expected=",".join(header),
                    fix="repair or remove this line",
                )
            yield start, dict(zip(header, rec))
    except csv.Error as e:
        raise UserError(
            f"malformed CSV ({e})",
            where=f"{src.label}:{start}",
            fix="an unterminated quote runs to the end of the file: close it" if "end of data" in str(e) else None,
        ) from None


PRIORITY_MIN, PRIORITY_MAX = -(2**31), 1_000_000_000
"""The range of a user pod priority: a Kubernetes PriorityClass value is "any 32-bit integer value
smaller than or equal to 1 billion", i.e. -2147483648 to 1000000000 inclusive; larger values are
reserved for the built-in system classes (kubernetes.io/docs/concepts/scheduling-eviction/
pod-priority-preemption/, PriorityClass)."""

INT_RANGES: dict[str, tuple[int, int]] = {
    "num_gpu": (0, 64),
    "gpu": (0, 64),
    "gpu_milli": (0, MILLI_PER_GPU),
    "cpu_milli": (0, MAX_CPU_MILLI),
    "memory_mib": (0, MAX_MEMORY_MIB),
    "priority": (PRIORITY_MIN, PRIORITY_MAX),
    "gang_size": (0, 100_000),
}
"""Inclusive range of each integer column of a trace. GPUs per pod or node: 64 (the scenario's
``gpus_per_node`` bound, 8x the largest catalog node); ``cpu_milli``/``memory_mib``: the scenario's
per-node sanity bounds (io/scenario_schema.py: a pod larger than any node bound is a typo);
``priority``: Kubernetes' user PriorityClass range (:data:`PRIORITY_MIN`, :data:`PRIORITY_MAX`);
``gang_size``: 100,000 pods in one gang."""

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def parse_int(raw: str, col: str, where: str, lo: int, hi: int) -> int:
    """An integer cell parsed exactly: decimal digits, or a number in decimal or exponent form
    (``5.0``, ``1e3``) that is exactly an integer; never rounded through a float. Values outside
    ``[lo, hi]`` are refused before the integer is built, so a 10,000-digit exponent costs nothing.

    Raises:
        UserError: ``FILE:LINE (col)``: not an integer, or out of range ``[lo, hi]``.
    """
    from decimal import Decimal

    at = f"{where} ({col})"
    if not _NUMBER.fullmatch(raw):
        raise UserError(f"{col}='{raw}' is not an integer", where=at, expected=f"an integer {col} in [{lo}, {hi}]")
    d = Decimal(raw)
    if d < lo or d > hi:
        raise UserError(
            f"{col}={raw} is out of range [{lo}, {hi}]",
            where=at,
            expected=f"{col} between {lo} and {hi} inclusive",
            fix=f"correct the value; see docs/trace-format.md for the range of {col}",
        )
    if d != d.to_integral_value():
        raise UserError(f"{col}='{raw}' is not an integer", where=at, expected=f"an integer {col} in [{lo}, {hi}]")
    return int(d)


def _int(
    row: dict[str, str],
    col: str,
    where: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    default: int | None = None,
) -> int:
    """Column ``col`` of ``row`` as an exact integer in ``[lo, hi]`` (default: :data:`INT_RANGES`)."""
    raw = (row.get(col) or "").strip()
    if raw == "" and default is not None:
        return default
    dlo, dhi = INT_RANGES[col]
    return parse_int(raw, col, where, dlo if lo is None else lo, dhi if hi is None else hi)


MAX_TRACE_TIME_S = 100 * 365.25 * 86400
"""Largest time or duration a trace may hold: 100 years in seconds (3.156e9 s). It holds any Unix
timestamp before 2070 (the Alibaba/OpenB traces give seconds from their start). The simulator keeps
time as float64 seconds: their spacing at 3.156e9 is 2^(31-52) s = 0.48 us, so events stay apart at
microsecond resolution up to this bound; at 1e300 a 100 s duration vanishes (1e300 + 100 == 1e300)."""


def _float(row: dict[str, str], col: str, where: str, *, default: float | None = None, lo: float | None = 0.0) -> float:
    raw = (row.get(col) or "").strip()
    if raw == "" and default is not None:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise UserError(
            f"{col}='{raw}' is not a number", where=where, expected=f"a number of seconds in {col}"
        ) from None
    if not math.isfinite(v) and not (default is not None and math.isnan(default) and math.isnan(v)):
        raise UserError(f"{col}={raw} is not finite", where=where, expected="a finite number")
    if lo is not None and v < lo:
        raise UserError(f"{col}={v} is negative", where=where, expected=f"{col} >= {lo}")
    if abs(v) > MAX_TRACE_TIME_S:
        raise UserError(
            f"{col}={raw} is beyond {MAX_TRACE_TIME_S:.4g} s (100 years)",
            where=where,
            expected=f"{col} in seconds, at most {MAX_TRACE_TIME_S:.4g} (a time in milliseconds or nanoseconds?)",
            fix="give times in seconds; the float64 clock keeps sub-microsecond resolution only up to there",
        )
    return v


def _models(raw: str, where: str, col: str) -> tuple[str, ...]:
    names = [m.strip() for m in raw.split("|") if m.strip()]
    return tuple(sorted({gpu_model(m, where=f"{where} ({col})").name for m in names}))


EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _node_selector(raw: str, where: str) -> tuple[tuple[str, str], ...]:
    out = []
    for part in (x.strip() for x in raw.split(";") if x.strip()):
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise UserError(
                f"node_selector entry '{part}' is not key=value",
                where=where,
                expected="node_selector like 'zone=a;pool=h100'",
            )
        out.append((k.strip(), v.strip()))
    return tuple(sorted(out))


def _tolerations(raw: str, where: str) -> tuple[Toleration, ...]:
    out = []
    for part in (x.strip() for x in raw.split(";") if x.strip()):
        kv, _, effect = part.partition(":")
        effect = effect.strip()
        if effect and effect not in EFFECTS:
            raise UserError(
                f"toleration '{part}' has effect '{effect}'",
                where=where,
                expected="key[=value][:effect] with effect one of " + ", ".join(EFFECTS),
            )
        k, sep, v = kv.partition("=")
        out.append(Toleration(k.strip(), "Equal" if sep else "Exists", v.strip(), effect))
    return tuple(out)


def _fmt_tolerations(ts: tuple[Toleration, ...]) -> str:
    parts = []
    for t in ts:
        s = t.key + (f"={t.value}" if t.operator == "Equal" else "")
        parts.append(s + (f":{t.effect}" if t.effect else ""))
    return ";".join(parts)


def _gpu_request(row: dict[str, str], where: str, milli_default: int | None) -> tuple[int, int]:
    num_gpu = _int(row, "num_gpu", where, default=0)
    milli = _int(row, "gpu_milli", where, default=milli_default if num_gpu else 0)
    if num_gpu and milli == 0:
        raise UserError("num_gpu > 0 with gpu_milli = 0", where=where, expected="gpu_milli between 1 and 1000")
    if not num_gpu and milli:
        # openb writes gpu_milli=0 for CPU pods; a non-zero milli with no GPU is contradictory
        raise UserError(f"gpu_milli={milli} with num_gpu=0", where=where, expected="gpu_milli 0 when num_gpu is 0")
    return num_gpu, milli


def _openb_request(r: dict[str, str], where: str, name: str, num_gpu: int, milli: int) -> dict:
    """The request fields of an openb row (shared by the replay and the fill readers)."""
    qos = (r.get("qos") or "").strip()
    return {
        "name": name,
        "cpu_milli": _int(r, "cpu_milli", where),
        "memory_mib": _int(r, "memory_mib", where),
        "num_gpu": num_gpu,
        "gpu_milli": milli,
        "gpu_models": _models(r.get("gpu_spec") or "", where, "gpu_spec") if num_gpu else (),
        "qos": qos,
        # openb has no user or team column; the QoS class stands in for the owner, named as such
        "owner": "qos:" + (qos or "unknown"),
        "job": name,
    }


def read_openb_pods(src: TraceSource, *, pending: str = "run", where_of: dict[str, str] | None = None) -> list[Pod]:
    """Read an openb pod list with timestamps, for time-driven replay.

    ``pending`` says what to do with pods the real cluster never scheduled: ``run`` (they
    arrive and are withdrawn at their deletion time if still pending) or ``exclude``.
    ``where_of``, when given, is filled with pod name -> 'FILE:LINE' (for messages about a pod).
    """
    pods: list[Pod] = []
    rows = _rows(src, OPENB_POD_COLUMNS)
    first = True
    for line, r in rows:
        if first:
            first = False
            lacking = [c for c in OPENB_TIME_COLUMNS if c not in r]
            if lacking:
                raise UserError(
                    "this pod list has no timestamps, so it cannot be replayed in time",
                    where=f"{src.label}:1",
                    expected="columns " + ", ".join(OPENB_TIME_COLUMNS),
                    fix="use a list with creation/deletion times (e.g. openb:default); the multigpu* lists "
                    "are for the static fill experiment",
                )
        where = f"{src.label}:{line}"
        name = (r["name"] or "").strip()
        if not name:
            raise UserError("empty pod name", where=where, expected="a pod name in column 'name'")
        num_gpu, milli = _gpu_request(r, where, MILLI_PER_GPU)
        created = _float(r, "creation_time", where)
        deleted = _float(r, "deletion_time", where)
        sched_raw = (r.get("scheduled_time") or "").strip()
        if deleted < created:
            raise UserError(f"deletion_time {deleted} is before creation_time {created}", where=where)
        if sched_raw:
            sched = _float(r, "scheduled_time", where)
            if not created <= sched <= deleted:
                raise UserError(
                    f"scheduled_time {sched} is outside [creation_time {created}, deletion_time {deleted}]",
                    where=where,
                )
            duration, delete_s = deleted - sched, math.nan
        else:
            if pending == "exclude":
                continue
            duration, delete_s = deleted - created, deleted
        if where_of is not None:
            where_of[name] = where
        pods.append(
            Pod(
                submit_s=created,
                duration_s=duration,
                delete_s=delete_s,
                **_openb_request(r, where, name, num_gpu, milli),
            )
        )
    if not pods:
        raise UserError("no pods in trace", where=src.label, expected="at least one data row")
    return pods


def read_openb_static(src: TraceSource) -> list[Pod]:
    """Read an openb pod list for the static fill experiment: requests only, times ignored.

    Works on every list, including the ``multigpu*`` ones that carry only the first five columns.
    """
    pods: list[Pod] = []
    for line, r in _rows(src, OPENB_POD_COLUMNS):
        where = f"{src.label}:{line}"
        name = (r["name"] or "").strip()
        if not name:
            raise UserError("empty pod name", where=where, expected="a pod name in column 'name'")
        num_gpu, milli = _gpu_request(r, where, MILLI_PER_GPU)
        pods.append(Pod(submit_s=0.0, duration_s=math.inf, **_openb_request(r, where, name, num_gpu, milli)))
    if not pods:
        raise UserError("no pods in trace", where=src.label, expected="at least one data row")
    return pods


def read_openb_nodes(src: TraceSource, *, include_cpu_only: bool = True) -> list[NodePool]:
    """Read an openb node list into one pool per node shape, keeping the trace's node names."""
    groups: dict[tuple, list[str]] = {}
    for line, r in _rows(src, ("sn", "cpu_milli", "memory_mib", "gpu", "model")):
        where = f"{src.label}:{line}"
        gpus = _int(r, "gpu", where)
        raw_model = (r["model"] or "").strip()
        if gpus and not raw_model:
            raise UserError("node has GPUs but no model", where=where, expected="a GPU model in column 'model'")
        model = gpu_model(raw_model, where=f"{where} (model)").name if gpus else None
        if not gpus and not include_cpu_only:
            continue
        key = (model, gpus, _int(r, "cpu_milli", where), _int(r, "memory_mib", where), raw_model)
        groups.setdefault(key, []).append(r["sn"].strip())
    pools = []
    for (model, gpus, cpu, mem, raw), names in groups.items():
        label = f"{raw or 'cpu'}-{gpus}g-{cpu // 1000}c-{mem // 1024}gi"
        labels = (("nvidia.com/gpu.product", raw),) if raw else ()
        pools.append(
            NodePool(
                name=label,
                gpu_model=model,
                gpus_per_node=gpus,
                cpu_milli=cpu,
                memory_mib=mem,
                count=len(names),
                labels=labels,
                shape=f"openb:{label}",
                node_names=tuple(names),
            )
        )
    if not pools:
        raise UserError("no nodes in node list", where=src.label)
    return pools


def read_generic(path: Path, label: str | None = None, *, where_of: dict[str, str] | None = None) -> list[Pod]:
    """Read gpuinfra's generic job trace (CSV, CSV.GZ or Parquet); see docs/trace-format.md.

    Every row is validated; a header with an unknown, duplicated or missing column is refused
    (an unknown column would otherwise be ignored: a typo'd ``num_gpus`` makes every job a CPU
    job). ``where_of``, when given, is filled with job_id -> 'FILE:LINE'. Raises :class:`UserError`.
    """
    label = label or str(path)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".parquet":
        rows_it = _parquet_rows(path, label)
    elif suffixes.endswith(".csv") or suffixes.endswith(".csv.gz"):
        rows_it = _rows(TraceSource(label, path), GENERIC_REQUIRED, GENERIC_REQUIRED + GENERIC_OPTIONAL)
    else:
        raise UserError(f"unknown trace file type '{path.suffix}'", where=label, expected=".csv, .csv.gz or .parquet")
    pods = []
    seen: dict[str, str] = {}
    for line, r in rows_it:
        where = f"{label}:{line}"
        job_id = (r.get("job_id") or "").strip()
        if not job_id:
            raise UserError("empty job_id", where=where, expected="a unique id in column job_id")
        if job_id in seen:
            raise UserError(
                f"duplicate job_id '{job_id}' (first at {seen[job_id]})", where=where, expected="unique job_id values"
            )
        seen[job_id] = where
        if where_of is not None:
            where_of[job_id] = where
        num_gpu, milli = _gpu_request(r, where, MILLI_PER_GPU)
        mig = (r.get("mig_profile") or "").strip()
        if mig:
            num_gpu, milli = 1, _mig_milli(r, mig, where)
        submit = _float(r, "submit_time_s", where)
        delete = _float(r, "delete_time_s", where, default=math.nan)
        if not math.isnan(delete) and delete < submit:
            raise UserError(f"delete_time_s {delete} is before submit_time_s {submit}", where=where)
        pods.append(
            Pod(
                name=job_id,
                submit_s=submit,
                duration_s=_float(r, "duration_s", where),
                cpu_milli=_int(r, "cpu_milli", where, default=0),
                memory_mib=_int(r, "memory_mib", where, default=0),
                num_gpu=num_gpu,
                gpu_milli=milli,
                gpu_models=_models(r.get("gpu_model") or "", where, "gpu_model") if num_gpu else (),
                priority=_int(r, "priority", where, default=0),
                qos=(r.get("qos") or "").strip(),
                owner=(r.get("owner") or "").strip() or "unknown",
                delete_s=delete,
                job=(r.get("job") or "").strip() or job_id,
                node_selector=_node_selector(r.get("node_selector") or "", where),
                tolerations=_tolerations(r.get("tolerations") or "", where),
                gang_size=_int(r, "gang_size", where, default=0),
                mig_profile=mig,
            )
        )
    if not pods:
        raise UserError("no jobs in trace", where=label, expected="at least one data row")
    return pods


def _mig_milli(r: dict[str, str], profile: str, where: str) -> int:
    """A MIG instance request holds its compute share of one GPU (sim/plugins/mig.py)."""
    from gpuinfra.sim.plugins.mig import mig_milli

    models = [m for m in (r.get("gpu_model") or "").split("|") if m.strip()]
    if len(models) != 1:
        raise UserError(
            "a mig_profile needs exactly one gpu_model",
            where=f"{where} (mig_profile)",
            expected="e.g. gpu_model=H100-SXM, mig_profile=1g.10gb",
        )
    try:
        return mig_milli(gpu_model(models[0], where=f"{where} (gpu_model)").name, profile)
    except UserError as e:
        raise UserError(e.what, where=f"{where} (mig_profile)", expected=e.expected, fix=e.fix) from None


def _parquet_rows(path: Path, label: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a Parquet trace as strings (validated like CSV cells); the number is the 1-based row."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise UserError("file not found", where=label, fix="check the path")
    if not path.is_file():
        raise UserError("not a file", where=label, expected="a Parquet file, not a directory")
    try:
        meta = pq.read_metadata(path)
        if meta.num_rows > MAX_PARQUET_ROWS:
            raise UserError(
                f"{meta.num_rows:,} rows", where=label, expected=f"at most {MAX_PARQUET_ROWS:,} rows in one trace"
            )
        table = pq.read_table(path)
    except UserError:
        raise
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for a truncated or foreign file
        raise UserError(
            f"cannot read Parquet file ({str(e)[:200]})",
            where=label,
            expected="a complete Parquet file (a truncated copy has no footer)",
            fix="write it again, e.g. with `gpuinfra trace convert`",
        ) from None
    check_header([str(c) for c in table.column_names], label, GENERIC_REQUIRED, GENERIC_REQUIRED + GENERIC_OPTIONAL)
    cols = {c: table.column(c).to_pylist() for c in table.column_names}
    for k in range(table.num_rows):
        yield k + 1, {c: ("" if v[k] is None else str(v[k])) for c, v in cols.items()}


GENERIC_COLUMNS = GENERIC_REQUIRED + GENERIC_OPTIONAL


def _generic_row(p: Pod) -> list:
    return [
        p.name,
        repr(p.submit_s),
        repr(p.duration_s),
        p.num_gpu,
        p.gpu_milli,
        p.cpu_milli,
        p.memory_mib,
        "|".join(p.gpu_models),
        p.priority,
        p.qos,
        p.owner,
        "" if math.isnan(p.delete_s) else repr(p.delete_s),
        p.job,
        ";".join(f"{k}={v}" for k, v in p.node_selector),
        _fmt_tolerations(p.tolerations),
        p.gang_size,
        p.mig_profile,
    ]


def write_generic(pods: list[Pod], path: Path) -> None:
    """Write pods in the generic format, CSV or Parquet by suffix (the inverse of :func:`read_generic`)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = list(zip(*[_generic_row(p) for p in pods])) if pods else [[] for _ in GENERIC_COLUMNS]
        data = {}
        for name, vals in zip(GENERIC_COLUMNS, cols):
            if name in ("submit_time_s", "duration_s", "delete_time_s"):
                data[name] = pa.array([float(v) if v != "" else None for v in vals], type=pa.float64())
            elif name in ("num_gpu", "gpu_milli", "cpu_milli", "memory_mib", "priority", "gang_size"):
                data[name] = pa.array([int(v) for v in vals], type=pa.int64())
            else:
                data[name] = pa.array([str(v) for v in vals], type=pa.string())
        pq.write_table(pa.table(data), path)
        return
    if path.suffix.lower() != ".csv":
        raise UserError(f"cannot write '{path.suffix}'", where=str(path), expected=".csv or .parquet")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(GENERIC_COLUMNS)
        for p in pods:
            w.writerow(_generic_row(p))
