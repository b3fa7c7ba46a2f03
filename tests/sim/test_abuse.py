"""Abuse guardrails on the kernel: token bucket by hand, FIFO closed form, determinism, guardrails help."""

import pytest

from gpuinfra.errors import UserError
from gpuinfra.sim.abuse import AbuseConfig, Guardrails, TokenBucket, simulate_abuse


def test_token_bucket_burst_then_rate_by_hand():
    b = TokenBucket(rate=1.0, burst=5)
    # six simultaneous requests: the five in the bucket pass, the sixth gets 429 (our stated semantics)
    assert [b.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert b.take(0.5) is False  # half a token refilled
    assert b.take(1.0) is True  # one full token after 1 s
    assert b.take(100.0) and b.tokens == pytest.approx(4.0)  # never above the burst


def test_no_load_no_wait_and_all_served():
    r = simulate_abuse(AbuseConfig(abusive_keys=0, legit_keys=5, legit_rps=0.01, horizon_s=600))
    s = r.summary
    assert s["legit"]["served"] == s["legit"]["requests"] and s["legit"]["dropped"] == 0
    assert r.gpu_hours == pytest.approx(4 * 600 / 3600)  # 4 replicas held for the run
    assert r.invariants["ok"]


def test_abuse_tokens_are_exact_with_max_tokens_cap():
    r = simulate_abuse(AbuseConfig(guardrails=Guardrails(max_tokens=100), horizon_s=600))
    s = r.summary["abuse"]
    assert s["tokens"] == 100 * s["served"]
    assert r.abuse_gpu_hours == pytest.approx(s["tokens"] / 2500 / 3600)


def test_guardrails_restore_legit_service_and_cut_abuse_cost():
    none = simulate_abuse(AbuseConfig(), seed=1)
    guarded = simulate_abuse(AbuseConfig(guardrails=Guardrails(rate_rps=0.5, burst=10, max_tokens=1024)), seed=1)
    assert guarded.summary["legit_success_ratio"] >= none.summary["legit_success_ratio"]
    assert guarded.abuse_gpu_hours < none.abuse_gpu_hours
    # same seed: the same arrivals reach both runs
    assert guarded.summary["legit"]["requests"] == none.summary["legit"]["requests"]


def test_determinism():
    a, b = simulate_abuse(AbuseConfig(), seed=7), simulate_abuse(AbuseConfig(), seed=7)
    assert a.as_dict() == b.as_dict()


@pytest.mark.parametrize(
    "g", [Guardrails(rate_rps=1.0), Guardrails(burst=3), Guardrails(max_tokens=0), Guardrails(daily_token_quota=-1)]
)
def test_bad_guardrails_are_user_errors(g):
    with pytest.raises(UserError):
        simulate_abuse(AbuseConfig(guardrails=g))
