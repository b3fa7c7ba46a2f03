"""models/train_config: hand-computed memory (ZeRO's own figures, Korthikanti's activation formula),
monotonic effects of the knobs, number formats from their bit layouts, the allocator run."""

from dataclasses import replace

import pytest

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models import train_config as tc
from gpuinfra.models.scaling import model_spec, step_time
from gpuinfra.models.topology import builtin

M = model_spec("llama2-7b")
TOPO = builtin("dgx-h100")
BASE = tc.TrainConfig(tp=2, dp=4, microbatches=4)


@pytest.mark.parametrize(
    ("zero", "gb"), [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)]
)  # ZeRO (Rajbhandari et al. 2020) figure 1: 7.5B params, N_d = 64, K = 12
def test_zero_paper_figure_1(zero, gb):
    per = sum(tc.state_bytes_per_param("bf16", zero, 64))
    assert per * 7.5e9 / 1e9 == pytest.approx(gb, abs=0.05)


def test_seven_b_bf16_adam_is_16_bytes_per_param():
    c = tc.TrainConfig(tp=1, dp=1)
    mem = tc.memory(M, TOPO.gpu, c)
    assert (mem.weights + mem.gradients + mem.optimizer) / M.params == pytest.approx(16.0)
    assert M.params == pytest.approx(6.74e9, rel=0.01)  # Llama 2 7B
    # fp32: 4 + 4 + 8 (no separate master copy); fp8: 16 + fp8 weight and transpose caches
    assert sum(tc.state_bytes_per_param("fp32", 0, 1)) == 16.0
    assert sum(tc.state_bytes_per_param("fp8", 0, 1)) == 18.0


def test_korthikanti_activation_formula_by_hand():
    c = tc.TrainConfig(seq=2048, micro_batch=1, tp=1, flash_attention=False)
    # s b h (34 + 5 a s / h) = 2048 * 4096 * (34 + 5 * 32 * 2048 / 4096) = 2048 * 4096 * 114
    assert tc.activation_bytes_per_layer(M, c) == pytest.approx(2048 * 4096 * 114)
    assert tc.activation_bytes_per_layer(M, replace(c, flash_attention=True)) == pytest.approx(2048 * 4096 * 34)
    assert tc.activation_bytes_per_layer(M, replace(c, recompute="full")) == pytest.approx(2048 * 4096 * 2)
    assert tc.activation_bytes_per_layer(M, replace(c, precision="fp32", flash_attention=True)) == pytest.approx(
        2 * 2048 * 4096 * 34
    )


def test_monotonic_knobs():
    g = TOPO.gpu
    mem = lambda **k: tc.memory(M, g, replace(BASE, **k)).total  # noqa: E731
    assert mem(tp=1, dp=8) > mem(tp=2, dp=4) > mem(tp=4, dp=2) > mem(tp=8, dp=1)
    assert mem(zero=0) > mem(zero=1) > mem(zero=2) > mem(zero=3)
    assert mem(flash_attention=False) > mem() > mem(recompute="full")
    assert mem(micro_batch=1) < mem(micro_batch=2) < mem(micro_batch=4)
    assert mem(precision="fp8") > mem(precision="bf16") == mem(precision="fp16")
    t = lambda **k: tc.step(M, TOPO, replace(BASE, **k)).step_s  # noqa: E731
    assert t(recompute="full") > t() > t(precision="fp8")
    assert t(precision="fp32") > 5 * t()
    assert t(cuda_graphs=True) < t()
    assert t(flash_attention=False) > t()


def test_step_agrees_with_the_scaling_model():
    """bf16, no ZeRO, no recompute, FlashAttention: the scaling model's step less its launch overhead,
    which scaling divides by the efficiency and this model does not (launches are not roofline work)."""
    st = tc.step(M, TOPO, BASE)
    ref = step_time(M, TOPO, BASE.parallelism())
    assert st.step_s + st.launch_s == pytest.approx(ref.step_s, rel=1e-9)
    assert 0 < st.mfu < 1


def test_fp8_needs_fp8_tensor_cores():
    with pytest.raises(UserError, match="FP8"):
        tc.step(M, builtin("dgx-a100"), replace(BASE, precision="fp8"))
    assert tc.gemm_peak(gpu_model("H100-SXM"), "fp8") == 2 * tc.gemm_peak(gpu_model("H100-SXM"), "bf16")
    with pytest.raises(UserError, match="BF16"):
        tc.gemm_peak(gpu_model("V100-16GB"), "bf16")


def test_number_formats_from_bit_layouts():
    assert tc.number_format("fp16").max_finite == 65504.0
    assert tc.number_format("fp16").min_normal == 2.0**-14
    assert tc.number_format("fp8-e4m3").max_finite == 448.0
    assert tc.number_format("fp8-e5m2").max_finite == 57344.0
    assert tc.number_format("bf16").max_finite == pytest.approx(3.3895e38, rel=1e-4)
    assert tc.number_format("fp32").max_finite == pytest.approx(3.4028235e38, rel=1e-7)
    assert tc.grad_scaler_skip_fraction(2000) == 1 / 2001
    assert tc.precision_stability("bf16")["scaling"] == "none"
    assert tc.precision_stability("fp16")["scaling"] == "dynamic loss scaling"


def test_bad_knobs_are_user_errors():
    for k in ({"zero": 4}, {"precision": "fp4"}, {"recompute": "some"}, {"pp": 3}):
        with pytest.raises(UserError):
            tc.memory(M, TOPO.gpu, replace(BASE, **k))


def test_variable_length_run_brackets_the_static_fit():
    c = replace(BASE, micro_batch=2)
    g = TOPO.gpu
    short = tc.variable_length_run(M, g, c, [1024, 2048, 4096, 2048])
    assert short.ooms == 0 and short.longest_ok == 4096
    again = tc.variable_length_run(M, g, c, [1024, 2048, 4096, 2048])
    assert again == short  # deterministic
    fit = next(s for s in range(4096, 20000, 64) if not tc.memory(M, g, c, seq=s).fits)
    far = tc.variable_length_run(M, g, c, [1024, fit + 1024])
    assert far.ooms == 1 and far.first_oom_step == 1
    padded = tc.variable_length_run(M, g, c, [1024, 1024], pad_to=fit + 1024)
    assert padded.ooms == 2


def test_expandable_segments_reach_the_static_estimate():
    """Cross-check of two models: without fragmentation (expandable segments map pages under the blocks in
    use) the caching allocator runs a step just below the static estimate's longest fitting length and
    OOMs just above it, after a history of shorter and longer steps."""
    c = replace(BASE, micro_batch=2)
    g = TOPO.gpu
    fit = next(s for s in range(4096, 20000, 8) if not tc.memory(M, g, c, seq=s).fits) - 8
    hist = [3000, 5000, 1024, fit - 256]
    ok = tc.variable_length_run(M, g, c, [*hist, fit - 256], "expandable_segments:True")
    assert ok.ooms == 0
    bad = tc.variable_length_run(M, g, c, [*hist, fit + 256], "expandable_segments:True")
    assert bad.ooms == 1 and bad.first_oom_step == len(hist)


def test_ring_all_reduce_latency_term_by_hand_across_nodes():
    """The alpha term at small p: 4 ranks, one GPU on each of 4 nodes, ring, LL. NCCL tuning.cc:
    base 6.6 us (ring LL) + 2(p-1) = 6 hops, all between nodes, x 2.7 us (network, ring LL) = 22.8 us;
    the bandwidth term of 8 bytes is 2(p-1)/p x 8 B / rate, under a nanosecond."""
    from gpuinfra.models.collectives import Placement, collective

    r = collective("all_reduce", 8, Placement.make(TOPO, 1, nodes=4), algo="ring", proto="LL")
    assert r.latency_s == pytest.approx((6.6 + 6 * 2.7) * 1e-6, rel=1e-12)
    assert r.bandwidth_s < 1e-9 and r.time_s == pytest.approx(r.latency_s + r.bandwidth_s)


def test_training_step_carries_the_dp_all_reduce_latency():
    """dp 2 with tp 8: the data-parallel group is one GPU on each of 2 nodes. Its 7B/8 x 2 bytes
    message is bandwidth-bound, so NCCL's model runs ring/Simple (the tree moves 2x the bytes at 2 nodes);
    latency by hand: base 8.4 us + 2(p-1) = 2 network hops x 14.0 us (ring Simple), x 1.4 for Simple
    across nodes on Hopper = 50.96 us."""
    c = replace(BASE, tp=8, dp=2)
    st = tc.step(M, TOPO, c)
    assert st.dp_algo == "ring/Simple"
    assert st.dp_latency_s == pytest.approx((8.4 + 2 * 14.0) * 1.4e-6, rel=1e-12)
    assert 0 < st.dp_latency_s < st.dp_comm_s
    one = tc.step(M, TOPO, replace(c, dp=1))
    assert one.dp_latency_s == 0.0 and one.dp_comm_s == 0.0 and one.dp_algo == "none"


def test_data_parallel_degree_is_bounded():
    top = tc.MAX_NODES * 8 // 2  # tp 2 on 8-GPU nodes
    tc.step(M, TOPO, replace(BASE, dp=top))  # the largest allowed runs
    with pytest.raises(UserError, match="100,001 nodes") as e:
        tc.step(M, TOPO, replace(BASE, dp=top + 1))
    assert e.value.where == "--dp" and f"--dp {top}" in e.value.fix


def test_precision_train_cli_refuses_a_million_ranks():
    from tests.clirunner import gi

    r = gi("precision", "train", "--dp", "1000000")
    msg = " ".join(r.output.split())
    assert r.returncode == 2 and "Traceback" not in r.output
    assert "--dp" in msg and "250,000 nodes" in msg and "--dp 400000 or less" in msg, msg
    r = gi("precision", "train", "--tp", "0")
    assert r.returncode == 2 and "--tp" in r.output
