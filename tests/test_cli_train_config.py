"""`gpuinfra precision train`: every precision of one training config; refusals and bad input."""

import json

import pytest

from tests.test_cli import gi


def test_precision_train_json_every_precision():
    r = gi("precision", "train", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    rows = {x["precision"]: x for x in d["rows"]}
    assert list(rows) == ["fp32", "bf16", "fp16", "fp8"]
    assert (
        rows["fp8"]["step"]["tokens_per_s"]
        > rows["bf16"]["step"]["tokens_per_s"]
        > rows["fp32"]["step"]["tokens_per_s"]
    )
    assert rows["fp16"]["stability"]["scaling"] == "dynamic loss scaling"


def test_precision_train_refuses_fp8_on_a100_in_its_row():
    r = gi("precision", "train", "--node", "dgx-a100", "--zero", "3")
    assert r.returncode == 0, r.stderr
    assert "no FP8 tensor cores" in r.stdout


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--zero", "5"], "--zero"),
        (["--recompute", "some"], "--recompute"),
        (["--tp", "3"], "--tp"),
        (["--model", "nope"], "--model"),
        (["--efficiency", "0"], "--efficiency"),
    ],
)
def test_precision_train_bad_input_exit_2(args, msg):
    r = gi("precision", "train", *args)
    assert r.returncode == 2 and msg in r.output and "Traceback" not in r.output
