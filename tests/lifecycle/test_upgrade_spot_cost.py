"""Upgrades, spot reclaims and cost attribution on the one simulator (examples/upgrade.yaml)."""

import shutil
from pathlib import Path

import pytest
import yaml

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.errors import UserError

EX = Path(__file__).resolve().parents[2] / "examples"


def _run(tmp_path, seed=None, **changes):
    d = yaml.safe_load((EX / "upgrade.yaml").read_text())
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        elif isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    shutil.copy(EX / "upgrade-jobs.csv", tmp_path / "upgrade-jobs.csv")
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    return api.simulate(api.scenario(p), seed=seed)


def _attr(res):
    o = res._output
    return at.attribute(o.run, o.ledger, o.built.prices), at.bill(o.run, o.built.prices), o


@pytest.mark.parametrize(
    "strategy,order",
    [("in_place", "name"), ("in_place", "least_work_at_risk"), ("surge", "name"), ("blue_green", "name")],
)
def test_every_node_done_and_reimage_time_is_the_closed_form(tmp_path, strategy, order):
    # regression: an already-empty node reimaged at once must reach the recorder too
    extra = {"max_unavailable": 1, "order": order} if strategy != "surge" else {}
    res = _run(tmp_path, upgrade={"strategy": strategy, **extra})
    u = res.summary["upgrade"]
    assert res.invariants.ok
    assert u["nodes_done"] == 5 and u["finished_s"] is not None and u["duration_s"] > 0
    if strategy != "in_place":  # spare nodes take the evicted replicas, so the budget lets drains finish
        assert u["forced"] == 0
    # reimaged nodes: 5 in place, 5 - maxSurge under surge, none under blue/green (deleted);
    # provisioned nodes (billed while they boot and are validated): maxSurge=1 under surge, 5 green nodes
    reimaged = {"in_place": 5, "surge": 4, "blue_green": 0}[strategy]
    provisioned = {"in_place": 0, "surge": 1, "blue_green": 5}[strategy]
    table, bill, o = _attr(res)
    unav = table.loc[table.costCategory == "unavailable"]
    gpu_h = (reimaged * 1200 + provisioned * 600) * 8 / 3600  # 8 GPUs per p5 node, node_upgrade_s, provision_s
    assert unav["gpuHours"].sum() == pytest.approx(gpu_h, rel=1e-9)
    price = o.built.prices.usd_per_gpu_hour["H100-SXM"]  # the scenario's price book (aws on-demand)
    assert unav["totalCost"].sum() == pytest.approx(gpu_h * price, rel=1e-9)
    assert float(table["totalCost"].sum()) == pytest.approx(bill["total"], rel=1e-12)
    assert sum(u["provisioning_gpu_hours_by_model"].values()) == pytest.approx(provisioned * 8 * 600 / 3600)


@pytest.mark.parametrize("with_execution", [False, True])
def test_attribution_sums_to_the_bill_every_gpu_second_once(tmp_path, with_execution):
    res = _run(
        tmp_path,
        spot={"pools": ["gpu"], "reclaim_rate_per_node_day": 0.5, "source": "test rate"},
        upgrade={"strategy": "in_place"},
        **({} if with_execution else {"execution": None}),
    )
    table, bill, o = _attr(res)
    assert float(table["totalCost"].sum()) == pytest.approx(bill["total"], rel=1e-12)
    billed_h = sum(
        c * res.summary["horizon"]["duration_s"] / 3600 for c in res.summary["cluster"]["gpus_by_model"].values()
    ) - sum(at.unprovisioned_by_model(o.run).values())
    assert float(table["gpuHours"].sum()) == pytest.approx(billed_h, rel=1e-12)
    assert at.check(o.run, table)["ok"]  # residual idle equals the recorder's idle integral
    assert (table["gpuHours"] >= -1e-9).all()
    # failure waste is exactly the GPU-time of the runs the engine threw away, less (with
    # checkpoints and Ready service replicas) the part the execution subsystem says was kept
    lost = sum(ms for _, _, ms in o.run.lost_runs) / 3.6e6
    kept = sum(ms for _, _, ms in at.kept_on_kill(o.run)) / 3.6e6
    assert (kept > 0) == with_execution
    lost -= kept
    waste = table.loc[table.costCategory.isin(["failure_waste", "preemption_waste"]), "gpuHours"].sum()
    assert waste == pytest.approx(lost)
    # of which preemption waste: the runs a pod preempted (none checkpointed away without execution)
    pre = sum(ms for (_, _, ms), by in zip(o.run.lost_runs, o.run.lost_run_by, strict=True) if by >= 0) / 3.6e6
    if not with_execution:
        assert table.loc[table.costCategory == "preemption_waste", "gpuHours"].sum() == pytest.approx(pre)
    burn = at.silent_burn(table)
    assert list(burn["totalCost"]) == sorted(burn["totalCost"], reverse=True)


def test_same_seed_same_bytes(tmp_path):
    a = _run(tmp_path, seed=5, spot={"pools": ["gpu"], "reclaim_rate_per_node_day": 1.0, "source": "t"})
    b = _run(tmp_path, seed=5, spot={"pools": ["gpu"], "reclaim_rate_per_node_day": 1.0, "source": "t"})
    assert _attr(a)[0].to_csv() == _attr(b)[0].to_csv()
    assert a.summary["spot"] == b.summary["spot"]


def test_spot_reclaim_count_matches_rate_x_nodes_x_days(tmp_path):
    # no replacement lag to speak of: expected reclaims ~ rate x 5 nodes x 3 days, Poisson
    counts = [
        _run(
            tmp_path,
            seed=s,
            upgrade=None,
            spot={"pools": ["gpu"], "reclaim_rate_per_node_day": 2.0, "replace_s": 0, "notice_s": 0, "source": "t"},
        ).summary["spot"]["reclaims"]
        for s in range(8)
    ]
    mean, expect = sum(counts) / len(counts), 2.0 * 5 * 3
    assert abs(mean - expect) < 4 * (expect / len(counts)) ** 0.5


def test_missing_price_names_the_model(tmp_path):
    d = {"prices": {"cloud": "aws", "overrides": {}}}
    res = _run(tmp_path, **d)
    o = res._output
    book = type(o.built.prices)({"H100-SXM": None}, {}, "on_demand")
    with pytest.raises(UserError, match="H100-SXM"):
        at.attribute(o.run, o.ledger, book)


def test_a_budget_no_drain_can_satisfy_is_refused(tmp_path):
    with pytest.raises(UserError, match="refuses every eviction"):
        _run(tmp_path, upgrade={"pdbs": {"serving": {"maxUnavailable": 0}}})
    with pytest.raises(UserError, match="surge_pool"):
        _run(tmp_path, upgrade={"strategy": "blue_green", "surge_pool": None})


def test_upgrade_spot_faults_and_execution_compose_and_attribution_still_sums(tmp_path):
    """Regression: a fault repair used to bring back a node the upgrade had deleted (and spot could
    reclaim a node already out), so the unprovisioned time was counted twice and the residual idle
    no longer matched the recorder. Subsystems now leave a node another one holds out of service."""
    d = yaml.safe_load((EX / "execution.yaml").read_text())
    d["cluster"]["pools"].append({"name": "spare", "shape": "aws:p5.48xlarge", "count": 2})
    d["upgrade"] = {"pool": "h100", "strategy": "surge", "max_surge": 2, "max_unavailable": 0, "surge_pool": "spare",
                    "start_s": 36000, "pdbs": {"service": {"maxUnavailable": 1}}}  # fmt: skip
    d["spot"] = {"pools": ["h100"], "reclaim_rate_per_node_day": 0.2, "source": "test rate"}
    p = tmp_path / "combo.yaml"
    p.write_text(yaml.safe_dump(d))
    res = api.simulate(api.scenario(p))
    table, bill, o = _attr(res)
    assert res.invariants.ok and res.summary["upgrade"]["nodes_done"] == 8
    assert float(table["totalCost"].sum()) == pytest.approx(bill["total"], rel=1e-12)
    assert at.check(o.run, table)["ok"]
