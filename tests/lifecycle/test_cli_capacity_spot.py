"""`gpuinfra capacity plan` and `gpuinfra spot ...`: outputs, files, bad input (exit 2, where named),
and the parsers they use (forecast CSV/YAML/flag, --price) under hypothesis."""

import contextlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.cli.spot import parse_price
from gpuinfra.errors import UserError
from gpuinfra.io.forecast import load_forecast, parse_csv, parse_flag
from tests.clirunner import gi

SMALL = ["--models", "A10", "--scale", "0.01", "--days", "1", "-q"]


def _bad(r, *words):
    assert r.returncode == 2, r.output
    assert "Traceback" not in r.output
    for w in words:
        assert w in r.stderr, r.stderr


# -- parsers ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40), st.booleans())
def test_forecast_csv_roundtrips(gpus, swapped):
    head = "gpus,week" if swapped else "week,gpus"
    lines = [head] + [(f"{g!r},{k}" if swapped else f"{k},{g!r}") for k, g in enumerate(gpus)]
    got = parse_csv("\n".join(lines) + "\n", "f.csv")
    assert got.tolist() == gpus


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_forecast_csv_never_crashes(text):
    try:
        got = parse_csv(text, "f.csv")
    except UserError as e:
        assert str(e).startswith("f.csv")
    else:
        assert np.all(np.isfinite(got)) and np.all(got >= 0)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_demand_flag_and_price_never_crash(text):
    for fn in (parse_flag, parse_price):
        with contextlib.suppress(UserError):
            fn(text)


@given(
    st.text(alphabet=st.characters(blacklist_characters="=:", blacklist_categories=("Cs", "Zs", "Cc")), min_size=1),
    st.floats(0.01, 1e4),
    st.floats(0.01, 1e4),
)
def test_price_roundtrips(model, od, sp):
    assert parse_price(f"{model}={od!r}:{sp!r}") == (model, od, sp)


def test_bad_forecast_rows_name_line_and_column(tmp_path):
    with pytest.raises(UserError, match=r"f.csv:3 \(gpus\)"):
        parse_csv("week,gpus\n0,10\n1,ten\n", "f.csv")
    with pytest.raises(UserError, match=r"f.csv:3 \(week\)"):
        parse_csv("week,gpus\n0,10\n2,10\n", "f.csv")
    with pytest.raises(UserError, match=r"f.csv:2 \(gpus\).*out of range"):
        parse_csv("week,gpus\n0,-1\n", "f.csv")
    with pytest.raises(UserError, match="f.csv:1"):
        parse_csv("week,demand\n0,1\n", "f.csv")
    y = tmp_path / "f.yaml"
    y.write_text("source: test\nforecast:\n  - {week: 0, gpus: 5}\n  - {week: 1, gpus: -5}\n")
    with pytest.raises(UserError, match=r"f.yaml:4"):
        load_forecast(y)
    y.write_text("forecast:\n  - {week: 0, gpus: 5}\n  - {week: 3, gpus: 5}\n")
    with pytest.raises(UserError, match=r"f.yaml:3 \(forecast\[1\].week\)"):
        load_forecast(y)
    y.write_text("source: launch plan\nforecast:\n  - {week: 0, gpus: 5}\n  - {week: 1, gpus: 7.5}\n")
    d, src = load_forecast(y)
    assert d.tolist() == [5, 7.5] and src == "launch plan"


# -- capacity plan ------------------------------------------------------------------------------


def test_capacity_plan_hand_computed(tmp_path):
    f = tmp_path / "f.csv"
    f.write_text("week,gpus\n0,100\n1,100\n2,100\n3,200\n4,200\n")
    r = gi("capacity", "plan", "-f", f, "--current-gpus", "100", "--lead-weeks", "2", "--speedup", "2", "--json")
    assert r.returncode == 0, r.output
    p = json.loads(r.stdout)
    exp, rep = p["growth"]["options"]
    # gap 100 current GPUs at speedup 2: expand orders 50 new; replace orders 100 (each adds 1)
    assert exp["gpus_ordered"] == 50 and rep["gpus_ordered"] == 100
    assert exp["capacity"] == [100, 100, 200, 200, 200] and exp["unmet_gpu_weeks"] == 0
    # replace is staggered: the 100 new arrive in week 2 and run beside the old for the 1 validation
    # week (capacity stays 100), then the old are decommissioned: 100 x 2 = 200 from week 3
    assert rep["capacity"] == [100, 100, 100, 200, 200] and rep["unmet_gpu_weeks"] == 0
    po, pn = p["gpu"]["on_demand_usd_per_gpu_hour"], p["new_gpu"]["on_demand_usd_per_gpu_hour"]
    assert exp["cost_usd"] == pytest.approx(168 * (500 * po + 150 * pn))  # 100 old x 5 wk, 50 new x 3 wk
    assert rep["cost_usd"] == pytest.approx(168 * (300 * po + 300 * pn))  # 100 old x 3 wk, 100 new x 3 wk
    cheaper = "expand" if exp["cost_usd"] <= rep["cost_usd"] else "replace"
    assert p["growth"]["recommended"] == cheaper and p["growth"]["meets_demand"] is True
    # week 3 needs 100 more: ordered at week 1 (lead 2), nothing burst or unmet
    assert p["spike"]["orders"] == [{"order_week": 1, "arrives_week": 3, "gpus": 100.0}]
    # the cost splits into the current fleet still in service and the new GPUs
    assert exp["current_fleet_usd"] == pytest.approx(168 * 500 * po) and rep["current_fleet_usd"] == pytest.approx(
        168 * 300 * po
    )
    for o in (exp, rep):
        assert o["current_fleet_usd"] + o["new_gpus_usd"] == pytest.approx(o["cost_usd"])


def test_capacity_plan_says_what_a_zero_order_costs_and_that_the_discount_is_assumed():
    """The newcomer's case: with the default speed-up 1.0, replace orders 0 GPUs and still showed
    1.48 M USD with no reason; the 50 % committed discount had no source."""
    from pathlib import Path

    fc = str(Path(__file__).resolve().parents[2] / "examples" / "forecast.yaml")
    d = ("-f", fc, "--current-gpus", "200", "--lead-weeks", "3", "--quota", "64")
    p = json.loads(gi("capacity", "plan", *d, "--json").stdout)
    rep = next(o for o in p["growth"]["options"] if o["option"] == "replace")
    weeks = len(p["forecast"]["gpus_per_week"])
    assert rep["gpus_ordered"] == 0 and "adds no capacity" in rep["why_no_order"]
    # all of its cost is the current fleet's run: 200 GPUs x price x 168 h x the forecast's weeks
    assert rep["new_gpus_usd"] == 0
    assert rep["cost_usd"] == pytest.approx(200 * p["gpu"]["on_demand_usd_per_gpu_hour"] * 168 * weeks)
    t = gi("capacity", "plan", *d).stdout
    assert "adds no capacity" in t and "of it: current GPUs (USD)" in t
    assert p["committed"]["discount"] == 0.5 and "assumption" in p["committed"]["discount_basis"]
    given = json.loads(gi("capacity", "plan", *d, "--committed-discount", "0.3", "--json").stdout)
    assert given["committed"]["discount_basis"].startswith("given") and given["committed"]["discount"] == 0.3


def test_capacity_plan_table_and_out_dir(tmp_path):
    o = tmp_path / "plan"
    r = gi("capacity", "plan", "--demand", "10,10,30,30", "--current-gpus", "10", "--quota", "4", "-o", o)
    assert r.returncode == 0, r.output
    assert "recommended:" in r.stdout and "launch-spike orders" in r.stdout
    assert (o / "plan.json").is_file() and (o / "manifest.json").is_file()
    again = gi("capacity", "plan", "--demand", "10,10,30,30", "--current-gpus", "10", "--quota", "4", "-o", o)
    assert again.returncode == 0  # a finished run of the same command is replaced


def test_capacity_plan_newcomer_cases():
    d = ("--demand", "100,100,160,220,400,400")
    # default 8-week lead on a 6-week forecast: nothing arrives in the horizon, and the output says so
    r = gi("capacity", "plan", *d, "--current-gpus", "0", "--json")
    p = json.loads(r.stdout)
    exp = p["growth"]["options"][0]
    assert exp["deliverable_in_horizon"] is False and exp["gpus_delivered_in_horizon"] == 0
    assert p["growth"]["recommended"] == "none" and not p["spike"]["orders"]
    assert "no order can arrive" in p["spike"]["why_no_orders"]
    t = gi("capacity", "plan", *d, "--current-gpus", "0").stdout
    assert "not deliverable in the 6-week horizon" in t and "neither option meets demand" in t
    assert "launch-spike orders: none (no order can arrive" in t
    assert "no order needed" in gi("capacity", "plan", *d, "--current-gpus", "500").stdout
    # default speedup: conservative 1.0, the peak ratio shown as the bound
    assert p["speedup"] == 1.0 and p["speedup_upper_bound"] > 3
    # the quota bounds the spike orders too
    q = json.loads(
        gi("capacity", "plan", *d, "--current-gpus", "200", "--lead-weeks", "2", "--quota", "64", "--json").stdout
    )
    assert sum(o["gpus"] for o in q["spike"]["orders"]) == 64 and q["spike"]["quota_binds"]
    assert all(o["gpus_ordered"] <= 64 for o in q["growth"]["options"])


def test_capacity_plan_bad_input(tmp_path):
    _bad(gi("capacity", "plan", "--demand", "1,2", "--quota", "-3"), "--quota")
    _bad(gi("capacity", "plan", "--demand", "1,x"), "--demand item 2")
    _bad(gi("capacity", "plan", "--demand", ",".join(["1"] * 600)), "--demand: 600 weeks given", "1..520")
    _bad(gi("capacity", "plan"), "--forecast/--demand")
    _bad(gi("capacity", "plan", "--demand", "1", "--availability", "1.5"), "--availability")
    _bad(gi("capacity", "plan", "--demand", "1", "--availability", "0"), "--availability", "(0, 1]")
    _bad(gi("capacity", "plan", "--demand", "1", "--speedup", "0"), "--speedup")
    _bad(gi("capacity", "plan", "--demand", "1", "--new-gpu", "GPU-series-1"), "--new-gpu")
    f = tmp_path / "f.csv"
    f.write_text("week,gpus\n0,1\n1,[bold]x\n")
    r = gi("capacity", "plan", "-f", f)
    _bad(r, "f.csv:3 (gpus)", "[bold]x")


# -- spot ---------------------------------------------------------------------------------------


def test_spot_inventory_lists_the_whole_trace():
    r = gi("spot", "inventory", "--json")
    assert r.returncode == 0, r.output
    pools = json.loads(r.stdout)["pools"]
    assert sum(p["nodes"] for p in pools) == 4278
    assert sum(p["nodes"] * p["gpus_per_node"] for p in pools) == 10412


def test_spot_whatif_json_out_dir_and_determinism(tmp_path):
    o = tmp_path / "w"
    r = gi("spot", "whatif", *SMALL, "--seed", "3", "--json", "-o", o)
    assert r.returncode == 0, r.output
    s = json.loads(r.stdout)
    assert set(s["plans"]) == {"on-demand", "spot", "committed+spot"}
    assert {"summary.json", "pools.csv", "manifest.json"} <= {p.name for p in o.iterdir()}
    first = (o / "summary.json").read_bytes()
    r2 = gi("spot", "whatif", *SMALL, "--seed", "3", "-o", o)
    assert r2.returncode == 0 and "same seed, same work" in r2.stdout and "invariants: ok" in r2.stdout
    assert (o / "summary.json").read_bytes() == first


def test_spot_whatif_spec_file_and_flags(tmp_path):
    y = tmp_path / "w.yaml"
    y.write_text("models: [A10]\nscale: 0.01\ndays: 1\nreclaim_per_month: 0.1\nnotice_s: 30\n")
    r = gi("spot", "whatif", "--spec", y, "--plans", "spot", "--reclaim-rate", "0.05", "--json", "-q")
    assert r.returncode == 0, r.output
    s = json.loads(r.stdout)
    assert s["spec"]["reclaim_per_month"] == 0.05 and s["spec"]["notice_s"] == 30 and list(s["plans"]) == ["spot"]


def test_spot_whatif_bad_input(tmp_path):
    _bad(gi("spot", "whatif", *SMALL, "--reclaim-rate", "1.5"), "--reclaim-rate", "[0, 1]")
    _bad(gi("spot", "whatif", *SMALL, "--reclaim-rate", "-0.1"), "--reclaim-rate")
    _bad(gi("spot", "whatif", "--models", "H800", "-q"), "H800", "--price")
    _bad(gi("spot", "whatif", *SMALL, "--price", "A10=abc:1"), "--price")
    _bad(gi("spot", "whatif", *SMALL, "--plans", "reserved"), "--plans")
    _bad(gi("spot", "whatif", *SMALL, "--plans", ""), "--plans: no plan given")
    _bad(gi("spot", "whatif", *SMALL, "--plans", ","), "--plans: ',' has an empty item")
    _bad(gi("spot", "whatif", *SMALL, "--price", "NOPE=1:0.5"), "'NOPE' is not a GPU model of the spot inventory")
    _bad(gi("spot", "whatif", *SMALL, "--price", "A10=1:0.5", "--price", "A10=2:1"), "A10 is priced twice")
    _bad(gi("spot", "whatif", *SMALL, "--price", "A10=1:2"), "above its on-demand price")
    _bad(gi("spot", "whatif", *SMALL, "--scale", "0"), "--scale")
    y = tmp_path / "w.yaml"
    y.write_text("models: [A10]\nreclaim_per_month: 2\n")
    _bad(gi("spot", "whatif", "--spec", y, "-q"), "w.yaml:2", "reclaim_per_month")
    # a user-given price makes an unpriced model replayable
    r = gi(
        "spot", "whatif", "--models", "A800-SXM4-80GB", "--price", "A800-SXM4-80GB=3:1", "--days", "1", "--json", "-q"
    )
    assert r.returncode == 0, r.output
    assert json.loads(r.stdout)["prices"]["A800-SXM4-80GB"]["source"].endswith("(--price)")


def _scenario(tmp_path, prices="prices: {cloud: aws}\n"):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "examples" / "spot.yaml").read_text()
    text = text.replace("trace: upgrade-jobs.csv", f"trace: {root / 'examples' / 'upgrade-jobs.csv'}")
    text = text.replace("prices:\n  cloud: aws\n", prices)
    p = tmp_path / "spot.yaml"
    p.write_text(text)
    return p


def test_spot_whatif_on_a_scenario_prices_every_pool_by_hand(tmp_path):
    from gpuinfra.catalog.prices import gpu_hour_price

    r = gi("spot", "whatif", "--scenario", _scenario(tmp_path), "--json", "-q", "--committed-discount", "0.3")
    assert r.returncode == 0, r.output
    s = json.loads(r.stdout)
    od, sp, mix = (s["plans"][k] for k in ("on-demand", "spot", "committed+spot"))
    h100 = gpu_hour_price("H100-SXM", cloud="aws")
    # 6 p5.48xlarge nodes x 8 GPUs for the scenario's 72 h at the on-demand price
    assert od["cost_usd"] == pytest.approx(48 * 72 * h100.on_demand_usd, rel=1e-12)
    # committed+spot is the spot replay with the 2 on-demand nodes 30 % cheaper
    assert sp["cost_usd"] - mix["cost_usd"] == pytest.approx(16 * 72 * h100.on_demand_usd * 0.3, rel=1e-9)
    spot_pool = [p for p in sp["pools"] if p["purchase"] == "spot"][0]
    assert spot_pool["usd_per_gpu_hour"] == h100.spot_usd
    assert spot_pool["billed_gpu_hours"] == pytest.approx(32 * 72 - spot_pool["reclaimed_gpu_hours"])
    assert sp["reclaims"] > 0 and od["reclaims"] == 0
    for plan in s["plans"].values():
        assert plan["invariants"]["no_overcommit"] and plan["invariants"]["gpu_time_balance"]


def test_spot_whatif_scenario_bad_input(tmp_path):
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    _bad(gi("spot", "whatif", "--scenario", root / "examples" / "upgrade.yaml", "-q"), "(spot)", "no spot")
    _bad(gi("spot", "whatif", "--scenario", _scenario(tmp_path), "--days", "3", "-q"), "--scenario", "--days")
    only_od = "prices:\n  overrides:\n    H100-SXM: {on_demand_usd_per_gpu_hour: 5, source: test}\n"
    _bad(gi("spot", "whatif", "--scenario", _scenario(tmp_path, only_od), "-q"), "no spot price", "H100-SXM")
    bad_pool = _scenario(tmp_path)
    bad_pool.write_text(bad_pool.read_text().replace("pools: [gpu-spot]", "pools: [gpu-spot, nope]"))
    line = next(i for i, ln in enumerate(bad_pool.read_text().splitlines(), 1) if "nope" in ln)
    for cmd in (("spot", "whatif", "--scenario", bad_pool, "-q"), ("simulate", bad_pool, "-o", tmp_path / "o")):
        _bad(gi(*cmd), f"{bad_pool}:{line} (spot.pools[1]): 'nope' is not a pool of the cluster")


def test_spot_whatif_text_polish(tmp_path):
    r = gi("spot", "whatif", "--scenario", _scenario(tmp_path), "-q")
    assert r.returncode == 0, r.output
    head = r.stdout.splitlines()[0]
    # the rate is stated once by the tool; the scenario's own source text follows after "Source:"
    assert "per node-day (0.5 per node-day" not in head and "Source:" in head and "spot pool gpu-spot:" in head
    # every plan has pods still at the 72-h horizon (the services): said once, no '> 72.0' column
    assert "no plan finished all its pods inside the run's 72.0-h horizon" in r.stdout
    assert "> 72.0" not in r.stdout and "done after" not in r.stdout
    one = gi("spot", "whatif", *SMALL, "--plans", "on-demand")
    assert "1 plan in" in one.stdout and "1 plans" not in one.stdout
    d = gi("spot", "whatif", "--scale", "0.01", "--days", "1", "-q")
    left = [ln for ln in d.stdout.splitlines() if ln.startswith("left out")][0]
    assert left.count("no catalog price") == 1 and "H800 (1,752 GPUs)" in left and "unknown GPU model" not in left


def test_spot_whatif_headline_names_the_strongest_baseline():
    r = gi("spot", "whatif", *SMALL, "--reclaim-rate", "1")
    assert r.returncode == 0, r.output
    assert "strongest baseline: on-demand right-sized" in r.stdout
    assert "than right-sized on-demand" in r.stdout and "price ratio alone" in r.stdout
    assert "spot capacity risk [assumption: 10 % of reclaims find no capacity for 4 h]" in r.stdout


def test_spot_whatif_capacity_knobs_and_bad_values():
    r = gi("spot", "whatif", *SMALL, "--replace-unavailable-prob", "0", "--autoscale-granularity-s", "0", "--json")
    assert r.returncode == 0, r.output
    s = json.loads(r.stdout)
    assert s["capacity_risk"] is None and s["spec"]["autoscale_granularity_s"] == 0
    od = s["plans"]["on-demand"]
    assert s["headline"]["baseline_usd"] == pytest.approx(
        od["allocated_gpu_hours"] * s["prices"]["A10"]["on_demand_usd"]
    )
    _bad(gi("spot", "whatif", *SMALL, "--replace-unavailable-prob", "2"), "--replace-unavailable-prob")
    _bad(gi("spot", "whatif", *SMALL, "--autoscale-granularity-s", "-1"), "--autoscale-granularity-s")


def test_spot_whatif_on_a_scenario_headlines_against_right_sized_on_demand(tmp_path):
    """House rule: the headline compares with the strongest baseline of the same run, on the --scenario
    path too (it compared with the fixed on-demand fleet only); each plan says what it buys per pool."""
    from gpuinfra.catalog.prices import gpu_hour_price

    h100 = gpu_hour_price("H100-SXM", cloud="aws")
    runs = {}
    for g in ("0", "600"):
        r = gi("spot", "whatif", "--scenario", _scenario(tmp_path), "--json", "-q", "--autoscale-granularity-s", g)
        assert r.returncode == 0, r.output
        runs[g] = json.loads(r.stdout)
    s = runs["0"]
    od, h = s["plans"]["on-demand"], s["headline"]
    # with no scale-down delay, right-sized = the GPU-hours the pods held x the on-demand price
    assert h["baseline_usd"] == pytest.approx(od["allocated_gpu_hours"] * h100.on_demand_usd, rel=1e-9)
    assert h["baseline_usd"] < od["cost_usd"]  # stronger than the fixed fleet billed idle
    for name in ("spot", "committed+spot"):
        x, res = h["plans"][name], s["plans"][name]
        assert x["saving_vs_right_sized_on_demand"] == pytest.approx(1 - res["cost_usd"] / h["baseline_usd"])
        assert x["saving_vs_fixed_on_demand"] == pytest.approx(1 - res["cost_usd"] / od["cost_usd"])
        for p in res["pools"]:  # the label names every pool with what it buys
            assert f"{p['purchase']} {p['pool']} ({p['nodes']} nodes)" in res["label"]
    assert "on-demand gpu" in s["plans"]["spot"]["label"]  # the 'spot' plan keeps its on-demand pool
    # 600 s of scale-down per started pod: the baseline grows by started pods' GPUs x 600 s x price
    extra = runs["600"]["headline"]["baseline_usd"] - h["baseline_usd"]
    assert extra > 0 and extra / (h100.on_demand_usd * 600 / 3600) == pytest.approx(
        round(extra / (h100.on_demand_usd / 6))
    )
    text = gi("spot", "whatif", "--scenario", _scenario(tmp_path), "-q").stdout
    assert "strongest baseline: on-demand right-sized" in text and "than right-sized on-demand" in text


def test_spot_whatif_states_the_prices_it_used():
    """The A10 price (Azure's, with its host share) feeds every A10 of the inventory: the run says
    which price it used and where it comes from; a cost change that rounds to zero is +0, never -0."""
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.cli.catalog import usd

    r = gi("spot", "whatif", *SMALL)
    assert r.returncode == 0, r.output
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("prices (USD/GPU-h"))
    p = gpu_hour_price("A10")
    assert f"A10 {usd(p.on_demand_usd)} / {usd(p.spot_usd)} ({p.source})" in line
    assert "-0 USD" not in r.stdout
