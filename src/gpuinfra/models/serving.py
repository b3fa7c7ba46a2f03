"""LLM serving step times and replica memory, from first principles.

One forward step ("iteration") of a serving engine runs a batch of sequences; sequence i brings
q_i new tokens (its whole prompt or a chunk of it in prefill, 1 in decode) on top of c_i tokens
already in its KV cache. Per tensor-parallel rank (tp GPUs, Megatron sharding), per layer:

- **linear**: the GEMMs over all T = sum q_i tokens of the step: QKV (h x (H + 2K) d / tp),
  output (H d / tp x h), MLP gate+up (h x 2I / tp) and down (I / tp x h); a MoE layer reads the
  experts the step's tokens route to (expected number under uniform routing [assumption]:
  E (1 - (1 - k/E)^T)) and does k expert MLPs of FLOPs per token. Plus the LM head over the
  sequences that sample a token, and the norms/residual/activation as memory passes.
- **attention** (FlashAttention-style fused kernels, scores never in memory): prefill is
  4 (H/tp) d sum q_i (c_i + (q_i + 1)/2) FLOPs (causal) and reads K/V once; decode reads every
  decoding sequence's whole KV cache, KV_bytes_per_token/tp x sum (c_i + 1), which makes it
  memory-bound (its arithmetic intensity is about 2 H/K / bytes, far below any GPU's ridge).
- **communication**: two all-reduces of T x h activations (bf16) per layer when tp > 1, from the
  collective model on the GPU's built-in node topology (:mod:`gpuinfra.models.collectives`).
- **overhead**: CPU-side scheduling, input preparation and sampling per step,
  :data:`CPU_STEP_OVERHEAD_S`, plus a kernel launch (:data:`gpuinfra.models.roofline.LAUNCH_OVERHEAD_S`)
  per kernel in steps with a prefill; decode-only steps replay a captured CUDA graph (vLLM does
  this) and pay no per-kernel launch [assumption, stated].

Every operator's time is the roofline max(FLOPs / peak, bytes / bandwidth): a lower bound with no
efficiency fudge (``efficiency`` < 1 scales it if a user wants to). Peaks come from the GPU
catalog; FP8 is 2x the dense FP16 tensor peak on Ada, Hopper and Blackwell (NVIDIA's H100, L40S
and B200 datasheets list FP8 at twice FP16) and refused on older GPUs, which have no FP8 tensor
cores. Weights are stored in the serving precision; activations and the KV cache in bf16 unless
``kv_dtype`` says otherwise.

Memory per GPU (:func:`memory_breakdown`): weights / tp; activations of the largest step
(max_num_batched_tokens x (4 h + 2 I/tp) x 2 bytes, plus fp32 logits of the sampled rows)
[assumption]; a runtime reserve of (1 - gpu_memory_utilization) of the device (vLLM's default
utilization 0.9, facts/serving.md 1.4) for the CUDA context, NCCL buffers and allocator slack;
the KV cache gets what is left, in blocks of ``block_size`` tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from gpuinfra.catalog.gpus import GIB, GpuModel, gpu_model
from gpuinfra.catalog.llms import DTYPE_BYTES, LlmProfile, llm_model
from gpuinfra.errors import UserError
from gpuinfra.models import roofline as rl

CPU_STEP_OVERHEAD_S = 1.0e-3
"""CPU time per engine step outside the GPU kernels (scheduling, input tensors, sampling,
detokenisation) when it is not overlapped: 1 ms, an assumption of the order the vLLM v0.6 blog's
profile implies (scheduling and the API server took 62 % of a pre-0.6 step on H100, reduced by
multi-step scheduling and async output), not a measurement here."""

KERNELS_PER_LAYER = 10
"""Kernels one decoder layer launches (norms, QKV, rope, attention, o, norm, gate/up, act, down,
residuals): counted from the operator list above; used only for launch overhead."""

FP8_ARCHS = ("Ada", "Hopper", "Blackwell")
PRECISIONS = ("bf16", "fp16", "fp8")


def peak_flops(g: GpuModel, precision: str) -> float:
    """Dense tensor-core peak (FLOP/s) of ``g`` at ``precision``; UserError where it has none."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision '{precision}'", where="--precision", expected=", ".join(PRECISIONS))
    if precision == "fp8":
        if g.arch not in FP8_ARCHS:
            raise UserError(
                f"{g.name} ({g.arch}) has no FP8 tensor cores",
                where="--precision",
                expected="an Ada, Hopper or Blackwell GPU for fp8",
                fix="use --precision bf16 (or fp16) on this GPU",
            )
        return 2.0 * rl.peak(g, "fp16")
    return rl.peak(g, precision)


@dataclass(frozen=True)
class ServingSetup:
    """A model served on ``tp`` GPUs of one model at one precision."""

    model: LlmProfile
    gpu: GpuModel
    precision: str = "bf16"
    tp: int = 1
    kv_dtype: str = "bf16"
    efficiency: float = 1.0
    """Fraction of the roofline achieved (1: the roofline itself, a lower bound on time)."""
    mig: Any = None
    """A :class:`gpuinfra.models.mig.MigProfile` when the replica runs on a MIG instance: its
    compute slices / 7 of the tensor peak, memory slices / 8 of the bandwidth (the MIG user
    guide's slicing of A100/H100/H200/B200), and its own memory size."""

    @staticmethod
    def make(
        model: str | LlmProfile,
        gpu: str,
        precision: str = "bf16",
        tp: int = 1,
        kv_dtype: str | None = None,
        efficiency: float = 1.0,
        mig_profile: str | None = None,
    ) -> ServingSetup:
        m = model if isinstance(model, LlmProfile) else llm_model(model)
        g = gpu_model(gpu, where="--gpu")
        peak_flops(g, precision)  # validates
        kv = kv_dtype or ("bf16" if precision == "fp8" else precision)
        if kv not in ("bf16", "fp16", "fp8"):
            raise UserError(f"unknown KV-cache dtype '{kv}'", where="--kv-dtype", expected="bf16, fp16 or fp8")
        if tp < 1 or m.heads % tp or m.kv_heads % tp and tp % m.kv_heads:
            raise UserError(
                f"tensor parallelism {tp} does not divide {m.name}'s {m.heads} attention heads",
                where="--tp",
                expected="a divisor of the head count (1, 2, 4, 8)",
            )
        if tp > 8:
            raise UserError(f"tensor parallelism {tp} is larger than an 8-GPU node", where="--tp")
        if not 0 < efficiency <= 1:
            raise UserError("efficiency must be in (0, 1]", where="--efficiency")
        mig = None
        if mig_profile:
            from gpuinfra.models.mig import profile

            if tp != 1:
                raise UserError("a MIG instance serves with tp 1 (instances have no NVLink)", where="--tp")
            mig = profile(g.name, mig_profile)
        return ServingSetup(m, g, precision, tp, kv, efficiency, mig)

    @property
    def compute_fraction(self) -> float:
        return self.mig.compute_slices / 7 if self.mig else 1.0

    @property
    def bandwidth_fraction(self) -> float:
        return self.mig.memory_slices / 8 if self.mig else 1.0

    @property
    def device_milli(self) -> int:
        """Milli-GPU one replica's device holds: 1000, or 1000 // max_count of its MIG profile
        (so as many replicas pack on a GPU as the profile allows)."""
        return 1000 // self.mig.max_count if self.mig else 1000

    @property
    def wbytes(self) -> float:
        return DTYPE_BYTES[self.precision]

    @property
    def kv_bytes_per_token(self) -> float:
        """KV bytes per token for the whole model (all ranks)."""
        return self.model.kv_bytes_per_token(self.kv_dtype)


@dataclass(frozen=True)
class StepBreakdown:
    """Time of one step by operator class (seconds); ``total_s`` is their sum."""

    linear_s: float
    attention_prefill_s: float
    attention_decode_s: float
    lm_head_s: float
    elementwise_s: float
    communication_s: float
    overhead_s: float
    total_s: float
    tokens: int
    bound: dict[str, str] = field(default_factory=dict)

    def as_ms(self) -> dict:
        d = asdict(self)
        out = {k[:-2] + "_ms": v * 1e3 for k, v in d.items() if k.endswith("_s")}
        out["tokens"] = self.tokens
        out["bound"] = self.bound
        return out


class StepModel:
    """Step time of a :class:`ServingSetup`, cached by batch shape; the simulation's cost model.

    ``time(T, samples, pq, patt, pkv, ndec, sdec)``: T new tokens in all, ``samples`` sequences
    sampling a token, prefill tokens ``pq`` with causal attention work ``patt`` = sum q (c + (q+1)/2)
    and ``pkv`` = sum (c + q) KV tokens read, ``ndec`` decoding sequences holding ``sdec`` KV tokens
    in all (after this step's token). Seconds.
    """

    def __init__(self, s: ServingSetup) -> None:
        self.s = s
        m, g, tp = s.model, s.gpu, s.tp
        self.peak = peak_flops(g, s.precision) * s.efficiency * s.compute_fraction
        self.bw = float(g.mem_bw_bytes_per_s or 0.0) * s.efficiency * s.bandwidth_fraction
        if not self.bw:
            raise UserError(f"{g.name} has no memory bandwidth in the catalog", where="--gpu")
        self.L = m.layers
        self.hq = m.heads // tp * m.head_dim  # query width per rank
        self.kvw = max(m.kv_heads // tp, 1) * m.head_dim  # KV width per rank (replicated if tp > kv heads)
        self.kv_tok_layer = 2 * self.kvw * DTYPE_BYTES[s.kv_dtype]  # KV bytes per token per layer per rank
        self.act = 2.0  # bf16 activations
        self._lin: dict[int, tuple[float, str]] = {}
        self._comm: dict[int, float] = {}
        self._head: dict[int, float] = {}
        self._topo = None
        if tp > 1:
            from gpuinfra.models.topology import node_topology

            self._topo = node_topology(g.name, 8)
            if self._topo is None:
                raise UserError(
                    f"no built-in 8-GPU node wiring for {g.name}, so tensor parallelism cannot be costed",
                    where="--tp",
                    fix="use --tp 1 or a GPU with a built-in node (A100, H100-SXM, H200, B200, L40S, L4)",
                )

    # -- roofline ------------------------------------------------------------------------------
    def _rf(self, flops: float, nbytes: float) -> tuple[float, str]:
        c, mem = flops / self.peak, nbytes / self.bw
        return (c, "compute") if c >= mem else (mem, "memory")

    def _gemm(self, mt: int, n: int, k: int) -> tuple[float, float]:
        return 2.0 * mt * n * k, self.s.wbytes * k * n + self.act * (mt * k + mt * n)

    def linear(self, T: int) -> tuple[float, str]:
        """All layers' GEMMs for T tokens (seconds, bound)."""
        hit = self._lin.get(T)
        if hit is not None:
            return hit
        m, tp = self.s.model, self.s.tp
        h, i_tp = m.hidden, m.intermediate // tp
        f = b = 0.0
        for n, k in ((self.hq + 2 * self.kvw, h), (h, self.hq)):
            ff, bb = self._gemm(T, n, k)
            f, b = f + ff, b + bb
        if m.moe:
            E, k_ = m.experts, m.experts_per_token
            touched = E * (1.0 - (1.0 - k_ / E) ** T)
            f += k_ * T * 2.0 * 3 * h * i_tp
            b += touched * 3 * h * i_tp * self.s.wbytes + self.act * k_ * T * (2 * h + 3 * i_tp) + 2.0 * T * h * E
            f += 2.0 * T * h * E  # router
        else:
            for n, k in ((2 * i_tp, h), (h, i_tp)):
                ff, bb = self._gemm(T, n, k)
                f, b = f + ff, b + bb
        out = self._rf(f * self.L, b * self.L)
        self._lin[T] = out
        return out

    def elementwise(self, T: int) -> float:
        """Norms, residual adds, rope and the SwiGLU product as memory passes (all layers)."""
        h, i_tp = self.s.model.hidden, self.s.model.intermediate // self.s.tp
        per_layer = self.act * T * (2 * 2 * h + 2 * 3 * h + 3 * i_tp + 2 * (self.hq + self.kvw))
        return per_layer * self.L / self.bw

    def lm_head(self, samples: int) -> float:
        hit = self._head.get(samples)
        if hit is None:
            m = self.s.model
            f, b = self._gemm(samples, m.vocab // self.s.tp, m.hidden)
            hit = self._head[samples] = self._rf(f, b)[0] if samples else 0.0
        return hit

    def attention_prefill(self, pq: float, patt: float, pkv: float) -> tuple[float, str]:
        if pq <= 0:
            return 0.0, "none"
        f = 4.0 * self.hq * patt
        b = self.act * 2 * self.hq * pq + self.kv_tok_layer * pkv
        return self._rf(f * self.L, b * self.L)

    def attention_decode(self, ndec: int, sdec: float) -> tuple[float, str]:
        if ndec <= 0:
            return 0.0, "none"
        f = 4.0 * self.hq * sdec
        b = self.act * 2 * self.hq * ndec + self.kv_tok_layer * sdec
        return self._rf(f * self.L, b * self.L)

    def communication(self, T: int) -> float:
        if self.s.tp == 1 or T == 0:
            return 0.0
        hit = self._comm.get(T)
        if hit is None:
            from gpuinfra.models.collectives import Placement, collective

            size = int(self.act * T * self.s.model.hidden)
            one = collective("all_reduce", size, Placement.make(self._topo, self.s.tp), dtype="bfloat16").time_s
            hit = self._comm[T] = 2 * self.L * one
        return hit

    def overhead(self, has_prefill: bool) -> float:
        launches = KERNELS_PER_LAYER * self.L * rl.LAUNCH_OVERHEAD_S if has_prefill else 0.0
        return CPU_STEP_OVERHEAD_S + launches

    # -- a whole step --------------------------------------------------------------------------
    def breakdown(
        self, T: int, samples: int, pq: float, patt: float, pkv: float, ndec: int, sdec: float
    ) -> StepBreakdown:
        lin, lb = self.linear(T)
        ap, apb = self.attention_prefill(pq, patt, pkv)
        ad, adb = self.attention_decode(ndec, sdec)
        head = self.lm_head(samples)
        ew = self.elementwise(T)
        comm = self.communication(T)
        ov = self.overhead(pq > 0)
        tot = lin + ap + ad + head + ew + comm + ov
        return StepBreakdown(
            lin, ap, ad, head, ew, comm, ov, tot, T, {"linear": lb, "attention_prefill": apb, "attention_decode": adb}
        )

    def time(self, T: int, samples: int, pq: float, patt: float, pkv: float, ndec: int, sdec: float) -> float:
        t = self.linear(T)[0] + self.lm_head(samples) + self.elementwise(T) + self.communication(T)
        if pq > 0:
            t += self.attention_prefill(pq, patt, pkv)[0]
        if ndec > 0:
            t += self.attention_decode(ndec, sdec)[0]
        return t + self.overhead(pq > 0)

    def decode_coeffs(self, n: int) -> tuple[float, float]:
        """A decode-only step of n sequences holding S KV tokens takes a + b S seconds (exact while
        decode attention stays on one side of the ridge, which it does: its intensity is ~2 H/K/bytes)."""
        a = self.time(n, n, 0, 0, 0, n, 0.0)
        a_att = self.attention_decode(n, 0.0)[0]
        s1 = 1.0e6
        b = (self.attention_decode(n, s1)[0] - a_att) / s1
        return a, b

    def prefill_step(self, prompt: int, batch: int = 1) -> StepBreakdown:
        """``batch`` prompts of ``prompt`` tokens each, from an empty cache."""
        q = prompt
        return self.breakdown(q * batch, batch, q * batch, batch * q * (q + 1) / 2.0, q * batch, 0, 0.0)

    def decode_step(self, batch: int, context: int) -> StepBreakdown:
        """``batch`` sequences each holding ``context`` tokens produce one token each."""
        return self.breakdown(batch, batch, 0, 0, 0, batch, float(batch * (context + 1)))


@cache
def step_model(model: str, gpu: str, precision: str = "bf16", tp: int = 1, kv_dtype: str | None = None) -> StepModel:
    return StepModel(ServingSetup.make(model, gpu, precision, tp, kv_dtype))


def knee_batch(sm: StepModel, context: int = 1024, max_batch: int = 4096) -> int:
    """The decode batch size where the linear layers turn compute-bound (the roofline's knee):
    below it adding sequences is nearly free, above it step time grows with the batch."""
    for b in range(1, max_batch + 1):
        if sm.linear(b)[1] == "compute":
            return b
    return max_batch


def knee_tokens_prefill(sm: StepModel) -> int:
    """Prefill tokens per step at which a step's GEMMs become compute-bound (same test as the
    decode knee, in tokens: prefill and decode share the linear layers)."""
    return knee_batch(sm, max_batch=1 << 16)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Per-GPU memory of one replica (GiB) and the KV cache that fits."""

    capacity_gib: float
    weights_gib: float
    activations_gib: float
    runtime_reserve_gib: float
    kv_cache_gib: float
    kv_tokens: int
    """Tokens the replica's KV cache holds (all ranks together hold one copy of each token's KV)."""
    kv_blocks: int
    block_size: int
    fits: bool
    short_by_gib: float
    """How much more memory per GPU the replica would need to hold one max-length sequence (0 if it fits)."""

    def as_dict(self) -> dict:
        return asdict(self)


def memory_breakdown(
    s: ServingSetup,
    *,
    gpu_memory_utilization: float = 0.9,
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int = 256,
    block_size: int = 16,
    min_kv_tokens: int = 0,
) -> MemoryBreakdown:
    """Weights, activations, runtime reserve and KV cache per GPU of a replica (see the module doc)."""
    if not 0 < gpu_memory_utilization <= 1:
        raise UserError("gpu_memory_utilization must be in (0, 1]", where="gpu_memory_utilization")
    g, m, tp = s.gpu, s.model, s.tp
    cap = (g.memory_visible_mib / 1024 * GIB) if g.memory_visible_mib else (g.memory_gib or 0) * GIB
    if s.mig is not None:
        cap = s.mig.memory_gib * GIB
    weights = s.wbytes * m.params / tp
    act = max_num_batched_tokens * (4 * m.hidden + 2 * m.intermediate / tp) * 2.0 + max_num_seqs * m.vocab / tp * 4.0
    reserve = (1.0 - gpu_memory_utilization) * cap
    kv = cap - reserve - weights - act
    # each rank holds its KV heads of every token (a KV head is replicated when tp > KV heads)
    per_tok_gpu = 2.0 * m.layers * max(m.kv_heads // tp, 1) * m.head_dim * DTYPE_BYTES[s.kv_dtype]
    tokens = int(max(kv, 0.0) // per_tok_gpu)
    blocks = tokens // block_size
    need = max(min_kv_tokens, block_size) * per_tok_gpu
    short = max(0.0, need - kv)
    return MemoryBreakdown(
        cap / GIB,
        weights / GIB,
        act / GIB,
        reserve / GIB,
        max(kv, 0.0) / GIB,
        blocks * block_size,
        blocks,
        block_size,
        short == 0.0,
        short / GIB,
    )


def require_fits(s: ServingSetup, mem: MemoryBreakdown, max_len: int) -> None:
    """UserError saying by how much a model does not fit the GPU at this precision and tp."""
    if not mem.fits:
        where = f"{s.gpu.name} {s.mig.name}" if s.mig else s.gpu.name
        raise UserError(
            f"{s.model.name} at {s.precision} with tp={s.tp} does not fit {where}: weights "
            f"{mem.weights_gib:.1f} GiB + activations {mem.activations_gib:.1f} GiB + reserve "
            f"{mem.runtime_reserve_gib:.1f} GiB leave no room for one {max_len}-token sequence's KV cache; "
            f"short by {mem.short_by_gib:.1f} GiB per GPU",
            where="--model/--gpu",
            fix=f"raise --tp (now {s.tp}), use --precision fp8 where the GPU has it, or a larger GPU",
        )


__all__ = [
    "CPU_STEP_OVERHEAD_S",
    "MemoryBreakdown",
    "ServingSetup",
    "StepBreakdown",
    "StepModel",
    "ceil_div",
    "knee_batch",
    "memory_breakdown",
    "peak_flops",
    "require_fits",
    "step_model",
]


HOST_LINK_BYTES_PER_S = {3: 12e9, 4: 25e9, 5: 50e9}
"""Effective host-to-device copy bandwidth by PCIe generation (x16): ~80 % of the raw 16, 32, 64
GB/s per direction [assumption]; used for KV swap and weights loaded from host memory."""


def host_link_bytes_per_s(g: GpuModel) -> float:
    """Host<->device bandwidth of ``g`` (bytes/s) from its PCIe generation (Gen4 where unknown)."""
    return HOST_LINK_BYTES_PER_S.get(g.pcie_gen or 4, 25e9)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)
