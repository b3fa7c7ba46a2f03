"""Version-labelled replicas and weighted routing in the serving run, and a rollout driven inside it."""

import hashlib
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from gpuinfra.errors import UserError
from gpuinfra.sim import serving as sv
from gpuinfra.sim.rollout import FAILURES, RolloutConfig, Signals, Strategy, simulate_serving_rollout

# ------------------------------------------------------------------------------------------------
# Without versions nothing changes

PLAIN = {
    "cont": (lambda: (sv.ServingConfig(replicas=2), sv.make_requests(1, 8.0, 60, 1000, "lognormal:250:0.8"))),
    "chunk_fail": lambda: (
        sv.ServingConfig(replicas=3, batching=sv.Batching("chunked"), fail_at=((20.0, 1),)),
        sv.make_requests(2, 10.0, 60, 800, 200),
    ),
    "dyn": lambda: (
        sv.ServingConfig(batching=sv.Batching("dynamic", max_queue_delay_s=0.01)),
        sv.make_requests(3, 4.0, 60, 500, 100),
    ),
    "hpa": lambda: (
        sv.ServingConfig(autoscaler=sv.Autoscaler("hpa", target=3.0)),
        sv.make_requests(4, 10.0, 120, 500, 200),
    ),
}
GOLDEN = {
    "chunk_fail": "9b763ea9537c53abe4a2c017b870d18051f3545720ee350d9c4c0ae7ad4b0986",
    "cont": "31c241185e4351f4b956102898afa7e732e5b0deb09787d3dda2b8152a05f704",
    "dyn": "dbfd5d443a7f6b9ba254d3cf830b7ad7bf5a08859169c811351c81e9c0ee2fe0",
    "hpa": "1028af480d600d617846c0f96e80f287a73b82db4b15402e3432819ab37d0182",
}
"""sha256 of each run's ``as_dict()`` JSON, recorded at c7b5ab1, before versions existed. Re-record only
for an intended change to the serving model itself (models/serving, the step scheduler)."""


def _digest(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_no_versions_same_bytes_as_before_versions_existed(name):
    cfg, reqs = PLAIN[name]()
    assert _digest(sv.ServingRun(cfg, reqs, 5).run().as_dict()) == GOLDEN[name]


@pytest.mark.parametrize("name", ["cont", "chunk_fail"])
def test_one_good_version_is_the_plain_run(name):
    """One version with no failure routes every request exactly as the plain least-outstanding router."""
    cfg, reqs = PLAIN[name]()
    plain = sv.ServingRun(cfg, reqs, 5).run(keep_requests=True)
    one = sv.ServingRun(replace(cfg, versions=(sv.Version("v1"),)), reqs, 5).run(keep_requests=True)
    for k in ("ttft_s", "tpot_s", "e2e_s", "gpu_hours", "output_tokens", "retried", "preemptions"):
        assert getattr(one, k) == getattr(plain, k)
    assert one.subsystems["versions"]["by_version"]["v1"]["requests"] == plain.completed


# ------------------------------------------------------------------------------------------------
# Weighted routing and a bad version's behaviour in the run


def _two(weights, new=None, n_each=2, rate=8.0, seed=3, horizon=300.0):
    cfg = sv.ServingConfig(
        replicas=2 * n_each,
        versions=(sv.Version("old"), new or sv.Version("new")),
        initial_versions=("old",) * n_each + ("new",) * n_each,
    )
    reqs = sv.make_requests(seed, rate, horizon, 500, "lognormal:250:0.8")
    run = sv.ServingRun(cfg, reqs, seed)
    run.set_weights(weights)
    return run, run.run()


def test_weighted_routing_binomial():
    """Weights 0.9/0.1, every replica ready all the time: the canary's share of N requests is
    Binomial(N, 0.1); within 4 standard deviations (a 6e-5 two-sided miss probability)."""
    run, res = _two({"old": 0.9, "new": 0.1})
    n = res.requests
    k = run.routed_to["new"]
    assert run.fallbacks == 0 and run.routed_to["old"] + k == n
    assert abs(k - 0.1 * n) <= 4 * math.sqrt(n * 0.1 * 0.9)
    assert res.serving_invariants["served_exactly_once"] and res.invariants["ok"]


def test_weight_zero_gets_nothing_and_all_weight_gets_all():
    run, _ = _two({"old": 1.0, "new": 0.0})
    assert run.routed_to["new"] == 0
    run, res = _two({"new": 1.0})
    assert run.routed_to["new"] == res.requests


def test_length_factor_3_triples_the_bad_versions_output():
    """Every answer of the new version wrong with length factor 3: each of its requests generates
    exactly 3 x the length drawn for it, so its mean output is 3 x the drawn mean of its requests,
    and ~3 x the old version's (same distribution, independent draws)."""
    run, res = _two({"old": 0.5, "new": 0.5}, new=sv.Version("new", bad_fraction=1.0, length_factor=3.0))
    st = res.subsystems["versions"]["by_version"]
    ids = [i for i in range(res.requests) if run.ver_of[i] == "new"]
    assert st["new"]["mean_output_tokens"] == pytest.approx(3 * np.mean([run.O0[i] for i in ids]))
    ratio = st["new"]["mean_output_tokens"] / st["old"]["mean_output_tokens"]
    assert 2.7 < ratio < 3.3  # 1200 requests each at cv 0.8: the ratio's sd is ~3 x 0.033
    assert st["new"]["wrong"] == st["new"]["requests"]
    assert st["new"]["e2e_s"]["p50"] > st["old"]["e2e_s"]["p50"]  # three times the decode steps


def test_bad_weights_refused():
    run, _ = _two({"old": 1.0})
    with pytest.raises(UserError):
        run.set_weights({"nope": 1.0})
    with pytest.raises(UserError):
        run.set_weights({"old": 0.0, "new": 0.0})


# ------------------------------------------------------------------------------------------------
# A rollout inside the serving run

N, RATE, H, BAKE = 3, 10.0, 1500.0, 300.0


def rollout(kind, failure, seed=1):
    cfg = RolloutConfig(
        replicas=N, rate_rps=RATE, start_s=200.0, horizon_s=H, strategy=Strategy(kind, bake_s=BAKE),
        failure=FAILURES[failure],
    )  # fmt: skip
    reqs = sv.make_requests(seed, RATE, H, 1000, f"lognormal:{cfg.out_mean}:{cfg.out_cv}")
    return simulate_serving_rollout(cfg, sv.ServingConfig(), reqs, seed)


def test_canary_rolls_back_a_bad_change_counted_from_the_run():
    r = rollout("canary", "tokenizer")
    s, new = r.summary, r.by_version["new"]
    assert s["phase"] == "rolled-back" and s["detected_by"] is not None
    assert s["peak_gpus"] == N + 1
    # what the controller counted is what the serving run completed on the new version
    assert s["requests"]["new"] == new["requests"] > 0
    assert s["requests"]["wrong"] == new["wrong"] > 0
    assert new["routed"] == new["requests"]  # nothing of the canary lost or retried
    assert r.serving.serving_invariants["served_exactly_once"] and r.serving.invariants["ok"]


def test_canary_good_release_closed_form():
    """Good release: promoted after the bake, then one replica at a time: cold + bake + (N-1) x cold,
    with the serving model's cold start."""
    r = rollout("canary", "none")
    cold = r.serving.cold_start_s["total_s"]
    assert r.summary["phase"] == "rolled-out" and r.summary["detected_s"] is None
    assert r.summary["rollout_duration_s"] == pytest.approx(cold + BAKE + (N - 1) * cold)
    assert r.by_version["new"]["wrong"] == 0


@pytest.mark.parametrize("kind", ["rolling", "bluegreen", "recreate"])
def test_other_strategies_run_in_the_serving_run(kind):
    r = rollout(kind, "tokenizer")
    assert r.summary["detected_s"] is not None and r.summary["phase"] == "rolled-back"
    assert r.summary["peak_gpus"] == {"rolling": N + 1, "bluegreen": 2 * N, "recreate": N}[kind]
    assert r.serving.serving_invariants["served_exactly_once"] and r.serving.invariants["ok"]


def test_serving_rollout_same_seed_same_bytes():
    a, b, c = rollout("canary", "version", 2), rollout("canary", "version", 2), rollout("canary", "version", 3)
    assert json.dumps(a.as_dict(), default=str) == json.dumps(b.as_dict(), default=str) and a.series == b.series
    assert a.series != c.series


def test_recreate_gap_burns_the_latency_budget_of_a_good_release():
    # Recreate stops every old replica, so requests wait in front for the cold start (~51 s here):
    # about RATE x cold = 500 of them get a TTFT above 2 s, against ~2,700 requests in the hour and
    # ~3,000 in 5 min around the switch -- a slow share of ~17-18 %, above 14.4 x (1 - 0.99) = 14.4 %
    # in both windows. The latency alert fires on a *good* release and the automated rollback pays
    # a second gap; with a looser objective (burn threshold above 100 %) nothing fires.
    r = rollout("recreate", "none")
    assert r.summary["detected_by"] == "latency budget burn" and r.summary["phase"] == "rolled-back"
    assert r.by_version["new"]["wrong"] == 0
    cfg = RolloutConfig(
        replicas=N, rate_rps=RATE, start_s=200.0, horizon_s=H, strategy=Strategy("recreate", bake_s=BAKE),
        signals=Signals(latency_slo=0.9),
    )  # fmt: skip
    reqs = sv.make_requests(1, RATE, H, 1000, f"lognormal:{cfg.out_mean}:{cfg.out_cv}")
    loose = simulate_serving_rollout(cfg, sv.ServingConfig(), reqs, 1)
    assert loose.summary["detected_by"] is None and loose.summary["phase"] == "rolled-out"


@pytest.mark.parametrize("kind", ["rolling", "canary", "bluegreen"])
def test_strategies_without_a_gap_keep_the_latency_budget(kind):
    r = rollout(kind, "none")
    assert r.summary["detected_by"] is None and r.summary["phase"] == "rolled-out"
