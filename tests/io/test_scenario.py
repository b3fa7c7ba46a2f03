import json

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.scenario import Scenario, build, builtin_scenarios, default_scenario_text, parse_scenario

GOOD = """\
name: t
seed: 3
cluster:
  pools:
    - {name: a, gpu_model: A100-80GB, gpus_per_node: 8, cpu_milli: 64000, memory_mib: 524288, count: 2}
    - {name: p5, shape: "aws:p5.48xlarge", count: 1, taints: [{key: nvidia.com/gpu, value: present}]}
workload:
  generator: {jobs: 50, arrival_rate_per_hour: 60, duration_median_s: 600}
"""


def test_good_scenario_builds():
    sc = parse_scenario(GOOD, "t.yaml")
    b = build(sc, None)
    assert b.cluster.n_nodes == 3 and b.cluster.n_gpus == 24
    assert len(b.pods) == 50
    assert b.cluster.models == ("A100-80GB", "H100-SXM")
    assert b.cluster.node_taints(2)[0].key == "nvidia.com/gpu"
    # GPU Feature Discovery's label: the NVML name of an H100 SXM ("NVIDIA H100 80GB HBM3", the
    # published nvidia-smi output in tests/fixtures/smi) with blanks turned into dashes
    assert dict(b.cluster.pools[1].labels)["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert b.prices.usd_per_gpu_hour["H100-SXM"] > 0


def test_builtin_scenarios_validate():
    assert {"openb-default", "openb-raw"} <= set(builtin_scenarios())
    sc = parse_scenario(default_scenario_text(), "default")
    assert sc.cluster.openb == "gpu_node" and sc.workload.generator is not None and sc.horizon_s
    from gpuinfra.io.scenario import builtin_scenario_text

    raw = parse_scenario(builtin_scenario_text("openb-raw"), "openb-raw")
    assert raw.cluster.openb == "gpu_node" and raw.workload.trace == "openb:default"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("name: t\ncluster: [\n", ["t.yaml:3:1", "YAML syntax error"]),
        (GOOD.replace("count: 2}", "count: 0}"), ["t.yaml:5", "cluster.pools[0].count", "greater than or equal to 1"]),
        (GOOD.replace("seed: 3", "seed: 3\nsede: 4"), ["t.yaml:3", "sede: unknown field"]),
        (
            GOOD.replace("gpu_model: A100-80GB", "gpu_model: A100-80"),
            ["cluster.pools[0].gpu_model", "unknown GPU model 'A100-80'"],
        ),
        (
            GOOD.replace('shape: "aws:p5.48xlarge"', 'shape: "aws:p5.8xlarge"'),
            ["cluster.pools[1].shape", "unknown node shape"],
        ),
        (
            GOOD.replace("  generator:", "  trace: x.csv\n  generator:"),
            ["workload", "exactly one of 'trace' or 'generator'"],
        ),
        ("- a\n- b\n", ["must be a YAML mapping"]),
    ],
)
def test_bad_scenarios_name_file_line_and_field(text, needles):
    with pytest.raises(UserError) as e:
        build(parse_scenario(text, "t.yaml"), None)
    msg = str(e.value)
    for n in needles:
        assert n in msg, msg


def test_impossible_request_is_an_error_or_counted_skip(tmp_path):
    trace = tmp_path / "j.csv"
    trace.write_text("job_id,submit_time_s,duration_s,num_gpu\nok,0,10,1\nhuge,1,10,16\n")
    text = GOOD.split("workload:")[0] + f"workload:\n  trace: {trace}\n"
    with pytest.raises(UserError) as e:
        build(parse_scenario(text, "t.yaml"), None)
    assert "pod 'huge' can never be scheduled: asks for 16 GPU(s)" in str(e.value)
    b = build(parse_scenario(text + "  impossible: skip\n", "t.yaml"), None)
    assert len(b.pods) == 1 and b.skipped_impossible[0][0] == "huge"


def test_trace_path_is_relative_to_the_scenario_file(tmp_path):
    from gpuinfra.io.scenario import load_scenario

    (tmp_path / "j.csv").write_text("job_id,submit_time_s,duration_s,num_gpu\na,0,10,1\n")
    f = tmp_path / "s.yaml"
    f.write_text(GOOD.split("workload:")[0] + "workload:\n  trace: j.csv\n")
    sc, base = load_scenario(f)
    assert len(build(sc, base).pods) == 1


def test_json_schema_is_published():
    schema = Scenario.model_json_schema()
    assert {"cluster", "workload", "scheduler", "prices", "seed"} <= set(schema["properties"])
    json.dumps(schema)


def test_price_override_same_as_and_number():
    text = (
        GOOD
        + """prices:
  overrides:
    A100-80GB: {on_demand_usd_per_gpu_hour: 1.5, source: "our contract"}
"""
    )
    b = build(parse_scenario(text, "t.yaml"), None)
    assert b.prices.usd_per_gpu_hour["A100-80GB"] == 1.5
    assert "our contract" in b.prices.sources["A100-80GB"]


def test_quotas_section_enables_the_kueue_filter(tmp_path):
    text = (
        GOOD
        + """quotas:
  queues:
    - {name: team-a, cohort: shared, nominal_gpus: 8, borrowing_limit_gpus: 4}
    - {name: team-b, cohort: shared, nominal_gpus: 16}
"""
    )
    b = build(parse_scenario(text, "t.yaml"), None)
    assert "KueueQuota" in b.profile.filters
    assert b.profile.plugin_args["KueueQuota"]["queues"][0]["borrowing_limit_gpus"] == 4
    dup = GOOD + "quotas:\n  queues:\n    - {name: x, nominal_gpus: 1}\n    - {name: x, nominal_gpus: 2}\n"
    with pytest.raises(UserError, match="queue names must be unique"):
        parse_scenario(dup, "t.yaml")


def test_faults_section_runs_and_reports():
    from gpuinfra.io.scenario import builtin_scenario_text
    from gpuinfra.run import simulate

    sc = parse_scenario(builtin_scenario_text("synthetic-small"), "builtin")
    assert [f.name for f in sc.faults] == ["gpu-fault", "host-or-network-fault"]
    fast = parse_scenario(
        builtin_scenario_text("synthetic-small").replace("rate_per_day: 2.8e-4", "rate_per_day: 0.05"), "builtin"
    )
    out = simulate(fast, None)
    f = out.summary["faults"]
    assert f["by_class"]["gpu-fault"] > 0 and f["events"] >= f["by_class"]["gpu-fault"]
    assert out.summary["invariants"]["gpu_time_balance"]["ok"]
    assert out.summary["gpu_time"]["unavailable_gpu_hours"] > 0
    bad = GOOD + "faults:\n  - {name: x, rate_per_day: 1, action: explode, repair_s: 1, source: s}\n"
    with pytest.raises(UserError, match="faults"):
        parse_scenario(bad, "t.yaml")


def test_scenario_module_keeps_its_public_names():
    import gpuinfra.io.scenario as sc
    from gpuinfra.io import scenario_build, scenario_load, scenario_schema

    for name in sc.__all__:
        assert getattr(sc, name) is not None
    assert sc.Scenario is scenario_schema.Scenario
    assert sc.parse_scenario is scenario_load.parse_scenario and sc.build is scenario_build.build
