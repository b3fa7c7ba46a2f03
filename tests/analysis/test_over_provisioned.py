"""Over-provisioned serving as its own cost line: replica GPU-time beyond what the offered load needs
at the SLO, moved out of the service's usage line (every GPU-second still attributed once)."""

import pytest
import yaml

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.errors import UserError
from gpuinfra.sim.serving import ServingConfig, capacity_at_slo, make_requests, simulate

HORIZON = 36000.0


def _run(tmp_path, replicas=4, load=None, extra_kinds=()):
    rows = ["job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner"]
    rows += [f"serve-{i},0,{HORIZON:.0f},1,1000,8000,65536,H100-SXM,100,,serving" for i in range(replicas)]
    rows += ["batch-0,0,7200,2,1000,8000,65536,H100-SXM,5,,batch"]
    (tmp_path / "jobs.csv").write_text("\n".join(rows) + "\n")
    kind = {"owner": "serving", "kind": "service"}
    if load is not None:
        kind["load"] = load
    d = {
        "name": "overprov",
        "seed": 1,
        "horizon_s": HORIZON,
        "sample_interval_s": 600,
        "cluster": {"pools": [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1}]},
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit"], "reserve": "FirstFitDevices"},
        "prices": {"cloud": "aws"},
        "execution": {"kinds": [kind, *extra_kinds]},
    }
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    o = api.simulate(api.scenario(p))._output
    return o, at.over_provisioning(o.run)


# 12 req/s offered, 8 req/s per replica measured, aimed at 75 % utilisation: 12 / (8 x 0.75) = 2 replicas
HAND = {"offered_rps": 12, "source": "test: hand-set load", "replica_capacity_rps": 8,
        "capacity_source": "test: hand-set", "target_utilization": 0.75}  # fmt: skip


def test_four_replicas_where_two_suffice_half_the_service_gpu_time_is_over_provisioned(tmp_path):
    o, svc = _run(tmp_path, 4, HAND)
    (s,) = svc
    assert s["status"] == "computed" and s["needed_replicas"] == 2
    assert s["held_gpu_hours"] == pytest.approx(4 * HORIZON / 3600.0)
    assert s["over_provisioned_gpu_hours"] == pytest.approx(2 * HORIZON / 3600.0)
    assert s["replica_hours_short"] == pytest.approx(0.0)
    table = at.attribute(o.run, o.ledger, o.built.prices, services=svc)
    over = table[table.costCategory == "over_provisioned"]
    assert list(over.name) == ["serving/__over_provisioned__"]
    assert float(over.gpuHours.sum()) == pytest.approx(2 * HORIZON / 3600.0)
    # moved out of the service's usage line, not added: the service still totals what it held
    served = table[(table.namespace == "serving") & (table.costCategory == "workload")]
    assert float(served.gpuHours.sum()) == pytest.approx(2 * HORIZON / 3600.0)
    # every GPU-second once: sums to the bill; the idle line still matches the recorder
    assert float(table.totalCost.sum()) == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-12)
    assert at.check(o.run, table)["ok"]
    burn = at.silent_burn(table)
    row = burn[burn.costCategory == "over_provisioned"].iloc[0]
    assert row["where"] == "serving" and row["gpuHours"] == pytest.approx(2 * HORIZON / 3600.0)
    # same as computing it inside attribute()
    assert table.equals(at.attribute(o.run, o.ledger, o.built.prices))


def test_fewer_replicas_than_needed_is_short_not_over_provisioned(tmp_path):
    o, (s,) = _run(tmp_path, 1, HAND)
    assert s["needed_replicas"] == 2
    assert s["over_provisioned_gpu_hours"] == 0.0
    assert s["replica_hours_short"] == pytest.approx(HORIZON / 3600.0)
    table = at.attribute(o.run, o.ledger, o.built.prices)
    assert "over_provisioned" not in set(table.costCategory)


def test_min_replicas_counts_as_needed(tmp_path):
    o, (s,) = _run(tmp_path, 4, {**HAND, "min_replicas": 3})
    assert s["needed_replicas"] == 3
    assert s["over_provisioned_gpu_hours"] == pytest.approx(HORIZON / 3600.0)


def test_a_service_without_a_load_is_not_computed_never_guessed(tmp_path):
    o, (s,) = _run(tmp_path, 4, None)
    assert s["status"] == "not computed"
    assert "execution.kinds[owner=serving].load" in s["why"] and "offered_rps" in s["why"]
    table = at.attribute(o.run, o.ledger, o.built.prices)
    assert "over_provisioned" not in set(table.costCategory)
    assert float(table.totalCost.sum()) == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-12)


def test_load_on_a_non_service_and_an_unsourced_capacity_are_refused(tmp_path):
    with pytest.raises(UserError, match="load is for kind service"):
        _run(tmp_path, 1, None, extra_kinds=[{"owner": "batch", "kind": "batch", "load": HAND}])
    with pytest.raises(UserError, match="capacity_source"):
        _run(tmp_path, 1, {"offered_rps": 1, "source": "x", "replica_capacity_rps": 2})


def test_computed_capacity_meets_the_slo_and_a_little_more_load_does_not():
    cfg = ServingConfig(model="llama-3-8b", gpu="H100-SXM")
    cap = capacity_at_slo(cfg, 512, 128, window_s=120.0, rel_tol=0.02)
    assert cap["attainment_at_rps"] >= 0.9
    above = simulate(cfg, make_requests(0, cap["rps"] * 1.1, 120.0, 512, 128))
    assert above.slo_attainment < 0.9
    # deterministic: same inputs, same figure
    assert capacity_at_slo(cfg, 512, 128, window_s=120.0, rel_tol=0.02) == cap


def test_capacity_computed_by_the_serving_simulator_sizes_the_service(tmp_path):
    load = {"offered_rps": 30, "source": "test: hand-set load"}
    o, (s,) = _run(tmp_path, 4, load)
    assert s["status"] == "computed" and "capacity_at_slo" in s["capacity_source"]
    assert s["needed_replicas"] == max(1, -(-30 // (s["capacity_rps"] * 0.7)))
    assert s["over_provisioned_gpu_hours"] == pytest.approx((4 - s["needed_replicas"]) * HORIZON / 3600.0)
