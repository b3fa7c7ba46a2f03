"""Serving replicas as pods of the replay: training and serving on one cluster, one kernel."""

from __future__ import annotations

import numpy as np
import pytest

from gpuinfra.errors import UserError
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.serving import ColdStart, Requests, ServingConfig, ServingSpec
from tests.conftest import cluster, pod, table


def _spec(n=40, horizon=200.0):
    arr = np.linspace(0, horizon, n)
    rq = Requests(arr, np.full(n, 500, np.int64), np.full(n, 2000, np.int64))
    cfg = ServingConfig("llama-3-8b", "H100-SXM", cold_start=ColdStart(image_gb=0, storage="host-dram", warmup_s=5))
    return ServingSpec(cfg, rq)


def test_training_and_serving_share_the_cluster_and_a_lost_replica_is_retried():
    c = cluster(("h", "H100-SXM", 8, 64000, 512000, 2))
    pods = table(
        pod("train-0", 0, 1000, gpus=8),
        pod("serve-0", 0, 100, gpus=1),  # this replica's pod ends at t=100 with requests in flight
        pod("serve-1", 0, 1000, gpus=1),
    )
    r = ReplayEngine(c, pods, Profile(), 1, subsystem_options={"serving": _spec()}).run()
    s = r.subsystems["serving"]
    assert r.invariants.ok  # the engine's check: the replicas' GPUs were held through ClusterState
    assert s["replicas_started"] == 2 and s["retried"] > 0
    assert s["completed"] == s["requests"] and s["served_twice"] == 0 and s["not_served"] == 0
    assert s["kv_never_overcommitted"]
    ends = [e for e in s["log"] if e["what"] != "start"]
    assert [(e["pod"], e["t_s"]) for e in ends][0] == ("serve-0", 100.0)
    assert s["replica_gpu_hours"] == pytest.approx((100 + 1000) / 3600)


def test_a_serving_pod_on_the_wrong_gpu_is_refused():
    c = cluster(("a", "A100-80GB", 8, 64000, 512000, 1))
    with pytest.raises(UserError, match="serving pod serve-0"):
        ReplayEngine(c, table(pod("serve-0", 0, 100)), Profile(), 1, subsystem_options={"serving": _spec()}).run()
