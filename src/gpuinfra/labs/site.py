"""``gpuinfra lab all``: every registered lab, section 0's node check and one offline site.

Layout of the site (every link relative, so it opens from the file system)::

    index.html              sections 0-16: seed title, "Present" title, three headlines, links
    assets/plotly.min.js    the one copy of plotly.js every page loads
    assets/site.css         the navigation bar and the slide layout
    node/report.html        section 0: the node check of the machine that built the site
    labN/report.html        lab N's report (its own run), plotly inline replaced by the shared copy
    labN/summary.json       lab N's computed summary, as the lab wrote it
    labN/slides.html        lab N's "Present" deliverable as a slide deck (print to PDF: one slide a page)

Why one shared plotly.js rather than standalone pages: nine or more pages each inlining the
3.5 MB library make a 30+ MB site for one library; the site is the unit that is copied or
opened, and ``gpuinfra lab N`` still writes a standalone report for a single lab.

Headlines are read from the lab's output, never written here: a ``headlines`` list in its
summary.json when the lab provides one, else the first sentence of each of the first three
findings in its report's "What these runs show" section (the findings the lab computed).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

from gpuinfra.errors import UserError
from gpuinfra.io.atomic import write_text
from gpuinfra.labs import LabInfo, registry
from gpuinfra.report.html import _env, plotly_js
from gpuinfra.report.page import Section, render_page, table_html

ASSET_JS = "assets/plotly.min.js"
ASSET_CSS = "assets/site.css"

SITE_CSS = """
nav.site-nav { position: sticky; top: 0; z-index: 10; background: #1f2937; padding: 0.4em 1em; margin: -2em -1em 1.5em;
  font-size: 0.85em; line-height: 1.9; }
nav.site-nav a { color: #e5e7eb; text-decoration: none; margin-right: 0.9em; white-space: nowrap; }
nav.site-nav a.here { color: #fff; font-weight: 700; border-bottom: 2px solid #60a5fa; }
nav.site-nav span.off { color: #6b7280; margin-right: 0.9em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8em 1em; }
.card h3 { margin: 0 0 0.2em; font-size: 1.05em; } .card .present { font-style: italic; margin: 0 0 0.5em; }
.card.failed { border-color: #dc2626; background: #fef2f2; } .card.missing { color: #888; background: #fafafa; }
.card ul { padding-left: 1.1em; margin: 0.4em 0; font-size: 0.9em; } .card .links a { margin-right: 1em; }
.status-failed { color: #b91c1c; font-weight: 700; }
"""


@dataclass
class SiteEntry:
    section: int
    seed_title: str
    present: str | None
    status: str  # "ok", "failed", "missing"
    headlines: list[str] = field(default_factory=list)
    why: str = ""
    report: str | None = None
    slides: str | None = None


@dataclass
class SiteResult:
    index: Path
    entries: list[SiteEntry]

    @property
    def failed(self) -> dict[int, str]:
        return {e.section: e.why for e in self.entries if e.status == "failed"}


def seed_sections() -> list[dict]:
    """The seed's sections 0-16: ``{"section", "title", "present"}`` (packaged copy of the seed's headings)."""
    p = resources.files("gpuinfra").joinpath("catalog", "data", "seed_sections.json")
    return json.loads(p.read_text(encoding="utf-8"))["sections"]


class _Findings(HTMLParser):
    """Collect the text of every ``<p class="finding">`` in a report (the page template's findings)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "p" and ("class", "finding") in attrs:
            self._in = True
            self.items.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self.items[-1] += data


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    m = re.search(r"(?<=[a-z0-9%)\]])\.(\s)(?=[A-Z(])", text)
    return text[: m.start() + 1] if m else text


def headlines(summary: dict, report_html: str, n: int = 3) -> list[str]:
    """Up to ``n`` headline findings of a lab run: ``summary["headlines"]`` when it is a list of
    strings, else the first sentence of each of the first ``n`` findings in the report."""
    h = summary.get("headlines") if isinstance(summary, dict) else None
    if isinstance(h, list) and all(isinstance(x, str) for x in h) and h:
        return h[:n]
    p = _Findings()
    p.feed(report_html)
    return [_first_sentence(x) for x in p.items if x.strip()][:n]


def _nav(entries: list[SiteEntry], here: int | None, prefix: str) -> str:
    here_cls = ' class="here"' if here is None else ""
    parts = [f'<a href="{prefix}index.html"{here_cls}>Index</a>']
    for e in entries:
        label = "0 Node" if e.section == 0 else str(e.section)
        title = html.escape(e.present or e.seed_title, quote=True)
        if e.report:
            cls = ' class="here"' if here == e.section else ""
            parts.append(f'<a href="{prefix}{e.report}" title="{title}"{cls}>{label}</a>')
        else:
            parts.append(f'<span class="off" title="{title}">{label}</span>')
    return '<nav class="site-nav">' + "".join(parts) + "</nav>"


def _inline_plotly_tag() -> str:
    return f'<script type="text/javascript">{plotly_js()}</script>'


def _into_site(page: str, nav: str, prefix: str) -> str:
    """Replace the inline plotly.js with the shared copy, link the site CSS and add the navigation."""
    shared = f'<script src="{prefix}{ASSET_JS}"></script>\n<link rel="stylesheet" href="{prefix}{ASSET_CSS}">'
    tag = _inline_plotly_tag()
    page = page.replace(tag, shared, 1) if tag in page else page.replace("</head>", shared + "\n</head>", 1)
    return page.replace("<body>", "<body>\n" + nav, 1)


def _split_sections(report: str) -> tuple[str, list[str]]:
    """A report page's body split at its ``<h2>`` headings: (title html, [chunk per h2])."""
    body = report.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    head, *chunks = body.split("<h2>")
    return head, ["<h2>" + c for c in chunks]


def slides_html(report: str, *, section: int, present: str, nav: str, prefix: str) -> str:
    """A slide deck of one lab: a title slide, then one slide per report section (its findings
    first), each with the section's figures and tables as the report computed them."""
    head, chunks = _split_sections(report)
    head = head.replace("<h1>", '<p class="meta">', 1).replace("</h1>", "</p>", 1)
    return (
        _env()
        .get_template("slides.html.j2")
        .render(
            section=section,
            present=present,
            head=head,
            chunks=chunks,
            nav=nav,
            js=prefix + ASSET_JS,
            css=prefix + ASSET_CSS,
        )
    )


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory", where="--out", expected="a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(
            f"{out}: directory is not empty",
            where="--out",
            expected="a new or empty directory (the site is written whole)",
            fix="pass a new directory, or remove this one first",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(
            f"{out}: cannot write there ({e.strerror or e})",
            where="--out",
            expected="a directory this user can create and write",
            fix="choose a writable path",
        ) from None


def _node_page(root: str, probe: bool | None) -> tuple[str, list[str]]:
    from gpuinfra.io.nodecheck import node_check

    rep = node_check(root, probe=probe)
    counts = rep.counts()
    worst = [c for c in rep.checks if c.verdict in ("fail", "warn")]
    gpu = next(c for c in rep.checks if c.name == "NVIDIA devices")
    heads = [
        f"{len(rep.checks)} checks: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".",
        f"GPU: {gpu.value}.",
        (f"First to fix: {worst[0].name} ({worst[0].value})." if worst else "Nothing to fix: no warn or fail."),
    ]
    rows = [[c.area, c.name, c.verdict, c.value, c.why] for c in rep.checks]
    secs = [
        Section(
            "Checks",
            table_html(["area", "check", "verdict", "value read", "why it matters for GPU workloads"], rows),
            text="Read from this machine by `gpuinfra node check` when the site was built.",
        )
    ]
    page = render_page("Section 0: Pre-requisites, read from this machine", secs, findings=heads)
    return page, heads


def build_site(
    out: Path,
    *,
    quick: bool = False,
    labs: dict[int, LabInfo] | None = None,
    node_root: str = "/",
    node_probe: bool | None = None,
    on_lab=None,
) -> SiteResult:
    """Run every lab of ``labs`` (default :func:`gpuinfra.labs.registry`) into ``out``/labN and
    write the site described in the module docstring. A lab that raises is marked failed with
    its error in the index; the others still run. ``on_lab(number, title)`` is called before
    each lab (progress). Raises :class:`UserError` when ``out`` is not a new or empty writable
    directory."""
    out = Path(out)
    _check_out(out)
    labs = registry() if labs is None else labs
    (out / "assets").mkdir()
    write_text(out / ASSET_JS, plotly_js())
    write_text(out / ASSET_CSS, SITE_CSS)

    entries: list[SiteEntry] = []
    for s in seed_sections():
        n = s["section"]
        e = SiteEntry(n, s["title"], s["present"], "missing")
        if n == 0:
            e.present = "Pre-requisites: this machine, checked"
            e.report = "node/report.html"
        elif n in labs:
            e.report, e.slides = f"lab{n}/report.html", f"lab{n}/slides.html"
        entries.append(e)
    pages: dict[int, str] = {}

    # section 0
    try:
        page, heads = _node_page(node_root, node_probe)
        pages[0] = page
        entries[0].status, entries[0].headlines = "ok", heads
    except Exception as ex:  # noqa: BLE001 - one failing part must not lose the site
        entries[0].status, entries[0].why, entries[0].report = "failed", f"{type(ex).__name__}: {ex}", None

    by_no = {e.section: e for e in entries}
    for n in sorted(labs):
        lab = labs[n]
        e = by_no.get(n)
        if e is None:  # a lab number beyond the seed's sections
            e = SiteEntry(
                n, lab.title, lab.title, "missing", report=f"lab{n}/report.html", slides=f"lab{n}/slides.html"
            )
            entries.append(e)
            by_no[n] = e
        if on_lab:
            on_lab(n, lab.title)
        d = out / f"lab{n}"
        try:
            report_path = Path(lab.run(d, quick=quick))
            report = report_path.read_text(encoding="utf-8")
            summ_path = report_path.parent / "summary.json"
            summary = json.loads(summ_path.read_text(encoding="utf-8")) if summ_path.is_file() else {}
        except Exception as ex:  # noqa: BLE001 - one failing lab must not lose the others
            e.status, e.why, e.report, e.slides = "failed", f"{type(ex).__name__}: {ex}", None, None
            continue
        e.status, e.headlines = "ok", headlines(summary, report)
        pages[n] = report

    for e in entries:
        if e.section not in pages:
            continue
        page = pages[e.section]
        sub = "node" if e.section == 0 else f"lab{e.section}"
        (out / sub).mkdir(exist_ok=True)
        nav = _nav(entries, e.section, "../")
        write_text(out / sub / "report.html", _into_site(page, nav, "../"))
        if e.section and e.slides:
            deck = slides_html(page, section=e.section, present=e.present or e.seed_title, nav=nav, prefix="../")
            write_text(out / sub / "slides.html", deck)

    index = (
        _env().get_template("site_index.html.j2").render(entries=entries, nav=_nav(entries, None, ""), css=ASSET_CSS)
    )
    write_text(out / "index.html", index)
    return SiteResult(out / "index.html", entries)
