"""Checkpoints decide what a drain costs: a killed training pod loses the work since its last
durable checkpoint (sim/execution.lost_on_kill_s), not since its start -- hand-computed cases."""

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.models.lifecycle import Timeline, startup_parts
from gpuinfra.sim.execution import lost_on_kill_s

MIN = 60.0
GPUS = 8


def test_closed_form_30_min_checkpoints_killed_at_100_min_lose_10_min():
    tl = Timeline(0.0, 0.0, 10 * 3600.0, 30 * MIN)
    assert lost_on_kill_s(tl, 100 * MIN) == pytest.approx(10 * MIN)
    # before the first checkpoint: everything since the start
    assert lost_on_kill_s(tl, 20 * MIN) == pytest.approx(20 * MIN)
    # no checkpoints: since the start
    assert lost_on_kill_s(Timeline(0.0, 0.0, 10 * 3600.0), 100 * MIN) == pytest.approx(100 * MIN)


def test_closed_form_with_head_stall_and_async_lag():
    # 5 min start-up, 1 min warm-up, 30-min interval, 1-min stall, 2-min async persist:
    # checkpoint k's stall ends at 6 + 31k min and is durable at 6 + 31k + 2 min
    tl = Timeline(5 * MIN, 1 * MIN, 10 * 3600.0, 30 * MIN, 1 * MIN, 2 * MIN)
    assert lost_on_kill_s(tl, (6 + 62 + 1) * MIN) == pytest.approx(32 * MIN)  # 2nd not durable yet: since 1st
    assert lost_on_kill_s(tl, (6 + 62 + 3) * MIN) == pytest.approx(3 * MIN)  # 2nd durable: since its stall's end


def _scenario(tmp_path, checkpoint_interval_s):
    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner\n"
        f"train-0,0,36000,{GPUS},1000,96000,786432,H100-SXM,10,,research\n"
    )
    kind = {"owner": "research", "kind": "training", "image_gb": 0, "load_gb": 0, "warmup_s": 0, "teardown_s": 0}
    if checkpoint_interval_s is not None:
        kind["checkpoint_interval_s"] = checkpoint_interval_s
    head = sum(startup_parts(1, GPUS, 0.0, 0.0, "nfs-flash").values())
    d = {
        "name": "ckpt",
        "seed": 1,
        "horizon_s": 30000,
        "sample_interval_s": 600,
        "cluster": {"pools": [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1}]},
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit"], "reserve": "FirstFitDevices"},
        "prices": {"cloud": "aws"},
        "execution": {"kinds": [kind]},
        # the drain reaches the pod 100 min after its steady work started
        "upgrade": {"pool": "gpu", "strategy": "in_place", "start_s": head + 100 * MIN, "node_upgrade_s": 1200},
    }
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    res = api.simulate(api.scenario(p))
    o = res._output
    table = at.attribute(o.run, o.ledger, o.built.prices)
    return res, o, table, head


def test_drain_of_a_checkpointed_pod_loses_10_min_x_its_gpus(tmp_path):
    res, o, table, head = _scenario(tmp_path, 30 * MIN)
    up = res.summary["upgrade"]
    assert up["jobs_killed"] == 1
    assert up["lost_gpu_hours"] == pytest.approx(10 * MIN * GPUS / 3600.0)
    assert up["lost_gpu_hours_since_start"] == pytest.approx((head + 100 * MIN) * GPUS / 3600.0)
    fw = table[table.costCategory == "failure_waste"]
    assert float(fw.gpuHours.sum()) == pytest.approx(10 * MIN * GPUS / 3600.0)
    # the checkpointed part is the pod's useful work: every GPU-second still once, idle checked
    assert float(table.totalCost.sum()) == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-12)
    assert at.check(o.run, table)["ok"]
    work = table[(table.costCategory == "workload") & (table.pod == "train-0")]
    assert float(work.gpuHours.sum()) + float(fw.gpuHours.sum()) == pytest.approx(
        float(o.ledger.loc[o.ledger.name == "train-0", "gpu_hours"].sum())
    )


def test_drain_without_checkpoints_keeps_the_since_start_figure(tmp_path):
    res, o, table, head = _scenario(tmp_path, None)
    up = res.summary["upgrade"]
    since = (head + 100 * MIN) * GPUS / 3600.0
    assert up["lost_gpu_hours"] == pytest.approx(since)
    assert up["lost_gpu_hours_since_start"] == pytest.approx(since)
    fw = table[table.costCategory == "failure_waste"]
    assert float(fw.gpuHours.sum()) == pytest.approx(since)
    assert math.isclose(float(table.totalCost.sum()), at.bill(o.run, o.built.prices)["total"], rel_tol=1e-12)
    assert at.check(o.run, table)["ok"]


def test_a_ready_service_replica_drained_loses_nothing_and_all_its_attempts_are_its_usage(tmp_path):
    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner\n"
        "serve-0,0,30000,1,1000,8000,65536,H100-SXM,100,,serving\n"
    )
    load = {"offered_rps": 1, "source": "test", "replica_capacity_rps": 10, "capacity_source": "test"}
    d = {
        "name": "svc",
        "seed": 1,
        "horizon_s": 30000,
        "sample_interval_s": 600,
        "cluster": {"pools": [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1}]},
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit"], "reserve": "FirstFitDevices"},
        "prices": {"cloud": "aws"},
        "execution": {"kinds": [{"owner": "serving", "kind": "service", "load": load}]},
        "upgrade": {"pool": "gpu", "strategy": "in_place", "start_s": 3600, "node_upgrade_s": 1200},
    }
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    res = api.simulate(api.scenario(p))
    o = res._output
    up = res.summary["upgrade"]
    assert up["lost_gpu_hours"] == 0.0 and up["lost_gpu_hours_since_start"] == pytest.approx(1.0)
    table = at.attribute(o.run, o.ledger, o.built.prices)
    assert "failure_waste" not in set(table.costCategory)
    (sv,) = at.over_provisioning(o.run)
    usage = table[(table.namespace == "serving") & table.costCategory.isin(["workload", "over_provisioned"])]
    assert sv["held_gpu_hours"] == pytest.approx(float(usage.gpuHours.sum()))
    assert sv["held_gpu_hours"] > 1.0  # both attempts: before the drain and after the reimage
    assert float(table.totalCost.sum()) == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-12)
    assert at.check(o.run, table)["ok"]


def test_a_drained_gang_rank_and_the_rank_that_waits_for_it_lose_since_the_checkpoint(tmp_path):
    """Two 8-GPU ranks of one job, one on the one-node pool being upgraded, one on a second pool of
    two nodes; the drain 100 min into their steady work kills the first rank: both lose the 10 min
    since the last 30-min checkpoint, the survivor also holds its GPUs for the 10-s back-off until
    the replacement starts on the third node (JobSet restarts the gang). Every GPU-second still
    once: idle matches the recorder."""
    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner,job,gang_size\n"
        "t-0,0,36000,8,1000,96000,786432,H100-SXM,10,,research,t,2\n"
        "t-1,0,36000,8,1000,96000,786432,H100-SXM,10,,research,t,2\n"
    )
    kind = {"owner": "research", "kind": "training", "image_gb": 0, "load_gb": 0, "warmup_s": 0, "teardown_s": 0,
            "checkpoint_interval_s": 30 * MIN}  # fmt: skip
    head = sum(startup_parts(2, 2 * GPUS, 0.0, 0.0, "nfs-flash").values())
    d = {
        "name": "gang",
        "horizon_s": 60000,
        "cluster": {
            "pools": [
                {"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1},
                {"name": "other", "shape": "aws:p5.48xlarge", "count": 2},
            ]
        },
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit"], "reserve": "FirstFitDevices"},
        "prices": {"cloud": "aws"},
        "execution": {"kinds": [kind]},
        "upgrade": {"pool": "gpu", "strategy": "in_place", "start_s": head + 100 * MIN, "node_upgrade_s": 1200},
    }
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    res = api.simulate(api.scenario(p))
    o = res._output
    assert res.summary["upgrade"]["jobs_killed"] == 1
    assert res.summary["upgrade"]["lost_gpu_hours"] == pytest.approx(10 * MIN * GPUS / 3600.0)
    table = at.attribute(o.run, o.ledger, o.built.prices)
    fw = float(table.loc[table.costCategory == "failure_waste", "gpuHours"].sum())
    assert fw == pytest.approx((2 * 10 * MIN + 10.0) * GPUS / 3600.0)
    assert float(table.totalCost.sum()) == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-12)
    assert at.check(o.run, table)["ok"]


@settings(max_examples=300, deadline=None)
@given(
    head=st.floats(0, 3600),
    interval=st.floats(60, 7200),
    stall=st.floats(0, 600),
    lag=st.floats(0, 600),
    work=st.floats(60, 86400),
    elapsed=st.floats(0, 2 * 86400),
)
def test_lost_is_within_the_attempt_and_bounded_once_a_checkpoint_is_durable(head, interval, stall, lag, work, elapsed):
    tl = Timeline(head, 0.0, work, interval, stall, lag)
    lost = lost_on_kill_s(tl, elapsed)
    assert 0.0 <= lost <= elapsed + 1e-9
    if tl.saved_at(elapsed) > 0:
        # since the newest durable checkpoint: at most one cycle plus the persist lag, unless the
        # steady phase is over (the last segment and the teardown are never checkpointed)
        steady_end = tl.head_s + tl.work_s + tl.checkpoints * tl.stall_s
        if elapsed <= steady_end:
            assert lost <= interval + stall + lag + 1e-6
    else:
        assert lost == elapsed
