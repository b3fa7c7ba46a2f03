"""`gpuinfra lab all`: the site from fake labs (one fails), headlines read from the lab's output, bad --out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import plotly.graph_objects as go
import pytest
from typer.testing import CliRunner

from gpuinfra.cli import app
from gpuinfra.errors import UserError
from gpuinfra.labs import LabInfo, write_lab
from gpuinfra.labs.site import build_site, headlines
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page


def _good(out_dir: Path, design=None, quick=False, workers=None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], name="n"))
    fig.update_layout(xaxis_title="x (unit)", yaxis_title="y (unit)")
    findings = ["First result: 3 of 4. More detail.", "Second <b>result</b>.", "Third.", "Fourth."]
    html = render_page("Lab 1: fake", [Section("A figure", fig_html(fig, "f1"))], findings=findings)
    return write_lab(out_dir, {"quick": quick}, html)


def _bad(out_dir: Path, design=None, quick=False, workers=None) -> Path:
    raise RuntimeError("simulated crash <in lab 2>")


def _labs():
    return {1: LabInfo(1, "fake one", _good), 2: LabInfo(2, "fake two", _bad)}


def test_site_keeps_the_good_lab_and_marks_the_failed_one(tmp_path):
    res = build_site(tmp_path / "site", labs=_labs(), node_root=str(tmp_path), node_probe=False)
    out = tmp_path / "site"
    assert res.failed == {2: "RuntimeError: simulated crash <in lab 2>"}
    by = {e.section: e for e in res.entries}
    assert [e.section for e in res.entries] == list(range(17))  # sections 0-16 of the seed
    assert by[1].status == "ok" and by[3].status == "missing" and by[0].status == "ok"
    # the report's first three findings, first sentence each; markup in a finding is text
    assert by[1].headlines == ["First result: 3 of 4.", "Second <b>result</b>.", "Third."]
    assert by[1].present == "Why GPUs Exist and Why Infra Must Change"  # the seed's Present title
    index = (out / "index.html").read_text()
    assert "simulated crash &lt;in lab 2&gt;" in index  # escaped, not markup
    assert 'href="lab1/report.html"' in index and 'href="lab1/slides.html"' in index
    report = (out / "lab1" / "report.html").read_text()
    assert '<script src="../assets/plotly.min.js">' in report and len(report) < 100_000
    slides = (out / "lab1" / "slides.html").read_text()
    assert slides.count('class="slide') == 3  # title, findings, one section
    assert (out / "lab1" / "summary.json").is_file() and not (out / "lab2" / "report.html").exists()


def test_headlines_prefer_the_summary_list():
    assert headlines({"headlines": ["a", "b", "c", "d"]}, "") == ["a", "b", "c"]
    assert headlines({}, '<p class="finding">Only one. Two.</p>') == ["Only one."]


def test_non_empty_out_refused(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(UserError, match="not empty"):
        build_site(tmp_path, labs={})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(UserError, match="cannot write"):
        build_site(ro / "site", labs={})


def test_out_is_a_file_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(UserError, match="not a directory"):
        build_site(f, labs={})


def test_cli_exit_codes(tmp_path, monkeypatch):
    import gpuinfra.labs.site as site

    monkeypatch.setattr(site, "registry", _labs)
    r = CliRunner().invoke(app, ["lab", "all", "--out", str(tmp_path / "s"), "--quick"])
    assert r.exit_code == 1 and "section 2 failed" in r.output
    r = CliRunner().invoke(app, ["lab", "all", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "--out" in r.output and "Traceback" not in r.output  # non-empty --out
    assert json.loads((tmp_path / "s" / "lab1" / "summary.json").read_text())["quick"] is True


def test_out_under_a_file_cannot_be_written(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(UserError, match="cannot write"):
        build_site(f / "site", labs={})
