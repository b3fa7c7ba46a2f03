"""Integer trace columns are parsed exactly and bounded (io/traces.py: parse_int, INT_RANGES)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.traces import INT_RANGES, PRIORITY_MAX, PRIORITY_MIN, parse_int, read_generic, write_generic

HEADER = "job_id,submit_time_s,duration_s,num_gpu,priority,cpu_milli,memory_mib\n"


@given(col=st.sampled_from(sorted(INT_RANGES)), v=st.integers(-(10**40), 10**40))
def test_property_integers_are_exact_and_bounded(col: str, v: int) -> None:
    lo, hi = INT_RANGES[col]
    if lo <= v <= hi:
        assert parse_int(str(v), col, "t.csv:2", lo, hi) == v
        assert parse_int(f"{v}.0", col, "t.csv:2", lo, hi) == v
    else:
        with pytest.raises(UserError) as e:
            parse_int(str(v), col, "t.csv:2", lo, hi)
        assert str(e.value).startswith(f"t.csv:2 ({col}): {col}={v} is out of range [{lo}, {hi}]")


@given(raw=st.text(max_size=30))
def test_property_any_text_is_an_exact_integer_or_one_user_error(raw: str) -> None:
    raw = raw.strip()
    try:
        v = parse_int(raw, "priority", "t.csv:2", PRIORITY_MIN, PRIORITY_MAX)
    except UserError as e:
        assert str(e).startswith("t.csv:2 (priority): ")
        return
    assert Decimal(raw) == v and PRIORITY_MIN <= v <= PRIORITY_MAX


@pytest.mark.parametrize(
    ("cells", "needle"),
    [
        (
            "1,9223372036854775807,0,0",
            "(priority): priority=9223372036854775807 is out of range [-2147483648, 1000000000]",
        ),
        ("1,99999999999999999999999,0,0", "(priority): priority=99999999999999999999999 is out of range"),
        ("1,1000000001,0,0", "priority=1000000001 is out of range"),
        ("1,-2147483649,0,0", "priority=-2147483649 is out of range"),
        ("1,0,1e30,0", "(cpu_milli): cpu_milli=1e30 is out of range [0, 100000000]"),
        ("1,0,0,1e30", "(memory_mib): memory_mib=1e30 is out of range [0, 1073741824]"),
        ("1,1e999999999,0,0", "priority=1e999999999 is out of range"),
        ("1,5.5,0,0", "priority='5.5' is not an integer"),
        ("1,1_000,0,0", "priority='1_000' is not an integer"),
    ],
)
def test_csv_integer_out_of_range_names_file_line_column(tmp_path: Path, cells: str, needle: str) -> None:
    p = tmp_path / "t.csv"
    p.write_text(HEADER + f"j2,10,1000,{cells}\n")
    with pytest.raises(UserError) as e:
        read_generic(p, "t.csv")
    assert str(e.value).startswith("t.csv:2 (")
    assert needle in str(e.value)


def test_csv_bounds_are_inclusive_and_exact(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(HEADER + f"a,1,10,1,{PRIORITY_MAX},100000000,1073741824\nb,2,10,1,{PRIORITY_MIN},1e3,2048.0\n")
    a, b = read_generic(p, "t.csv")
    assert (a.priority, a.cpu_milli, a.memory_mib) == (PRIORITY_MAX, 100_000_000, 1 << 30)
    assert (b.priority, b.cpu_milli, b.memory_mib) == (PRIORITY_MIN, 1000, 2048)


@pytest.mark.parametrize(
    ("col", "arr", "needle"),
    [
        ("priority", pa.array([2**63 - 1], pa.int64()), "t.parquet:1 (priority): priority=9223372036854775807"),
        ("cpu_milli", pa.array([1e30], pa.float64()), "t.parquet:1 (cpu_milli): cpu_milli=1e+30 is out of range"),
        ("memory_mib", pa.array([2.5], pa.float64()), "t.parquet:1 (memory_mib): memory_mib='2.5' is not an integer"),
    ],
)
def test_parquet_integer_columns_bounded(tmp_path: Path, col: str, arr: pa.Array, needle: str) -> None:
    p = tmp_path / "t.parquet"
    base = {"job_id": ["a"], "submit_time_s": [1.0], "duration_s": [5.0], "num_gpu": [1]}
    pq.write_table(pa.table(base | {col: arr}), p)
    with pytest.raises(UserError) as e:
        read_generic(p, "t.parquet")
    assert needle in str(e.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prio=st.integers(PRIORITY_MIN, PRIORITY_MAX), suffix=st.sampled_from([".csv", ".parquet"]))
def test_property_priority_round_trips_exactly(tmp_path: Path, prio: int, suffix: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(HEADER + f"a,1,10,1,{prio},0,0\n")
    out = tmp_path / f"out{suffix}"
    write_generic(read_generic(src), out)
    assert read_generic(out)[0].priority == prio
