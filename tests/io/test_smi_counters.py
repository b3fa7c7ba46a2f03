"""Counters of `nvidia-smi -q` are read strictly: a value that is neither a number nor one of
nvidia-smi's placeholders is a UserError naming file:line and field; a placeholder is "not reported"
and listed by `health`, never read as zero errors. A yes/no field with another value is an
``investigate`` finding (never "no")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.health import parse_nvidia_smi_q
from gpuinfra.io.probe import parse_nvidia_smi_probe
from tests.clirunner import gi

FULL = Path(__file__).parents[1] / "fixtures" / "nvidia-smi-q-h100-full.txt"


def _edit(field: str, value: str) -> tuple[str, int]:
    """The fixture with the first line '<spaces>field : v' set to value, and that line's number."""
    lines = FULL.read_text().splitlines()
    for n, line in enumerate(lines, start=1):
        m = re.match(rf"^(\s+{re.escape(field)}\s+:) ", line)
        if m:
            lines[n - 1] = f"{m.group(1)} {value}"
            return "\n".join(lines) + "\n", n
    raise AssertionError(field)


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("DRAM Uncorrectable", "NaN", "ECC Errors/Volatile/DRAM Uncorrectable"),
        ("DRAM Uncorrectable", "abc", "ECC Errors/Volatile/DRAM Uncorrectable"),
        ("DRAM Uncorrectable", "1.5", "ECC Errors/Volatile/DRAM Uncorrectable"),
        ("Uncorrectable Error", "abc", "Remapped Rows/Uncorrectable Error"),
    ],
)
def test_unreadable_counter_or_flag_names_file_line_and_field(field, value, path):
    text, line = _edit(field, value)
    with pytest.raises(UserError) as e:
        parse_nvidia_smi_q(text, "q.txt")
    msg = str(e.value)
    assert f"q.txt:{line}:" in msg and f"'{value}'" in msg, msg
    if path:
        assert path in msg, msg


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("Pending", "maybe", "MIG Mode/Pending"),
        ("Remapping Failure Occurred", "perhaps", "Remapped Rows/Remapping Failure Occurred"),
    ],
)
def test_an_unknown_yes_no_value_is_investigate_never_no(field, value, path):
    # a yes/no value gpuinfra does not know is evidence a person must read (a newer driver may print it)
    text, _ = _edit(field, value)
    inv = [f.source_line for f in parse_nvidia_smi_q(text, "q.txt").findings if f.action == "investigate"]
    assert inv == [f"{path}: {value}"]


def test_a_real_count_is_still_acted_on():
    text, _ = _edit("DRAM Uncorrectable", "5")
    actions = {f.action for f in parse_nvidia_smi_q(text, "q.txt").findings}
    assert "reset_gpu" in actions


@pytest.mark.parametrize("placeholder", ["N/A", "[N/A]", "[Not Supported]", "[Unknown Error]", "[GPU requires reset]"])
def test_a_placeholder_is_not_reported_and_listed(placeholder):
    text, _ = _edit("DRAM Uncorrectable", placeholder)
    d = parse_nvidia_smi_probe(text, "q.txt").devices[0]
    assert d.ecc_volatile_uncorrected is None
    assert d.not_reported["ECC Errors/Volatile/DRAM Uncorrectable"] == placeholder
    ev = parse_nvidia_smi_q(text, "q.txt")
    assert any("ECC Errors/Volatile/DRAM Uncorrectable" in n and placeholder in n for n in ev.unreported)


def test_cli_exit_codes(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(_edit("DRAM Uncorrectable", "NaN")[0])
    r = gi("health", "--nvidia-smi", bad)
    assert r.returncode == 2 and "Traceback" not in r.output and "DRAM Uncorrectable" in r.output, r.output
    na = tmp_path / "na.txt"
    na.write_text(_edit("DRAM Uncorrectable", "[Not Supported]")[0])
    r = gi("health", "--nvidia-smi", na)
    assert r.returncode == 0 and "not reported" in r.output and "[Not Supported]" in r.output, r.output


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and len(("x" + s).splitlines()) == 1))
def test_any_value_is_a_number_a_placeholder_or_a_clear_error(value):
    text, line = _edit("Uncorrectable Error", value)
    try:
        d = parse_nvidia_smi_probe(text, "q.txt").devices[0]
    except UserError as e:
        assert f"q.txt:{line}:" in str(e)
        return
    v = d.remapped_rows_uncorrectable
    assert (v is None and "Remapped Rows/Uncorrectable Error" in d.not_reported) or (
        isinstance(v, int) and v >= 0 and str(v) in value
    )
