"""Bad input found by an attacker trial is refused with one message naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.scenario_load import parse_scenario

FIX = Path(__file__).parent.parent / "fixtures" / "atk"
SERVICE = (FIX / "service_load.yaml").read_text()
LOAD = 'offered_rps: 10, source: x, input_tokens: "uniform:50:3"'


def _scenario(load: str) -> str:
    assert LOAD in SERVICE
    return SERVICE.replace(LOAD, load)


@pytest.mark.parametrize(
    ("load", "field", "words"),
    [
        ("offered_rps: .inf, source: x", "offered_rps", "finite"),
        ("offered_rps: 1e308, source: x", "offered_rps", "less than or equal"),
        ("offered_rps: 1, source: x, replica_capacity_rps: .inf, capacity_source: y", "replica_capacity_rps", "finite"),
        ("offered_rps: 1, source: x, replica_capacity_rps: 1e9, capacity_source: y", "replica_capacity_rps", "less"),
        ('offered_rps: 1, source: "  "', "source", "blank"),
        ("offered_rps: 1, source: x, input_tokens: 0", "input_tokens", ">= 1"),
        ('offered_rps: 1, source: x, input_tokens: "uniform:50:3"', "input_tokens", "low end above"),
        ("offered_rps: 1, source: x, input_tokens: 1000000000000", "input_tokens", "context window of 8192"),
        ('offered_rps: 1, source: x, output_tokens: "poisson:3:4"', "output_tokens", "not a token length"),
        ("offered_rps: 1, source: x, model: llama-9", "model", "unknown model"),
        ("offered_rps: 1, source: x, precision: int3", "precision", "bf16"),
        ("offered_rps: 1, source: x, slo_ttft_s: .nan", "slo_ttft_s", "finite"),
        ("offered_rps: 1, source: x, min_replicas: 10000000", "min_replicas", "less"),
    ],
)
def test_service_load_refused_at_load_time(load: str, field: str, words: str) -> None:
    with pytest.raises(UserError) as e:
        parse_scenario(_scenario(load), "c6.yaml")
    msg = str(e.value)
    assert f"c6.yaml:18: execution.kinds[1].load.{field}" in msg
    assert words in msg
    assert "--" not in msg.split("To fix")[0]  # names the file's field, never a CLI flag


def test_service_load_sane_values_load() -> None:
    sc = parse_scenario(
        _scenario('offered_rps: 10, source: x, input_tokens: "uniform:50:300", output_tokens: "lognormal:100:2"'),
        "c6.yaml",
    )
    assert sc is not None
