"""Sharing modes: device models, advertised resources, MIG reconfiguration, the per-GPU
simulation, fleet policies and exported configs."""

from __future__ import annotations

import pytest
import yaml

from gpuinfra.errors import UserError
from gpuinfra.io.sharing_export import check_layout, export_sharing
from gpuinfra.models import mig as migm
from gpuinfra.models.sharing import GpuState, Share, Tenant, advertised, mig_share, reconfigure
from gpuinfra.sim.sharing import POLICIES, evaluate_policy, mixed_workload, simulate_isolated, simulate_shared

GPU = "H100-SXM"


def test_mig_share_is_the_instance():
    s = mig_share(GPU, "3g.40gb")
    assert s.sm_frac == pytest.approx(60 / 132) and s.bw_frac == pytest.approx(4 / 8) and s.mem_limit_gib == 39.5
    t = Tenant("t", "inference", 10, compute_s=0.010, memory_s=0.020, sm_demand=1.0)
    assert t.time_on(1, 1) == pytest.approx(0.020)
    assert t.time_on(s.sm_frac, s.bw_frac) == pytest.approx(max(0.010 * 132 / 60, 0.020 / 0.5))


def test_advertised_resources_follow_the_device_plugin():
    assert advertised(8, "timeslice", replicas=10) == {"nvidia.com/gpu": 80}
    assert advertised(8, "mps", replicas=10, rename=True) == {"nvidia.com/gpu.shared": 80}
    assert advertised(8, "mig", layout=["1g.10gb", "1g.10gb", "3g.40gb"]) == {
        "nvidia.com/mig-1g.10gb": 16,
        "nvidia.com/mig-3g.40gb": 8,
    }
    assert advertised(8, "mig", mig_strategy="single", layout=["1g.10gb"] * 7) == {"nvidia.com/gpu": 56}
    with pytest.raises(UserError, match="single strategy"):
        advertised(8, "mig", mig_strategy="single", layout=["1g.10gb", "3g.40gb"])
    with pytest.raises(UserError, match="at most 48"):
        advertised(8, "mps", replicas=64)


def test_mig_layouts_the_guide_documents_are_found():
    for layout in (
        ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"],
        ["4g.40gb", "2g.20gb", "1g.10gb"],
        ["3g.40gb", "3g.40gb"],
        ["1g.10gb"] * 7,
        ["2g.20gb", "2g.20gb", "2g.20gb", "1g.10gb"],
    ):
        inst = check_layout(GPU, layout)
        migm.validate(inst)
        assert sorted(i.profile.name for i in inst) == sorted(layout)
    for bad in (["4g.40gb", "4g.40gb"], ["3g.40gb", "3g.40gb", "1g.10gb"], ["1g.10gb"] * 8):
        with pytest.raises(UserError, match="does not fit"):
            check_layout(GPU, bad)


def test_reconfiguration_prefers_free_slots_then_idle_gpus_then_drains():
    p3 = migm.profile(GPU, "3g.40gb")
    busy = GpuState(0, [migm.Instance(p3, 0), migm.Instance(p3, 4)], {0, 1}, {0: 2.0, 1: 1.0})
    idle = GpuState(1, [migm.Instance(migm.profile(GPU, "7g.80gb"), 0)], set())
    plan = reconfigure(GPU, [busy, idle], ["1g.10gb", "1g.10gb"])
    assert plan.repartitioned == [1] and not plan.drained and not plan.unplaced and plan.drained_gpu_hours == 0
    full = GpuState(2, [migm.Instance(p3, 0), migm.Instance(p3, 4)], {0, 1}, {0: 0.5, 1: 0.25})
    plan2 = reconfigure(GPU, [busy, full], ["7g.80gb"])
    assert plan2.drained == [2] and plan2.drained_gpu_hours == pytest.approx(0.75)  # the cheaper GPU to drain
    assert reconfigure(GPU, [busy], ["7g.80gb"], allow_drain=False).unplaced == ["7g.80gb"]


def test_timeslicing_memory_is_not_isolated_and_mps_enforces_limits():
    a = Tenant("a", "training", 50, 0.1, 0.01)
    b = Tenant("b", "training", 40, 0.1, 0.01)
    ts = simulate_shared([a, b], "timeslice", GPU, 5.0, 0)
    assert [r.oom for r in ts.tenants] == [False, True]  # 90 GiB does not fit 80: the second OOMs
    mps = simulate_shared(
        [
            Tenant("c", "inference", 25, 0.001, 0.001, rate_per_s=1),
            Tenant("d", "inference", 15, 0.001, 0.001, rate_per_s=1),
        ],
        "mps",
        GPU,
        5.0,
        0,
        replicas=4,
    )
    assert [r.oom for r in mps.tenants] == [True, False]  # limit = 79.6 GiB / 4


def test_timeslicing_shares_time_and_a_lone_tenant_runs_free():
    t1 = Tenant("t1", "training", 10, 0.1, 0.01)
    t2 = Tenant("t2", "training", 10, 0.1, 0.01)
    alone = simulate_shared([t1], "timeslice", GPU, 20.0, 0)
    assert alone.tenants[0].relative_throughput == pytest.approx(1.0, abs=0.01)
    two = simulate_shared([t1, t2], "timeslice", GPU, 20.0, 0)
    th = [r.relative_throughput for r in two.tenants]
    assert all(0.45 < x < 0.5 for x in th)  # half each, less the context switches
    iso = simulate_isolated(t1, Share("whole"), 20.0, 0)
    assert iso.relative_throughput == pytest.approx(1.0)


def test_policies_trade_gpus_for_isolation_and_latency():
    ts = mixed_workload(GPU, 1.0)
    r = {p: evaluate_policy(p, ts, GPU, 60.0, 1) for p in POLICIES}
    assert r["whole"].gpus == len(ts) and r["whole"].blast_radius == 1.0
    assert r["timeslice"].gpus < r["mig"].gpus <= r["whole"].gpus
    assert r["timeslice"].blast_radius > r["mig"].blast_radius == 1.0
    assert r["timeslice"].training_throughput < r["mps"].training_throughput
    assert r["whole"].slo_attainment >= max(r[p].slo_attainment for p in ("timeslice", "mps", "mig"))


def test_more_load_hurts_shared_latency_more():
    lo, hi = (evaluate_policy("timeslice", mixed_workload(GPU, x), GPU, 60.0, 2) for x in (0.5, 1.5))
    wlo, whi = (evaluate_policy("whole", mixed_workload(GPU, x), GPU, 60.0, 2) for x in (0.5, 1.5))
    assert hi.inference_p99_s > lo.inference_p99_s and hi.utilization > lo.utilization
    assert hi.inference_p99_s / lo.inference_p99_s > whi.inference_p99_s / wlo.inference_p99_s


@pytest.mark.parametrize("policy", ["whole", "timeslice", "mps", "mig", "mixed"])
def test_exported_configs_validate(tmp_path, policy):
    res = export_sharing(policy, GPU, tmp_path, replicas=4)
    assert res["validated"]
    for f in res["files"]:
        doc = yaml.safe_load((tmp_path / f).read_text())
        assert doc["apiVersion"] == "v1" and doc["kind"] in ("ConfigMap", "Node")
    if policy in ("timeslice", "mps"):
        cm = yaml.safe_load((tmp_path / "device-plugin-config.yaml").read_text())
        inner = yaml.safe_load(next(iter(cm["data"].values())))
        key = "timeSlicing" if policy == "timeslice" else "mps"
        assert inner["sharing"][key]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    if policy == "mig":
        cm = yaml.safe_load((tmp_path / "mig-parted-config.yaml").read_text())
        inner = yaml.safe_load(cm["data"]["config.yaml"])
        cfg = next(v for k, v in inner["mig-configs"].items() if k != "all-disabled")
        assert cfg[0]["mig-devices"] == {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}  # mig-parted's all-balanced


def test_kubernetes_schema_refuses_a_bad_object():
    import kubernetes_validate

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"replicas": 4}},
            "1.30",
            strict=True,
        )
