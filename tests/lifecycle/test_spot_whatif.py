"""The spot what-if replay on the Alibaba spot cluster's inventory (gpuinfra/spot_whatif.py)."""

import json
import math

import numpy as np
import pytest

from gpuinfra.errors import UserError
from gpuinfra.spot_whatif import PriceSpec, WhatIfSpec, inventory, replay_plan, select, whatif, workload

SMALL = dict(models=["A10"], scale=0.01, days=1.0, job_hours_median=3.0, max_job_hours=12.0)


def test_inventory_matches_the_traces_own_totals():
    # SOURCE.md: 4,278 GPU nodes, 10,412 GPUs; A100-SXM4-80GB 432 x 8, A10 2,494 x 1
    pools = inventory()
    assert sum(len(p.nodes) for p in pools) == 4278
    assert sum(len(p.nodes) * p.gpus_per_node for p in pools) == 10412
    a100 = [p for p in pools if p.model == "A100-SXM4-80GB"]
    assert sum(len(p.nodes) for p in a100) == 432 and {p.gpus_per_node for p in a100} == {8}
    assert sum(len(p.nodes) for p in pools if p.model == "A10") == 2494


def test_unpriced_model_is_a_user_error_naming_it():
    with pytest.raises(UserError, match="H800"):
        select(WhatIfSpec(models=["H800"]))
    with pytest.raises(UserError, match="not in the inventory"):
        select(WhatIfSpec(models=["B200"]))
    # a price given by the user makes it replayable
    pools, prices, _ = select(
        WhatIfSpec(models=["H800"], scale=0.05, prices={"H800": PriceSpec(on_demand_usd=3, spot_usd=1, source="t")})
    )
    assert prices["H800"].on_demand_usd == 3 and {p.model for p in pools} == {"H800"}


def test_default_selection_says_what_it_left_out_and_why():
    _, prices, skipped = select(WhatIfSpec())
    assert set(prices) == {"A100-SXM4-80GB", "A10"}
    left = {s["gpu_model"]: s for s in skipped}
    assert set(left) == {"H800", "A800-SXM4-80GB", "GPU-series-1", "GPU-series-2"}
    assert all(s["why"] and s["gpus"] > 0 for s in skipped)


def _one(plan, spec, seed=0):
    pools, prices, _ = select(spec)
    jobs = workload(pools, spec, seed)
    return replay_plan(plan, pools, prices, jobs, spec, seed), pools, prices, jobs


def test_all_on_demand_cost_is_gpu_hours_times_price_by_hand():
    spec = WhatIfSpec(**SMALL)
    r, pools, prices, _ = _one("on-demand", spec)
    gpus = sum(len(p.nodes) * p.gpus_per_node for p in pools)
    assert r["jobs_unfinished"] == 0
    by_hand = gpus * r["completion_time_h"] * prices["A10"].on_demand_usd
    assert r["cost_usd"] == pytest.approx(by_hand, rel=1e-12)
    assert r["reclaims"] == 0 and r["lost_gpu_hours"] == 0


def test_committed_pool_costs_discounted_on_demand_for_the_whole_run():
    spec = WhatIfSpec(**SMALL, committed_share=0.5, committed_discount=0.4, reclaim_per_month=0.0)
    r, _, prices, _ = _one("committed+spot", spec)
    com = [p for p in r["pools"] if p["purchase"] == "committed"][0]
    assert com["cost_usd"] == pytest.approx(com["gpus"] * r["completion_time_h"] * prices["A10"].on_demand_usd * 0.6)


def test_spot_without_reclaims_is_on_demand_at_the_spot_price():
    spec = WhatIfSpec(**SMALL, reclaim_per_month=0.0)
    od, _, prices, _ = _one("on-demand", spec)
    sp, *_ = _one("spot", spec)
    p = prices["A10"]
    assert sp["completion_time_h"] == od["completion_time_h"] and sp["mean_jct_h"] == od["mean_jct_h"]
    assert sp["cost_usd"] == pytest.approx(od["cost_usd"] * p.spot_usd / p.on_demand_usd, rel=1e-12)


def test_expected_reclaims_are_rate_x_nodes_x_time_over_seeds():
    # notice 0 and replacement 0: every node is in service all the time, so reclaims are a Poisson
    # process of rate r x N over the horizon: E = r N T, Var = r N T
    spec = WhatIfSpec(**SMALL, reclaim_per_month=1.0, notice_s=0, replace_s=0, horizon_days=6.0)
    pools, prices, _ = select(spec)
    n_nodes = sum(len(p.nodes) for p in pools)
    expected = spec.reclaim_per_node_day * n_nodes * 6.0
    counts = []
    for seed in range(20):
        jobs = workload(pools, spec, seed)
        counts.append(replay_plan("spot", pools, prices, jobs, spec, seed)["reclaims_to_horizon"])
    mean = float(np.mean(counts))
    assert abs(mean - expected) <= 4 * math.sqrt(expected / len(counts)), (mean, expected)


def test_reclaims_cost_work_and_every_run_keeps_the_invariants():
    spec = WhatIfSpec(
        **{**SMALL, "scale": 0.02, "days": 2.0, "load": 1.2}, reclaim_per_month=1.0, checkpoint_interval_s=7200
    )
    r = whatif(spec, seed=4)
    od, sp = r["plans"]["on-demand"], r["plans"]["spot"]
    for plan in r["plans"].values():
        inv = plan["invariants"]
        assert inv["no_overcommit"] and inv["gpu_time_balance"]
        assert plan["jobs_completed"] + plan["jobs_unfinished"] == plan["jobs"]
        assert 0 <= plan["goodput"] <= 1 and 0 <= plan["utilisation"] <= 1
    assert sp["reclaims"] > 0 and sp["pods_killed"] > 0
    # podFailurePolicy Ignore on DisruptionTarget: every reclaim is an ignored failure, none counts
    assert sp["failures_ignored"] >= sp["jobs_interrupted"] > 0 and sp["failures_counted"] == 0
    assert sp["lost_gpu_hours"] > 0 and sp["goodput"] < od["goodput"]
    # the same jobs in every plan: the useful work of a finished workload is its steady work
    assert sp["useful_gpu_hours"] == pytest.approx(r["workload"]["gpu_hours"])
    assert od["useful_gpu_hours"] == pytest.approx(r["workload"]["gpu_hours"])


def test_same_seed_same_bytes_other_seed_other_run():
    spec = WhatIfSpec(**SMALL, reclaim_per_month=0.5)
    a = json.dumps(whatif(spec, seed=7), sort_keys=True, default=str)
    b = json.dumps(whatif(spec, seed=7), sort_keys=True, default=str)
    c = json.dumps(whatif(spec, seed=8), sort_keys=True, default=str)
    assert a == b and a != c


def test_workload_offers_the_load_asked_in_expectation():
    # expected GPU-hours = load x capacity x window; over seeds the mean lands within a few percent
    spec = WhatIfSpec(models=["A100-SXM4-80GB"], scale=0.5, days=2.0, load=0.6)
    pools, _, _ = select(spec)
    cap = sum(len(p.nodes) * p.gpus_per_node for p in pools) * spec.days * 24
    got = [sum(j.pods * j.gpus_per_pod * j.work_s for j in workload(pools, spec, s)) / 3600 for s in range(30)]
    assert np.mean(got) == pytest.approx(spec.load * cap, rel=0.08)


def test_a_reclaim_loses_at_most_one_checkpoint_interval_of_work_per_killed_pod():
    # one-node A10 jobs are single 1-GPU pods: a kill throws away the steady work since the last
    # durable checkpoint, which is below one interval (startup is overhead, not work)
    spec = WhatIfSpec(
        **{**SMALL, "load": 1.5, "days": 2.0, "max_job_nodes": 1}, reclaim_per_month=1.0, checkpoint_interval_s=1800
    )
    total_killed = 0
    for seed in range(3):
        r, *_ = _one("spot", spec, seed)
        total_killed += r["pods_killed"]
        assert r["lost_gpu_hours"] <= r["pods_killed"] * 1800 / 3600 + 1e-9
    assert total_killed > 0


def test_headline_baseline_is_right_sized_on_demand_by_hand():
    spec = WhatIfSpec(**SMALL, autoscale_granularity_s=600.0, replace_unavailable_prob=0.0)
    r = whatif(spec, seed=1, plans=("on-demand", "spot"))
    od, sp = r["plans"]["on-demand"], r["plans"]["spot"]
    price = r["prices"]["A10"]
    pools, _, _ = select(spec)
    jobs = workload(pools, spec, 1)
    # billed only for the GPU-hours the jobs held plus 10 min of each job's GPUs
    scale_down_gpu_h = sum(j.pods * j.gpus_per_pod for j in jobs) * 600.0 / 3600.0
    assert od["right_sized_usd"] == pytest.approx(
        (od["allocated_gpu_hours"] + scale_down_gpu_h) * price["on_demand_usd"]
    )
    assert sp["right_sized_usd"] == pytest.approx((sp["allocated_gpu_hours"] + scale_down_gpu_h) * price["spot_usd"])
    h = r["headline"]
    assert h["baseline_usd"] == od["right_sized_usd"] < od["cost_usd"]  # the fixed fleet is billed idle too
    assert h["price_ratio_saving"] == pytest.approx(1 - price["spot_usd"] / price["on_demand_usd"])
    x = h["plans"]["spot"]
    assert x["saving_vs_right_sized_on_demand"] == pytest.approx(1 - sp["cost_usd"] / od["right_sized_usd"])
    assert x["saving_vs_fixed_on_demand"] == pytest.approx(1 - sp["cost_usd"] / od["cost_usd"])
    assert x["lost_usd_at_spot_price"] == pytest.approx(sp["lost_gpu_hours"] * price["spot_usd"])
    assert r["capacity_risk"] is None  # probability 0: no extra replay


def _bytes(r, drop=()):
    return json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True, default=str)


def test_replacement_unavailable_p0_is_the_on_time_replay_and_p1_the_all_late_one():
    # the knob draws per reclaim inside the spot subsystem, from its own stream: at p = 0 it changes
    # nothing, at p = 1 every reclaim draws "late", which is the replay with replace_s = the late delay
    late_s = 36000.0
    base = WhatIfSpec(**SMALL, reclaim_per_month=1.0, replace_unavailable_prob=0.0, replace_unavailable_s=late_s)
    on_time, *_ = _one("spot", base, seed=2)
    assert on_time["reclaims"] > 0 and on_time["replacements_late"] == 0
    p0, *_ = _one("spot", base.model_copy(update={"replace_unavailable_s": 1.0}), seed=2)
    assert _bytes(p0) == _bytes(on_time)
    all_late, *_ = _one("spot", base.model_copy(update={"replace_s": late_s}), seed=2)
    p1, *_ = _one("spot", base.model_copy(update={"replace_unavailable_prob": 1.0}), seed=2)
    assert p1["replacements_late"] == p1["reclaims_to_horizon"] > 0
    assert _bytes(p1, drop=("replacements_late",)) == _bytes(all_late, drop=("replacements_late",))
    assert _bytes(p1) != _bytes(on_time)


def test_capacity_risk_is_one_replay_with_late_replacements_drawn_per_reclaim():
    spec = WhatIfSpec(**SMALL, reclaim_per_month=1.0, replace_unavailable_prob=0.25, replace_unavailable_s=36000.0)
    r = whatif(spec, seed=2, plans=("spot",))
    k = r["capacity_risk"]
    assert k["on_time"]["cost_usd"] == r["plans"]["spot"]["cost_usd"]
    assert r["plans"]["spot"]["replacements_late"] == 0  # the plans themselves replace on time
    drawn, *_ = _one("spot", spec, seed=2)
    for key in ("cost_usd", "mean_jct_h", "completion_time_h"):
        assert k["drawn"][key] == drawn[key]
        assert k["delta"][key] == drawn[key] - k["on_time"][key]
    assert k["replacements_late"] == drawn["replacements_late"] <= k["reclaims_to_horizon"]
    assert "assumption" in k["basis"]
    assert _bytes(whatif(spec, seed=2, plans=("spot",))) == _bytes(r)  # same seed, same bytes
    assert r["headline"] is None  # no on-demand plan to compare with
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        WhatIfSpec(replace_unavailable_prob=1.5)


def test_checkpoint_interval_below_the_stall_is_refused_before_any_replay():
    from gpuinfra.errors import UserError
    from gpuinfra.spot_whatif import WhatIfSpec, whatif

    for iv in (1e-9, 0.01, 1.0, 30.0):
        with pytest.raises(UserError) as e:
            whatif(WhatIfSpec(checkpoint_interval_s=iv), plans=("spot",))
        msg = str(e.value)
        assert "checkpoint_interval_s" in msg and "at least checkpoint_stall_s (60 s)" in msg


def test_queue_work_is_zero_below_capacity_and_grows_with_the_overload():
    # closed form: offered load = load x (interval + stall) / interval; below 1 nothing waits
    from gpuinfra.spot_whatif import JobDef, WhatIfSpec, offered_load, queue_work

    jobs = [JobDef(f"j{k}", "A10", 2, 1, 3600.0, 0.0) for k in range(100)]  # 200 pods
    assert offered_load(WhatIfSpec(load=0.5, checkpoint_interval_s=100, checkpoint_stall_s=100)) == 1.0
    assert queue_work(WhatIfSpec(load=0.5, checkpoint_interval_s=100, checkpoint_stall_s=100), jobs, 3) == 0.0
    # load 1 x (60 + 60) / 60 = 2: half the 200 pods wait; 200 releases x 50 mean waiting x 2 replays
    assert queue_work(WhatIfSpec(load=1.0, checkpoint_interval_s=60, checkpoint_stall_s=60), jobs, 2) == 200 * 50 * 2


def test_an_overloaded_whatif_is_refused_up_front_with_the_estimate():
    from gpuinfra.errors import UserError
    from gpuinfra.spot_whatif import WhatIfSpec, whatif

    with pytest.raises(UserError) as e:
        whatif(WhatIfSpec(checkpoint_interval_s=60))  # the attack: ran for minutes without a check
    msg = str(e.value)
    assert "1.40x the cluster's capacity" in msg and "--checkpoint-interval-s" in msg
