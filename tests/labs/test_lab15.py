"""Lab 15 computes its conclusions from the telemetry it simulates."""

import json

from gpuinfra.labs import lab15, registry


def test_lab15_every_activity_and_computed_claims(tmp_path):
    lab15.run(tmp_path, quick=True)
    s = json.loads((tmp_path / "summary.json").read_text())
    html = (tmp_path / "report.html").read_text()
    assert 15 in registry()
    for h in ("1. Explain", "2. Analyze", "3. Correlate", "4. Design"):
        assert h in html
    nv, ds = s["evaluations"]["naive"], s["evaluations"]["designed"]
    assert f"{nv['pages_per_day']:.0f} times a day" in html and f"{ds['pages_per_day']:.0f} times a day" in html
    assert ds["precision"] > nv["precision"]
    for f in ("metrics.om", "rules-designed.yml", "rules-naive.yml"):
        assert (tmp_path / f).stat().st_size > 0
    if s["promtool"]["ran"]:
        assert s["promtool"]["designed"]["test_ok"] and s["promtool"]["naive"]["test_ok"]
