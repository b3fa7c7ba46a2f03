"""The site of `gpuinfra lab all --quick` opened in a real browser: no console errors, no network,
every figure drawn with data, every internal link resolving. Screenshots under the test's tmp dir."""

from __future__ import annotations

import os
import re

import pytest

from gpuinfra.labs import registry
from gpuinfra.labs.site import build_site
from tests.browser.pages import check_page, chromium

# a handful of quick labs keeps this test to seconds of lab time; GPUINFRA_BROWSER_ALL=1 opens every lab
LABS = tuple(registry()) if os.environ.get("GPUINFRA_BROWSER_ALL") else (1, 2, 5, 16)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    exe = chromium()
    out = tmp_path_factory.mktemp("site")
    labs = {n: lab for n, lab in registry().items() if n in LABS}
    res = build_site(out, quick=True, labs=labs, node_probe=False)
    assert not res.failed, res.failed
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        yield out, browser, tmp_path_factory.mktemp("screenshots")
        browser.close()


def _pages(out):
    return (
        [out / "index.html", out / "node" / "report.html"]
        + [out / f"lab{n}" / "report.html" for n in LABS]
        + [out / "lab1" / "slides.html"]
    )


@pytest.mark.parametrize("which", range(2 + len(LABS) + 1))
def test_page_in_browser(site, which):
    out, browser, shots = site
    path = _pages(out)[which]
    seen = check_page(browser, path, shots)
    assert seen["console_errors"] == [], seen["console_errors"]
    assert seen["network"] == [], seen["network"]
    assert seen["broken_links"] == [], seen["broken_links"]
    for f in seen["figures"]:
        assert f["svg"] and f["traces"] > 0 and f["points"] > 0, f
    if "lab" in path.parent.name:
        assert seen["figures"], f"{path} draws no figure"
    assert (shots / "_".join(path.parts[-2:]).replace(".html", ".png")).stat().st_size > 0


def test_one_copy_of_plotly(site):
    out, _, _ = site
    big = [p for p in out.rglob("*.html") if p.stat().st_size > 1_000_000]
    assert big == []  # no page inlines the 3.5 MB library
    assert (out / "assets" / "plotly.min.js").stat().st_size > 1_000_000


def test_deck_prints_one_slide_a_page(site):
    out, browser, shots = site
    page = browser.new_page()
    page.goto((out / "lab5" / "slides.html").as_uri(), wait_until="load")
    slides = page.evaluate("document.querySelectorAll('section.slide').length")
    pdf = page.pdf(prefer_css_page_size=True)
    page.close()
    (shots / "lab5-slides.pdf").write_bytes(pdf)
    assert slides >= 3  # title, findings, at least one section
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == slides  # tall slides are scaled, not split
