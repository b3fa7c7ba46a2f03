"""Roofline: how long an operation takes on a device, and what bounds it.

An operation of F floating-point operations that moves B bytes to and from device memory takes

    t = max(F / peak_flops(precision), B / memory_bandwidth) + launch_overhead

(Williams, Waterman, Patterson, "Roofline", CACM 2009). Its arithmetic intensity I = F / B
(FLOP per byte) against the device's ridge point peak / bandwidth says which term wins:
below the ridge an operation is memory-bound, above it compute-bound. Peaks and bandwidths come
from the GPU catalog (dense tensor-core FP16/BF16, and FP32 without tensor cores).

Assumptions stated where they act: operands are read once and results written once (no cache
reuse beyond that, no re-reads), which is the usual lower bound on bytes; the launch overhead
defaults to 5 microseconds per kernel, a commonly quoted order of magnitude for CUDA launches,
not a measurement here.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError

LAUNCH_OVERHEAD_S = 5e-6
BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("inf")


@dataclass(frozen=True, slots=True)
class Estimate:
    op: Op
    device: str
    precision: str
    peak_flops: float
    mem_bw: float
    compute_s: float
    memory_s: float
    time_s: float
    bound: str
    """'compute' or 'memory'"""
    ridge: float
    achieved_flops: float


def gemm(m: int, n: int, k: int, dtype: str = "bf16") -> Op:
    """C[m,n] = A[m,k] @ B[k,n]: 2mnk FLOPs; A, B read and C written once."""
    b = BYTES[dtype]
    return Op(f"gemm {m}x{n}x{k} {dtype}", 2.0 * m * n * k, b * (m * k + k * n + m * n))


def elementwise(n: int, dtype: str = "bf16", flops_per_element: float = 1.0, operands: int = 2) -> Op:
    """y = f(x1..) over n elements: ``operands`` inputs read and one output written."""
    return Op(f"elementwise {n} {dtype}", flops_per_element * n, BYTES[dtype] * n * (operands + 1))


def embedding(tokens: int, dim: int, dtype: str = "bf16") -> Op:
    """Gather ``tokens`` rows of width ``dim``: no arithmetic, rows read and written."""
    return Op(f"embedding {tokens}x{dim} {dtype}", 0.0, 2.0 * BYTES[dtype] * tokens * dim)


def attention(batch: int, heads: int, seq: int, head_dim: int, dtype: str = "bf16") -> Op:
    """Fused attention (FlashAttention-style): QK^T and PV, 4 b h s^2 d FLOPs; Q, K, V read and O
    written once (the s x s scores never reach memory)."""
    return Op(
        f"attention b{batch} h{heads} s{seq} d{head_dim} {dtype}",
        4.0 * batch * heads * seq * seq * head_dim,
        BYTES[dtype] * 4.0 * batch * heads * seq * head_dim,
    )


CPU_OVERHEAD_S = 2e-6
"""Start and join of a parallel region on a CPU (a few microseconds for an OpenMP-style fork/join):
an assumption, stated, not a measurement."""


def peak(m, precision: str) -> float:
    from gpuinfra.catalog.cpus import CpuModel

    if isinstance(m, CpuModel):
        if precision in ("bf16", "fp16"):
            return m.bf16_flops
        if precision == "fp32":
            return m.fp32_flops
        raise UserError(f"precision '{precision}' has no CPU peak", expected="bf16, fp16 or fp32")
    if m.opaque:
        raise UserError(f"{m.name} is an opaque model with no specs", expected="a disclosed GPU model")
    if precision in ("bf16", "fp16"):
        if precision == "bf16" and m.bf16 is False:
            raise UserError(f"{m.name} has no BF16 support", fix="use fp16 or fp32")
        if m.fp16_tensor_dense_flops is None:
            raise UserError(f"{m.name}: tensor FLOP/s not in the catalog (unverified)", fix="use fp32")
        return m.fp16_tensor_dense_flops
    if precision == "fp32":
        return float(m.fp32_flops or 0.0)
    raise UserError(f"precision '{precision}' has no peak in the catalog", expected="bf16, fp16 or fp32")


def device_model(device: str):
    """A GPU from the GPU catalog or a CPU from the CPU catalog."""
    from gpuinfra.catalog.cpus import cpu_model, is_cpu

    return cpu_model(device) if is_cpu(device) else gpu_model(device)


def estimate(op: Op, device: str, precision: str = "bf16", launch_s: float | None = None) -> Estimate:
    """Roofline time of one operation on one device: max(FLOPs / peak, bytes / bandwidth) + launch.

    ``device`` is a catalog GPU or CPU name; ``precision`` selects the peak (dense TFLOP/s from
    the datasheet; CPUs from cores x clock x FLOP/cycle). ``launch_s`` defaults to the kernel
    launch overhead (GPU) or a call overhead (CPU), both stated in this module. Returns an
    :class:`Estimate` (seconds; the bound: compute or memory; arithmetic intensity in FLOP/byte
    against the device's ridge point). Raises ``UserError`` for an unknown device or a precision
    the device does not support.
    """
    from gpuinfra.catalog.cpus import CpuModel

    m = device_model(device)
    if launch_s is None:
        launch_s = CPU_OVERHEAD_S if isinstance(m, CpuModel) else LAUNCH_OVERHEAD_S
    p = peak(m, precision)
    bw = float(m.mem_bw_bytes_per_s or 0.0)
    compute_s = op.flops / p if op.flops else 0.0
    memory_s = op.bytes / bw if op.bytes else 0.0
    t = max(compute_s, memory_s) + launch_s
    return Estimate(
        op,
        m.name,
        precision,
        p,
        bw,
        compute_s,
        memory_s,
        t,
        "compute" if compute_s >= memory_s else "memory",
        p / bw,
        op.flops / t if t else 0.0,
    )


def auto_precision(device: str) -> str:
    """The precision a framework would pick for mixed-precision work on ``device``: bf16 where the
    catalog says the device has it (CPUs: their BF16 peak), else fp16 on tensor cores (e.g. T4,
    Turing, has FP16 but no BF16), else fp32 where no tensor-core peak is in the catalog."""
    from gpuinfra.catalog.cpus import CpuModel

    m = device_model(device)
    if isinstance(m, CpuModel) or m.opaque:
        return "bf16"
    if m.fp16_tensor_dense_flops is None:
        return "fp32"
    return "fp16" if m.bf16 is False else "bf16"


def transformer_layer(
    tokens: int, hidden: int, ffn: int, heads: int, seq: int, dtype: str = "bf16", backward: bool = False
) -> list[Op]:
    """One decoder layer's operations for ``tokens`` tokens (batch x seq): QKV, fused causal
    attention, output projection, MLP (GELU width ``ffn``), norms and residuals. Backward =
    every operation twice (input and weight gradients) [assumption]."""
    b = max(tokens // seq, 1)
    att = attention(b, heads, seq, hidden // heads, dtype)
    ops = [
        gemm(tokens, 3 * hidden, hidden, dtype),
        Op(att.name + " causal", att.flops / 2, att.bytes),
        gemm(tokens, hidden, hidden, dtype),
        gemm(tokens, ffn, hidden, dtype),
        gemm(tokens, hidden, ffn, dtype),
        elementwise(tokens * hidden, dtype, flops_per_element=5, operands=1),
        elementwise(tokens * hidden, dtype, flops_per_element=5, operands=1),
        elementwise(tokens * hidden, dtype, operands=2),
        elementwise(tokens * hidden, dtype, operands=2),
        elementwise(tokens * ffn, dtype, flops_per_element=8, operands=1),
    ]
    if backward:
        ops = [Op(o.name + " (grad)", 2 * o.flops, 2 * o.bytes) for o in ops]
    return ops


OP_SPEC_HELP = (
    "gemm:M,N,K | elementwise:N | embedding:TOKENS,DIM | attention:B,H,S,D | "
    "layer:TOKENS,HIDDEN,FFN,HEADS,SEQ | layer-bwd:TOKENS,HIDDEN,FFN,HEADS,SEQ"
)
MAX_OP_DIM = 2**40
"""Largest dimension an op spec accepts: beyond it FLOP counts stop being meaningful numbers."""


def parse_op(spec: str, dtype: str = "bf16", where: str = "--op") -> list[Op]:
    """Operations from an op spec (``gemm:4096,4096,4096``, ``layer:TOKENS,HIDDEN,FFN,HEADS,SEQ``, ...).

    Returns one Op, or a transformer layer's operations (forward, or forward + backward for
    ``layer-bwd``), sized for ``dtype`` (bytes per element from :data:`BYTES`).

    Raises:
        UserError: an unknown kind, the wrong number of dimensions, or a dimension not a positive
            integer up to 2**40.
    """
    kind, _, args = spec.partition(":")
    makers = {
        "gemm": (gemm, 3),
        "elementwise": (elementwise, 1),
        "embedding": (embedding, 2),
        "attention": (attention, 4),
        "layer": (transformer_layer, 5),
        "layer-bwd": (lambda *a, dtype: transformer_layer(*a, dtype=dtype, backward=True), 5),
    }
    try:
        fn, nargs = makers[kind]
        nums = [int(x) for x in args.split(",")]
        if len(nums) != nargs or any(not 0 < x <= MAX_OP_DIM for x in nums):
            raise ValueError
    except (KeyError, ValueError):
        raise UserError(
            f"bad {where} '{spec}'",
            where=where,
            expected="gemm:M,N,K, elementwise:N, embedding:TOKENS,DIM, attention:B,H,S,D "
            "or layer[-bwd]:TOKENS,HIDDEN,FFN,HEADS,SEQ (positive integers)",
        ) from None
    made = fn(*nums, dtype=dtype if dtype in BYTES else "bf16")
    return made if isinstance(made, list) else [made]
