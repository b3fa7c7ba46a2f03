"""CPU models and history, transformer-layer presets, CPU-GPU feeding and preemption cost."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuinfra.catalog.cpus import cpu_history, cpu_model, cpu_models
from gpuinfra.errors import UserError
from gpuinfra.models import roofline as rl
from gpuinfra.models.feeding import HOST_MEMCPY_BYTES_PER_S, Loop, pcie_bytes_per_s, step, sweep_workers
from gpuinfra.models.preempt_cost import GpuJob, preemption_cost


def test_cpu_peaks_are_cores_clock_and_simd():
    epyc = cpu_model("EPYC-9654")
    assert epyc.fp32_flops == pytest.approx(96 * 2.4e9 * 32)
    assert epyc.mem_bw_bytes_per_s == pytest.approx(12 * 4.8e9 * 8)  # 12 channels of DDR5-4800
    spr = cpu_model("xeon-8480+")
    assert spr.bf16_flops == pytest.approx(56 * 2.0e9 * 1024)  # AMX
    assert all(m.evidence == "U" and m.source for m in cpu_models().values())
    with pytest.raises(UserError, match="unknown CPU"):
        cpu_model("Z80")


def test_roofline_on_a_cpu_and_a_gpu_by_hand():
    g = rl.gemm(4096, 4096, 4096)
    e = rl.estimate(g, "EPYC-9654", "fp32")
    assert e.bound == "compute" and e.time_s == pytest.approx(g.flops / (96 * 2.4e9 * 32) + rl.CPU_OVERHEAD_S)
    v = rl.estimate(rl.gemm(1, 8192, 8192), "EPYC-9654", "fp32")
    assert v.bound == "memory"
    h = rl.estimate(g, "H100-SXM", "bf16")
    assert e.time_s / h.time_s > 50  # the same GEMM: two orders of magnitude


def test_transformer_layer_preset():
    ops = rl.transformer_layer(4096, 4096, 16384, 32, 2048)
    gemm_flops = 2 * 4096 * (3 * 4096 * 4096 + 4096 * 4096 + 2 * 4096 * 16384)
    assert sum(o.flops for o in ops if o.name.startswith("gemm")) == pytest.approx(gemm_flops)
    bounds = {o.name.split()[0]: rl.estimate(o, "H100-SXM").bound for o in ops}
    assert bounds["gemm"] == "compute" and bounds["elementwise"] == "memory"
    bwd = rl.transformer_layer(4096, 4096, 16384, 32, 2048, backward=True)
    assert sum(o.flops for o in bwd) == pytest.approx(2 * sum(o.flops for o in ops))


def test_cpu_history_shows_the_clock_wall():
    h = cpu_history()
    assert [x.year for x in h] == sorted(x.year for x in h)
    y2004 = next(x for x in h if x.year == 2004)
    later = [x for x in h if x.year > 2004]
    assert max(x.clock_mhz for x in later) < 1.1 * y2004.clock_mhz  # clocks stopped at ~4 GHz
    assert max(x.chip_peak for x in later) > 100 * y2004.chip_peak  # parallel peak kept growing
    assert max(x.cores for x in h if x.year <= 2004) == 1 and h[-1].cores > 50


def test_feeding_bound_stage_moves_with_workers():
    loop = Loop(workers=1)
    s1 = step(loop)
    assert s1.bound_by.startswith("data loading") and s1.gpu_idle_fraction > 0.5
    assert s1.load_s == pytest.approx(256 * 4e-3 / 1)
    rows = sweep_workers(loop, [1, 2, 4, 8, 16, 64])
    idle = [r["gpu_idle_fraction"] for r in rows]
    assert idle == sorted(idle, reverse=True) and idle[-1] == 0.0
    assert rows[-1]["load_s"] == rows[-2]["load_s"] * 16 / 32  # capped at 32 cores, not 64 workers


def test_pageable_memory_costs_a_staging_copy():
    loop = Loop(pinned=True, batch=64)
    pinned = step(loop)
    pageable = step(replace(loop, pinned=False))
    nbytes = 64 * loop.bytes_per_sample
    assert pinned.copy_s == pytest.approx(nbytes / pcie_bytes_per_s("A100-80GB"))
    assert pageable.copy_s == pytest.approx(pinned.copy_s + nbytes / HOST_MEMCPY_BYTES_PER_S)


def test_small_batches_are_launch_bound():
    s = step(Loop(batch=1, workers=32))
    assert s.bound_by.startswith("host thread") and s.gpu_idle_fraction > 0
    no_prefetch = step(Loop(batch=256, workers=32, prefetch=False))
    assert no_prefetch.step_s == pytest.approx(no_prefetch.load_s + no_prefetch.copy_s + no_prefetch.compute_s)


def test_preemption_cost():
    c = preemption_cost(GpuJob(7e9, 8, checkpoint_interval_s=3600))
    assert c.state_bytes == pytest.approx(112e9)
    assert c.lost_work_s == 1800 and c.save_s == 0
    assert c.restart_s == pytest.approx(60 + 112e9 / 10e9 + 120)
    assert c.gpu_hours == pytest.approx(c.total_s * 8 / 3600)
    planned = preemption_cost(GpuJob(7e9, 8, planned=True))
    assert planned.lost_work_s == 0 and planned.save_s == pytest.approx(112e9 / 10e9)
    assert c.cpu_pause_s == 0.0
    assert preemption_cost(GpuJob(70e9, 64)).gpu_hours > c.gpu_hours
