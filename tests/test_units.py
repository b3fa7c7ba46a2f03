"""The one parser per kind (gpuinfra.units): closed forms, and fuzzing that any text either parses
or raises UserError (never another exception)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.fill import parse_policies
from gpuinfra.units import (
    BYTE_UNITS,
    MAX_BYTES,
    check_number,
    count_seeds,
    parse_choices,
    parse_seeds,
    parse_size,
    safe_file_name,
    trace_ref,
)


@pytest.mark.parametrize(
    ("text", "n"),
    [("8", 8), ("128K", 128 * 1024), ("64M", 64 * 2**20), ("8G", 8 * 2**30), ("20MiB", 20 * 2**20),
     ("1.5GiB", 3 * 2**29), ("512 bytes", 512), ("1KB", 1024), ("2t", 2 * 2**40)],
)  # fmt: skip
def test_sizes_are_binary_multiples(text, n):
    assert parse_size(text) == n


@given(st.integers(0, 2**40), st.sampled_from(sorted(BYTE_UNITS)))
def test_size_closed_form(n, unit):
    v = n * BYTE_UNITS[unit]
    if v <= MAX_BYTES:
        assert parse_size(f"{n}{unit}") == v
    else:
        with pytest.raises(UserError):
            parse_size(f"{n}{unit}")


@given(st.text(max_size=30))
def test_any_size_text_parses_or_is_a_user_error(text):
    try:
        v = parse_size(text, "--bytes")
    except UserError as e:
        assert "--bytes" in str(e)
    else:
        assert 0 <= v <= MAX_BYTES


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_seed_lists_keep_order_and_drop_duplicates(seeds):
    text = ",".join(map(str, seeds))
    assert parse_seeds(text) == list(dict.fromkeys(seeds))
    assert count_seeds(text) == len(seeds)


@given(st.integers(0, 10**9), st.integers(0, 500))
def test_seed_ranges_are_inclusive(a, n):
    assert parse_seeds(f"{a}-{a + n}") == list(range(a, a + n + 1))


def test_a_huge_seed_range_is_refused_without_being_built():
    assert count_seeds("0-200000000") == 200_000_001
    with pytest.raises(UserError, match="200,000,001 seeds"):
        parse_seeds("0-200000000")


@given(st.text(max_size=30))
def test_any_seed_text_parses_or_is_a_user_error(text):
    try:
        s = parse_seeds(text)
    except UserError:
        return
    assert s and all(x >= 0 for x in s)


@given(st.text(max_size=40))
def test_policy_lists_are_known_names_or_a_user_error(text):
    try:
        ps = parse_policies(text)
    except UserError as e:
        assert "--policy" in str(e)
        return
    assert ps and len(set(ps)) == len(ps)


def test_policy_groups_and_scenario():
    assert parse_policies("paper")[:2] == ["random", "dotprod"]
    assert parse_policies("scenario,fgd", allow_scenario=True) == ["scenario", "fgd"]
    with pytest.raises(UserError, match="unknown policy 'scenario'"):
        parse_policies("scenario")
    with pytest.raises(UserError, match="no policy given"):
        parse_policies("  ")
    with pytest.raises(UserError, match="empty item"):  # never read as "no policy" or the default
        parse_policies(" , ")
    with pytest.raises(UserError, match="Did you mean 'fgd'"):
        parse_policies("fdg")


def test_choices_lower_case_and_dedupe():
    assert parse_choices("A, b,a", ["a", "b"], where="--x") == ["a", "b"]


@given(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30)),
    st.floats(-1e6, 1e6),
    st.floats(0, 1e6),
    st.booleans(),
)
def test_check_number_refuses_exactly_the_non_finite_and_out_of_range(v, lo, width, lo_open):
    hi = lo + width
    inside = math.isfinite(float(v)) if abs(v) < 1e300 else False
    inside = inside and (v > lo if lo_open else v >= lo) and v <= hi
    try:
        check_number(v, "--v", lo=lo, hi=hi, lo_open=lo_open)
    except UserError as e:
        assert not inside and "--v" in str(e)
    else:
        assert inside


@given(st.text(max_size=60))
def test_safe_file_names_are_one_harmless_component(text):
    name = safe_file_name(text)
    assert name and "/" not in name and "\\" not in name and not name.startswith(".") and len(name) <= 100


def test_trace_refs():
    assert trace_ref("openb:default") == ("default", None)
    name, path = trace_ref("jobs.csv")
    assert name is None and str(path) == "jobs.csv"


@pytest.mark.parametrize(
    ("text", "item"), [(",", "item 1 of 2"), ("a,,b", "item 2 of 3"), ("a,", "item 2 of 2"), (",,,", "")]
)
def test_an_empty_list_item_is_refused_never_skipped(text, item):
    from gpuinfra.units import parse_names

    with pytest.raises(UserError, match="--x: .*empty item") as e:
        parse_names(text, "--x")
    assert item in str(e.value)
    with pytest.raises(UserError, match="--y: .*empty item"):
        parse_choices(text.replace("a", "fgd").replace("b", "fgd"), ["fgd"], where="--y")
    assert parse_names("  ", "--x") == [] and parse_names(" a , b ", "--x") == ["a", "b"]


def test_cli_lists_with_empty_items_exit_2(tmp_path):
    from tests.clirunner import gi

    r = gi("mig", "fit", "H100-SXM", "--want", "1g.10gb", "--have", ",,,")
    assert r.returncode == 2 and "--have" in r.output and "empty item" in r.output, r.output
    for layout in (",", "", "3g.40gb,,3g.40gb"):
        r = gi("export", "sharing", "--layout", layout, "-o", tmp_path / "sh")
        assert r.returncode == 2 and "--layout" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "sh").exists()
    r = gi("mig", "fit", "H100-SXM", "--want", "1g.10gb", "--have", "")  # no instances: still the empty GPU
    assert r.returncode == 0, r.output
