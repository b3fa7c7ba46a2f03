"""Parsers for the small values users type: byte sizes, seed lists, policy lists, trace references.

One parser per kind, shared by the CLI, the scenario loader and the models, so ``64M`` means the
same bytes everywhere and a policy list is checked the same way in ``fill`` and ``compare``.
Every parser raises :class:`gpuinfra.errors.UserError` naming ``where`` (the option or field).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from gpuinfra.errors import UserError, did_you_mean

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4

BYTE_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "k": KiB,
    "kb": KiB,
    "kib": KiB,
    "m": MiB,
    "mb": MiB,
    "mib": MiB,
    "g": GiB,
    "gb": GiB,
    "gib": GiB,
    "t": TiB,
    "tb": TiB,
    "tib": TiB,
}
"""Binary multiples for every spelling, as nccl-tests (``-b 8 -e 8G``) and PyTorch's
``format_size`` use them: K = KB = KiB = 1024 bytes."""

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")

MAX_BYTES = 2**60
"""Largest size any model here accepts (1 EiB): beyond it a number is a typo, not a workload."""


def parse_size(text: str | int, where: str = "size") -> int:
    """Bytes from ``8``, ``128K``, ``64M``, ``8G``, ``20MiB``, ``1.5GiB`` or ``512 bytes``.

    Units are binary (K = KB = KiB = 1024). Returns an int in [0, 2**60].

    Raises:
        UserError: not a finite, non-negative number with a known unit, or above 2**60 bytes.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    m = _SIZE_RE.match(str(text))
    unit = (m.group(2) if m else "").lower()
    if not m or unit not in BYTE_UNITS:
        raise UserError(
            f"bad size '{text}'",
            where=where,
            expected="a byte count like 8, 128K, 64M, 8G, 20MiB or 1.5GiB (binary units)",
        )
    v = float(m.group(1)) * BYTE_UNITS[unit]
    if not math.isfinite(v) or v > MAX_BYTES:
        raise UserError(f"size '{text}' is too large", where=where, expected=f"at most {MAX_BYTES:,} bytes (1 EiB)")
    return int(v)


MAX_SEEDS = 100_000
"""Most seeds one command accepts; a grid beyond it is refused before any work starts."""


def _seed_spans(text: str, where: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                spans.append((lo, hi))
            else:
                spans.append((int(part), int(part)))
    except ValueError:
        raise UserError(
            f"bad {where} '{text}'", where=where, expected="N, A-B or a comma-separated list (e.g. 42-51)"
        ) from None
    if not spans or any(lo < 0 for lo, _ in spans):
        raise UserError(f"bad {where} '{text}'", where=where, expected="non-negative seeds")
    return spans


def count_seeds(text: str, where: str = "--seeds") -> int:
    """How many seeds ``text`` names (ranges counted, not expanded; duplicates counted twice).

    Raises:
        UserError: as :func:`parse_seeds` for malformed text.
    """
    return sum(hi - lo + 1 for lo, hi in _seed_spans(text, where))


def parse_seeds(text: str, where: str = "--seeds", max_count: int = MAX_SEEDS) -> list[int]:
    """Seeds from ``N``, ``A-B`` (inclusive) or a comma-separated mix; duplicates dropped, order kept.

    Raises:
        UserError: not integers, a descending range, a negative seed, none at all, or more
            than ``max_count`` seeds (counted before the list is built, so a huge range costs nothing).
    """
    spans = _seed_spans(text, where)
    count = sum(hi - lo + 1 for lo, hi in spans)
    if count > max_count:
        raise UserError(
            f"{where} '{text}' names {count:,} seeds",
            where=where,
            expected=f"at most {max_count:,} seeds in one command",
            fix="run a smaller range (e.g. 0-99) or split the grid over several commands",
        )
    seeds = [s for lo, hi in spans for s in range(lo, hi + 1)]
    return list(dict.fromkeys(seeds))


def parse_choices(
    text: str,
    choices: Sequence[str],
    *,
    where: str,
    groups: dict[str, Sequence[str]] | None = None,
    extra: Sequence[str] = (),
    noun: str = "policy",
    fix: str | None = None,
) -> list[str]:
    """A comma-separated list of names out of ``choices`` (+ ``extra``), lower-cased, order kept,
    duplicates dropped; a whole-text group name (``all``, ``paper``) expands to its members.

    Raises:
        UserError: an unknown name (with "did you mean"), or an empty list.
    """
    key = text.strip().lower()
    if groups and key in groups:
        return list(groups[key])
    known = [*extra, *choices]
    out = []
    for p in (x.lower() for x in parse_names(text, where)):
        if p not in known:
            tail = ", or " + " / ".join(f"'{g}'" for g in groups) if groups else ""
            raise UserError(
                f"unknown {noun} '{p}'",
                where=where,
                expected="one or more of " + ", ".join(known) + tail,
                fix=did_you_mean(p, known) or fix,
            )
        out.append(p)
    if not out:
        raise UserError(f"no {noun} given in '{text}'", where=where, expected="a comma-separated list of names")
    return list(dict.fromkeys(out))


def parse_names(text: str, where: str = "list") -> list[str]:
    """A comma-separated list, each item stripped (``"a, b,c"`` -> ``["a", "b", "c"]``); a blank
    text is the empty list. An empty item (``","``, ``"a,,b"``, ``"a,"``) is a mistake, never
    skipped: skipping it turned ``--layout ,`` into the default layout.

    Raises:
        UserError: naming ``where`` and the position of the first empty item.
    """
    if not text.strip():
        return []
    items = [x.strip() for x in text.split(",")]
    if "" in items:
        k = items.index("")
        raise UserError(
            f"'{text}' has an empty item (item {k + 1} of {len(items)})",
            where=where,
            expected="comma-separated values with none empty, e.g. a,b,c",
            fix="remove the extra comma, or write the missing value",
        )
    return items


def parse_ints(text: str, where: str, expected: str) -> list[int]:
    """Comma-separated non-negative integers. Raises UserError otherwise."""
    try:
        vals = [int(x) for x in parse_names(text, where)]
    except ValueError:
        raise UserError(f"bad {where} '{text}'", where=where, expected=expected) from None
    if not vals or any(v < 0 for v in vals):
        raise UserError(f"bad {where} '{text}'", where=where, expected=expected)
    return vals


def safe_file_name(text: str, max_len: int = 100) -> str:
    """``text`` as one path component: characters outside ``A-Za-z0-9._-`` become ``_``, leading
    dots are dropped (no ``..``, no hidden files), at most ``max_len`` characters, never empty.
    For names that come from user data (a scenario's ``name``, a workload file's stem)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".")[:max_len]
    return name or "_"


OPENB_PREFIX = "openb:"
"""A trace reference naming a packaged openb pod list: ``openb:default``, ``openb:gpushare40``."""


def openb_name(ref: str) -> str | None:
    """The pod-list name of an ``openb:NAME`` reference, or None for a file path."""
    return ref[len(OPENB_PREFIX) :] if ref.startswith(OPENB_PREFIX) else None


def trace_ref(ref: str) -> tuple[str | None, Path | None]:
    """``(openb_name, None)`` for ``openb:NAME``, ``(None, Path)`` for anything else."""
    name = openb_name(ref)
    return (name, None) if name is not None else (None, Path(ref))


MAX_SEED = 2**63 - 1
"""Largest seed accepted (numpy's SeedSequence takes any non-negative int; this bound keeps seeds
printable and storable as int64 in Parquet and JSON)."""


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def check_number(
    value: float | int | None,
    where: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> None:
    """Refuse NaN, infinities and values outside [lo, hi] (open ends with ``lo_open``/``hi_open``).

    Raises:
        UserError: naming ``where`` and the allowed range.
    """
    if value is None:
        return
    try:
        ok = math.isfinite(value)
    except OverflowError:  # an int beyond float range
        ok = False
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f"{left}{'-inf' if lo is None else _num(lo)}, {'inf' if hi is None else _num(hi)}{right}"
        shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "..."
        raise UserError(
            f"{shown} is out of range",
            where=where,
            expected=f"a finite number in {rng}{' ' + unit if unit else ''}",
        )


def check_seed(seed: int | None, where: str = "--seed") -> None:
    """Refuse a seed outside ``[0, MAX_SEED]`` (``None``, "use the scenario's seed", passes): the one
    seed check every command with a ``--seed`` option calls before any work.

    Raises:
        UserError: naming ``where`` and the accepted range.
    """
    check_number(seed, where, lo=0, hi=MAX_SEED)


def check_all(checks: Iterable[tuple]) -> None:
    """Apply :func:`check_number` to ``(value, where, kwargs)`` triples."""
    for value, where, kw in checks:
        check_number(value, where, **kw)


def parallelism_checks(tp: int, pp: int, micro_batch: int, microbatches: int, seq: int) -> list[tuple]:
    """The bounds every training-shape command applies to its parallelism and batch flags, as
    :func:`check_all` triples: --tp and --pp up to 1,024 ways, micro-batches up to 10^6, sequences
    up to 10^7 tokens (beyond any published run; they keep the models' arithmetic finite)."""
    return [
        (tp, "--tp", dict(lo=1, hi=1024)),
        (pp, "--pp", dict(lo=1, hi=1024)),
        (micro_batch, "--micro-batch", dict(lo=1, hi=1_000_000)),
        (microbatches, "--microbatches", dict(lo=1, hi=1_000_000)),
        (seq, "--seq", dict(lo=1, hi=10_000_000)),
    ]
