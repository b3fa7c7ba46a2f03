"""Rollout and rollback on the kernel: closed forms of a good release, GPU peaks, determinism, detection."""

import pytest

from gpuinfra.errors import UserError
from gpuinfra.sim.rollout import FAILURES, RolloutConfig, Strategy, simulate_rollout

N, COLD, BAKE, H = 8, 150.0, 1800.0, 4 * 3600.0


def run(kind, failure="none", seed=0, **kw):
    cfg = RolloutConfig(
        replicas=N,
        cold_start_s=COLD,
        horizon_s=H,
        strategy=Strategy(kind, bake_s=BAKE, **kw),
        failure=FAILURES[failure],
    )
    return simulate_rollout(cfg, seed)


@pytest.mark.parametrize(
    "kind,duration,peak,extra_gpu_s",
    [
        ("rolling", N * COLD, N + 1, N * COLD),  # one surge replica for the whole rollout
        ("bluegreen", COLD + BAKE, 2 * N, N * (COLD + BAKE)),  # a second fleet until blue is released
        ("canary", COLD + BAKE + (N - 1) * COLD, N + 1, COLD + BAKE + (N - 1) * COLD),
    ],
)
def test_good_release_closed_forms(kind, duration, peak, extra_gpu_s):
    r = run(kind)
    s = r.summary
    assert s["phase"] == "rolled-out" and s["detected_s"] is None
    assert s["rollout_duration_s"] == pytest.approx(duration)
    assert s["peak_gpus"] == peak
    assert r.gpu_hours == pytest.approx((N * H + extra_gpu_s) / 3600)
    assert r.invariants["ok"]
    assert s["requests"]["wrong"] == 0


def test_recreate_refuses_traffic_during_cold_start():
    s = run("recreate").summary
    assert s["requests"]["refused"] > 0
    assert s["peak_gpus"] == N


def test_same_seed_same_bytes_and_seed_matters():
    a, b, c = run("canary", "version", seed=3), run("canary", "version", seed=3), run("canary", "version", seed=4)
    assert a.as_dict() == b.as_dict() and a.series == b.series
    assert a.series != c.series


@pytest.mark.parametrize("kind", ["rolling", "canary", "bluegreen"])
@pytest.mark.parametrize("failure", ["tokenizer", "version"])
def test_loud_failures_are_detected_and_rolled_back(kind, failure):
    s = run(kind, failure, seed=1).summary
    assert s["detected_s"] is not None and s["phase"] == "rolled-back"
    assert s["time_to_detect_s"] >= 0 and s["time_to_rollback_s"] >= 0
    assert 0 < s["requests"]["wrong"] <= s["requests"]["new"]


def test_bluegreen_and_canary_roll_back_instantly_while_old_fleet_is_held():
    for kind in ("bluegreen", "canary"):
        assert run(kind, "tokenizer", seed=2).summary["time_to_rollback_s"] == 0.0


def test_no_auto_rollback_keeps_serving_wrong_answers():
    s = run("rolling", "tokenizer", seed=1, auto_rollback=False).summary
    assert s["detected_s"] is not None and s["rollback_done_s"] is None
    assert s["requests"]["wrong_after_detect"] > 0


@pytest.mark.parametrize(
    "bad", [dict(kind="blue"), dict(canary_weight=0.0), dict(canary_weight=1.0), dict(bake_s=-1.0)]
)
def test_bad_strategy_is_user_error(bad):
    with pytest.raises(UserError):
        simulate_rollout(RolloutConfig(strategy=Strategy(**{"kind": "canary", **bad})))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gpuinfra.sim.rollout import STRATEGIES  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(STRATEGIES),
    failure=st.sampled_from(sorted(FAILURES)),
    replicas=st.integers(1, 6),
    rate=st.floats(1.0, 60.0),
    bake=st.floats(0.0, 1800.0),
    weight=st.floats(0.01, 0.9),
    seed=st.integers(0, 2**16),
)
def test_any_rollout_keeps_invariants_and_counts(kind, failure, replicas, rate, bake, weight, seed):
    cfg = RolloutConfig(
        replicas=replicas,
        rate_rps=rate,
        horizon_s=2 * 3600.0,
        strategy=Strategy(kind, canary_weight=weight, bake_s=bake),
        failure=FAILURES[failure],
    )
    r = simulate_rollout(cfg, seed)
    s, q = r.summary, r.summary["requests"]
    assert r.invariants["ok"]
    assert 0 <= q["wrong"] <= q["new"] <= q["total"] and q["refused"] <= q["total"]
    assert s["peak_gpus"] <= 2 * replicas
    if s["time_to_detect_s"] is not None:
        assert s["time_to_detect_s"] >= 0
    if failure == "none":
        assert q["wrong"] == 0
