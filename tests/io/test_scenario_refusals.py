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
