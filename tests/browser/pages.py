"""Open a page of the site in a real browser (Debian's chromium through playwright) and say what broke."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# every plotly div must hold at least one trace with data: arrays (x, y, z, values, a sankey's
# link.value ...) counted at any depth, a base64 typed array ({dtype, bdata}) counted by its length
FIGURES_JS = """() => {
  function count(v, depth) {
    if (v === null || v === undefined || depth > 4) { return 0; }
    if (Array.isArray(v) || ArrayBuffer.isView(v)) { return v.length; }
    if (typeof v === 'object') {
      if (typeof v.bdata === 'string') { return v.bdata.length > 0 ? 1 : 0; }
      return Object.keys(v).reduce((n, k) => n + count(v[k], depth + 1), 0);
    }
    return 0;
  }
  return Array.from(document.querySelectorAll('.plotly-graph-div')).map(el => ({
    id: el.id,
    svg: !!el.querySelector('.main-svg'),
    traces: (el.data || []).length,
    points: (el.data || []).reduce((n, t) => n + count(t, 0), 0)
  }));
}"""
LINKS_JS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
IDS_JS = "() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"


def chromium() -> str:
    """Path of the browser; skip (fail under CI) when chromium or playwright is missing."""
    why = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "playwright for Python is not installed (pip install -e '.[dev]')"
    exe = next((p for p in CHROMIUM_PATHS if os.path.exists(p)), None) or shutil.which("chromium")
    if why is None and exe is None:
        why = "chromium is not installed (scripts/install-chromium.sh needs root and apt-get)"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have a browser: {why}")
        pytest.skip(why)
    return exe


def check_page(browser, path: Path, shots: Path) -> dict:
    """Load ``path`` from the file system; return what went wrong and what was seen.

    Keys: ``console_errors`` (console error messages and uncaught exceptions), ``network``
    (every request that is not a file: URL, aborted), ``figures`` (per plotly div: svg drawn,
    traces, data points), ``broken_links`` (relative links whose file or #anchor is missing).
    A full-page screenshot goes to ``shots``.
    """
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    network: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            network.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_timeout(200)
    figures = page.evaluate(FIGURES_JS)
    ids = set(page.evaluate(IDS_JS))
    broken = []
    for href in page.evaluate(LINKS_JS):
        u = urlparse(href)
        if u.scheme or u.netloc:
            continue  # external citation links are not followed (and never requested)
        target = (path.parent / unquote(u.path)).resolve() if u.path else path.resolve()
        missing_anchor = bool(u.fragment) and target == path.resolve() and u.fragment not in ids
        if not target.is_file() or missing_anchor:
            broken.append(href)
    shots.mkdir(parents=True, exist_ok=True)
    name = "_".join(path.resolve().parts[-2:]).replace(".html", ".png")
    page.screenshot(path=str(shots / name), full_page=True)
    page.close()
    return {"console_errors": errors, "network": network, "figures": figures, "broken_links": broken}
