import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.roofline import attention, elementwise, embedding, estimate, gemm


def test_gemm_on_h100_by_hand():
    op = gemm(4096, 4096, 4096, "bf16")
    assert op.flops == 2 * 4096**3
    assert op.bytes == 2 * 3 * 4096**2
    e = estimate(op, "H100", "bf16", launch_s=0)
    # 1.374e11 FLOP / 989e12 FLOP/s = 139 us; 1.0e8 B / 3.35e12 B/s = 30 us -> compute-bound
    assert e.compute_s == pytest.approx(2 * 4096**3 / 989e12)
    assert e.memory_s == pytest.approx(6 * 4096**2 / 3.35e12)
    assert e.bound == "compute" and e.time_s == pytest.approx(e.compute_s)
    assert e.ridge == pytest.approx(989e12 / 3.35e12)  # ~295 FLOP per byte


def test_elementwise_and_embedding_are_memory_bound_everywhere():
    for dev in ("T4", "A100-80GB", "H100", "B200"):
        prec = "fp16"
        for op in (elementwise(1 << 26, "fp16"), embedding(8192, 4096, "fp16")):
            e = estimate(op, dev, prec)
            assert e.bound == "memory"
            assert e.time_s == pytest.approx(op.bytes / e.mem_bw + 5e-6)


def test_small_gemm_is_launch_bound_and_intensity_decides():
    tiny = estimate(gemm(16, 16, 16), "H100")
    assert tiny.time_s == pytest.approx(5e-6, rel=0.01)  # the launch dominates a tiny kernel
    skinny = estimate(gemm(1, 8192, 8192), "H100")  # a decode-step GEMV: intensity ~1
    assert skinny.bound == "memory" and skinny.op.intensity < 2
    long = estimate(attention(8, 32, 4096, 128), "H100")
    assert long.bound == "compute"


def test_precision_rules_from_the_catalog():
    with pytest.raises(UserError, match="no BF16"):
        estimate(gemm(1024, 1024, 1024), "V100-32GB", "bf16")
    fp16 = estimate(gemm(8192, 8192, 8192, "fp16"), "V100-32GB", "fp16", launch_s=0)
    assert fp16.peak_flops == 125e12
    with pytest.raises(UserError, match="opaque"):
        estimate(gemm(8, 8, 8), "G2")
    with pytest.raises(UserError, match="unverified"):
        estimate(gemm(8, 8, 8), "A10G", "bf16")
