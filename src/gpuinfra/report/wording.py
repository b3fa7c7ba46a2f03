"""Small wording helpers for computed sentences: bounds rounded in the safe direction, plurals,
signed money, readable labels for internal names.

A sentence that states a bound ("at least 99.5 %", "at most $1,204") must stay true after the
number is rounded for display: a lower bound is floored to the shown precision, an upper bound
is ceiled. Rounding to nearest can turn 0.9956 into "at least 100 %", which the data contradicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

__all__ = [
    "ceil_num",
    "ceil_pct",
    "count",
    "decimals_to_tell_apart",
    "floor_num",
    "floor_pct",
    "plural",
    "readable_label",
    "usd_signed",
]


def _round(x: float, decimals: int, mode: str) -> Decimal:
    # Decimal(repr(x)) is the shortest decimal that round-trips to x, so 0.995 floors to 0.995 and not to
    # 0.99499999... (the binary value); the result is still a true bound of the number the reader was given.
    return Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-decimals), rounding=mode)


def _text(d: Decimal, decimals: int, thousands: bool, trim: bool) -> str:
    text = f"{d:,.{decimals}f}" if thousands else f"{d:.{decimals}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def floor_num(x: float, decimals: int = 0, *, thousands: bool = True, trim: bool = False) -> str:
    """``x`` rounded down (towards -inf) to ``decimals`` places, as text ("1,234.5"): for "at least" bounds.
    ``trim`` drops trailing zeros ("2.50" -> "2.5")."""
    return _text(_round(x, decimals, ROUND_FLOOR), decimals, thousands, trim)


def ceil_num(x: float, decimals: int = 0, *, thousands: bool = True, trim: bool = False) -> str:
    """``x`` rounded up (towards +inf) to ``decimals`` places, as text: for "at most" / "up to" bounds."""
    return _text(_round(x, decimals, ROUND_CEILING), decimals, thousands, trim)


def floor_pct(fraction: float, decimals: int = 0, sep: str = "") -> str:
    """A fraction (0.9956) as a percentage rounded down ("99%", or "99.5%" with ``decimals=1``);
    ``sep`` goes between number and sign (" " gives "99.5 %")."""
    return f"{floor_num(100 * fraction, decimals, thousands=False)}{sep}%"


def ceil_pct(fraction: float, decimals: int = 0, sep: str = "") -> str:
    """A fraction as a percentage rounded up, for upper bounds; see :func:`floor_pct`."""
    return f"{ceil_num(100 * fraction, decimals, thousands=False)}{sep}%"


def decimals_to_tell_apart(values: Iterable[float | None], lo: int = 1, hi: int = 3) -> int:
    """The fewest decimals in ``[lo, hi]`` at which values that differ still print differently (a table
    column of 33.372 / 33.371 needs 3; 33.4 / 41.0 needs 1). ``None`` entries are ignored."""
    xs = sorted({float(v) for v in values if v is not None})
    for d in range(lo, hi + 1):
        shown = {f"{v:.{d}f}" for v in xs}
        if len(shown) == len(xs):
            return d
    return hi


def plural(n: float, word: str, many: str | None = None) -> str:
    """``word`` for a count of exactly one, else its plural (``many``, default ``word + "s"``)."""
    return word if n == 1 else (many if many is not None else word + "s")


def count(n: int, word: str, many: str | None = None) -> str:
    """ "1 pod", "3 pods", "1,204 pods": the count with thousands separators and the right noun form."""
    return f"{n:,} {plural(n, word, many)}"


def usd_signed(x: float, decimals: int = 0) -> str:
    """A signed dollar change with the sign before the $: "+$1,204", "-$35", "$0" (never "$-0" or "-$0")."""
    text = f"{abs(x):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return f"${text}"
    return f"{'-' if x < 0 else '+'}${text}"


# Internal names that land in figures and tables, and the words a reader sees instead. Files meant for
# machines (OpenCost CSV, summary.json) keep the internal names.
_LABELS = {
    # attribution's cluster lines (OpenCost keys its idle allocation __idle__); the category column says which
    "__idle__": "whole cluster",
    "__stranded__": "whole cluster",
    "__unavailable__": "whole cluster",
    # attribution's cost categories (analysis/attribution.CATEGORIES)
    "over_provisioned": "over-provisioned serving",
    "failure_waste": "failure waste (lost runs)",
}


def readable_label(name: str) -> str:
    """The reader's label for an internal category name (``__idle__`` -> "idle (no tenant)"); other names
    come back unchanged."""
    return _LABELS.get(name, name)
