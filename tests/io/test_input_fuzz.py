"""Fuzzing the input boundary: any bytes given as a scenario, a trace or a memory trace either load
or raise gpuinfra's UserError; never another exception (no UnicodeDecodeError, RecursionError,
IndexError, csv.Error or pydantic ValidationError escapes).

Three generators per parser: raw bytes, text assembled from the format's own tokens (keys,
anchors, aliases, brackets, quotes, odd numbers), and a valid file with tokens spliced in, which
is what reaches the deeper checks.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.scenario import parse_scenario
from gpuinfra.io.traces import GENERIC_OPTIONAL, GENERIC_REQUIRED, read_generic
from gpuinfra.models.memory_trace import parse_trace
from gpuinfra.textfile import decode_text

FUZZ = settings(
    max_examples=int(os.environ.get("GPUINFRA_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""150 examples per test in the suite; GPUINFRA_FUZZ_EXAMPLES=5000 for a longer hunt."""

GOOD = """\
name: t
seed: 3
cluster:
  pools:
    - {name: a, gpu_model: A100-80GB, gpus_per_node: 8, cpu_milli: 64000, memory_mib: 524288, count: 2}
workload:
  generator: {jobs: 50, arrival_rate_per_hour: 60, duration_median_s: 600, shared_gpu_milli: [250]}
scheduler:
  scores: [{name: FGD, args: {typical_threshold: 0.9}}]
  plugin_args: {MigFit: {reconfigure: true}, DRF: {weights: {a: 1}}}
faults:
  - {name: f, rate_per_day: 0.01, action: reset_gpu, repair_s: 60, source: test}
"""
YAML_TOKENS = [
    "name",
    "cluster",
    "pools",
    "workload",
    "scheduler",
    "plugin_args",
    "FGD",
    "args",
    ": ",
    " ",
    "\n",
    "  ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "!!python/object:os.system ",
    "!!binary ",
    '"',
    "'",
    "1e300",
    "1.0e+300",
    ".inf",
    "-.inf",
    ".nan",
    "-1",
    "0x1f",
    "0o17",
    "~",
    "null",
    "true",
    "2001-02-30",
    "12:30:00",
    "? ",
    "|",
    ">",
    "#",
    "\t",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\ufeff",
    "é",
    "\x00",
    "\x85",
    "9" * 40,
]
yaml_text = st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join)


def _parse_bytes(data: bytes) -> None:
    with contextlib.suppress(UserError):
        parse_scenario(decode_text(data, "f.yaml"), "f.yaml")


@FUZZ
@given(st.binary(max_size=1500))
def test_scenario_loader_any_bytes(data):
    _parse_bytes(data)


@FUZZ
@given(yaml_text)
def test_scenario_loader_yaml_tokens(text):
    _parse_bytes(text.encode("utf-8"))


@FUZZ
@given(st.integers(0, len(GOOD)), yaml_text, st.integers(0, 40))
def test_scenario_loader_spliced_valid_file(at, tokens, cut):
    _parse_bytes((GOOD[:at] + tokens + GOOD[at + cut :]).encode("utf-8"))


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["cluster", "pools", "workload", "generator", "scheduler", "plugin_args", "FGD", "MigFit"]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(), kids, max_size=4),
    max_leaves=30,
)


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "name": json_like,
            "cluster": json_like,
            "workload": json_like,
            "scheduler": st.fixed_dictionaries({}, optional={"plugin_args": json_like, "scores": json_like})
            | json_like,
            "faults": json_like,
            "horizon_s": json_like,
        },
    )
)
def test_scenario_loader_structured_data(data):
    _parse_bytes(yaml.safe_dump(data).encode("utf-8"))


# -- traces --------------------------------------------------------------------------------------

COLUMNS = list(GENERIC_REQUIRED + GENERIC_OPTIONAL) + ["num_gpus", "job_id ", ""]
CELLS = ["0", "1", "-1", "1e15", "inf", "nan", "1.5", "1000", "1500", "A100-80GB", "1g.10gb", "a=b", "x", '"', '""', ""]


def _read_trace(data: bytes, suffix: str = ".csv") -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"t{suffix}"
        p.write_bytes(data)
        with contextlib.suppress(UserError):
            read_generic(p)


@FUZZ
@given(st.binary(max_size=1500))
def test_trace_reader_any_bytes(data):
    _read_trace(data)


@FUZZ
@given(
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=8),
    st.lists(st.lists(st.sampled_from(CELLS), max_size=9), max_size=6),
    st.sampled_from([",", "\n", "\r\n"]),
)
def test_trace_reader_structured_rows(header, rows, eol):
    text = ",".join(header) + "\n" + eol.join(",".join(r) for r in rows) + "\n"
    _read_trace(text.encode("utf-8"))


@FUZZ
@given(st.binary(max_size=800), st.sampled_from([".parquet", ".csv.gz"]))
def test_trace_reader_binary_formats(data, suffix):
    _read_trace(data, suffix)


def test_trace_reader_every_truncation_of_a_parquet_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"job_id": ["a", "b"], "submit_time_s": [0.0, 1.0], "duration_s": [1.0, 2.0]}), tmp_path / "t.parquet"
    )
    data = (tmp_path / "t.parquet").read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 40)):
        _read_trace(data[:cut], ".parquet")


# -- memory traces ----------------------------------------------------------------------------

MEM_TOKENS = ["gpu", "config", "fraction", "context", "other", "alloc", "free", "empty_cache", "proc=B", "prc=B"]
MEM_TOKENS += ["A100-40GB", "16GiB", "1e400MiB", "nan", "-1", "0.5", "x", "expandable_segments:Maybe", "=", " ", "\n"]


@FUZZ
@given(st.lists(st.sampled_from(MEM_TOKENS), max_size=40).map(" ".join) | st.text(max_size=200))
def test_memory_trace_parser(text):
    with contextlib.suppress(UserError):
        parse_trace(text, "m.txt")


# -- saved probe JSON -----------------------------------------------------------------------------

probe_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
probe_device = st.fixed_dictionaries(
    {"index": probe_values, "name": probe_values},
    optional={
        "memory_total_mib": probe_values,
        "power_w": probe_values,
        "ecc_enabled": probe_values,
        "processes": st.lists(st.dictionaries(st.sampled_from(["pid", "used_mib", "x"]), probe_values), max_size=2)
        | probe_values,
        "clock_event_reasons": st.lists(probe_values, max_size=2) | probe_values,
    },
)


@FUZZ
@given(
    st.fixed_dictionaries(
        {"schema": st.just("gpuinfra.probe/1")},
        optional={
            "source": probe_values,
            "captured": probe_values,
            "host": probe_values,
            "devices": st.lists(probe_device, max_size=3) | probe_values,
            "topology": st.dictionaries(st.text(max_size=3), st.dictionaries(st.text(max_size=3), probe_values))
            | probe_values,
        },
    )
)
def test_probe_json_loader(raw):
    import json

    from gpuinfra.io.probe import load_probe

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "p.json"
        p.write_text(json.dumps(raw))
        with contextlib.suppress(UserError):
            load_probe(p)
