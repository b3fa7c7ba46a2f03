"""Screenshots of real pages for the README: build the quick site (every lab) and photograph three pages.

Usage: python scripts/site_screenshots.py [OUT_DIR (default docs/img)]
Needs playwright for Python and Debian's chromium (scripts/install-chromium.sh); nothing is downloaded.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from gpuinfra.labs import registry
from gpuinfra.labs.site import build_site

# (page, image, what to photograph: None = the top of the page, else a CSS selector whose first
# match is photographed)
SHOTS = [
    ("index.html", "site-index.png", None),
    ("lab1/report.html", "lab1-report-figure.png", ".plotly-graph-div"),
    ("lab5/slides.html", "lab5-slide-figure.png", "section.slide:has(.plotly-graph-div)"),
]


def main() -> None:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        build_site(Path(tmp) / "site", quick=True, labs=registry(), node_probe=False)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for src, name, selector in SHOTS:
                page.goto((Path(tmp) / "site" / src).as_uri(), wait_until="load")
                page.wait_for_timeout(300)
                if selector is None:
                    page.screenshot(path=str(dest / name))
                elif selector.startswith("section"):
                    page.locator(selector).first.screenshot(path=str(dest / name))  # the slide alone
                else:  # the first figure with the claim above it, below the sticky navigation
                    page.locator(selector).first.evaluate("e => { e.scrollIntoView(); window.scrollBy(0, -220); }")
                    page.screenshot(path=str(dest / name))
                print(dest / name)
            browser.close()


if __name__ == "__main__":
    main()
