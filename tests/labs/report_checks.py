"""Checks every report must pass, applied to the HTML a command wrote (shared by the lab tests).

- every figure has a title on each axis it draws, numeric axes name a unit, and a figure with
  more than one trace shows a legend;
- no hostile payload survives unescaped (see ``assert_no_payload``).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

UNIT = re.compile(
    r"\((?:[^()]*)\)|\b(?:s|ms|us|µs|ns|h|hours?|days?|minutes?|GPUs?|GPU-hours|pods|nodes|jobs|USD|W|°C|"
    r"years?|bytes|B|KiB|MiB|GiB|GB|TB|GB/s|TB/s|TFLOP/s|FLOP/s|FLOP/byte|%|x|count|ratio|failures|incidents)\b|%|\$"
)


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figs: list[tuple[str, dict]] = []
        self._in: str | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("type") == "application/json" and "gpuinfra-figure" in (a.get("class") or ""):
            self._in = a.get("data-div") or "?"
            self._buf = []

    def handle_data(self, data):
        if self._in is not None:
            self._buf.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._in is not None:
            self.figs.append((self._in, json.loads("".join(self._buf))))
            self._in = None


def figures(html: str) -> list[tuple[str, dict]]:
    """(div id, {"data": [...], "layout": {...}}) for every figure in a report."""
    p = _Figures()
    p.feed(html)
    return p.figs


def _title(ax: dict | None) -> str:
    t = (ax or {}).get("title")
    if isinstance(t, dict):
        return t.get("text") or ""
    return t or ""


def _is_numeric(values) -> bool:
    if values is None:
        return True
    if isinstance(values, dict):  # plotly's typed-array encoding
        return True
    return all(isinstance(v, (int, float)) or v is None for v in values)


def figure_problems(html: str) -> list[str]:
    """Every figure without axis titles, units on numeric axes, or a legend for several traces."""
    out = []
    for div, fig in figures(html):
        data, layout = fig.get("data", []), fig.get("layout", {})
        if not data:
            continue
        kinds = {d.get("type", "scatter") for d in data}
        if kinds <= {"pie", "sankey", "table"}:
            continue
        for axis, key in (("x", "xaxis"), ("y", "yaxis")):
            if (layout.get(key) or {}).get("visible") is False:
                continue  # a drawing (a topology graph), not a chart
            t = _title(layout.get(key))
            if not t:
                out.append(f"{div}: no {axis} axis title")
                continue
            values = [d.get(axis) for d in data if d.get(axis) is not None]
            numeric = all(_is_numeric(v) for v in values) if values else True
            if numeric and not UNIT.search(t):
                out.append(f"{div}: {axis} axis title '{t}' names no unit")
        named = [d for d in data if d.get("showlegend", True)]
        if len(named) > 1 and layout.get("showlegend") is False:
            out.append(f"{div}: {len(named)} traces but the legend is hidden")
        if len(named) > 1 and sum(1 for d in named if d.get("name")) < len(named):
            out.append(f"{div}: {len(named)} traces, not all named in the legend")
    return out
