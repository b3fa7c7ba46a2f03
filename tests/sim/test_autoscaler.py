"""The cluster-autoscaler subsystem (sim/autoscaler.py): hand-computed timelines, limits, billing,
determinism, expanders, bad input."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.errors import UserError

HEAD = "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner\n"
P5 = "aws:p5.48xlarge"  # 8 H100, 192 vCPU, 2048 GiB (catalog)


def _scenario(tmp_path, rows, pools, autoscaler, horizon_s=6000.0, seed=0, name="sc.yaml"):
    (tmp_path / "jobs.csv").write_text(HEAD + "".join(r + "\n" for r in rows))
    d = {
        "name": "ca-test",
        "seed": seed,
        "sample_interval_s": 600,
        "cluster": {"pools": pools},
        "workload": {"trace": "jobs.csv"},
        "prices": {"cloud": "aws"},
    }
    if horizon_s is not None:
        d["horizon_s"] = horizon_s
    if autoscaler is not None:
        d["autoscaler"] = autoscaler
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def _run(path, seed=None):
    return api.simulate(api.scenario(path), seed=seed)


def test_one_pending_8gpu_pod_hand_computed_timeline(tmp_path):
    # empty autoscaled pool; the pod arrives at 0: scale-up at the scan at 0, node ready at 0 + 300,
    # pod binds at 300, runs 3600 s to 3900 (a scan instant), the node is unneeded from 3900 and
    # removed 600 s later at 4500 (past scale_down_delay_after_add: 4500 - 0 >= 600)
    p = _scenario(
        tmp_path,
        ["big,0,3600,8,1000,96000,786432,H100-SXM,0,,team"],
        [{"name": "burst", "shape": P5, "count": 3}],
        {"node_groups": [{"pool": "burst", "min_nodes": 0, "max_nodes": 3}], "provision_s": 300},
    )
    res = _run(p)
    o = res._output
    a = o.run.subsystems["autoscaler"]
    assert [(x["t_s"], x["action"]) for x in a["log"]] == [(0.0, "scale_up"), (4500.0, "scale_down")]
    assert float(o.run.start_s[0]) == 300.0 and float(o.run.end_s[0]) == 3900.0
    assert a["scale_ups"] == 1 and a["scale_downs"] == 1 and a["peak_nodes"] == 1 and a["nodes_added"] == 1
    assert a["mean_scan_delay_s"] == 0.0 and a["mean_provision_wait_s"] == 300.0
    # billed from the request (0) to the removal (4500): 8 GPUs x 4500 s
    assert a["node_hours_provisioned"] == pytest.approx(4500 / 3600)
    assert a["gpu_hours_billed"] == pytest.approx(8 * 4500 / 3600)
    assert sum(a["provisioning_gpu_hours_by_model"].values()) == pytest.approx(8 * 300 / 3600)
    # 3 slots x 8 GPUs x 6000 s of capacity, of which 8 x 4500 GPU-s were provisioned
    assert a["unprovisioned_gpu_hours"] == pytest.approx((3 * 8 * 6000 - 8 * 4500) / 3600)
    assert res.invariants.ok
    bill = at.bill(o.run, o.built.prices)
    price = o.built.prices.usd_per_gpu_hour["H100-SXM"]
    assert bill["total"] == pytest.approx(8 * 4500 / 3600 * price, rel=1e-12)
    table = at.attribute(o.run, o.ledger, o.built.prices)
    assert float(table["gpuHours"].sum()) == pytest.approx(8 * 4500 / 3600, rel=1e-9)
    work = table.loc[table.costCategory == "workload", "gpuHours"].sum()
    assert work == pytest.approx(8 * 3600 / 3600)
    assert table.loc[table.costCategory == "unavailable", "gpuHours"].sum() == pytest.approx(8 * 300 / 3600)
    # the simulate table's row: 8 GPU-h allocated of 10 GPU-h billed
    from gpuinfra.report.tables import run_summary_rows

    rows = dict(run_summary_rows(o.summary, 1.0))
    assert "1 scale-ups (+1 nodes), 1 removed, peak 1 nodes, 10.0 GPU-h billed" in rows["autoscaler"]
    assert "allocated 80.0% of billed" in rows["GPU-hours"]
    g = o.summary["gpu_time"]
    assert g["billed_gpu_hours"] == pytest.approx(10.0) and g["allocation_ratio_billed"] == pytest.approx(0.8)
    assert g["billed_gpu_hours"] + g["unprovisioned_gpu_hours"] == pytest.approx(g["capacity_gpu_hours"])


def test_scan_delay_is_the_time_to_the_next_scan(tmp_path):
    # arrival at 25 s: the scans run at 0, 10, 20, 30: scale-up at 30, node at 30 + 120, pod at 150
    p = _scenario(
        tmp_path,
        ["first,0,60,0,0,1000,1024,,0,,team", "big,25,600,8,1000,96000,786432,H100-SXM,0,,team"],
        [
            {"name": "cpu", "count": 1, "gpus_per_node": 0, "cpu_milli": 8000, "memory_mib": 16384},
            {"name": "burst", "shape": P5, "count": 2},
        ],
        {"node_groups": [{"pool": "burst"}], "provision_s": 120},
    )
    o = _run(p)._output
    a = o.run.subsystems["autoscaler"]
    assert a["log"][0]["t_s"] == 30.0
    assert float(o.run.start_s[1]) == 150.0
    assert a["mean_scan_delay_s"] == 5.0 and a["mean_provision_wait_s"] == 120.0


def test_binpacking_requests_enough_nodes_at_once_and_never_above_max(tmp_path):
    # five 8-GPU pods and three 4-GPU pods at 0: first fit needs 5 + 2 = 7 nodes; max_nodes 4 caps it
    rows = [f"a{i},0,1000,8,1000,8000,65536,H100-SXM,0,,t" for i in range(5)]
    rows += [f"b{i},0,1000,4,1000,8000,65536,H100-SXM,0,,t" for i in range(3)]
    p = _scenario(
        tmp_path,
        rows,
        [{"name": "burst", "shape": P5, "count": 8}],
        {"node_groups": [{"pool": "burst", "max_nodes": 4}]},
        horizon_s=20000,
    )
    a = _run(p)._output.run.subsystems["autoscaler"]
    assert a["log"][0] == {"t_s": 0.0, "action": "scale_up", "pool": "burst", "nodes": 4}
    assert a["peak_nodes"] == 4
    p2 = _scenario(
        tmp_path,
        rows,
        [{"name": "burst", "shape": P5, "count": 8}],
        {"node_groups": [{"pool": "burst"}]},
        horizon_s=20000,
        name="sc2.yaml",
    )
    a2 = _run(p2)._output.run.subsystems["autoscaler"]
    assert a2["log"][0]["nodes"] == 7 and a2["scale_ups"] == 1


def _sizes(log, pool, initial):
    n, out = initial, [initial]
    for x in log:
        if x["action"] == "scale_up" and x["pool"] == pool:
            n += x["nodes"]
        elif x["action"] == "scale_down" and x["node"].startswith(pool + "-"):
            n -= 1
        out.append(n)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    jobs=st.lists(
        st.tuples(
            st.integers(0, 20000),  # submit
            st.integers(1, 8000),  # duration
            st.sampled_from([0, 1, 2, 4, 8]),  # GPUs
        ),
        min_size=1,
        max_size=25,
    ),
    lo=st.integers(0, 2),
    extra=st.integers(0, 3),
    expander=st.sampled_from(["random", "least-waste", "most-pods", "priority"]),
    seed=st.integers(0, 5),
)
def test_generated_workloads_stay_within_limits_and_bill_only_provisioned_time(
    tmp_path, jobs, lo, extra, expander, seed
):
    rows = [f"j{k},{s},{d},{g},{1000 if g else 0},4000,16384,H100-SXM,0,,t" for k, (s, d, g) in enumerate(jobs)]
    hi = lo + extra
    pools = [{"name": "a", "shape": P5, "count": 5}, {"name": "b", "shape": P5, "count": 5}]
    groups = [
        {"pool": "a", "min_nodes": lo, "max_nodes": hi if hi else 1, "priority": 1},
        {"pool": "b", "min_nodes": 0, "max_nodes": 2},
    ]
    ca = {
        "node_groups": groups,
        "expander": [expander],
        "provision_s": 200,
        "scale_down_unneeded_time_s": 300,
        "scale_down_delay_after_add_s": 0,
    }
    p = _scenario(tmp_path, rows, pools, ca, horizon_s=40000, seed=seed)
    res = _run(p)
    o = res._output
    assert res.invariants.ok  # the engine also refuses to return a run that breaks them
    a = o.run.subsystems["autoscaler"]
    for g, pool in zip(groups, ("a", "b"), strict=True):
        sizes = _sizes(a["log"], pool, g["min_nodes"])
        assert all(g["min_nodes"] <= s <= g["max_nodes"] for s in sizes), sizes
    # billing: capacity - unprovisioned = the autoscaled groups' provisioned GPU-time (no fixed pool here)
    bill_h = at.bill(o.run, o.built.prices)["total"] / o.built.prices.usd_per_gpu_hour["H100-SXM"]
    assert bill_h == pytest.approx(a["gpu_hours_billed"], rel=1e-9, abs=1e-9)
    table = at.attribute(o.run, o.ledger, o.built.prices)
    assert float(table["gpuHours"].sum()) == pytest.approx(a["gpu_hours_billed"], rel=1e-9, abs=1e-9)
    assert at.check(o.run, table)["ok"]
    # no pod ever held a GPU of an unprovisioned node: allocated <= provisioned GPU-time
    assert o.summary["gpu_time"]["allocated_gpu_hours"] <= a["gpu_hours_billed"] + 1e-9


def _digest(res):
    o = res._output
    s = json.dumps(o.summary, sort_keys=True, default=str) + json.dumps(o.run.events, sort_keys=True, default=str)
    return hashlib.sha256(s.encode()).hexdigest()


def test_same_seed_same_bytes_and_random_expander_uses_the_run_stream(tmp_path):
    rows = [f"j{k},{k * 700},3000,8,1000,8000,65536,H100-SXM,0,,t" for k in range(12)]
    pools = [{"name": "a", "shape": P5, "count": 4}, {"name": "b", "shape": P5, "count": 4}]
    ca = {"node_groups": [{"pool": "a"}, {"pool": "b"}], "expander": "random"}
    p = _scenario(tmp_path, rows, pools, ca, horizon_s=30000)
    d1, d2 = _digest(_run(p, seed=1)), _digest(_run(p, seed=1))
    assert d1 == d2
    picks = {
        s: tuple(x["pool"] for x in _run(p, seed=s)._output.run.subsystems["autoscaler"]["log"] if "pool" in x)
        for s in range(6)
    }
    assert len(set(picks.values())) > 1  # the seeded stream decides the tie between two equal groups


def test_least_waste_and_priority_choose_as_ca_does(tmp_path):
    # one 1-GPU pod (8 vCPU, 64 GiB). least-waste: p5.4xlarge wastes (16-8)/16 + (256-64)/256 = 1.25,
    # p5.48xlarge (192-8)/192 + (2048-64)/2048 = 1.93 -> the small node. priority: the higher one.
    rows = ["one,0,600,1,1000,8000,65536,H100-SXM,0,,t"]
    pools = [{"name": "big", "shape": P5, "count": 2}, {"name": "small", "shape": "aws:p5.4xlarge", "count": 2}]
    groups = [{"pool": "big", "priority": 10}, {"pool": "small", "priority": 1}]
    for expander, want in (("least-waste", "small"), ("priority", "big"), ("priority,least-waste", "big")):
        p = _scenario(tmp_path, rows, pools, {"node_groups": groups, "expander": expander}, name=f"{want}.yaml")
        log = _run(p)._output.run.subsystems["autoscaler"]["log"]
        assert log[0]["pool"] == want, expander


def test_min_nodes_stay_and_are_billed_from_the_start(tmp_path):
    p = _scenario(
        tmp_path,
        ["one,0,600,1,1000,8000,65536,H100-SXM,0,,t"],
        [{"name": "burst", "shape": P5, "count": 3}],
        {"node_groups": [{"pool": "burst", "min_nodes": 1, "max_nodes": 3}], "scale_down_delay_after_add_s": 0},
    )
    a = _run(p)._output.run.subsystems["autoscaler"]
    assert a["scale_ups"] == 0 and a["scale_downs"] == 0 and a["groups"]["burst"]["nodes_at_end"] == 1
    assert a["gpu_hours_billed"] == pytest.approx(8 * 6000 / 3600)


def test_an_autoscaler_that_cannot_act_leaves_the_replay_unchanged(tmp_path):
    rows = [f"j{k},{k * 300},{2000 + 37 * k},{(1, 2, 4, 8)[k % 4]},1000,8000,65536,H100-SXM,0,,t" for k in range(30)]
    pools = [{"name": "gpu", "shape": P5, "count": 3}]
    base = _run(_scenario(tmp_path, rows, pools, None, horizon_s=40000))._output
    fixed = {"node_groups": [{"pool": "gpu", "min_nodes": 3, "max_nodes": 3}]}
    ca = _run(_scenario(tmp_path, rows, pools, fixed, horizon_s=40000, name="ca.yaml"))._output
    assert ca.run.subsystems["autoscaler"]["scale_ups"] == 0
    for col in ("start_s", "end_s", "node", "outcome"):
        assert base.ledger[col].equals(ca.ledger[col]), col


@pytest.mark.parametrize(
    "group,top,says",
    [
        ({"pool": "burst", "min_nodes": 3, "max_nodes": 2}, {}, "min_nodes 3 is above max_nodes 2"),
        ({"pool": "nope"}, {}, "'nope' is not a pool of the cluster"),
        ({"pool": "burst", "max_nodes": 9}, {}, "9 is above the pool's count 3"),
        ({"pool": "burst"}, {"scale_down_unneeded_time_s": -5}, "greater than or equal to 0"),
        ({"pool": "burst"}, {"expander": "cheapest"}, "cheapest"),
        ({"pool": "burst"}, {"provision_s": 1200}, "every scale-up would time out"),
    ],
)
def test_bad_blocks_are_refused_with_file_and_line(tmp_path, group, top, says):
    p = _scenario(
        tmp_path,
        ["one,0,600,1,1000,8000,65536,H100-SXM,0,,t"],
        [{"name": "burst", "shape": P5, "count": 3}],
        {"node_groups": [group], **top},
    )
    with pytest.raises(UserError) as ei:
        _run(p)
    msg = str(ei.value)
    assert says in msg
    text = p.read_text().splitlines()
    assert f"{p}:" in msg, msg
    # the line named is inside the autoscaler block
    first = next(k for k, t in enumerate(text, 1) if t.startswith("autoscaler:"))
    assert any(f"{p}:{n}" in msg for n in range(first, len(text) + 1)), msg


def test_a_sweep_varies_autoscaler_fields_by_path(tmp_path):
    from gpuinfra.sweep.spec import set_path

    p = _scenario(
        tmp_path,
        ["one,0,600,1,1000,8000,65536,H100-SXM,0,,t"],
        [{"name": "burst", "shape": P5, "count": 3}],
        {"node_groups": [{"pool": "burst", "max_nodes": 3}], "scale_down_unneeded_time_s": 600},
    )
    doc = yaml.safe_load(p.read_text())
    set_path(doc, "autoscaler.scale_down_unneeded_time_s", 120)
    set_path(doc, "autoscaler.node_groups[0].max_nodes", 2)
    sc = api.Scenario.model_validate(doc)
    assert sc.autoscaler.scale_down_unneeded_time_s == 120 and sc.autoscaler.node_groups[0].max_nodes == 2
    with pytest.raises(UserError, match="(?i)did you mean"):
        set_path(doc, "autoscaler.scale_down_unneded_time_s", 1)


def test_skipping_unchanged_scans_gives_the_decisions_of_walking_every_scan(tmp_path, monkeypatch):
    from gpuinfra.sim import autoscaler as ca

    rows = [
        f"j{k},{(k * 1237) % 50000},{600 + (k * 611) % 7000},{(1, 2, 4, 8)[k % 4]},1000,8000,65536,H100-SXM,0,,t"
        for k in range(80)
    ]
    pools = [{"name": "a", "shape": P5, "count": 6}, {"name": "b", "shape": P5, "count": 4}]
    spec = {
        "node_groups": [{"pool": "a", "min_nodes": 1}, {"pool": "b"}],
        "expander": "least-waste",
        "scale_down_unneeded_time_s": 300,
        "scale_down_delay_after_add_s": 120,
        "max_empty_bulk_delete": 1,
    }
    p = _scenario(tmp_path, rows, pools, spec, horizon_s=90000)
    skip = _run(p)._output.run.subsystems["autoscaler"]
    orig = ca.ClusterAutoscaler._scale_down

    def walk(self, t, k):
        self._down_key = None  # forget the no-change key: every scan walks every node
        return orig(self, t, k)

    monkeypatch.setattr(ca.ClusterAutoscaler, "_scale_down", walk)
    full = _run(p)._output.run.subsystems["autoscaler"]
    assert skip["scale_downs"] > 0
    assert json.dumps(skip, sort_keys=True) == json.dumps(full, sort_keys=True)


def test_faults_on_autoscaled_nodes_compose_with_scaling(tmp_path):
    # node reboots strike provisioned nodes (unprovisioned slots absorb their strikes); a node down for
    # a reboot is not unneeded, and the holds of the two subsystems never release each other's
    rows = [
        f"j{k},{k * 900},{1800 + (k * 311) % 5000},{(2, 4, 8)[k % 3]},1000,8000,65536,H100-SXM,0,,t" for k in range(40)
    ]
    p = _scenario(
        tmp_path,
        rows,
        [{"name": "burst", "shape": P5, "count": 5}],
        {"node_groups": [{"pool": "burst", "min_nodes": 1}], "scale_down_unneeded_time_s": 120},
        horizon_s=60000,
    )
    d = yaml.safe_load(p.read_text())
    d["faults"] = [
        {
            "name": "reboot",
            "rate_per_day": 2.0,
            "scope": "node",
            "action": "reboot_node",
            "repair_s": 900,
            "source": "a stress rate for the test",
        }
    ]
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    res = _run(p, seed=3)
    o = res._output
    assert res.invariants.ok
    assert o.run.subsystems["faults"]["by_class"]["reboot"] > 0  # some strikes landed on provisioned nodes
    a = o.run.subsystems["autoscaler"]
    assert a["scale_ups"] > 0 and a["scale_downs"] > 0
    bill_h = at.bill(o.run, o.built.prices)["total"] / o.built.prices.usd_per_gpu_hour["H100-SXM"]
    assert bill_h == pytest.approx(a["gpu_hours_billed"], rel=1e-9)
