"""`gpuinfra precision | rollout | security`: real invocations, JSON output, bad input exit 2."""

import json
from pathlib import Path

import pytest

from tests.test_cli import gi

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "security" / "shared-inference.yaml")


def test_precision_table_json_and_accuracy():
    r = gi("precision", "table", "--gpu", "H100-SXM", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["precision"] for x in rows] == ["fp32", "bf16", "fp8", "int8", "int4"]
    r = gi("precision", "accuracy")
    assert r.returncode == 0 and "Q4_K_M" in r.stdout


def test_rollout_run_and_compare():
    r = gi("rollout", "run", "--strategy", "bluegreen", "--failure", "tokenizer", "--hours", "1", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["summary"]["peak_gpus"] == 16 and d["invariants"]["ok"]
    r = gi("rollout", "compare", "--failure", "none")
    assert r.returncode == 0 and "bluegreen" in r.stdout


def test_security_commands():
    assert "Behind Bars" in gi("security", "isolation").stdout
    r = gi("security", "blast", EXAMPLE, "--endpoint", "chat-public", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["secrets"] >= 2
    r = gi("security", "abuse", "--rate-rps", "0.5", "--burst", "10", "--json")
    assert r.returncode == 0 and set(json.loads(r.stdout)) == {"no guardrails", "with guardrails"}


@pytest.mark.parametrize(
    "args,needle",
    [
        (["rollout", "run", "--failure", "tok"], "Did you mean 'tokenizer'"),
        (["rollout", "run", "--strategy", "blue"], "unknown rollout strategy"),
        (["precision", "table", "--model", "llama-3-8b"], "Did you mean 'Llama-3-8B'"),
        (["security", "blast", EXAMPLE, "--endpoint", "chat"], "no workload 'chat'"),
        (["security", "abuse", "--burst", "3"], "needs both rate_rps and burst"),
        (["security", "blast", "/nonexistent.yaml", "--endpoint", "x"], "nonexistent"),
    ],
)
def test_bad_input_exit_2_one_message(args, needle):
    r = gi(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr
