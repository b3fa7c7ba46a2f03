"""A report page: title, computed findings, and sections (a claim, text, a figure or a table)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from gpuinfra.report.html import _env, plotly_js


@dataclass
class Section:
    title: str
    html: str = ""
    claim: str = ""
    text: str = ""


def table_html(header: list[str], rows: list[list[Any]], num_cols: set[int] | None = None) -> str:
    num_cols = num_cols or set()
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for r in rows:
        cells = []
        for j, v in enumerate(r):
            cls = ' class="num"' if j in num_cols else ""
            cells.append(f"<td{cls}>{html.escape(str(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_page(title: str, sections: list[Section], *, findings: list[str] | None = None, subtitle: str = "") -> str:
    return (
        _env()
        .get_template("page.html.j2")
        .render(title=title, subtitle=subtitle, findings=findings or [], sections=sections, plotly_js=plotly_js())
    )
