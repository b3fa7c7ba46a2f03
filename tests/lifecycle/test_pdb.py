"""PodDisruptionBudget semantics against Kubernetes' documented rules (models/pdb.py docstring)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.models.pdb import PodDisruptionBudget, scaled


def test_percent_rounds_up_as_configure_pdb_says():
    # configure-pdb "Rounding logic": 7 pods, 50 % -> ceil(3.5) = 4
    assert scaled("50%", 7) == 4
    assert scaled("10%", 1) == 1
    assert scaled("0%", 9) == 0
    assert scaled("100%", 9) == 9
    assert scaled(3, 9) == 3


def test_min_available_int_and_percent():
    pdb = PodDisruptionBudget("web", min_available=2)
    assert pdb.disruptions_allowed(expected=3, healthy=3) == 1
    assert pdb.eviction(expected=3, healthy=2) == 429  # evicting would leave 1 < 2
    pct = PodDisruptionBudget("web", min_available="50%")
    assert pct.desired_healthy(7) == 4
    assert pct.disruptions_allowed(expected=7, healthy=7) == 3


def test_max_unavailable_percent_rounds_up_too():
    # desiredHealthy = expected - ceil(maxUnavailable% x expected)
    pdb = PodDisruptionBudget("web", max_unavailable="30%")
    assert pdb.desired_healthy(10) == 7
    assert pdb.desired_healthy(5) == 3  # ceil(1.5) = 2 may be unavailable
    assert pdb.disruptions_allowed(expected=5, healthy=4) == 1


def test_blocking_budgets_and_the_zero_case():
    assert PodDisruptionBudget("a", max_unavailable=0).blocks_every_drain(4)
    assert PodDisruptionBudget("a", min_available="100%").blocks_every_drain(4)
    assert not PodDisruptionBudget("a", min_available=3).blocks_every_drain(4)
    assert PodDisruptionBudget("a", min_available=1).disruptions_allowed(expected=0, healthy=0) == 0
    with pytest.raises(UserError, match="refuses every eviction"):
        PodDisruptionBudget("a", min_available="100%").check_drainable(4)


def test_unhealthy_pod_eviction_policy():
    if_healthy = PodDisruptionBudget("s", min_available=3)
    always = PodDisruptionBudget("s", min_available=3, unhealthy_pod_eviction_policy="AlwaysAllow")
    # the app is disrupted (2 healthy < 3 desired): a not-Ready pod is protected under IfHealthyBudget
    assert if_healthy.eviction(expected=4, healthy=2, pod_ready=False) == 429
    assert always.eviction(expected=4, healthy=2, pod_ready=False) == 200
    # not disrupted: the not-Ready pod may go under both
    assert if_healthy.eviction(expected=4, healthy=3, pod_ready=False) == 200
    # a pod that is not running never consults the budget
    assert if_healthy.eviction(expected=4, healthy=0, pod_running=False) == 200


def test_bad_budgets_are_user_errors():
    with pytest.raises(UserError, match="exactly one"):
        PodDisruptionBudget("x", min_available=1, max_unavailable=1)
    with pytest.raises(UserError):
        PodDisruptionBudget("x")
    with pytest.raises(UserError):
        PodDisruptionBudget("x", min_available="150%")
    with pytest.raises(UserError):
        PodDisruptionBudget("x", min_available="half")


@given(st.integers(0, 100), st.integers(0, 10_000))
def test_scaled_is_the_integer_ceiling(pct, total):
    v = scaled(f"{pct}%", total)
    assert v * 100 >= pct * total > (v - 1) * 100 or (pct * total == 0 and v == 0)


@given(st.integers(1, 200), st.integers(0, 200), st.integers(0, 100))
def test_disruptions_allowed_never_negative_and_bounded(expected, healthy, pct):
    pdb = PodDisruptionBudget("p", max_unavailable=f"{pct}%")
    d = pdb.disruptions_allowed(expected, healthy)
    assert 0 <= d <= healthy
