"""Bounds rounded in the safe direction, plurals and signed money (gpuinfra.report.wording)."""

import math

from hypothesis import given
from hypothesis import strategies as st

from gpuinfra.report.wording import ceil_num, ceil_pct, count, floor_num, floor_pct, readable_label, usd_signed

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(finite, st.integers(min_value=0, max_value=3))
def test_floor_is_a_lower_bound_within_one_step(x, nd):
    shown = float(floor_num(x, nd).replace(",", ""))
    assert shown <= x or math.isclose(shown, x, rel_tol=1e-15, abs_tol=1e-12)
    assert x - shown < 10**-nd + 1e-6


@given(finite, st.integers(min_value=0, max_value=3))
def test_ceil_is_an_upper_bound_within_one_step(x, nd):
    shown = float(ceil_num(x, nd).replace(",", ""))
    assert shown >= x or math.isclose(shown, x, rel_tol=1e-15, abs_tol=1e-12)
    assert shown - x < 10**-nd + 1e-6


def test_the_lab3_case_and_exact_decimals():
    # f41's lowest compute-heavy efficiency: nearest rounding says 100%, a lower bound must not
    assert f"{0.9955957:.0%}" == "100%"
    assert floor_pct(0.9955957) == "99%"
    assert floor_pct(0.9955957, 1) == "99.5%"
    assert floor_pct(0.995, 1, " ") == "99.5 %"  # an exactly representable-looking decimal is not floored below itself
    assert ceil_pct(0.12341, 1) == "12.4%"
    assert floor_num(1234.56, 1) == "1,234.5"


def test_count_and_plural():
    assert count(1, "pod") == "1 pod"
    assert count(0, "pod") == "0 pods"
    assert count(1204, "pod") == "1,204 pods"
    assert count(2, "GPU-hour") == "2 GPU-hours"


@given(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False))
def test_signed_usd_puts_the_sign_before_the_dollar_and_never_shows_minus_zero(x):
    text = usd_signed(x)
    assert "$-" not in text and "-$0" not in text and "+$0" not in text
    value = float(text.replace("$", "").replace(",", "").replace("+", ""))
    assert abs(value - x) <= 0.5 + 1e-9
    if text.startswith("-"):
        assert x < 0
    if text.startswith("+"):
        assert x > 0


def test_internal_names_read_as_words():
    for name in ("__idle__", "over_provisioned", "failure_waste"):
        assert "_" not in readable_label(name)
    assert readable_label("team-a") == "team-a"


def test_trim_and_no_minus_zero():
    assert ceil_num(8 / 3, 2, trim=True) == "2.67"
    assert ceil_num(2.0, 2, trim=True) == "2"
    assert ceil_num(-0.2) == "0"


def test_compare_table_shows_one_decimal_unless_policies_need_more():
    """ "33.372%" in a table where one decimal tells the policies apart; three only when they would tie."""
    from gpuinfra.report.tables import compare_replay_rows
    from gpuinfra.report.wording import decimals_to_tell_apart

    def table(*ratios):
        base = {"mean_unallocated_gpus": 1.0, "mean_fragmented_gpus": 1.0, "wait_s": {"p90": 0}, "pending_at_end": 0}
        return {f"p{i}": {**base, "allocation_ratio": r, "idle_usd": 0} for i, r in enumerate(ratios)}

    assert [r[1] for r in compare_replay_rows(table(0.33372, 0.41))] == ["33.4", "41.0"]
    assert [r[1] for r in compare_replay_rows(table(0.33372, 0.33371))] == ["33.372", "33.371"]
    for vals in ([33.372, 41.0], [33.372, 33.371], [1.04, 1.06, 2.0]):
        d = decimals_to_tell_apart(vals)
        assert len({f"{v:.{d}f}" for v in vals}) == len(set(vals))
        assert d == 1 or len({f"{v:.{d - 1}f}" for v in vals}) < len(set(vals))
