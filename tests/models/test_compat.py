"""Compatibility rules on stacks whose answer the sources state directly (NVIDIA CUDA
Compatibility, the toolkit/driver table, PyTorch's release matrix)."""

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.models.compat import Stack, check, safe_upgrades

DAY = dt.date(2026, 11, 29)


def rules(stack):
    return {f.rule: f.verdict for f in check(stack, DAY).findings}


def test_cuda_12_4_on_a_535_driver_runs_under_minor_version_compatibility():
    # CUDA 12.4.0 shipped with 550.54.14; the 12.x minor-version floor is 525 (S2, S3)
    r = rules(Stack("H100", "535.104.05", "12.4"))
    assert r["minor-version"] == "warn"
    assert "driver-floor" not in r and "forward-compat" not in r


def test_a_driver_at_the_toolkits_own_driver_has_full_features():
    assert rules(Stack("H100", "550.54.14", "12.4"))["driver-floor"] == "ok"


def test_cuda_13_below_the_580_floor_is_refused():
    rep = check(Stack("A100", "570.86.10", "13.0"), DAY)
    assert rep.verdict == "refuse"
    f = next(f for f in rep.findings if f.rule == "forward-compat")
    assert "cuda-compat" in f.fix  # A100 is a data-center GPU: forward compatibility is the way out


def test_consumer_cards_get_no_forward_compatibility_fix():
    f = next(
        f
        for f in check(Stack("RTX 4090", "535.104.05", "13.0", consumer=True), DAY).findings
        if f.rule == "forward-compat"
    )
    assert "cuda-compat" not in f.fix


def test_volta_is_dropped_by_cuda_13_and_kepler_by_12():
    assert rules(Stack("V100", "580.65.06", "13.0"))["arch-dropped"] == "refuse"
    assert rules(Stack("K80", "535.104.05", "12.0"))["arch-dropped"] == "refuse"
    assert rules(Stack("V100", "580.65.06", "12.8"))["arch-min-cuda"] == "ok"


def test_hopper_needs_cuda_11_8():
    assert rules(Stack("H100", "535.104.05", "11.7"))["arch-min-cuda"] == "refuse"


def test_torch_wheel_must_exist_for_the_cuda():
    # PyTorch 2.5 ships cu118, cu121, cu124 (RELEASE.md)
    rep = check(Stack("H100", "550.54.14", "12.6", "2.5.1"), DAY)
    assert rep.verdict == "refuse"
    assert any(f.rule == "torch-wheel" and "cu124" in f.message for f in rep.findings)


def test_torch_arch_list_refuses_a_gpu_the_build_does_not_compile():
    # the 2.8 CUDA 12.8 wheel compiles 7.5 .. 12.0: Volta (7.0) has no kernel image
    assert rules(Stack("V100", "580.65.06", "12.8", "2.8"))["torch-arch"] == "refuse"
    assert rules(Stack("H100", "580.65.06", "12.8", "2.8"))["torch-arch"] == "ok"


def test_eol_branch_warns_by_date():
    assert rules(Stack("H100", "535.104.05", "12.2"))["branch-eol"] == "warn"  # R535 EOL 2026-06
    assert {f.rule: f.verdict for f in check(Stack("H100", "535.104.05", "12.2"), dt.date(2025, 1, 1)).findings}[
        "branch-eol"
    ] == "ok"


def test_safe_upgrades_are_exactly_the_unrefused_wheels():
    rows = safe_upgrades(Stack("A100", "535.104.05"), DAY)
    assert rows and all(not r["wheel"].startswith("cu13") for r in rows)  # 13.x needs >= 580
    assert all(check(Stack("A100", "535.104.05", None, r["torch"]), DAY).verdict != "refuse" for r in rows[:3])


@pytest.mark.parametrize(
    "stack",
    [
        Stack("H1000", "535.1", "12.4"),
        Stack("H100", "five", "12.4"),
        Stack("H100", "535.1", "99.9"),
        Stack("H100", "535.1", None, "0.1"),
        Stack("H100", "12", "12.4"),
    ],
)
def test_bad_input_is_a_user_error(stack):
    with pytest.raises(UserError):
        check(stack, DAY)


@given(st.text(max_size=20))
def test_any_driver_text_is_a_result_or_a_user_error(text):
    with contextlib.suppress(UserError):
        check(Stack("H100", text, "12.4"), DAY)


def test_a_driver_older_than_the_architecture_is_refused_whatever_the_cuda():
    # Blackwell's first CUDA (12.8) shipped with 570.86.10 (S2): R535 does not know a B200, and
    # minor-version compatibility (which lets CUDA 12.8 run on >= 525) does not change that
    assert rules(Stack("B200", "535.104.05", "12.8"))["arch-min-driver"] == "refuse"
    assert check(Stack("B200", "535.104.05", "12.8"), DAY).verdict == "refuse"
    assert "arch-min-driver" not in rules(Stack("B200", "570.86.10", "12.8"))
    # Hopper: CUDA 11.8 -> 520.61.05, the driver NVIDIA AI Enterprise 2.3 shipped H100 support with
    assert rules(Stack("H100", "515.65.01", "11.7"))["arch-min-driver"] == "refuse"
    assert "arch-min-driver" not in rules(Stack("H100", "520.61.05", "11.8"))
    # an architecture older than the toolkit table (Volta: CUDA 9.0) is not judged by this rule
    assert "arch-min-driver" not in rules(Stack("V100", "450.80.02", "11.0"))
