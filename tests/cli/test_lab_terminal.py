"""What ``gpuinfra lab N`` prints: the lab's computed headlines and the report path."""

from __future__ import annotations

import json
from pathlib import Path

import gpuinfra.labs as labs_pkg
from gpuinfra.labs import LabInfo
from tests.clirunner import gi


def test_lab_prints_its_own_headlines_and_the_report(tmp_path):
    out = tmp_path / "l1"
    r = gi("lab", "1", "--quick", "-o", str(out))
    assert r.returncode == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    heads = summary.get("headlines") or []
    report = out / "report.html"
    # the first headline the site index would show is on the terminal (first words: rich folds lines)
    from gpuinfra.labs.site import headlines

    first = headlines(summary, report.read_text())[0] if not heads else heads[0]
    assert " ".join(first.split()[:6]) in " ".join(r.stdout.split())
    assert str(report) in r.stdout.replace("\n", "")


def test_headline_text_is_printed_literally_not_as_markup(tmp_path, monkeypatch):
    def run(out_dir: Path, design=None, quick=False, workers=None) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "summary.json").write_text(json.dumps({"headlines": ["pool [red]gpu-a[/red] idled 12%"]}))
        (out_dir / "report.html").write_text("<html><body><h1>x</h1></body></html>")
        return out_dir / "report.html"

    monkeypatch.setattr(labs_pkg, "registry", lambda: {99: LabInfo(99, "Fake [b]lab[/b]", run)})
    r = gi("lab", "99", "-o", str(tmp_path / "l99"))
    assert r.returncode == 0, r.output
    assert "pool [red]gpu-a[/red] idled 12%" in r.stdout
    assert "Fake [b]lab[/b]" in r.stdout
