"""Attribution prices GPU-time per node pool: a spot pool and an on-demand pool of one GPU model bill
apart (hand-computed dollars per line), and the OpenCost CSV carries each row's own cost."""

import pandas as pd
import pytest
import yaml

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.errors import UserError
from tests.clirunner import gi

OD, SPOT = 4.0, 1.5  # USD per GPU-hour, the test's own price overrides
HEAD = (
    "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner,node_selector"
)


def _scenario(tmp_path, jobs, spot=None, execution=None, prices=None):
    """One p5.48xlarge (8 x H100) node on-demand (pool od) and one spot (pool sp); jobs pinned by pool label."""
    (tmp_path / "jobs.csv").write_text("\n".join([HEAD, *jobs]) + "\n")
    d = {
        "name": "pools",
        "seed": 1,
        "horizon_s": 86400.0,
        "sample_interval_s": 600,
        "cluster": {
            "pools": [
                {"name": "od", "shape": "aws:p5.48xlarge", "count": 1, "labels": {"tier": "od"}},
                {"name": "sp", "shape": "aws:p5.48xlarge", "count": 1, "labels": {"tier": "sp"}},
            ]
        },
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit", "NodeAffinity"], "reserve": "FirstFitDevices"},
        "prices": prices
        or {
            "cloud": "aws",
            "overrides": {
                "H100-SXM": {"on_demand_usd_per_gpu_hour": OD, "spot_usd_per_gpu_hour": SPOT, "source": "test prices"}
            },
        },
        "spot": {
            "pools": ["sp"],
            "reclaim_rate_per_node_day": 0.0,
            "source": "test: no Poisson reclaims",
            **(spot or {}),
        },
    }
    if execution is not None:
        d["execution"] = execution
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _attr(p):
    o = api.simulate(api.scenario(p))._output
    return at.attribute(o.run, o.ledger, o.built.prices), o


def _line(t, pool, cat):
    r = t[(t.nodePool == pool) & (t.costCategory == cat)]
    return float(r.gpuHours.sum()), float(r.totalCost.sum())


def test_one_spot_and_one_on_demand_node_of_one_model_bill_apart_by_hand(tmp_path):
    # a: 8 GPUs for 10 h on the on-demand node; b: 8 GPUs for 5 h on the spot node; 24 h window from t = 0
    p = _scenario(
        tmp_path,
        [
            "a,0,36000,8,1000,8000,65536,H100-SXM,5,,research,tier=od",
            "b,0,18000,8,1000,8000,65536,H100-SXM,5,,batch,tier=sp",
        ],
    )
    t, o = _attr(p)
    assert _line(t, "od", "workload") == pytest.approx((80.0, 80 * OD))  # 320 USD
    assert _line(t, "od", "idle") == pytest.approx((112.0, 112 * OD))  # 448 USD
    assert _line(t, "sp", "workload") == pytest.approx((40.0, 40 * SPOT))  # 60 USD
    assert _line(t, "sp", "idle") == pytest.approx((152.0, 152 * SPOT))  # 228 USD
    for pool in ("od", "sp"):  # whole nodes only: nothing stranded, nothing out of service
        assert _line(t, pool, "stranded") == (0.0, 0.0) and _line(t, pool, "unavailable") == (0.0, 0.0)
    assert set(t.loc[t.nodePool == "sp", "purchase"]) == {"spot"}
    assert set(t.loc[t.nodePool == "od", "purchase"]) == {"on_demand"}
    bill = at.bill(o.run, o.built.prices)
    assert bill["total"] == pytest.approx(192 * OD + 192 * SPOT)  # 1,056 USD, not 384 x 4 = 1,536
    assert float(t.totalCost.sum()) == pytest.approx(bill["total"], rel=1e-12)
    rows = {r["pool"]: r for r in at.bill_by_pool(o.run, o.built.prices)}
    assert rows["sp"]["usd_per_gpu_hour"] == SPOT and rows["od"]["usd_per_gpu_hour"] == OD
    assert at.check(o.run, t)["ok"]
    # the CLI's OpenCost CSV carries the same per-row cost
    out = tmp_path / "alloc.csv"
    r = gi("cost", "attribute", str(p), "--csv", str(out))
    assert r.returncode == 0, r.output
    csv = pd.read_csv(out, keep_default_na=False)
    row = csv[csv.name == "batch/b"].iloc[0]
    assert (row["nodePool"], row["purchase"], row["gpuHours"]) == ("sp", "spot", pytest.approx(40.0))
    assert row["gpuCost"] == pytest.approx(60.0) and row["totalCost"] == pytest.approx(60.0)
    assert csv.totalCost.sum() == pytest.approx(192 * OD + 192 * SPOT, rel=1e-12)


def test_a_reclaim_unbills_the_spot_node_and_its_waste_is_priced_as_spot(tmp_path):
    # the spot node is reclaimed at 1 h (no notice) and replaced 1 h later: b loses its first hour
    # (8 GPU-h of failure waste), restarts at 2 h and runs its 5 h; the node's 8 GPU-h out are unbilled
    p = _scenario(
        tmp_path,
        [
            "a,0,36000,8,1000,8000,65536,H100-SXM,5,,research,tier=od",
            "b,0,18000,8,1000,8000,65536,H100-SXM,5,,batch,tier=sp",
        ],
        spot={"notice_s": 0, "replace_s": 3600, "notices": [{"node": "sp-0000", "t_s": 3600}]},
    )
    t, o = _attr(p)
    assert o.run.subsystems["spot"]["reclaims"] == 1
    assert _line(t, "sp", "failure_waste") == pytest.approx((8.0, 8 * SPOT))  # 12 USD
    assert _line(t, "sp", "workload") == pytest.approx((40.0, 40 * SPOT))
    assert _line(t, "sp", "idle") == pytest.approx((184.0 - 48.0, 136 * SPOT))  # 204 USD
    assert _line(t, "od", "idle") == pytest.approx((112.0, 112 * OD))
    assert at.bill(o.run, o.built.prices)["total"] == pytest.approx(192 * OD + 184 * SPOT)  # 768 + 276
    assert float(t.totalCost.sum()) == pytest.approx(192 * OD + 184 * SPOT, rel=1e-12)


def test_over_provisioned_replicas_are_priced_by_the_pool_they_ran_on(tmp_path):
    # 4 replicas for 10 h, 2 on each pool; the load needs 2 (12 req/s / (8 x 0.75)): 20 GPU-h over,
    # moved from each pool's replicas in proportion to their GPU-hours, 10 on each
    jobs = [f"s{i},0,36000,1,1000,8000,65536,H100-SXM,100,,serving,tier={'od' if i < 2 else 'sp'}" for i in range(4)]
    load = {"offered_rps": 12, "source": "test: hand-set load", "replica_capacity_rps": 8,
            "capacity_source": "test: hand-set", "target_utilization": 0.75}  # fmt: skip
    p = _scenario(tmp_path, jobs, execution={"kinds": [{"owner": "serving", "kind": "service", "load": load}]})
    t, o = _attr(p)
    # each replica held its GPU from its start to the end of its 10 h plus its start-up (the ledger's window)
    (run_h,) = set(((t.endS - t.startS) / 3600.0)[t.name.str.match(r"serving/s\d$")].round(9))
    assert run_h >= 10.0
    # half of what the replicas held is over-provisioned: run_h per pool (2 replicas x run_h x 1/2)
    assert _line(t, "od", "over_provisioned") == pytest.approx((run_h, run_h * OD))
    assert _line(t, "sp", "over_provisioned") == pytest.approx((run_h, run_h * SPOT))
    assert _line(t, "od", "workload") == pytest.approx((run_h, run_h * OD))
    assert _line(t, "sp", "workload") == pytest.approx((run_h, run_h * SPOT))
    assert float(t.totalCost.sum()) == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-12)


def test_a_spot_pool_whose_model_has_no_spot_price_is_refused_naming_it(tmp_path):
    prices = {"overrides": {"H100-SXM": {"on_demand_usd_per_gpu_hour": OD, "source": "test: no spot price"}}}
    p = _scenario(tmp_path, ["a,0,3600,8,1000,8000,65536,H100-SXM,5,,research,tier=od"], prices=prices)
    o = api.simulate(api.scenario(p))._output
    with pytest.raises(UserError, match="no spot price for GPU model 'H100-SXM' \\(node pool 'sp'") as e:
        at.attribute(o.run, o.ledger, o.built.prices)
    assert "spot_usd_per_gpu_hour" in e.value.fix


def test_the_spot_whatif_and_attribution_bill_the_same_replay_alike(tmp_path):
    # one price source: the what-if's spot plan prices each pool from the scenario's price book, as
    # attribution does, so with no upgrade in the run its cost is the attributed bill
    from gpuinfra.spot_whatif import scenario_whatif

    p = _scenario(
        tmp_path,
        [
            "a,0,36000,8,1000,8000,65536,H100-SXM,5,,research,tier=od",
            "b,0,18000,8,1000,8000,65536,H100-SXM,5,,batch,tier=sp",
        ],
        spot={"notice_s": 0, "replace_s": 3600, "notices": [{"node": "sp-0000", "t_s": 3600}]},
    )
    sc = api.scenario(p)
    r = scenario_whatif(sc, tmp_path, plans=("spot",))
    t, o = _attr(p)
    assert r["plans"]["spot"]["cost_usd"] == pytest.approx(float(t.totalCost.sum()), rel=1e-12)
    assert r["plans"]["spot"]["cost_usd"] == pytest.approx(192 * OD + 184 * SPOT, rel=1e-12)
