"""Scenario blocks that were silently accepted are refused at FILE:LINE (attacker trial, h34)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.scenario_build import build
from gpuinfra.io.scenario_load import parse_scenario
from gpuinfra.sim.execution import ExecutionSpec, KindSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXECUTION = (EXAMPLES / "execution.yaml").read_text()
SERVICE = "- {owner: service, kind: service"


def _build(text: str, label: str = "e.yaml"):
    return build(parse_scenario(text, label), EXAMPLES)


def test_two_kinds_for_one_owner_name_both_entries() -> None:
    with pytest.raises(UserError) as e:
        _build(EXECUTION.replace(SERVICE, "- {owner: training, kind: service"))
    msg = str(e.value)
    assert msg.startswith("e.yaml:27 (execution.kinds[2].owner): execution.kinds[2] gives owner 'training' again")
    assert "execution.kinds[0] (e.yaml:25) already does" in msg


def test_duplicate_owner_refused_by_the_subsystem_for_runs_built_in_code() -> None:
    spec = ExecutionSpec(kinds=[KindSpec(owner="a", kind="batch"), KindSpec(owner="a", kind="service")])
    assert spec.duplicate_owners() == [(0, 1)]


def test_kind_for_an_owner_no_pod_has_is_refused_with_the_owners_that_exist() -> None:
    with pytest.raises(UserError) as e:
        _build(EXECUTION.replace(SERVICE, "- {owner: servic, kind: service"))
    msg = str(e.value)
    assert msg.startswith("e.yaml:27 (execution.kinds[2].owner): no pod of the workload has owner 'servic'")
    assert "batch, service, training" in msg and "did you mean 'service'" in msg


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("load_gb", ".inf", "finite"),
        ("image_gb", "1.0e300", "less than or equal to 1000000"),
        ("checkpoint_stall_s", "1.0e300", "less than or equal to 10000000000"),
        ("warmup_s", "1.0e300", "less than or equal to 10000000000"),
        ("teardown_s", ".nan", "finite"),
    ],
)
def test_kind_numbers_are_finite_and_bounded(field: str, value: str, words: str) -> None:
    line = next(x for x in EXECUTION.splitlines() if "{owner: training" in x)
    text = EXECUTION.replace(line, f"    - {{owner: training, kind: training, {field}: {value}}}")
    with pytest.raises(UserError) as e:
        parse_scenario(text, "e.yaml")
    msg = str(e.value)
    assert f"e.yaml:25: execution.kinds[0].{field}" in msg and words in msg


# --- strict integers ---------------------------------------------------------------------------

SMALL = (EXAMPLES / "small-cluster.yaml").read_text()
H100_COUNT = 'shape: "aws:p5.48xlarge", count: 1,'


@pytest.mark.parametrize("value", ["true", '"2"', "2.0", "false"])
def test_integer_fields_are_strict(value: str) -> None:
    with pytest.raises(UserError) as e:
        parse_scenario(SMALL.replace(H100_COUNT, f'shape: "aws:p5.48xlarge", count: {value},'), "s.yaml")
    assert "s.yaml:8: cluster.pools[0].count: Input should be a valid integer" in str(e.value)


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("workload:\n  trace: jobs.csv\n  limit: true\n", "workload.limit"),
        ("workload:\n  trace: jobs.csv\n  scale: '3'\n", "workload.scale"),
    ],
)
def test_workload_integers_are_strict(block: str, field: str) -> None:
    with pytest.raises(UserError) as e:
        parse_scenario(SMALL.replace("workload:\n  trace: jobs.csv\n", block), "s.yaml")
    assert f": {field}: Input should be a valid integer" in str(e.value)


def test_yaml_integers_still_load() -> None:
    sc = parse_scenario(SMALL.replace(H100_COUNT, 'shape: "aws:p5.48xlarge", count: 3,'), "s.yaml")
    assert sc.cluster.pools[0].count == 3


# --- spot notices ------------------------------------------------------------------------------

SPOT = (EXAMPLES / "spot.yaml").read_text()


def _spot(notices: str) -> str:
    return SPOT.replace("  notice_s: 120\n", f"  notice_s: 120\n  notices: {notices}\n")


def test_spot_notice_after_the_horizon_is_refused_at_its_line() -> None:
    with pytest.raises(UserError) as e:
        _build(_spot("[{node: gpu-spot-0000, t_s: 300000}]"), "s.yaml")
    msg = str(e.value)
    assert msg.startswith("s.yaml:34 (spot.notices[0].t_s): the notice at 300000 s is at or after the run's horizon_s")
    assert "(259200 s, s.yaml:7)" in msg


def test_spot_notice_beyond_the_time_bound_is_refused_when_loaded() -> None:
    with pytest.raises(UserError) as e:
        parse_scenario(_spot("[{node: gpu-spot-0000, t_s: 1.0e12}]"), "s.yaml")
    assert "s.yaml:34: spot.notices[0].t_s: Input should be less than or equal to 10000000000" in str(e.value)


def test_duplicate_and_unknown_notices_listed_with_file_line_and_no_repeated_prefix() -> None:
    with pytest.raises(UserError) as e:
        _build(
            _spot("[{node: gpu-spot-0001, t_s: 100}, {node: gpu-spot-0001, t_s: 100}, {node: nope, t_s: 5}]"), "s.yaml"
        )
    msg = str(e.value)
    assert "s.yaml:34 (spot.notices[1]): spot.notices[1] repeats spot.notices[0] (s.yaml:34)" in msg
    assert "s.yaml:34 (spot.notices[2].node): node 'nope' is not a node of a spot pool" in msg
    assert "spot.notices[2]: node" not in msg


def test_notices_before_the_horizon_build() -> None:
    built = _build(_spot("[{node: gpu-spot-0001, t_s: 100}, {node: gpu-spot-0001, t_s: 200}]"), "s.yaml")
    assert len(built.scenario.spot.notices) == 2


# --- messages ----------------------------------------------------------------------------------


def test_missing_trace_names_the_scenario_line_and_the_resolved_path(tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        build(parse_scenario(SMALL.replace("trace: jobs.csv", "trace: nope.csv"), "s.yaml"), tmp_path)
    msg = str(e.value)
    assert msg.startswith("s.yaml:13 (workload.trace): trace file 'nope.csv' not found")
    assert f"looked for {(tmp_path / 'nope.csv').resolve()} (relative to the scenario's folder)" in msg


@pytest.mark.parametrize(
    ("old", "new", "start", "words"),
    [
        ("cloud: aws", "cloud: awz", "s.yaml:20 (prices.cloud): unknown cloud 'awz'", "did you mean 'aws'"),
        ("region: us-east-1", "region: mars-1", "s.yaml:21 (prices.region): unknown region 'mars-1'", "us-west-2"),
        ("region: us-east-1", "region: eu-north-1", "s.yaml:21 (prices.region): no catalog price for", "aws/us-east-1"),
    ],
)
def test_bad_price_filter_names_its_line(old: str, new: str, start: str, words: str) -> None:
    with pytest.raises(UserError) as e:
        _build(SMALL.replace(old, new), "s.yaml")
    assert str(e.value).startswith(start) and words in str(e.value)


@pytest.mark.parametrize("value", ["true", "2.0"])
def test_service_token_counts_are_not_coerced(value: str) -> None:
    text = (Path(__file__).parent.parent / "fixtures" / "atk" / "service_load.yaml").read_text()
    text = text.replace('input_tokens: "uniform:50:3"', f"input_tokens: {value}")
    with pytest.raises(UserError) as e:
        parse_scenario(text, "c6.yaml")
    assert str(e.value).startswith("c6.yaml:18: execution.kinds[1].load.input_tokens: expected a token")


def test_a_spot_pool_listed_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    import shutil

    import yaml

    ex = Path(__file__).resolve().parents[2] / "examples"
    d = yaml.safe_load((ex / "spot.yaml").read_text())
    d["spot"]["pools"] = d["spot"]["pools"] * 2  # its nodes would draw reclaims twice
    for f in ex.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    p = tmp_path / "dup.yaml"
    p.write_text(yaml.safe_dump(d))
    from gpuinfra import api

    with pytest.raises(UserError, match=r"listed twice \(spot.pools\[0\] and spot.pools\[1\]\)"):
        api.simulate(api.scenario(p))


def test_the_autoscaler_provision_timeout_message_shows_the_values() -> None:
    from gpuinfra.sim.autoscaler import AutoscalerSpec

    with pytest.raises(Exception, match=r"provision_s 300 s exceeds max_node_provision_time_s 100 s"):
        AutoscalerSpec(node_groups=[{"pool": "burst", "max_nodes": 2}], provision_s=300, max_node_provision_time_s=100)
