"""Every kind of bad scenario, trace, memory trace and probe input: refused with gpuinfra's own
error, and the message names the file, the line and the field (or row) and says what to do.

One row per kind (issue 13's table: encodings, numbers, malformed structure, size bombs, silent
acceptance, misleading messages). Each case writes its files into a temporary directory, loads
them the way `gpuinfra simulate` does (load_scenario + build) and checks the message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuinfra.errors import UserError, UserErrors
from gpuinfra.io.scenario import build, load_scenario

POOLS = """\
cluster:
  pools:
    - {name: a, gpu_model: A100-80GB, gpus_per_node: 8, cpu_milli: 64000, memory_mib: 524288, count: 2}
"""
MIG_POOL = (
    "    - {name: m, gpu_model: A100-80GB, gpus_per_node: 8, cpu_milli: 64000, memory_mib: 524288, count: 1,"
    " mig_layout: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}\n"
)
GEN = "workload:\n  generator: {jobs: 20, arrival_rate_per_hour: 60, duration_median_s: 600}\n"
TRACE = "workload:\n  trace: j.csv\n"
HEADER = "job_id,submit_time_s,duration_s,num_gpu"
FAULT = "faults:\n  - {name: xid, rate_per_day: 1e9, action: reset_gpu, repair_s: 60, source: test}\n"


def _bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for k in range(1, 8):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]")
    return "\n".join("      " + ln for ln in lines) + "\n"


# (id, scenario text, {file: content}, needles that must all be in the message)
CASES: list[tuple[str, str | bytes, dict[str, str | bytes], list[str]]] = [
    (
        "top-level typo names the typo, not a missing field",
        "name: t\nclustr:\n  pools: []\n" + GEN,
        {},
        ["s.yaml:2", "clustr: unknown field", "did you mean 'cluster'"],
    ),
    (
        "every problem listed",
        "name: t\nseed: -1\n" + POOLS.replace("count: 2", "count: 0") + GEN + "horizon_s: .inf\n",
        {},
        ["3 problems", "s.yaml:2", "seed", "s.yaml:5", "cluster.pools[0].count", "s.yaml:8", "horizon_s", "finite"],
    ),
    ("duplicate keys", "name: t\nname: u\n" + POOLS + GEN, {}, ["s.yaml:2", "duplicate key 'name' (first at line 1)"]),
    (
        "alias bomb under plugin_args",
        "name: t\n" + POOLS + GEN + "scheduler:\n  plugin_args:\n    DRF:\n" + _bomb(),
        {},
        ["s.yaml:", "YAML refused", "aliases are expanded"],
    ),
    ("20,000-deep nesting", "name: t\nx: " + "[" * 20000 + "]" * 20000 + "\n", {}, ["s.yaml:2", "nesting deeper"]),
    ("alias to itself", "name: &a [*a]\n", {}, ["s.yaml:1", "refers to its own anchor"]),
    (
        "typo inside plugin_args",
        "name: t\n" + POOLS + GEN + "scheduler:\n  plugin_args:\n    FGD: {typical_treshold: 0.9}\n",
        {},
        ["s.yaml:9", "scheduler.plugin_args.FGD.typical_treshold: unknown field", "did you mean 'typical_threshold'"],
    ),
    (
        "unknown plugin in plugin_args",
        "name: t\n" + POOLS + GEN + "scheduler:\n  plugin_args:\n    MigFt: {reconfigure: true}\n",
        {},
        ["s.yaml:9", "scheduler.plugin_args.MigFt", "unknown plugin", "did you mean 'MigFit'"],
    ),
    (
        "typo in a score's args",
        "name: t\n" + POOLS + GEN + "scheduler:\n  scores: [{name: TopologyAware, args: {comm_byte: 1}}]\n",
        {},
        ["s.yaml:8", "scheduler.scores[0].args.comm_byte", "did you mean 'comm_bytes'"],
    ),
    ("horizon .inf", "name: t\nhorizon_s: .inf\n" + POOLS + GEN, {}, ["s.yaml:2", "horizon_s", "finite"]),
    (
        "cpu_milli 1e300",
        "name: t\n" + POOLS.replace("cpu_milli: 64000", "cpu_milli: 1.0e+300") + GEN,
        {},
        ["s.yaml:4", "cluster.pools[0].cpu_milli"],
    ),
    (
        "a share above one GPU",
        "name: t\n" + POOLS + GEN.replace("600}", "600, shared_gpu_fraction: 1, shared_gpu_milli: [5000]}"),
        {},
        ["s.yaml:6", "workload.generator.shared_gpu_milli[0]", "less than or equal to 999"],
    ),
    ("a NaN", "name: t\nsample_interval_s: .nan\n" + POOLS + GEN, {}, ["s.yaml:2", "sample_interval_s", "finite"]),
    ("a 5,000-digit integer", "name: t\nseed: " + "9" * 5000 + "\n", {}, ["s.yaml:2", "cannot read the value"]),
    ("an impossible date", "name: 2001-02-30\n", {}, ["s.yaml:1", "cannot read the value"]),
    ("not a mapping", "- a\n- b\n", {}, ["s.yaml", "must be a YAML mapping"]),
    ("latin-1 scenario", "name: caf\xe9\n".encode("latin-1"), {}, ["s.yaml:1", "not UTF-8", "0xe9"]),
    ("UTF-16 without BOM", "name: t\n".encode("utf-16-le"), {}, ["s.yaml:1", "NUL bytes", "UTF-16"]),
    # traces
    (
        "typo'd trace column",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": "job_id,submit_time_s,duration_s,num_gpus\na,0,10,1\n"},
        ["j.csv:1", "unknown column 'num_gpus'", "did you mean 'num_gpu'"],
    ),
    (
        "duplicated trace column",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": "job_id,submit_time_s,duration_s,num_gpu,num_gpu\na,0,10,1,1\n"},
        ["j.csv:1", "column 'num_gpu' appears twice"],
    ),
    (
        "missing trace column",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": "job_id,duration_s,num_gpu\na,10,1\n"},
        ["j.csv:1", "missing column(s) submit_time_s"],
    ),
    (
        "unterminated quote",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f'{HEADER}\na,0,10,1\n"b,1,10,1\nc,2,10,1\n'},
        ["j.csv:3", "unterminated quote"],
    ),
    (
        "quote spanning lines",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f'{HEADER}\na,0,10,"1\n"\nc,2,10,1\n'},
        ["j.csv:2", "spans lines"],
    ),
    (
        "latin-1 trace",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f"{HEADER},owner\na,0,10,1,caf\xe9\n".encode("latin-1")},
        ["j.csv:2", "not UTF-8", "0xe9"],
    ),
    (
        "a non-finite row value",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f"{HEADER}\na,0,inf,1\n"},
        ["j.csv:2", "duration_s", "not finite"],
    ),
    # impossible work
    (
        "MIG profile on no MIG pool",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": "job_id,submit_time_s,duration_s,gpu_model,mig_profile\nok,0,10,,\nm,0,10,A100-80GB,1g.10gb\n"},
        ["j.csv:3", "pod 'm' can never be scheduled", "MIG instance 1g.10gb", "no pool has a mig_layout"],
    ),
    (
        "MIG profile not in any layout",
        "name: t\n" + POOLS + MIG_POOL + TRACE,
        {"j.csv": "job_id,submit_time_s,duration_s,gpu_model,mig_profile\nm,0,10,A100-80GB,7g.80gb\n"},
        ["j.csv:2", "pod 'm'", "which no pool's mig_layout has"],
    ),
    (
        "unmatched node selector",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f"{HEADER},node_selector\na,0,10,1,zone=x\nb,0,10,1,zone=x\n"},
        ["j.csv:2", "pod 'a' can never be scheduled", "node affinity/selector", "also: 'b' (j.csv:3)"],
    ),
    (
        "share above one GPU in a trace",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f"{HEADER},gpu_milli\na,0,10,1,1500\n"},
        ["j.csv:2", "gpu_milli=1500 is out of range"],
    ),
    (
        "more GPUs than any node",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f"{HEADER}\nok,0,10,1\nbig,0,10,9\n"},
        ["j.csv:3", "pod 'big' can never be scheduled", "9 GPU(s)"],
    ),
    (
        "more CPU than any node",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f"{HEADER},cpu_milli\nbig,0,10,1,99999999\n"},
        ["j.csv:2", "pod 'big'", "99999999 mCPU"],
    ),
    # budgets
    (
        "sample_interval_s 1e-6",
        "name: t\nsample_interval_s: 0.000001\n" + POOLS + GEN,
        {},
        ["s.yaml:2", "accounting intervals", "budgeted for 1,000,000", "raise sample_interval_s"],
    ),
    (
        "a submit time of 1e15",
        "name: t\n" + POOLS + TRACE,
        {"j.csv": f"{HEADER}\na,0,10,1\nlate,1e15,10,1\n"},
        ["j.csv:3", "submit_time_s=1e15 is beyond", "100 years"],
    ),
    (
        "fault rate 1e9 per day",
        "name: t\nhorizon_s: 86400\n" + POOLS + GEN + FAULT,
        {},
        ["s.yaml:9", "faults[0].rate_per_day", "events", "lower rate_per_day"],
    ),
    (
        "generator of 50,000,000 jobs",
        "name: t\n" + POOLS + GEN.replace("jobs: 20", "jobs: 50000000"),
        {},
        ["s.yaml:6", "workload.generator.jobs", "50,000,000 pods", "GiB", "lower generator.jobs"],
    ),
]


@pytest.mark.parametrize(("text", "files", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_file_line_and_field(tmp_path, text, files, needles):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    path = tmp_path / "s.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UserError) as e:
        build(*load_scenario(path))
    msg = str(e.value).replace(str(tmp_path) + "/", "")
    for n in needles:
        assert n in msg, msg
    assert "Traceback" not in msg


def test_a_top_level_typo_does_not_also_report_the_missing_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nclustr:\n  pools: []\n" + GEN)
    with pytest.raises(UserErrors) as e:
        load_scenario(path)
    assert len(e.value.problems) == 1 and "Field required" not in str(e.value)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_bom_encoded_scenarios_and_traces_are_read(tmp_path, encoding):
    (tmp_path / "j.csv").write_bytes(f"{HEADER}\na,0,10,1\n".encode(encoding))
    path = tmp_path / "s.yaml"
    path.write_bytes(("name: t\n" + POOLS + TRACE).encode(encoding))
    b = build(*load_scenario(path))
    assert len(b.pods) == 1 and b.pods.num_gpu[0] == 1


def test_impossible_pods_can_be_skipped_and_counted(tmp_path):
    (tmp_path / "j.csv").write_text(f"{HEADER},node_selector\nok,0,10,1,\nno,0,10,1,zone=x\n")
    path = tmp_path / "s.yaml"
    path.write_text("name: t\n" + POOLS + TRACE + "  impossible: skip\n")
    b = build(*load_scenario(path))
    assert b.pods.names == ["ok"] and b.skipped_impossible[0][0] == "no"


def test_mig_reconfiguration_makes_an_unlisted_profile_possible(tmp_path):
    (tmp_path / "j.csv").write_text("job_id,submit_time_s,duration_s,gpu_model,mig_profile\nm,0,10,A100-80GB,7g.80gb\n")
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: t\n" + POOLS + MIG_POOL + TRACE + "scheduler:\n  plugin_args: {MigFit: {reconfigure: true}}\n"
    )
    assert len(build(*load_scenario(path)).pods) == 1


def test_truncated_parquet_trace(tmp_path):
    from gpuinfra.io.traces import read_generic, write_generic

    (tmp_path / "j.csv").write_text(f"{HEADER}\na,0,10,1\n")
    write_generic(read_generic(tmp_path / "j.csv"), tmp_path / "j.parquet")
    data = (tmp_path / "j.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as e:
        read_generic(tmp_path / "t.parquet")
    assert "t.parquet" in str(e.value) and "cannot read Parquet file" in str(e.value)


def test_parquet_trace_with_a_typo_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gpuinfra.io.traces import read_generic

    pq.write_table(
        pa.table({"job_id": ["a"], "submit_time_s": [0.0], "duration_s": [1.0], "num_gpus": [1]}),
        tmp_path / "t.parquet",
    )
    with pytest.raises(UserError) as e:
        read_generic(tmp_path / "t.parquet")
    assert "unknown column 'num_gpus'" in str(e.value) and "did you mean 'num_gpu'" in str(e.value)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("gpu A100-40GB\nproc=B\n", ["m.txt:2", "cannot read 'proc=B'"]),
        ("gpu A100-40GB\nalloc x 1MiB prc=B\n", ["m.txt:2", "unknown option prc="]),
        ("gpu A100-40GB\nfraction nan\n", ["m.txt:2", "fraction"]),
        ("gpu A100-40GB\nother -1 1GiB\n", ["m.txt:2", "bad number"]),
    ],
)
def test_bad_memory_trace_lines(text, needles):
    from gpuinfra.models.memory_trace import parse_trace

    with pytest.raises(UserError) as e:
        parse_trace(text, "m.txt")
    for n in needles:
        assert n in str(e.value)


def test_probe_json_with_text_for_a_number(tmp_path):
    from gpuinfra.io.probe import load_probe, parse_nvidia_smi_probe

    fixture = Path(__file__).parents[1] / "fixtures" / "nvidia-smi-q-a100.txt"
    probe = parse_nvidia_smi_probe(fixture.read_text(), "x")
    probe.save(tmp_path / "p.json")
    assert load_probe(tmp_path / "p.json") == probe
    raw = json.loads((tmp_path / "p.json").read_text())
    raw["devices"][0]["memory_total_mib"] = "eighty"
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(UserError) as e:
        load_probe(tmp_path / "bad.json")
    assert "bad.json (devices[0].memory_total_mib)" in str(e.value) and "'eighty'" in str(e.value)


@pytest.mark.parametrize(
    ("model", "text", "needles"),
    [
        ("Lab4Design", "replicas: four\n", ["d.yaml:1", "replicas", "valid integer", "'four'"]),
        ("Lab4Design", "5\n", ["d.yaml", "a design must be a YAML mapping"]),
        ("Lab4Design", "polcy: mig\nreplicas: 100\n", ["2 problems", "did you mean 'policy'", "d.yaml:2"]),
        ("Lab4Design", "policy: mig\npolicy: mps\n", ["d.yaml:2", "duplicate key 'policy'"]),
        ("Lab6Design", "scheduler:\n  filters: [NodeResourceFit]\n", ["d.yaml:2", "did you mean 'NodeResourcesFit'"]),
        ("Lab6Design", "schedulr: {}\n", ["d.yaml:1", "did you mean 'scheduler'"]),
    ],
)
def test_lab_design_files_get_the_scenario_treatment(tmp_path, model, text, needles):
    from gpuinfra.io import design_schema
    from gpuinfra.io.scenario_load import load_model_file, scheduler_problems

    (tmp_path / "d.yaml").write_text(text)
    with pytest.raises(UserError) as e:
        load_model_file(tmp_path / "d.yaml", getattr(design_schema, model), extra=scheduler_problems, what="a design")
    msg = str(e.value).replace(str(tmp_path) + "/", "")
    for n in needles:
        assert n in msg, msg


def test_the_packaged_lab6_design_validates():
    from gpuinfra.io.design_schema import Lab6Design
    from gpuinfra.io.scenario_load import load_model_file, scheduler_problems
    from gpuinfra.labs.lab6 import DESIGN

    assert load_model_file(DESIGN, Lab6Design, extra=scheduler_problems).scheduler.filters


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_trace_line_numbers_with_any_line_ending(tmp_path, eol):
    from gpuinfra.io.traces import read_generic

    (tmp_path / "j.csv").write_text(eol.join([HEADER, "a,0,10,1", "", "b,1,10,1", ""]), newline="")
    where: dict[str, str] = {}
    assert [p.name for p in read_generic(tmp_path / "j.csv", label="j.csv", where_of=where)] == ["a", "b"]
    assert where == {"a": "j.csv:2", "b": "j.csv:4"}
