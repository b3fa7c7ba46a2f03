"""Demand forecasts for capacity planning: GPUs needed per week, from a CSV or YAML file or a flag.

CSV (``.csv``; header required, columns in any order, extra columns refused)::

    week,gpus
    0,120
    1,120
    2,180

YAML (any other suffix)::

    source: launch plan v3 (product team)
    forecast:
      - {week: 0, gpus: 120}
      - {week: 1, gpus: 180}

Weeks are integers counted from 0 (this week), listed in order without gaps, so row k is week k;
``gpus`` is a finite number >= 0 (GPUs in service needed that week, in units of the current
GPU). Every bad row raises :class:`~gpuinfra.errors.UserError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gpuinfra.errors import UserError, UserErrors

MAX_WEEKS = 520
"""Ten years of weeks: a sanity bound on a forecast's length."""
MAX_GPUS = 1e7
"""GPUs in one week: a sanity bound, far above any fleet."""
COLUMNS = ("week", "gpus")


class ForecastRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    week: int = Field(ge=0, le=MAX_WEEKS - 1, strict=True)
    gpus: float = Field(ge=0, le=MAX_GPUS, allow_inf_nan=False)


class ForecastFile(BaseModel):
    """A YAML forecast file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field("", description="where the forecast comes from")
    forecast: list[ForecastRow] = Field(min_length=1, max_length=MAX_WEEKS)


def _number(text: str, where: str, field: str, *, integer: bool) -> float:
    s = text.strip()
    try:
        v = int(s) if integer else float(s)
    except ValueError:
        raise UserError(
            f"{field} '{s[:40]}' is not {'an integer' if integer else 'a number'}", where=where, expected=_expect(field)
        ) from None
    if not math.isfinite(v) or v < 0 or v > (MAX_WEEKS - 1 if integer else MAX_GPUS):
        raise UserError(f"{field} {s[:40]} is out of range", where=where, expected=_expect(field))
    return v


def _expect(field: str) -> str:
    return f"an integer week 0..{MAX_WEEKS - 1}" if field == "week" else f"a number of GPUs in [0, {MAX_GPUS:g}]"


def _check_order(weeks: list[int], wheres: list[str]) -> list[UserError]:
    out = []
    for k, (w, where) in enumerate(zip(weeks, wheres, strict=True)):
        if w != k:
            out.append(
                UserError(
                    f"week {w} where week {k} was expected",
                    where=where,
                    expected="weeks 0, 1, 2, ... in order without gaps",
                    fix="list every week once, in order, starting at 0",
                )
            )
            break
    return out


def parse_csv(text: str, label: str) -> np.ndarray:
    """GPUs per week from forecast CSV text (``label`` names the file in errors); float64 array."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    try:
        for r in reader:
            if any(c.strip() for c in r):
                rows.append((reader.line_num, r))
    except csv.Error as e:
        raise UserError(f"not CSV: {e}", where=f"{label}:{reader.line_num}", expected="week,gpus rows") from None
    if not rows:
        raise UserError("empty forecast", where=label, expected="a header 'week,gpus' and one row per week")
    line, head = rows[0]
    names = [h.strip().lower() for h in head]
    if sorted(names) != sorted(COLUMNS):
        raise UserError(
            f"header {','.join(h.strip()[:20] for h in head)[:80]}",
            where=f"{label}:{line}",
            expected="the columns week,gpus",
        )
    iw, ig = names.index("week"), names.index("gpus")
    if len(rows) - 1 > MAX_WEEKS:
        raise UserError(f"{len(rows) - 1} weeks", where=label, expected=f"at most {MAX_WEEKS}")
    problems: list[UserError] = []
    weeks: list[int] = []
    wheres: list[str] = []
    gpus: list[float] = []
    for line, r in rows[1:]:
        where = f"{label}:{line}"
        if len(r) != len(names):
            problems.append(UserError(f"{len(r)} fields", where=where, expected=f"{len(names)} (week,gpus)"))
            continue
        try:
            w = int(_number(r[iw], where + " (week)", "week", integer=True))
            g = _number(r[ig], where + " (gpus)", "gpus", integer=False)
        except UserError as e:
            problems.append(e)
            continue
        weeks.append(w)
        wheres.append(where + " (week)")
        gpus.append(g)
    if not problems:
        problems = _check_order(weeks, wheres)
    if not gpus and not problems:
        problems.append(UserError("no weeks", where=label, expected="one row per week after the header"))
    if problems:
        raise problems[0] if len(problems) == 1 else UserErrors(problems, where=label)
    return np.asarray(gpus, dtype=np.float64)


def parse_flag(text: str, where: str = "--demand") -> np.ndarray:
    """GPUs per week from a comma-separated flag value (``120,120,180``); week k is item k."""
    items = [s for s in text.split(",")]
    if not text.strip():
        raise UserError("no weeks given", where=where, expected=f"1..{MAX_WEEKS} comma-separated GPU counts")
    if len(items) > MAX_WEEKS:
        raise UserError(
            f"{len(items)} weeks given", where=where, expected=f"1..{MAX_WEEKS} comma-separated GPU counts (ten years)"
        )
    return np.asarray(
        [_number(s, f"{where} item {k + 1}", "gpus", integer=False) for k, s in enumerate(items)], dtype=np.float64
    )


def load_forecast(path: str | Path) -> tuple[np.ndarray, str]:
    """GPUs per week from a forecast file (CSV by suffix ``.csv``, else YAML) and its stated source."""
    from gpuinfra.io.scenario_load import line_in_text, validate
    from gpuinfra.textfile import read_text_file

    label = str(path)
    text = read_text_file(path, label)
    if Path(path).suffix.lower() == ".csv":
        return parse_csv(text, label), f"forecast file {Path(path).name}"
    doc, _ = validate(ForecastFile, text, label, what="a demand forecast")
    weeks = [r.week for r in doc.forecast]
    wheres = [
        f"{label}:{line_in_text(text, ('forecast', k, 'week')) or '?'} (forecast[{k}].week)" for k in range(len(weeks))
    ]
    problems = _check_order(weeks, wheres)
    if problems:
        raise problems[0]
    return np.asarray(
        [r.gpus for r in doc.forecast], dtype=np.float64
    ), doc.source or f"forecast file {Path(path).name}"
