"""Request traces for the serving simulation: one request per CSV row.

Columns (header names, any order; the alternatives are Vidur's and the Azure LLM traces' names):
arrival time in seconds (``arrival_s`` | ``arrived_at`` | ``timestamp``), prompt length in tokens
(``prompt_tokens`` | ``num_prefill_tokens`` | ``input_tokens`` | ``ContextTokens``), output length in
tokens (``output_tokens`` | ``num_decode_tokens`` | ``GeneratedTokens``). Rows are sorted by arrival;
times are shifted so the first arrival is at 0. A row without a length, or with a non-numeric or
negative value, is refused with its line number (never guessed or dropped). Leading lines that
start with ``#`` are comments (a source note).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from gpuinfra.errors import UserError
from gpuinfra.io.traces import MAX_TRACE_TIME_S

ARRIVAL = ("arrival_s", "arrived_at", "timestamp")
PROMPT = ("prompt_tokens", "num_prefill_tokens", "input_tokens", "ContextTokens")
OUTPUT = ("output_tokens", "num_decode_tokens", "GeneratedTokens")


def _col(header: list[str], names: tuple[str, ...], where: str) -> str:
    for n in names:
        if n in header:
            return n
    raise UserError(
        f"no column for {names[0]}",
        where=where,
        expected="a header with one of " + ", ".join(names),
        fix="add the column (request lengths are required, not guessed)",
    )


MAX_TRACE_TOKENS = 10_000_000
"""Longest prompt or output a request trace may give: 10^7 tokens, above any served model's
context window (the longest in the catalog is 131,072; the largest published windows are a few million)."""


def parse_request_trace(text: str, where: str = "trace"):
    """Parse CSV text into :class:`gpuinfra.sim.serving.Requests`."""
    from gpuinfra.sim.serving import Requests

    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and lines[skip].lstrip().startswith("#"):
        skip += 1  # leading comment lines (a source note), counted in line numbers
    rd = csv.DictReader(io.StringIO("".join(lines[skip:])))
    header = [h.strip() for h in (rd.fieldnames or [])]
    if not header:
        raise UserError("empty trace", where=where, expected="a CSV header and one row per request")
    rd.fieldnames = header
    hdr = f"{where}:{skip + 1}"
    ca, cp, co = _col(header, ARRIVAL, hdr), _col(header, PROMPT, hdr), _col(header, OUTPUT, hdr)
    arr, pr, out = [], [], []
    for line, row in enumerate(rd, start=skip + 2):
        vals = []
        for c, kind in ((ca, float), (cp, int), (co, int)):
            raw = (row.get(c) or "").strip()
            if not raw:
                raise UserError(f"row has no {c}", where=f"{where}:{line}", expected=f"a value in column {c}")
            try:
                v = float(raw)
            except ValueError:
                raise UserError(f"{c} = {raw!r} is not a number", where=f"{where}:{line}") from None
            if kind is int and math.isfinite(v) and v != int(v):
                raise UserError(f"{c} = {raw!r} is not a whole number of tokens", where=f"{where}:{line}")
            if not math.isfinite(v) or v < 0 or (kind is int and v < 1):
                raise UserError(
                    f"{c} = {raw!r} is out of range",
                    where=f"{where}:{line}",
                    expected="arrival >= 0 and lengths >= 1 token",
                )
            if v > (MAX_TRACE_TIME_S if kind is float else MAX_TRACE_TOKENS):
                raise UserError(
                    f"{c} = {raw!r} is out of range",
                    where=f"{where}:{line}",
                    expected=f"arrival <= {MAX_TRACE_TIME_S:.4g} s (100 years) and lengths <= {MAX_TRACE_TOKENS:,} "
                    "tokens (no model's context window is longer)",
                    fix="give arrival times in seconds and lengths in tokens",
                )
            vals.append(v)
        arr.append(vals[0])
        pr.append(int(vals[1]))
        out.append(int(vals[2]))
    if not arr:
        raise UserError("trace has no rows", where=where)
    a = np.asarray(arr, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    a = a[order] - a[order][0]
    return Requests(a, np.asarray(pr, dtype=np.int64)[order], np.asarray(out, dtype=np.int64)[order])


def read_request_trace(path: Path):
    """Read a request trace file (any size a log may have; UTF-8/16/32 by :mod:`gpuinfra.textfile`)."""
    from gpuinfra.textfile import read_text

    return parse_request_trace(read_text(path), str(path))
