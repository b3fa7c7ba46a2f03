"""Lab 3 computes its conclusions from the runs it makes, and maps a user's matrix."""

import json
from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab3, registry


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab3")
    lab3.run(out, quick=True)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_every_activity_ran(quick):
    s, html = quick
    for key in ("explain", "analyze", "map", "compare"):
        assert s[key], key
    for heading in ("1. Explain", "2. Analyze", "3. Map", "4. Compare scaling"):
        assert heading in html
    assert 3 in registry()


def test_claims_carry_the_runs_numbers(quick):
    s, html = quick
    curve = s["explain"]["in_node_curve"]
    assert f"{curve[-1]['speedup']:.2f}x" in html
    p = s["analyze"]["paths"]
    assert f"{p['pcie-4x-a100-nvbridge']['ring_gb_s']:.0f}" in html
    heavy = list(s["compare"]["workloads"].values())[0]
    worst = min(heavy.values(), key=lambda v: v["efficiency_at_max"])
    assert f"{worst['efficiency_at_max']:.0%}" in html


def test_conclusions_hold_in_the_numbers(quick):
    s, _ = quick
    heavy, light = s["compare"]["workloads"].values()
    nvs = heavy["NVSwitch (dgx-a100)"]["efficiency_at_max"]
    assert all(nvs >= v["efficiency_at_max"] for v in heavy.values())
    assert (
        min(v["efficiency_at_max"] for v in light.values()) > max(v["efficiency_at_max"] for v in heavy.values()) - 1e-9
    )
    assert all(m["renders_back"] for m in s["map"]["maps"])


def test_design_maps_the_users_matrix(tmp_path):
    fix = Path(__file__).parents[1] / "fixtures" / "topology" / "4xA100-sxm-nv4-4nic-pxb.txt"
    out = tmp_path / "l3"
    lab3.run(out, design=fix, quick=True)
    s = json.loads((out / "summary.json").read_text())
    assert [m["file"] for m in s["map"]["maps"]] == [str(fix)]
    assert s["map"]["maps"][0]["pair_codes"] == {"NV4": 6}
    with pytest.raises(UserError, match="no such file"):
        lab3.run(tmp_path / "x", design=tmp_path / "missing.txt", quick=True)


def test_at_least_bound_is_not_rounded_up(quick):
    """The compute-heavy job's "keeps at least X% on every wiring" must hold for every point of the curves it
    is read from (f41): floored to the shown precision, never rounded to nearest (0.9956 is not "100%")."""
    import re

    s, html = quick
    light = list(s["compare"]["workloads"].values())[1]
    effs = [r["efficiency"] for v in light.values() for r in v["curve"]]
    m = re.search(r"keeps at least ([0-9.]+)% on every wiring", html)
    assert m, "the compute-heavy bound is stated"
    shown = float(m.group(1)) / 100
    assert shown <= min(effs) + 1e-12
    # and it is the tightest bound at one decimal, not a loose one
    assert min(effs) - shown < 0.001
