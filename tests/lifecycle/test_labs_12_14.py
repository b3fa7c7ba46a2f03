"""Labs 12 and 14 compute their conclusions from the runs they make; designs are checked first."""

import json

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab12, lab14, registry


@pytest.fixture(scope="module")
def l12(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab12")
    lab12.run(out)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


@pytest.fixture(scope="module")
def l14(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab14")
    lab14.run(out, quick=True)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text(), out


def test_lab12_every_activity_and_computed_claims(l12):
    s, html = l12
    assert {12, 14} <= set(registry())
    for h in ("1. Why GPU", "2. Version coupling", "3. A safe upgrade", "4. Capacity expansion"):
        assert h in html
    up = s["upgrade"]
    assert up["naive"]["pdb_overridden"] > 0 and up["proposed"]["pdb_overridden"] == 0
    d = up["design"]
    assert f"${d['disruption_usd']:,.0f} of disruption" in html  # the headline is the number just computed
    assert all(c["duration_h"] is None or c["duration_h"] >= 0 for c in up["candidates"])
    fr = s["fragility"]["B200"]
    assert 0 <= fr["refused"] <= fr["pairs"]
    # training checkpoints: a drain loses at most what it would since each pod's start
    assert f"checkpoints every {up['checkpoint_interval_s'] / 60:.0f} min" in html
    assert all(c["lost_gpu_hours"] >= 0 for c in up["candidates"])


def test_lab12_coupling_counts_come_from_the_plans(l12):
    s, html = l12
    co = s["coupling"]
    for r in co:  # a requested layer is never reported as forced
        assert not {f["layer"] for f in r["forced"]} & set(r["requested"])
    n_forced = sum(1 for r in co if r["forced"])
    n_drain = sum(1 for r in co if r["needs_node_drain"])
    assert f"Of {len(co)} requested changes" in html and f", {n_forced} force a change at another layer" in html
    assert f"{n_drain} need every node drained" in html
    fw = next(r for r in co if r["requested_text"] == "framework=2.7")
    assert fw["needs_node_drain"] is False  # an image change rolls with the pods


def test_lab14_attribution_sums_and_design_against_strongest_baseline(l14):
    s, html, _ = l14
    for name, r in s["runs"].items():
        assert r["check"]["ok"], name
        assert sum(v["usd"] for v in r["by_category"].values()) == pytest.approx(r["bill_usd"], rel=1e-9)
    assert "strongest baseline" in html
    des = s["runs"]["design"]
    assert f"${des['silent_burn_usd']:,.0f}" in html
    # over-provisioned serving: computed from the declared load, shown, and moved out of usage
    assert "4. Over-provisioned serving" in html
    sv = s["runs"]["as is"]["over_provisioning"][0]
    assert sv["status"] == "computed" and sv["needed_replicas"] >= sv["min_replicas"]
    assert f"{sv['over_provisioned_gpu_hours']:,.1f} GPU-hours" in html
    over = s["runs"]["as is"]["by_category"]["over_provisioned"]["gpu_hours"]
    assert over == pytest.approx(sv["over_provisioned_gpu_hours"])
    assert 0 < over <= sv["held_gpu_hours"]
    up = s["runs"]["as is"]["upgrade"]
    assert up["lost_gpu_hours"] <= up["lost_gpu_hours_since_start"]
    sp = s["runs"]["as is"]["spot"]
    assert 0 <= sp["lost_gpu_hours"] <= sp["lost_gpu_hours_since_start"] + 1e-12
    assert f"{sp['lost_gpu_hours']:.1f} GPU-h lost since their last checkpoint by the same rule" in html
    inv = s["spot_inventory"]
    assert sum(m["gpus"] for m in inv["models"]) + sum(u["gpus"] for u in inv["unpriced"]) == 10412  # SOURCE.md
    # the spot pool is billed at the spot price, the on-demand pool at on-demand: same GPU model, two prices
    from gpuinfra.catalog.prices import gpu_hour_price

    h100 = gpu_hour_price("H100-SXM", cloud="aws")  # the lab scenario's price book: prices.cloud aws
    for r in s["runs"].values():
        by = {p["pool"]: p for p in r["bill_by_pool"]}
        assert by["gpu-spot"]["purchase"] == "spot" and by["gpu-spot"]["usd_per_gpu_hour"] == h100.spot_usd
        assert by["gpu"]["purchase"] == "on_demand" and by["gpu"]["usd_per_gpu_hour"] == h100.on_demand_usd
        assert sum(p["usd"] for p in r["bill_by_pool"]) == pytest.approx(r["bill_usd"], rel=1e-12)
    assert h100.spot_usd < h100.on_demand_usd


def test_lab14_design_reclaims_capacity_and_is_judged_against_the_strongest_baseline(l14):
    s, html, _ = l14
    assert s["quick"] and s["days"] == lab14.QUICK_DAYS  # --quick: a shorter horizon, used
    runs = s["runs"]
    # the combination of the simple baselines is itself a baseline, so the design must beat more than its parts
    assert "right-size pool + serving" in runs
    sz = s["design"]["sizing"]
    if sz["size_to_peak"]:
        # the pool the design ran is the one its rule computes from the baseline's allocation (by hand)
        import numpy as np

        alloc = np.asarray(runs["right-size serving only"]["allocated_gpus_per_interval"])
        peak = np.percentile(alloc, sz["percentile"])
        nodes = max(1, int(np.ceil((peak + sz["headroom_gpus"]) / 8 - 1e-9)) - s["design"]["spec"]["spot_nodes"])
        assert sz["gpu_nodes"] == nodes
        assert runs["design"]["gpus"] == 8 * (nodes + s["design"]["spec"]["spot_nodes"])
    strong = lab14._strongest(runs)
    des, sb = runs["design"], runs[strong]
    saved = sb["silent_burn_usd"] - des["silent_burn_usd"]
    word = f"${saved:,.0f} less" if saved >= 0.5 else f"${-saved:,.0f} more" if saved <= -0.5 else "the same"
    assert f"strongest baseline ({strong}): {word}" in html  # the headline says what the numbers say
    # the detection trial pools enough node-days that faults kill pods, paired seed by seed
    dt = s["detection"]
    assert dt["strikes_total"]["as is"] == dt["strikes_total"]["faster"] > 0
    assert dt["pods_killed_total"]["as is"] > 0
    assert dt["node_days"] == len(dt["seeds"]) * s["days"] * 7
    assert "5b. Faster fault detection" in html and "failure waste (USD per run)" in html
    assert '"legend":{"title":{"text":"GPU health detection"}}' in html


def test_lab14_spot_replay_beside_the_closed_form(l14):
    s, html, out = l14
    rp = s["spot_replay"]
    plans = rp["plans"]
    assert set(plans) == {"on-demand", "spot", "committed+spot"}
    for name, v in plans.items():
        assert v["invariants_ok"], name
        assert v["jobs_unfinished"] == 0 and v["useful_gpu_hours"] == pytest.approx(rp["workload_gpu_hours"])
        assert 0 < v["utilisation"] <= 1
    od = plans["on-demand"]
    assert od["reclaims"] == 0 and od["lost_gpu_hours"] == 0 and od["closed_form"]["expected_lost_gpu_hours"] == 0
    # the closed form by hand for on-demand: the pools' GPU-weighted on-demand price
    from gpuinfra import spot_whatif as sw

    spec = sw.WhatIfSpec(**rp["spec"])
    pools, prices, _ = sw.select(spec)
    gpus = sum(p.gpus_per_node * len(p.nodes) for p in pools)
    by_hand = sum(prices[p.model].on_demand_usd * p.gpus_per_node * len(p.nodes) for p in pools) / gpus
    assert od["closed_form"]["usd_per_useful_gpu_hour_busy"] == pytest.approx(by_hand)
    assert gpus == rp["gpus"]
    # reclaims are disruptions the podFailurePolicy ignores: none counts toward a backoffLimit
    assert plans["spot"]["failures_counted"] == 0
    # the headline is the cheapest plan against the strongest other plan of the same run, in numbers just made
    ranked = sorted(plans, key=lambda k: plans[k]["usd_per_useful_gpu_hour"])
    best, base = plans[ranked[0]], plans[ranked[1]]
    assert f"{ranked[0]} does the work for the least, ${best['usd_per_useful_gpu_hour']:.3f}" in html
    assert f"strongest baseline, {ranked[1]} (${base['usd_per_useful_gpu_hour']:.3f}" in html
    assert "7. The same spot question, replayed" in html
    # figures: axis titles with units and a legend (several traces)
    for title in ("USD per useful GPU-hour", "GPU-hours lost (work since the last checkpoint)"):
        assert title in html
    assert html.count('"legend":{"title":{"text":"computed by"}}') == 2
    # the scenarios the lab ran are written beside the report (atomically, labs.write_lab_file)
    from gpuinfra.io.atomic import _TMP_PREFIX

    assert (out / "design.yaml").exists() and not list(out.glob(_TMP_PREFIX + "*"))


def test_lab14_same_seed_same_bytes(l14, tmp_path):
    _, _, out = l14
    lab14.run(tmp_path, quick=True)
    assert (tmp_path / "summary.json").read_bytes() == (out / "summary.json").read_bytes()


def test_bad_designs_are_refused_before_any_run(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("strategy: sideways\n")
    with pytest.raises(UserError, match="strategy"):
        lab12.run(tmp_path / "o", design=p)
    p.write_text("gpu_nodes: 4\nbogus: 1\n")
    with pytest.raises(UserError, match="bogus"):
        lab14.run(tmp_path / "o", design=p)
    assert not (tmp_path / "o").exists()


def test_lab13_every_activity_and_computed_claims(tmp_path):
    from gpuinfra.labs import lab13

    lab13.run(tmp_path)
    s = json.loads((tmp_path / "summary.json").read_text())
    html = (tmp_path / "report.html").read_text()
    for h in ("1. Why AI infra", "2. Configuration churn", "3. Guardrails", "4. Rollback"):
        assert h in html
    g = s["guardrails"]
    assert all(r["invariants_ok"] for r in g.values())
    # a TTL bounds what a forgotten run can burn: at most TTL x its GPUs per forgotten experiment
    assert g["TTL only"]["forgotten_gpu_hours"] < g["no guardrails"]["forgotten_gpu_hours"]
    assert g["GPU cap only"]["rejected_at_admission"] == g["design"]["rejected_at_admission"] > 0  # same cap (16)
    d = g["design"]
    assert f"p90 {(d['small_wait_p90_s'] or 0) / 60:,.0f} min" in html
    # the rollout closed form: a canary at share f needs 1/f times the samples of big-bang
    ro = {(r["policy"], r["detector"]): r for r in s["rollout"]}
    bb = ro[("big-bang", "careful (alpha 0.1 %, power 95 %)")]
    can = ro[("canary 5 % then all", "careful (alpha 0.1 %, power 95 %)")]
    assert (can["bad_change_alive_min"] - 5) == pytest.approx((bb["bad_change_alive_min"] - 5) * 20, rel=0.02)
    base = s["churn"]["base"]
    assert base["fits"] and any(not r["fits"] for r in s["churn"]["changes"])


def test_lab14_money_changes_are_signed_before_the_dollar_and_labels_are_words(l14):
    """ "the bill moves by $-0" was the symptom: the sign goes before the $, a change that rounds to 0 is "$0",
    and the figure legends and tables show words, not attribution's internal names (the CSV keeps them)."""
    import re

    from gpuinfra.report.wording import readable_label

    s, html, _ = l14
    runs = s["runs"]
    m = re.search(r"the bill moves by ([+-]?)\$([0-9,]+)", html)
    assert m, "the right-size sentence states the bill's change"
    sign, amount = m.groups()
    delta = runs["right-size serving only"]["bill_usd"] - runs["as is"]["bill_usd"]
    assert int(amount.replace(",", "")) == round(abs(delta))
    assert sign == ("" if round(abs(delta)) == 0 else "-" if delta < 0 else "+")
    prose = re.sub(r"<script.*?</script>", "", html, flags=re.S)  # the inlined plotly.js has "$-" of its own
    assert "$-" not in prose and "$+" not in prose
    for name in ("__idle__", "__stranded__", "__unavailable__", "over_provisioned", "failure_waste"):
        assert name not in html, name
    assert readable_label("over_provisioned") in html
