"""Step times: closed forms of the roofline by hand, and the bad-input messages."""

from __future__ import annotations

import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.serving import CPU_STEP_OVERHEAD_S, ServingSetup, StepModel, memory_breakdown, require_fits


def test_decode_of_one_sequence_reads_the_weights_once():
    # Llama-2-7B, batch 1, bf16, A100-80GB (2039 GB/s): the linear layers are memory-bound and read
    # every layer weight once: 32 x (4096 x 12288 + 4096 x 4096 + 4096 x 22016 + 11008 x 4096) x 2 B
    sm = StepModel(ServingSetup.make("llama-2-7b", "A100-80GB"))
    layer_w = 4096 * 3 * 4096 + 4096 * 4096 + 4096 * 2 * 11008 + 11008 * 4096
    acts = 2 * (4096 + 3 * 4096 + 4096 + 4096 + 4096 + 2 * 11008 + 11008 + 4096)  # GEMM inputs and outputs, 1 token
    expect = 32 * (2 * layer_w + acts) / 2039e9
    lin, bound = sm.linear(1)
    assert bound == "memory"
    assert lin == pytest.approx(expect, rel=1e-12)


def test_decode_attention_reads_the_kv_cache():
    sm = StepModel(ServingSetup.make("llama-3-8b", "H100-SXM"))
    # 64 sequences of 1000 context tokens: 64 x 1001 tokens x 128 KiB / 3.35 TB/s (+ q/o 2 x 4096 x 2 B per token)
    t, bound = sm.attention_decode(64, 64 * 1001)
    assert bound == "memory"
    assert t == pytest.approx(32 * (64 * 1001 * 2 * 1024 * 2 + 2 * 2 * 4096 * 64) / 3350e9, rel=1e-12)


def test_prefill_attention_is_compute_bound_and_quadratic():
    sm = StepModel(ServingSetup.make("llama-3-8b", "H100-SXM"))
    t1, b1 = sm.attention_prefill(2048, 2048 * 2049 / 2, 2048)
    t2, _ = sm.attention_prefill(4096, 4096 * 4097 / 2, 4096)
    assert b1 == "compute"
    assert t1 == pytest.approx(32 * 4 * 4096 * 2048 * 2049 / 2 / 989e12)
    assert t2 / t1 == pytest.approx(4.0, rel=0.01)


def test_decode_coefficients_reproduce_step_by_step_sums():
    sm = StepModel(ServingSetup.make("llama-2-13b", "A100-80GB"))
    a, b = sm.decode_coeffs(8)
    for S in (0, 8000, 64000):
        assert a + b * S == pytest.approx(sm.time(8, 8, 0, 0, 0, 8, float(S)), rel=1e-12)


def test_overhead_and_tp_communication():
    sm1 = StepModel(ServingSetup.make("llama-3-70b", "H100-SXM", tp=4))
    b = sm1.decode_step(32, 512)
    assert b.overhead_s == CPU_STEP_OVERHEAD_S  # decode replays a CUDA graph
    assert b.communication_s > 0
    assert StepModel(ServingSetup.make("llama-3-8b", "H100-SXM")).decode_step(32, 512).communication_s == 0


def test_fp8_halves_the_weight_read_and_is_refused_on_ampere():
    bf = StepModel(ServingSetup.make("llama-3-8b", "H100-SXM", "bf16"))
    f8 = StepModel(ServingSetup.make("llama-3-8b", "H100-SXM", "fp8"))
    assert f8.linear(1)[0] < 0.51 * bf.linear(1)[0] + 1e-6
    with pytest.raises(UserError, match="no FP8"):
        ServingSetup.make("llama-3-8b", "A100-80GB", "fp8")


def test_memory_breakdown_adds_up_and_too_big_says_by_how_much():
    s = ServingSetup.make("llama-3-8b", "A100-80GB")
    m = memory_breakdown(s)
    total = m.weights_gib + m.activations_gib + m.runtime_reserve_gib + m.kv_cache_gib
    assert total == pytest.approx(m.capacity_gib)
    # KV tokens = KV bytes / 128 KiB per token (rounded down to whole 16-token blocks)
    assert m.kv_tokens == (int(m.kv_cache_gib * 2**30 // (128 * 1024)) // 16) * 16
    big = ServingSetup.make("llama-3.1-405b", "H100-SXM", tp=8)
    mb = memory_breakdown(big, min_kv_tokens=2000)
    # 405.9e9 params x 2 B / 8 GPUs = 94.5 GiB per GPU > 80 GB
    assert not mb.fits and mb.short_by_gib > 20
    with pytest.raises(UserError, match=r"short by \d+\.\d GiB per GPU"):
        require_fits(big, mb, 2000)


def test_bad_tp_and_gpu():
    with pytest.raises(UserError, match="does not divide"):
        ServingSetup.make("llama-3-8b", "H100-SXM", tp=3)
    with pytest.raises(UserError, match="Did you mean"):
        ServingSetup.make("llama-3-8b", "H100-SXMM")
