"""The serving simulation on constructed arrivals, checked against step-by-step sums by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpuinfra.models.serving import ServingSetup, StepModel
from gpuinfra.sim.serving import (
    Autoscaler,
    Batching,
    ColdStart,
    Hpa,
    Kpa,
    Requests,
    ServingConfig,
    make_requests,
    simulate,
)

MODEL, GPU = "llama-3-8b", "H100-SXM"


def reqs(arr, p, o) -> Requests:
    n = len(arr)
    p = [p] * n if isinstance(p, int) else p
    o = [o] * n if isinstance(o, int) else o
    return Requests(np.asarray(arr, float), np.asarray(p, np.int64), np.asarray(o, np.int64))


def cfg(kind="continuous", **kw) -> ServingConfig:
    b = kw.pop("batching", None) or Batching(kind=kind)
    return ServingConfig(MODEL, GPU, batching=b, price_usd_per_gpu_hour=2.0, **kw)


SM = StepModel(ServingSetup.make(MODEL, GPU))


def alone(p: int, o: int) -> tuple[float, float]:
    """(TTFT, e2e) of one request on an idle replica, summed step by step."""
    t = SM.prefill_step(p).total_s
    ttft = t
    for j in range(o - 1):
        t += SM.decode_step(1, p + j).total_s
    return ttft, t


def per_request(r):
    pr = r.per_request
    return pr["ttft_s"], pr["done_s"] - pr["arrival_s"]


@pytest.mark.parametrize("kind", ["single", "dynamic", "continuous", "chunked"])
def test_one_request_alone_matches_the_step_sum(kind):
    r = simulate(cfg(kind, batching=Batching(kind=kind, chunk_size=4096)), reqs([0.0], 300, 50), keep_requests=True)
    ttft, e2e = per_request(r)
    t1, e1 = alone(300, 50)
    assert ttft[0] == pytest.approx(t1, rel=1e-9)
    assert e2e[0] == pytest.approx(e1, rel=1e-9)
    assert r.invariants["ok"] and r.serving_invariants["served_exactly_once"]


def test_single_serves_one_at_a_time():
    r = simulate(cfg("single"), reqs([0.0, 0.0], 200, 20), keep_requests=True)
    ttft, e2e = per_request(r)
    _, e1 = alone(200, 20)
    t1, _ = alone(200, 20)
    assert e2e[0] == pytest.approx(e1)
    assert ttft[1] == pytest.approx(e1 + t1)  # waits for the first to finish


def test_continuous_joins_at_the_next_step_boundary():
    # A runs alone; B arrives mid-decode and its prefill starts when A's running step ends
    tau = 0.1
    r = simulate(cfg("continuous"), reqs([0.0, tau], 200, [400, 10]), keep_requests=True)
    ttft, _ = per_request(r)
    t = SM.prefill_step(200).total_s
    j = 0
    while t < tau:
        t += SM.decode_step(1, 200 + j).total_s
        j += 1
    assert ttft[1] == pytest.approx(t - tau + SM.prefill_step(200).total_s, rel=1e-9)


def test_dynamic_batcher_waits_for_the_delay_or_a_preferred_size():
    arr = [0.0, 0.01, 0.02]
    b = Batching(kind="dynamic", max_batch_size=4, max_queue_delay_s=0.1)
    r = simulate(cfg(batching=b), reqs(arr, 100, 5), keep_requests=True)
    ttft, _ = per_request(r)
    # one batch of 3 sent at 0.1 s (the oldest request's delay), prefill padded to 3 x 100 tokens
    first = 0.1 + SM.prefill_step(100, 3).total_s
    assert ttft + np.asarray(arr) == pytest.approx([first] * 3)
    b2 = Batching(kind="dynamic", max_batch_size=4, max_queue_delay_s=0.1, preferred_batch_sizes=(2,))
    r2 = simulate(cfg(batching=b2), reqs(arr, 100, 5), keep_requests=True)
    t2, _ = per_request(r2)
    assert t2[0] + 0.0 == pytest.approx(0.01 + SM.prefill_step(100, 2).total_s - 0.0)


def test_chunked_prefill_keeps_decodes_flowing_behind_a_long_prompt():
    # a decode-heavy request, then a 8000-token prompt: vLLM's prefill step stalls the decode;
    # Sarathi's chunks bound every step, so A's time per output token is lower
    arr, p, o = [0.0, 0.05], [100, 8000], [200, 2]
    tc = simulate(cfg("continuous"), reqs(arr, p, o), keep_requests=True)
    ts = simulate(cfg("chunked"), reqs(arr, p, o), keep_requests=True)
    stall = SM.prefill_step(8000).total_s
    e_c, e_s = per_request(tc)[1][0], per_request(ts)[1][0]
    assert e_c - e_s > 0.5 * stall - 0.05


def test_kv_pressure_preempts_by_recompute_and_never_overcommits():
    b = Batching(kind="continuous", gpu_memory_utilization=0.3)
    c = ServingConfig("llama-2-7b", "A100-80GB", batching=b, price_usd_per_gpu_hour=2.0)
    rq = reqs(np.linspace(0, 1, 80), 1000, 1500)
    r = simulate(c, rq)
    assert r.preemptions > 0
    assert r.serving_invariants == {
        "served_exactly_once": True,
        "served_twice": 0,
        "not_served": 0,
        "kv_never_overcommitted": True,
    }
    assert r.peak_kv_utilization <= 1.0 and r.invariants["ok"]


def test_same_seed_same_bytes():
    c = cfg("chunked", replicas=2)
    a = json.dumps(simulate(c, make_requests(3, 4.0, 60, "lognormal:300:1", "lognormal:100:1"), 3).as_dict())
    b = json.dumps(simulate(c, make_requests(3, 4.0, 60, "lognormal:300:1", "lognormal:100:1"), 3).as_dict())
    assert a == b


def test_gpu_time_is_what_replicas_held():
    c = cfg("continuous", replicas=3)
    r = simulate(c, reqs([0.0, 1.0, 2.0], 100, 10))
    # the cluster is sized to the replicas (3 GPUs), all held from t=0 to the end of the run
    assert r.gpu_hours == pytest.approx(r.invariants["capacity_x_time_gpu_hours"], rel=1e-9)
    assert r.invariants["idle_gpu_hours"] == pytest.approx(0.0, abs=1e-12)
    assert r.cost_usd == pytest.approx(2.0 * r.gpu_hours)


def test_failure_retries_lost_requests_once():
    c = cfg("continuous", replicas=2, fail_at=((0.5, 0),), cold_start=ColdStart(image_gb=0, warmup_s=5))
    r = simulate(c, reqs(np.linspace(0, 0.4, 10), 200, 300))
    assert r.retried > 0
    assert r.serving_invariants["served_exactly_once"]
    assert r.invariants["ok"]


def test_hpa_formula_as_documented():
    # desiredReplicas = ceil(currentReplicas x currentMetric / desiredMetric), 10 % tolerance
    assert Hpa.desired(4, usage_sum=4 * 2.5, target=1.0, tolerance=0.1) == 10
    assert Hpa.desired(10, usage_sum=10 * 1.05, target=1.0, tolerance=0.1) == 10
    assert Hpa.desired(10, usage_sum=10 * 0.5, target=1.0, tolerance=0.1) == 5


def test_kpa_formula_as_documented():
    # knative docs: 100 concurrent requests, containerConcurrency 10, 70 % target -> 15 pods
    assert Kpa.desired_from(100, 10, 0.7) == 15


def test_hpa_scales_up_and_waits_300_s_to_scale_down():
    # 30 req/s for 600 s then 1 req/s: short prompts so the metric is the request rate
    rng = np.random.default_rng(0)  # noqa: NPY002  test data only, not simulation randomness
    hi = np.sort(rng.uniform(0, 600, 18000))
    lo = np.sort(rng.uniform(600, 1500, 900))
    rq = reqs(np.concatenate([hi, lo]), 100, 20)
    a = Autoscaler(kind="hpa", metric="rps", target=5.0, min_replicas=1, max_replicas=8)
    c = cfg("continuous", replicas=1, autoscaler=a, cold_start=ColdStart(image_gb=0, storage="host-dram", warmup_s=10))
    r = simulate(c, rq)
    tl = r.replicas_timeline
    assert max(n for _, n in tl) >= 6
    first_down = min(t for (t, n), (_, m) in zip(tl[1:], tl) if n < m)
    assert first_down >= 600 + 300 - 60  # the 1-minute rate window lags the drop by up to 60 s
    assert r.serving_invariants["served_exactly_once"] and r.invariants["ok"]


def test_kpa_scales_from_zero_and_back():
    rq = reqs([10.0, 10.5, 11.0], 100, 10)
    a = Autoscaler(kind="kpa", container_concurrency=4, min_replicas=0, max_replicas=4)
    cs = ColdStart(image_gb=0, storage="host-dram", warmup_s=10)
    r = simulate(cfg("continuous", replicas=0, autoscaler=a, cold_start=cs), rq, keep_requests=True)
    ttft, _ = per_request(r)
    # the first request arrives at a tick (t = 10 s) and waits for a whole cold start
    assert ttft[0] >= r.cold_start_s["total_s"]
    assert r.cold_start_s["total_s"] == pytest.approx(10 + 8.03e9 * 2 / 25e9, rel=1e-3)
    assert r.replicas_timeline[0][1] == 1 and r.replicas_timeline[-1][1] == 0
    # scale to zero only after a stable window (60 s) + grace (30 s) without traffic
    assert r.replicas_timeline[-1][0] - 21.0 >= 90 - 2


def test_arrival_processes_have_their_stated_moments():
    from gpuinfra.sim.kernel import Rngs
    from gpuinfra.sim.serving import diurnal_arrivals, gamma_arrivals, poisson_arrivals

    rng = Rngs(7).stream("t")
    p = poisson_arrivals(rng, 50.0, 2000.0)
    assert len(p) / 2000.0 == pytest.approx(50.0, rel=0.02)
    g = np.diff(gamma_arrivals(rng, 50.0, 3.0, 2000.0))
    assert g.mean() == pytest.approx(1 / 50.0, rel=0.05) and g.std() / g.mean() == pytest.approx(3.0, rel=0.1)
    d = diurnal_arrivals(rng, 50.0, 86400.0, peak_to_trough=3.0)
    trough = ((d < 3600) | (d > 86400 - 3600)).sum() / 7200.0
    peak = ((d > 43200 - 3600) & (d < 43200 + 3600)).sum() / 7200.0
    assert peak / trough == pytest.approx(3.0, rel=0.1)


def test_requests_held_back_by_the_token_budget_join_at_the_next_step():
    # 40 prompts of 1,000 tokens at once, 8,192-token budget: five prefill steps of 8 (the last
    # of 8), then all 40 decode together; none waits for the first eight to finish
    r = simulate(cfg("continuous"), reqs([0.0] * 40, 1000, 50), keep_requests=True)
    ttft, e2e = per_request(r)
    assert ttft.max() < e2e.min()
    assert r.mean_batch > 30


def test_predictive_scaler_forecasts_the_trend_and_scales_before_the_hpa():
    from gpuinfra.sim.kernel import Rngs
    from gpuinfra.sim.serving import Predictive, lengths

    # 60 then 90 requests in two 60-s windows: 1.5 req/s rising by 0.5 req/s per minute -> at
    # a 120-s lead, 1.5 + 0.5/60 x 120 = 2.5 req/s
    assert Predictive.forecast(90, 60, 60.0, 120.0) == pytest.approx(2.5)
    rng = Rngs(5).stream("test.ramp")
    T = 900.0
    cand = np.sort(rng.uniform(0, T, rng.poisson(40 * T)))
    arr = cand[rng.uniform(0, 40, len(cand)) < np.minimum(2 + 38 * cand / 600, 40)]
    rq = Requests(arr, lengths(rng, len(arr), "lognormal:600:1", "x"), lengths(rng, len(arr), "200", "x"))
    first_up = {}
    for kind in ("hpa", "predictive"):
        a = Autoscaler(kind=kind, metric="rps", target=10.0, min_replicas=1, max_replicas=12)
        r = simulate(cfg("continuous", replicas=1, autoscaler=a, cold_start=ColdStart()), rq, 5)
        assert r.invariants["ok"] and r.serving_invariants["served_exactly_once"]
        first_up[kind] = r.replicas_timeline[1][0]
    assert first_up["predictive"] < first_up["hpa"]


def test_replicas_on_mig_instances_pack_and_pay_their_share():
    from gpuinfra.errors import UserError

    whole = StepModel(ServingSetup.make(MODEL, GPU, "fp8"))
    s3 = ServingSetup.make(MODEL, GPU, "fp8", mig_profile="3g.40gb")
    mig = StepModel(s3)
    # 3g.40gb: 3 of 7 compute slices, 4 of 8 memory slices; batch-1 decode is bandwidth-bound
    assert mig.linear(1)[0] == pytest.approx(whole.linear(1)[0] * 2, rel=1e-9)
    assert mig.peak == pytest.approx(whole.peak * 3 / 7)
    c = ServingConfig(MODEL, GPU, "fp8", replicas=4, mig_profile="3g.40gb", price_usd_per_gpu_hour=2.0)
    r = simulate(c, reqs([0.0, 0.5, 1.0, 1.5], 200, 50))
    # two 3g.40gb per H100: four replicas hold two GPUs, each replica charged half a GPU
    assert r.invariants["capacity_x_time_gpu_hours"] == pytest.approx(r.gpu_hours)
    assert r.invariants["peak_device_used_milli"] == 1000
    with pytest.raises(UserError, match="short by"):
        simulate(ServingConfig(MODEL, GPU, "bf16", mig_profile="1g.10gb"), reqs([0.0], 100, 10))


@pytest.mark.parametrize("mode", ["recompute", "swap"])
def test_preemption_modes_keep_every_request_once(mode):
    b = Batching(kind="continuous", gpu_memory_utilization=0.3, preemption=mode)
    c = ServingConfig("llama-2-7b", "A100-80GB", batching=b, price_usd_per_gpu_hour=2.0)
    r = simulate(c, reqs(np.linspace(0, 1, 80), 1000, 1500))
    assert r.preemptions > 0 and (r.swaps > 0) == (mode == "swap")
    assert r.serving_invariants["served_exactly_once"] and r.serving_invariants["kv_never_overcommitted"]
    assert r.invariants["ok"]
