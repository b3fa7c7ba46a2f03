"""One rule for what a kill costs, and Kubernetes' podFailurePolicy for disruptions.

- A spot reclaim charges the work since the last durable checkpoint (sim/execution.kill_loss_s),
  like an upgrade drain: hand-computed, in the spot summary and in attribution's failure waste.
- A reclaim or an eviction-API drain gives the pod the DisruptionTarget condition: with the rule
  ``Ignore`` on it the failure does not count toward backoffLimit; without a podFailurePolicy it
  counts (Kubernetes' default); a GPU fault and a forced drain (plain DELETE) are not disruptions.
"""

import pytest
import yaml

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.errors import UserError
from gpuinfra.models.lifecycle import startup_parts
from gpuinfra.sim.execution import KindSpec, mark_disruption

MIN = 60.0
GPUS = 8
IGNORE = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


def _run(tmp_path, *, kind=None, spot=None, upgrade=None, faults=None, work_s=36000, horizon_s=30000, pools=None):
    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner\n"
        f"train-0,0,{work_s},{GPUS},1000,96000,786432,H100-SXM,10,,research\n"
    )
    d = {
        "name": "disrupt",
        "seed": 1,
        "horizon_s": horizon_s,
        "sample_interval_s": 600,
        "cluster": {"pools": pools or [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1}]},
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit"], "reserve": "FirstFitDevices"},
        "prices": {"cloud": "aws"},
    }
    if kind is not None:
        base = {"owner": "research", "kind": "training", "image_gb": 0, "load_gb": 0, "warmup_s": 0, "teardown_s": 0}
        d["execution"] = {"kinds": [{**base, **kind}]}
    for k, v in (("spot", spot), ("upgrade", upgrade), ("faults", faults)):
        if v is not None:
            d[k] = v
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    return api.simulate(api.scenario(p))


def _spot(*times_s, notice_s=120.0):
    return {
        "pools": ["gpu"],
        "reclaim_rate_per_node_day": 0.0,
        "notice_s": notice_s,
        "replace_s": 900,
        "notices": [{"node": "gpu-0000", "t_s": t} for t in times_s],
        "source": "test: notices at given times",
    }


HEAD = sum(startup_parts(1, GPUS, 0.0, 0.0, "nfs-flash").values())


def test_a_reclaim_100_min_into_a_checkpointed_pod_loses_10_min_x_its_gpus(tmp_path):
    # the notice comes 2 min before the reclaim, which lands 100 min into the pod's steady work:
    # checkpoints at 30, 60 and 90 min, so 10 min are lost -- in the spot summary and in attribution
    res = _run(tmp_path, kind={"checkpoint_interval_s": 30 * MIN}, spot=_spot(HEAD + 100 * MIN - 120))
    sp = res.summary["spot"]
    assert sp["reclaims"] == 1 and sp["pods_killed"] == 1
    assert sp["lost_gpu_hours"] == pytest.approx(10 * MIN * GPUS / 3600.0)
    assert sp["lost_gpu_hours_since_start"] == pytest.approx((HEAD + 100 * MIN) * GPUS / 3600.0)
    o = res._output
    table = at.attribute(o.run, o.ledger, o.built.prices)
    fw = table[table.costCategory == "failure_waste"]
    assert float(fw.gpuHours.sum()) == pytest.approx(10 * MIN * GPUS / 3600.0)
    assert float(table.totalCost.sum()) == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-12)
    assert at.check(o.run, table)["ok"]


def test_without_checkpoints_or_without_execution_a_reclaim_loses_everything_since_start(tmp_path):
    # the rule's own fallback: no checkpoints (or no execution block: the engine restarts the pod
    # from zero) -> the since-start figure; there is no second estimate to disagree with it
    t = HEAD + 100 * MIN
    for kind in ({}, None):
        res = _run(tmp_path, kind=kind, spot=_spot(t - 120))
        sp = res.summary["spot"]
        assert sp["pods_killed"] == 1
        assert sp["lost_gpu_hours"] == pytest.approx(sp["lost_gpu_hours_since_start"])
        assert sp["lost_gpu_hours_since_start"] == pytest.approx(t * GPUS / 3600.0)  # the pod started at 0
        o = res._output
        table = at.attribute(o.run, o.ledger, o.built.prices)
        fw = float(table.loc[table.costCategory == "failure_waste", "gpuHours"].sum())
        assert fw == pytest.approx(sp["lost_gpu_hours"])


def _job(res):
    (row,) = res.summary["execution"]["jobs"]
    return row


# three reclaims, each after the replacement node (900 s) is back and the job restarted
THREE = (3600.0, 3 * 3600.0, 5 * 3600.0)


def test_backoff_limit_1_survives_3_reclaims_with_ignore_on_disruption_target(tmp_path):
    res = _run(
        tmp_path,
        kind={"backoff_limit": 1, "pod_failure_policy": IGNORE},
        spot=_spot(*THREE),
        work_s=8 * 3600,
        horizon_s=30 * 3600,
    )
    assert res.summary["spot"]["pods_killed"] == 3
    j = _job(res)
    assert j["outcome"] == "completed"
    assert (j["failures"], j["failures_ignored"], j["failures_counted"]) == (3, 3, 0)


def test_without_a_pod_failure_policy_the_second_reclaim_fails_the_job(tmp_path):
    res = _run(tmp_path, kind={"backoff_limit": 1}, spot=_spot(*THREE), work_s=8 * 3600, horizon_s=30 * 3600)
    j = _job(res)
    assert j["outcome"] == "failed (BackoffLimitExceeded)"
    # Kubernetes' default: every failure counts; failure 2 > backoffLimit 1, so the third notice finds no pod
    assert (j["failures"], j["failures_counted"], j["failures_ignored"]) == (2, 2, 0)
    assert res.summary["spot"]["pods_killed"] == 2


def test_action_count_and_failjob_on_disruption_target(tmp_path):
    rule = lambda a: {"rules": [{"action": a, "onPodConditions": [{"type": "DisruptionTarget"}]}]}  # noqa: E731
    j = _job(_run(tmp_path, kind={"backoff_limit": 1, "pod_failure_policy": rule("Count")}, spot=_spot(*THREE),
                  work_s=8 * 3600, horizon_s=30 * 3600))  # fmt: skip
    assert j["outcome"] == "failed (BackoffLimitExceeded)" and j["failures_counted"] == 2
    j = _job(_run(tmp_path, kind={"backoff_limit": 6, "pod_failure_policy": rule("FailJob")}, spot=_spot(*THREE),
                  work_s=8 * 3600, horizon_s=30 * 3600))  # fmt: skip
    assert j["outcome"] == "failed (PodFailurePolicy)" and j["failures"] == 1


def test_a_gpu_fault_still_counts_toward_backoff_limit(tmp_path):
    # a GPU fault (Xid-like, reset_gpu) kills the CUDA process: the container exits non-zero, no
    # DisruptionTarget, so the Ignore rule does not apply; ~10 faults per GPU-day on 8 GPUs over an
    # 8-h job strike it many times, and the second counted failure exceeds backoffLimit 1
    fault = {
        "name": "xid",
        "rate_per_day": 10.0,
        "scope": "gpu",
        "action": "reset_gpu",
        "repair_s": 600,
        "source": "test rate (far above any measured one, so the job is struck)",
    }
    res = _run(
        tmp_path,
        kind={"backoff_limit": 1, "pod_failure_policy": IGNORE},
        faults=[fault],
        work_s=8 * 3600,
        horizon_s=30 * 3600,
    )
    j = _job(res)
    assert j["outcome"] == "failed (BackoffLimitExceeded)"
    assert j["failures_ignored"] == 0 and j["failures_counted"] == j["failures"] == 2


def _drain(force: bool):
    return {
        "pool": "gpu",
        "strategy": "in_place",
        "start_s": 3600,
        "node_upgrade_s": 1200,
        "respect_pdbs": not force,
        "source": "test",
    }


def test_an_eviction_api_drain_is_a_disruption_a_forced_delete_is_not(tmp_path):
    # backoffLimit 0: one counted failure fails the job
    kind = {"backoff_limit": 0, "pod_failure_policy": IGNORE}
    j = _job(_run(tmp_path, kind=kind, upgrade=_drain(False), work_s=4 * 3600, horizon_s=20 * 3600))
    assert j["outcome"] == "completed" and j["failures_ignored"] == 1
    # kubectl drain --disable-eviction: a plain DELETE sets no DisruptionTarget condition
    j = _job(_run(tmp_path, kind=kind, upgrade=_drain(True), work_s=4 * 3600, horizon_s=20 * 3600))
    assert j["outcome"] == "failed (BackoffLimitExceeded)" and j["failures_counted"] == 1


def test_bad_policies_and_notices_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Job's field"):
        KindSpec(owner="s", kind="service", pod_failure_policy=IGNORE)
    with pytest.raises(ValueError, match="backoff_limit_per_index"):
        KindSpec(
            owner="t",
            kind="training",
            pod_failure_policy={"rules": [{"action": "FailIndex", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
        )
    with pytest.raises(ValueError, match="onPodConditions"):
        KindSpec(owner="t", kind="training", pod_failure_policy={"rules": [{"action": "Ignore"}]})
    with pytest.raises(ValueError, match="unknown DisruptionTarget reason"):
        mark_disruption(object(), [0], "NodeOnFire")
    with pytest.raises(UserError, match="not a node of a spot pool"):
        _run(tmp_path, spot={**_spot(), "notices": [{"node": "nope-0000", "t_s": 1}]})
    # the spot block's old checkpoint policy is refused with the way to say it now
    with pytest.raises(UserError, match="execution.kinds"):
        _run(tmp_path, spot={**_spot(), "checkpoint_interval_s": 3600})


def test_a_preempted_pod_carries_disruption_target(tmp_path):
    # a low-priority training job (backoffLimit 0, Ignore on DisruptionTarget) fills the node; a
    # high-priority pod arriving at 1 h preempts it: as a disruption the job survives and completes
    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner\n"
        f"train-0,0,7200,{GPUS},1000,96000,786432,H100-SXM,0,,research\n"
        f"urgent-0,3600,3600,{GPUS},1000,96000,786432,H100-SXM,1000,,prod\n"
    )
    kind = {"owner": "research", "kind": "training", "image_gb": 0, "load_gb": 0, "warmup_s": 0, "teardown_s": 0,
            "backoff_limit": 0, "pod_failure_policy": IGNORE}  # fmt: skip
    d = {
        "name": "preempt",
        "seed": 1,
        "horizon_s": 86400,
        "cluster": {"pools": [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1}]},
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit"], "reserve": "FirstFitDevices", "preemption": True},
        "prices": {"cloud": "aws"},
        "execution": {"kinds": [kind]},
    }
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    res = api.simulate(api.scenario(p))
    assert res.summary["preemption"]["victims"] == 1
    j = _job(res)
    assert j["outcome"] == "completed" and j["failures_ignored"] == 1
