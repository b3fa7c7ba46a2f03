"""Labs 5 and 16 compute their conclusions from the runs they make."""

import json

import pytest

from gpuinfra.labs import lab5, lab16, registry


@pytest.fixture(scope="module")
def l5(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab5")
    lab5.run(out, quick=True)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_lab5_every_activity_and_computed_claims(l5):
    s, html = l5
    assert {5, 16} <= set(registry())
    for h in ("1. Classify", "2. GPU OOM", "3. Stickiness", "4. Remediation", "5. Debug"):
        assert h in html
    runs = s["remediation"]["runs"]
    naive, spares = runs["naive|0.02"], runs["spares|0.0"]
    assert naive["ettr"] < spares["ettr"]
    assert f"{naive['lost_total']:,.0f}" in html or f"{spares['lost_total']:,.0f}" in html
    assert s["evidence"]["verdict"] == "reboot_node"  # the Xid 79 line sets the node's verdict
    assert s["stickiness"]["refused_while_poisoned"] == ["recover", "undrain", "repair_done"]


def test_lab16_postmortems_match_the_summary(tmp_path):
    lab16.run(tmp_path)
    s = json.loads((tmp_path / "summary.json").read_text())
    html = (tmp_path / "report.html").read_text()
    assert len(s["incidents"]) == 5 and len(list((tmp_path / "postmortems").glob("*.md"))) == 10
    for name, r in s["incidents"].items():
        for a, run in r["runs"].items():
            md = (tmp_path / "postmortems" / f"{name}--{a}.md").read_text()
            assert f"{run['postmortem']['impact']['gpu_hours_lost']:.1f} GPU-hours lost" in md
        assert f"{r['runs'][r['hurried']]['gpu_hours_lost']:.0f} GPU-hours" in html
