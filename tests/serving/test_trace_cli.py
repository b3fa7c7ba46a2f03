"""Request traces (parser, hypothesis) and the serving commands as a user runs them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpuinfra.cli import app
from gpuinfra.errors import UserError
from gpuinfra.io.serving_trace import parse_request_trace

runner = CliRunner()


def test_trace_sorted_and_shifted_with_vidur_column_names():
    r = parse_request_trace("arrived_at,num_prefill_tokens,num_decode_tokens\n5.0,100,10\n3.5,20,2\n")
    assert list(r.arrival_s) == [0.0, 1.5]
    assert list(r.prompt) == [20, 100] and list(r.output) == [2, 10]


def test_trace_row_without_lengths_names_the_line():
    with pytest.raises(UserError, match=r"t.csv:3.*no output_tokens"):
        parse_request_trace("arrival_s,prompt_tokens,output_tokens\n0,10,5\n1,10,\n", "t.csv")
    with pytest.raises(UserError, match="no column for output_tokens"):
        parse_request_trace("arrival_s,prompt_tokens\n0,10\n", "t.csv")
    with pytest.raises(UserError, match="whole number"):
        parse_request_trace("arrival_s,prompt_tokens,output_tokens\n0,10.5,5\n", "t.csv")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6), st.text(max_size=6)), min_size=1, max_size=6))
def test_trace_parser_never_crashes(rows):
    text = "arrival_s,prompt_tokens,output_tokens\n" + "\n".join(
        ",".join(c.replace(",", "").replace("\n", "").replace("\r", "").replace('"', "") for c in r) for r in rows
    )
    try:
        r = parse_request_trace(text)
    except UserError:
        return
    assert (r.prompt >= 1).all() and (r.output >= 1).all() and (r.arrival_s >= 0).all()


def test_step_command_json_breakdown():
    res = runner.invoke(
        app,
        ["serving", "step", "--model", "llama-2-7b", "--gpu", "A100-80GB", "--batch-tokens", "128", "--phase",
         "decode", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    parts = {k for k in d["breakdown_ms"] if k.endswith("_ms")}
    assert {"linear_ms", "attention_decode_ms", "communication_ms", "overhead_ms", "total_ms"} <= parts
    assert d["step_ms"] == pytest.approx(
        sum(v for k, v in d["breakdown_ms"].items() if k.endswith("_ms") and k != "total_ms")
    )


def test_run_command_saturated_and_trace(tmp_path):
    res = runner.invoke(
        app,
        ["serving", "run", "--model", "llama-3-8b", "--gpu", "H100-SXM", "--precision", "fp8", "--replicas", "2",
         "--rate", "inf", "--requests", "50", "--input-tokens", "1000", "--output-tokens", "100", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["completed"] == 50 and d["invariants"]["ok"] and d["throughput_tok_s"] > 0
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens\n0,100,10\n0.5,200,20\n")
    res = runner.invoke(app, ["serving", "run", "--trace", str(p), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["completed"] == 2


def test_models_command():
    res = runner.invoke(app, ["serving", "models", "--json"])
    assert res.exit_code == 0 and len(json.loads(res.output)) >= 12


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--model", "lama-3-8b"], "Did you mean 'llama-3-8b'"),
        (["--gpu", "H100-SXN"], "Did you mean"),
        (["--model", "llama-3-70b", "--gpu", "A100-80GB"], "short by"),
    ],
)
def test_bad_input_exits_2_with_one_message(args, msg):
    import os
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "serving", "run", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=120,
    )
    assert r.returncode == 2
    assert msg in r.stderr and "Traceback" not in r.stderr


def test_step_says_when_the_model_does_not_fit():
    res = runner.invoke(app, ["serving", "step", "--model", "llama-3.1-405b", "--gpu", "H100-SXM", "--tp", "8"])
    assert res.exit_code == 0 and "does not fit" in res.output and "short by" in res.output


def test_trace_comment_lines_keep_line_numbers():
    text = "# source: synthetic\narrival_s,prompt_tokens,output_tokens\n0,10,5\n1,10,\n"
    with pytest.raises(UserError, match=r"t.csv:4"):
        parse_request_trace(text, "t.csv")


def test_the_serving_example_runs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "serving_with_training.py"
    spec = importlib.util.spec_from_file_location("serving_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main()
    assert out["invariants_ok"] and out["completed"] == out["requests"]
    assert out["retried"] > 0 and out["replicas_started"] > 3  # the evicted replica came back
