"""Utilization counters against constructed kernel streams (facts/gpu.md 5.3 definitions)."""

from __future__ import annotations

import pytest

from gpuinfra.catalog.dcgm import dcgm_fields
from gpuinfra.errors import UserError
from gpuinfra.models import roofline as rl
from gpuinfra.models.counters import Kernel, average, evaluate_monitor, kernel, sample


def test_one_sm_for_the_whole_period_reads_100_percent():
    spin = Kernel("spin", 1.0, 1 / 132, 1 / 64, 0.0, 0.0)
    (c,) = sample([(spin, 0.0)], "H100-SXM", duration_s=1.0)
    assert c.gpu_util_pct == pytest.approx(100.0)
    assert c.sm_active == pytest.approx(1 / 132)  # facts: ~0.008 on a 132-SM H100
    assert c.useful_fraction == 0.0


def test_constructed_stream_by_hand():
    a = Kernel("a", 0.25, 1.0, 0.5, 0.8, 0.1, flops=0.25 * 0.8 * 989e12)
    b = Kernel("b", 0.5, 0.5, 1.0, 0.0, 0.6)
    (c,) = sample([(a, 0.25), (b, 0.0)], "H100-SXM", duration_s=1.0)
    assert c.gpu_util_pct == pytest.approx(75.0)
    assert c.sm_active == pytest.approx(0.25 * 1.0 + 0.5 * 0.5)
    assert c.sm_occupancy == pytest.approx(0.25 * 0.5 + 0.5 * 0.5 * 1.0)
    assert c.tensor_active == pytest.approx(0.2)
    assert c.dram_active == pytest.approx(0.025 + 0.3)
    assert c.useful_fraction == pytest.approx(0.2)


def test_windows_split_kernels_that_straddle_them():
    k = Kernel("k", 0.6, 1.0, 1.0, 1.0, 0.0)
    cs = sample([(k, 0.4)], "H100-SXM", duration_s=2.0, window_s=0.5)
    assert [round(c.gpu_util_pct, 6) for c in cs] == [100.0, 20.0, 100.0, 20.0]
    assert average(cs).gpu_util_pct == pytest.approx(60.0)


def test_kernel_duration_follows_the_roofline_on_its_sms():
    full = kernel("g", "H100-SXM", 2e12, 1e9, blocks=132 * 4)
    assert full.duration_s == pytest.approx(2e12 / rl.peak(rl.gpu_model("H100-SXM"), "bf16"))
    one = kernel("g1", "H100-SXM", 2e12, 1e9, blocks=1)
    assert one.duration_s == pytest.approx(full.duration_s * 132)
    assert one.sm_fraction == pytest.approx(1 / 132) and one.tensor_active == pytest.approx(1 / 132)
    with pytest.raises(UserError):
        kernel("bad", "H100-SXM", 1, 1, blocks=0)


def test_a_utilization_only_monitor_is_misled():
    v = {x.scenario: x for x in evaluate_monitor("H100-SXM")}
    hung = v["hung collective"]
    assert hung.counters.gpu_util_pct > 99 and hung.counters.useful_fraction == 0 and hung.misled
    assert v["one-block kernel"].misled and v["one-block kernel"].counters.sm_active < 0.01
    assert not v["healthy training"].misled
    assert v["data-starved"].misled  # a running job called idle
    assert sum(x.misled for x in v.values()) >= 3


def test_counter_names_are_dcgm_exporters():
    c = average(sample([(Kernel("k", 0.5, 1.0, 1.0, 0.5, 0.5), 0.5)], "A100-80GB", 2.0))
    names = set(c.as_dcgm())
    assert names <= set(dcgm_fields())
    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"} <= names
    assert not dcgm_fields()["DCGM_FI_PROF_SM_ACTIVE"].enabled  # commented out in the exporter's default CSV
    assert sum(f.enabled for f in dcgm_fields().values()) == 26
