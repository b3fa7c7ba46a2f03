"""A training job's configuration knobs and what each does to memory fit, step time and stability.

The knobs (the ones a researcher flips between two runs): micro-batch, sequence length, gradient
accumulation, precision (fp32 / bf16 / fp16 / fp8), parallelism (tensor, pipeline and data parallel
degrees; ZeRO / FSDP sharding stage), activation recomputation, fused attention (FlashAttention)
and CUDA graphs. Everything below is computed from formulas with their sources; the only free
parameters are ``efficiency`` (the fraction of the roofline kernels achieve) and ``overlap`` (the
fraction of backward that can hide the data-parallel all-reduce), stated assumptions as in
:mod:`gpuinfra.models.scaling`.

**Memory per GPU** (bytes):

- *Model states* per parameter (Rajbhandari et al., "ZeRO", SC'20, sec. 3.1: mixed-precision Adam
  keeps 2 (16-bit weights) + 2 (16-bit gradients) + K = 12 (fp32 master weights, momentum,
  variance) bytes, 16 in all; facts/failures-and-checkpoints.md): fp32 training keeps 4 + 4 + 8
  (the weights are the master copy); bf16 and fp16 2 + 2 + 12; fp8 (Transformer Engine on Hopper)
  the bf16 states plus a cached fp8 copy of every weight and its transpose, 1 + 1 bytes
  [assumption: TE caches both for the forward and the data-gradient GEMMs], so fp8 training does
  not shrink model states. ZeRO stage 1 shards the optimizer states over the data-parallel
  degree N_d, stage 2 also the gradients, stage 3 also the weights (ZeRO, fig. 1); PyTorch FSDP's
  ``SHARD_GRAD_OP`` is stage 2 and ``FULL_SHARD`` stage 3.
- *Activations* per layer, 16-bit (Korthikanti et al., "Reducing Activation Recomputation in
  Large Transformer Models", MLSys'23, sec. 4): s b h (34 + 5 a s / h) bytes, divided by tp with
  tensor + sequence parallelism (as in :func:`gpuinfra.models.scaling.memory_bytes`). The
  5 a s / h term is the attention scores, softmax and its dropout mask; FlashAttention
  (Dao et al. 2022) never stores them, and selective recomputation (Korthikanti sec. 5)
  recomputes them instead of storing. Full recomputation stores only each layer's input, 2 s b h
  / tp, plus one layer's activations while it is recomputed. fp32 training stores 4-byte
  activations: twice the 16-bit figure [assumption: the 1-byte dropout masks scale too, an
  upper bound]. 1F1B keeps min(pp, microbatches) micro-batches in flight on the first stage;
  the last stage keeps one plus the logits: s b V / tp values in 16 bits and their fp32 upcast
  for the loss (2 + 4 bytes) [assumption: Megatron's vocab-parallel cross-entropy in fp32].
- *Context*: the CUDA context and libraries, :data:`gpuinfra.models.memory.DEFAULT_CONTEXT_BYTES`.

Fit is against the catalog's visible memory of the GPU (``memory_visible_mib``).

**Step time**: the structure of :func:`gpuinfra.models.scaling.step_time` (1F1B pipeline, Megatron
tensor-parallel all-reduces, bucketed data-parallel all-reduce hidden behind the last
micro-batch's backward), with every operator's roofline at the precision the knob selects:
matrix multiplies at the GPU's fp32 peak (fp32: PyTorch's default disables TF32 for matmuls),
dense 16-bit tensor peak (bf16/fp16) or the fp8 peak (2x the 16-bit one on Ada, Hopper and
Blackwell, per the datasheets, :func:`gpuinfra.models.precision.compute_peak`; refused on other
GPUs); elementwise operators and attention in the activation precision (16-bit, or 32 for fp32).
Without FlashAttention the attention core is two batched GEMMs plus a softmax that writes and
reads the b x heads x s x s scores (2 bytes each: QK^T writes, softmax reads and writes, PV reads).
Recomputation adds a forward pass (full) or the attention core's forward (selective). Every kernel
pays the roofline's launch overhead; CUDA graphs replay a captured step with one launch, so the
per-kernel launch cost goes. ZeRO-3 moves 1.5x the bytes of an all-reduce (ZeRO sec. 7.2.2:
parameter all-gathers in forward and backward plus the gradient reduce-scatter); stages 1-2 move
the same volume as plain data parallel. The data-parallel all-reduce is NCCL's cost model
(:func:`gpuinfra.models.collectives.collective`, constants from NCCL ``src/graph/tuning.cc``): a
latency term (ring: 2(p-1) hops x the per-hop latency of NVLink/PCIe or the network plus a base
latency; tree: 2 log2(nodes) network hops) plus the bandwidth term 2(p-1)/p x bytes / bus rate,
the fastest algorithm and protocol chosen as NCCL does; ``dp_latency_s`` reports the latency part.
The data-parallel group is bounded: at most :data:`MAX_NODES` nodes for the whole job. Adam is
memory-bound at 28 bytes of traffic per parameter
of the shard it updates (1 / N_d of it with any ZeRO stage).

**Stability** (:func:`number_format`, :func:`grad_scaler_skip_fraction`,
:func:`variable_length_run`): the dynamic range and rounding of each number format from its bit
layout (IEEE 754; fp8 E4M3/E5M2 from the OCP 8-bit floating point specification 1.0, where E4M3
gives up infinities so its largest value is 1.75 x 2^8 = 448); fp16 needs loss scaling, and
PyTorch's ``GradScaler`` skips one step each time it grows the scale past what the gradients
allow; variable sequence lengths run through the caching-allocator model of
:mod:`gpuinfra.models.memory` to find which steps OOM.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from gpuinfra.catalog.gpus import GpuModel
from gpuinfra.errors import UserError
from gpuinfra.models import roofline as rl
from gpuinfra.models.collectives import Fabric, Placement, collective
from gpuinfra.models.memory import DEFAULT_CONTEXT_BYTES, AllocatorConfig, CachingAllocator, Gpu, OutOfMemoryError
from gpuinfra.models.precision import compute_peak
from gpuinfra.models.scaling import ModelSpec, Parallelism, _dp_placement, nccl_channels
from gpuinfra.models.topology import Topology

TRAIN_PRECISIONS = ("fp32", "bf16", "fp16", "fp8")
RECOMPUTE = ("none", "selective", "full")
GIB = 2**30


@dataclass(frozen=True)
class TrainConfig:
    """One training configuration: parallel layout, batch shape and the runtime knobs."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    micro_batch: int = 1
    microbatches: int = 1
    seq: int = 4096
    precision: str = "bf16"
    zero: int = 0
    """ZeRO stage 0-3 (FSDP SHARD_GRAD_OP = 2, FULL_SHARD = 3)."""
    recompute: str = "none"
    """Activation recomputation: none, selective (attention core) or full (every layer)."""
    flash_attention: bool = True
    cuda_graphs: bool = False
    overlap: float = 0.5
    efficiency: float = 0.5
    """Fraction of the roofline the kernels achieve [assumption, as in `gpuinfra scale`]."""

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    def parallelism(self) -> Parallelism:
        return Parallelism(
            self.tp, self.pp, self.dp, self.micro_batch, self.microbatches, self.seq, self.overlap, self.efficiency
        )

    def check(self, m: ModelSpec) -> None:
        """UserError for a knob out of range (the parallel degrees are checked by the step model)."""
        if self.precision not in TRAIN_PRECISIONS:
            raise UserError(
                f"unknown training precision '{self.precision}'",
                where="--precision",
                expected=", ".join(TRAIN_PRECISIONS),
            )
        if self.zero not in (0, 1, 2, 3):
            raise UserError(f"ZeRO stage {self.zero} does not exist", where="--zero", expected="0, 1, 2 or 3")
        if self.recompute not in RECOMPUTE:
            raise UserError(
                f"unknown recompute mode '{self.recompute}'", where="--recompute", expected=", ".join(RECOMPUTE)
            )
        for k in ("tp", "pp", "dp", "micro_batch", "microbatches", "seq"):
            if getattr(self, k) < 1:
                raise UserError(f"{k} must be at least 1", where=f"--{k.replace('_', '-')}")
        if m.layers % self.pp:
            raise UserError(f"pp {self.pp} does not divide {m.name}'s {m.layers} layers", where="--pp")


MAX_NODES = 100_000
"""Most nodes a training configuration may span (tp x pp x dp / GPUs per node), as ``gpuinfra
collective --nodes`` allows. The largest published single training job, Llama 3 405B, ran on up to
16,384 H100 GPUs = 2,048 nodes (Llama Team, "The Llama 3 Herd of Models", 2024, sec. 3.3); 100,000
eight-GPU nodes is 800,000 GPUs, about 50x that. [assumption: beyond it the fat-tree fabric of
:class:`gpuinfra.models.collectives.Fabric` (leaf/spine, uniform links, no failures) describes no
built system, so step times would be extrapolation, not a model.]"""


def check_scale(c: TrainConfig, gpus_per_node: int) -> None:
    """UserError when ``c`` needs more than :data:`MAX_NODES` nodes of ``gpus_per_node`` GPUs."""
    nodes = -(-c.gpus // max(1, gpus_per_node))
    if nodes > MAX_NODES:
        max_dp = MAX_NODES * gpus_per_node // (c.tp * c.pp)
        raise UserError(
            f"tp {c.tp} x pp {c.pp} x dp {c.dp:,} = {c.gpus:,} GPUs need {nodes:,} nodes of {gpus_per_node} GPUs",
            where="--dp",
            expected=f"at most {MAX_NODES:,} nodes (dp <= {max_dp:,} here); the largest published training "
            "job used 16,384 GPUs (Llama 3 405B)",
            fix=f"use --dp {max_dp} or less",
        )


# -- memory ---------------------------------------------------------------------------------------
STATE_BYTES = {
    # (weights, gradients, optimizer, extra) bytes per parameter; see the module docstring
    "fp32": (4.0, 4.0, 8.0, 0.0),
    "bf16": (2.0, 2.0, 12.0, 0.0),
    "fp16": (2.0, 2.0, 12.0, 0.0),
    "fp8": (2.0, 2.0, 12.0, 2.0),
}


@dataclass(frozen=True)
class MemoryBreakdown:
    """Per-GPU bytes of the most loaded pipeline stage, by kind; ``fits`` against the visible memory."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    context: float
    total: float
    capacity: float
    fits: bool

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def as_dict(self) -> dict:
        return {**asdict(self), "total_gib": self.total_gib}


def state_bytes_per_param(precision: str, zero: int, dp: int) -> tuple[float, float, float]:
    """(weights + fp8 cache, gradients, optimizer) bytes per parameter of a model-parallel shard,
    after ZeRO stage ``zero`` shards them over ``dp`` ranks (ZeRO fig. 1)."""
    if precision not in STATE_BYTES:
        raise UserError(f"unknown training precision '{precision}'", expected=", ".join(TRAIN_PRECISIONS))
    w, g, o, extra = STATE_BYTES[precision]
    return (
        (w + extra) / (dp if zero >= 3 else 1),
        g / (dp if zero >= 2 else 1),
        o / (dp if zero >= 1 else 1),
    )


def activation_bytes_per_layer(m: ModelSpec, c: TrainConfig, seq: int | None = None) -> float:
    """Stored activations of one layer and one micro-batch (Korthikanti et al. 2022, sec. 4-5)."""
    s = seq or c.seq
    sbh = s * c.micro_batch * m.hidden
    scale = 2.0 if c.precision == "fp32" else 1.0
    if c.recompute == "full":
        return scale * 2 * sbh / c.tp
    keep_scores = not c.flash_attention and c.recompute == "none"
    per = 34.0 + (5.0 * m.heads * s / m.hidden if keep_scores else 0.0)
    return scale * sbh * per / c.tp


def memory(m: ModelSpec, gpu: GpuModel, c: TrainConfig, seq: int | None = None) -> MemoryBreakdown:
    """Per-GPU memory of configuration ``c`` of model ``m`` on ``gpu`` (see the module docstring).
    ``seq`` overrides the sequence length (a variable-length batch). Raises UserError for bad knobs."""
    c.check(m)
    shard = m.params / (c.tp * c.pp)
    w, g, o = (b * shard for b in state_bytes_per_param(c.precision, c.zero, c.dp))
    layers = m.layers // c.pp
    act_l = activation_bytes_per_layer(m, c, seq)
    s = seq or c.seq
    if c.recompute == "full":  # layer inputs kept, plus one layer's full set while it is recomputed
        one = activation_bytes_per_layer(m, replace(c, recompute="none"), seq)
        first = act_l * layers * min(c.pp, c.microbatches) + one
        last_act = act_l * layers + one
    else:
        first = act_l * layers * min(c.pp, c.microbatches)
        last_act = act_l * layers
    logits = s * c.micro_batch * m.vocab / c.tp * (2 + 4)
    if c.pp == 1 or first < last_act + logits:  # the most loaded stage: the last (logits) or the first
        act, lg = (first if c.pp == 1 else last_act), logits
    else:
        act, lg = first, 0.0
    ctx = float(DEFAULT_CONTEXT_BYTES)
    total = w + g + o + act + lg + ctx
    cap = float(gpu.memory_visible_mib or (gpu.memory_gib or 0) * 1024) * 2**20
    return MemoryBreakdown(w, g, o, act, lg, ctx, total, cap, total <= cap)


# -- step time ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainStep:
    """One step: seconds by component, tokens/s, MFU against the peak of the precision in use."""

    compute_s: float
    recompute_s: float
    launch_s: float
    tp_comm_s: float
    pp_comm_s: float
    bubble_s: float
    dp_comm_s: float
    dp_exposed_s: float
    optimizer_s: float
    step_s: float
    tokens_per_s: float
    mfu: float
    peak_flops: float
    dp_latency_s: float = 0.0
    """The latency (alpha) part of ``dp_comm_s``: NCCL's per-hop and base latencies."""
    dp_algo: str = "none"
    """The algorithm/protocol NCCL's model picks for the data-parallel all-reduce (e.g. ring/Simple)."""

    def as_dict(self) -> dict:
        return asdict(self)


def _act_dtype(precision: str) -> str:
    """Activations' dtype: fp32 and fp16 keep their own; bf16 and fp8 training keep bf16."""
    return precision if precision in ("fp32", "fp16") else "bf16"


def gemm_peak(g: GpuModel, precision: str) -> float:
    """FLOP/s of a matrix multiply at ``precision``: the catalog's fp32 or dense 16-bit tensor peak
    (:func:`gpuinfra.models.roofline.peak`, which refuses bf16 on GPUs without it), or the fp8 peak
    (:func:`gpuinfra.models.precision.compute_peak`, refused without fp8 tensor cores)."""
    return compute_peak(g, "fp8") if precision == "fp8" else rl.peak(g, precision)


def _op_time(op: rl.Op, peak: float, bw: float) -> float:
    """Roofline time without the launch (counted apart so CUDA graphs can remove it)."""
    return max(op.flops / peak if op.flops else 0.0, op.bytes / bw if op.bytes else 0.0)


def layer_forward(m: ModelSpec, gpu: GpuModel, c: TrainConfig) -> tuple[float, float, int]:
    """Forward time of one layer for one micro-batch: (roofline seconds, attention-core seconds,
    kernels launched). GEMMs at the precision's peak, the rest in the activation precision."""
    tokens, h, d = c.micro_batch * c.seq, m.hidden, m.head_dim
    kv = m.kv_heads * d
    gemm_dt = "fp8" if c.precision == "fp8" else _act_dtype(c.precision)
    act = _act_dtype(c.precision)
    p_gemm = gemm_peak(gpu, c.precision)
    p_act = gemm_peak(gpu, act)
    bw = float(gpu.mem_bw_bytes_per_s or 0.0)
    bytes_dt = gemm_dt
    gemms = [
        rl.gemm(tokens, (h + 2 * kv) // c.tp, h, bytes_dt),
        rl.gemm(tokens, h, h // c.tp, bytes_dt),
        rl.gemm(tokens, (2 if m.swiglu else 1) * m.ffn // c.tp, h, bytes_dt),
        rl.gemm(tokens, h, m.ffn // c.tp, bytes_dt),
    ]
    heads = max(m.heads // c.tp, 1)
    if c.flash_attention:
        att = rl.attention(c.micro_batch, heads, c.seq, d, act)
        core = [rl.Op("flash attention causal", att.flops / 2, att.bytes)]
    else:  # QK^T and PV as batched GEMMs, softmax over the materialised scores
        scores = c.micro_batch * heads * c.seq * c.seq
        b = rl.BYTES[act]
        qkvo = b * 4.0 * c.micro_batch * heads * c.seq * d
        core = [
            rl.Op("QK^T", 2.0 * scores * d, qkvo / 2 + b * scores),
            rl.elementwise(scores, act, flops_per_element=5, operands=1),
            rl.Op("PV", 2.0 * scores * d, qkvo / 2 + b * scores),
        ]
    rest = [rl.elementwise(tokens * h, act, operands=1, flops_per_element=5)] * 2
    rest += [rl.elementwise(tokens * h, act, operands=2)] * 2
    rest.append(rl.elementwise(tokens * m.ffn // c.tp, act, operands=2 if m.swiglu else 1, flops_per_element=8))
    t_gemm = sum(_op_time(o, p_gemm, bw) for o in gemms)
    t_core = sum(_op_time(o, p_act, bw) for o in core)
    t_rest = sum(_op_time(o, p_act, bw) for o in rest)
    return (t_gemm + t_core + t_rest) / c.efficiency, t_core / c.efficiency, len(gemms) + len(core) + len(rest)


def step(m: ModelSpec, topo: Topology, c: TrainConfig, fabric: Fabric | None = None) -> TrainStep:
    """Step time of configuration ``c`` on nodes of ``topo`` (see the module docstring).
    Raises UserError for bad knobs, tp above the node's GPUs or not dividing heads/FFN, fp8 on a
    GPU without fp8 tensor cores."""
    c.check(m)
    fabric = fabric or Fabric()
    g = topo.gpu
    per_node = len(topo.gpus)
    check_scale(c, per_node)
    if c.tp > per_node or m.heads % c.tp or m.ffn % c.tp:
        raise UserError(
            f"tp {c.tp} must divide {m.name}'s heads and FFN and fit in a {per_node}-GPU node", where="--tp"
        )
    tokens = c.micro_batch * c.seq
    layers = m.layers // c.pp
    f_layer, core, kernels = layer_forward(m, g, c)
    act = _act_dtype(c.precision)
    p_head = gemm_peak(g, act)
    bw = float(g.mem_bw_bytes_per_s or 0.0)
    head_op = rl.gemm(tokens, m.vocab // c.tp, m.hidden, act)  # the LM head stays in 16 bits under fp8
    head = (_op_time(head_op, p_head, bw) + _op_time(rl.embedding(tokens, m.hidden, act), p_head, bw)) / c.efficiency
    f_mb = layers * f_layer + head / c.pp
    b_mb = 2 * f_mb
    rc_mb = {"none": 0.0, "selective": 0.0 if c.flash_attention else layers * core, "full": layers * f_layer}[
        c.recompute
    ]
    n_kernels = 3 * (layers * kernels + 2) + (layers * kernels if c.recompute == "full" else 0)
    launch_mb = 0.0 if c.cuda_graphs else n_kernels * rl.LAUNCH_OVERHEAD_S
    width = 4 if act == "fp32" else 2
    nccl_dt = "float" if act == "fp32" else "bfloat16"
    tp_mb = 0.0
    if c.tp > 1:
        a = width * tokens * m.hidden
        tp_mb = 4 * layers * collective("all_reduce", a, Placement.make(topo, c.tp), dtype=nccl_dt).time_s
    pp_mb = 0.0
    if c.pp > 1:
        a = width * tokens * m.hidden
        if c.tp * c.pp <= per_node:
            pl = Placement.make(topo, [topo.gpus[0], topo.gpus[c.tp]])
        else:
            pl = Placement.make(topo, 1, nodes=2, fabric=fabric)
        pp_mb = 2 * collective("send_recv", a, pl, dtype=nccl_dt).time_s
    per_mb = f_mb + b_mb + rc_mb + launch_mb + tp_mb + pp_mb
    pipe = (c.microbatches + c.pp - 1) * per_mb
    bubble = (c.pp - 1) * per_mb
    shard = m.params / (c.tp * c.pp)
    dp_comm = dp_lat = 0.0
    dp_algo = "none"
    pl_dp = _dp_placement(topo, c.parallelism(), fabric)
    if pl_dp is not None:
        ar = collective("all_reduce", int(width * shard), pl_dp, dtype=nccl_dt)
        z3 = 1.5 if c.zero >= 3 else 1.0
        dp_comm, dp_lat, dp_algo = ar.time_s * z3, ar.latency_s * z3, f"{ar.algo}/{ar.proto}"
    exposed = max(0.0, dp_comm - c.overlap * b_mb)
    hidden = dp_comm - exposed
    sms = int(getattr(g, "sm_count", 0) or 0)
    overlap_cost = hidden * min(1.0, nccl_channels(topo, pl_dp) / sms) if hidden > 0 and sms else 0.0
    upd = shard / (c.dp if c.zero >= 1 else 1)
    opt = rl.estimate(rl.Op("adam", 12 * upd, 28 * upd), g.name, "fp32").time_s
    total = pipe + exposed + overlap_cost + opt
    tps = c.dp * c.microbatches * tokens / total
    peak = gemm_peak(g, c.precision)
    mfu = 6 * m.params * tps / (c.gpus * peak)
    return TrainStep(
        c.microbatches * (f_mb + b_mb),
        c.microbatches * rc_mb,
        c.microbatches * launch_mb,
        c.microbatches * tp_mb,
        c.microbatches * pp_mb,
        bubble,
        dp_comm,
        exposed,
        opt,
        total,
        tps,
        mfu,
        peak,
        dp_lat,
        dp_algo,
    )


# -- stability ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NumberFormat:
    """A floating-point format's range and rounding, computed from its bit layout."""

    name: str
    exponent_bits: int
    mantissa_bits: int
    max_finite: float
    min_normal: float
    unit_roundoff: float
    source: str


def number_format(name: str) -> NumberFormat:
    """Largest finite value, smallest normal and unit roundoff 2^-(m+1) of a format. IEEE-style
    formats: bias 2^(e-1) - 1, largest (2 - 2^-m) x 2^bias. E4M3 (OCP FP8 1.0) has no infinities:
    the top exponent holds normal values except mantissa 111 (NaN), so its largest is
    (2 - 2^-(m-1)) x 2^(2^e - 1 - bias) = 448."""
    layouts = {
        "fp32": (8, 23, "IEEE 754 binary32"),
        "bf16": (8, 7, "bfloat16: binary32's exponent, 7 mantissa bits"),
        "fp16": (5, 10, "IEEE 754 binary16"),
        "fp8-e5m2": (5, 2, "OCP 8-bit FP spec 1.0, E5M2 (IEEE-like)"),
        "fp8-e4m3": (4, 3, "OCP 8-bit FP spec 1.0, E4M3 (no infinities)"),
    }
    if name not in layouts:
        raise UserError(f"unknown number format '{name}'", expected=", ".join(layouts))
    e, mb, src = layouts[name]
    bias = 2 ** (e - 1) - 1
    if name == "fp8-e4m3":
        mx = (2 - 2.0 ** -(mb - 1)) * 2.0 ** (2**e - 1 - bias)
    else:
        mx = (2 - 2.0**-mb) * 2.0**bias
    return NumberFormat(name, e, mb, mx, 2.0 ** (1 - bias), 2.0 ** -(mb + 1), src)


GRAD_SCALER = {"init_scale": 2.0**16, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000}
"""torch.amp.GradScaler's documented defaults."""


def grad_scaler_skip_fraction(growth_interval: int = 2000) -> float:
    """Steps skipped by dynamic loss scaling in steady state: with the gradients' largest value
    stationary, the scale sits at the largest power of two that does not overflow; after
    ``growth_interval`` clean steps GradScaler doubles it, the next step overflows, is skipped
    and the scale halves: one skipped step in every growth_interval + 1 (a lower bound: gradient
    spikes add more)."""
    if growth_interval < 1:
        raise UserError("growth_interval must be >= 1", where="growth_interval")
    return 1.0 / (growth_interval + 1)


def precision_stability(precision: str) -> dict:
    """What a precision asks of the training loop: formats used, whether loss scaling is needed
    (exponent range narrower than fp32's), the steady-state skipped-step fraction of PyTorch's
    GradScaler (fp16 only) and the headroom of the forward format (max finite / fp32's)."""
    fmts = {
        "fp32": ["fp32"],
        "bf16": ["bf16"],
        "fp16": ["fp16"],
        "fp8": ["fp8-e4m3", "fp8-e5m2"],  # TE's HYBRID recipe: E4M3 forward, E5M2 gradients
    }[precision]
    fs = [number_format(f) for f in fmts]
    ref = number_format("fp32")
    narrow = any(f.exponent_bits < ref.exponent_bits for f in fs)
    return {
        "precision": precision,
        "formats": [f.name for f in fs],
        "max_finite": fs[0].max_finite,
        "min_normal": fs[0].min_normal,
        "unit_roundoff": max(f.unit_roundoff for f in fs),
        "scaling": ("per-tensor scaling (amax history)" if precision == "fp8" else "dynamic loss scaling")
        if narrow
        else "none",
        "skipped_step_fraction": grad_scaler_skip_fraction(GRAD_SCALER["growth_interval"])
        if precision == "fp16"
        else 0.0,
        "dynamic_range_decades": math.log10(fs[0].max_finite / fs[0].min_normal),
    }


# -- variable sequence lengths through the caching allocator ----------------------------------------
ACT_SPLIT = (2, 6, 2, 1, 2, 2, 8, 8, 3)
"""Korthikanti et al.'s 34 s b h bytes per layer split into the tensors a layer saves (norm input,
Q/K/V, attention output, dropout mask, projection input, second norm, MLP up/gate, activation,
MLP-down input + mask) [approximation: the paper gives the sums, not the tensor order]."""


@dataclass(frozen=True)
class LengthRun:
    """Steps run at drawn sequence lengths through one allocator: the first OOM, OOMs counted.
    Lengths are the ones the allocator saw (after padding, when padded)."""

    steps: int
    ooms: int
    first_oom_step: int | None
    first_oom_len: int | None
    shortest_oom: int | None
    """The shortest length that OOMed. Fragmentation makes the limit depend on the cache's history:
    it can be shorter than ``longest_ok`` (a length that ran at another step)."""
    longest_ok: int
    peak_reserved_gib: float
    peak_allocated_gib: float
    alloc_retries: int

    def as_dict(self) -> dict:
        return asdict(self)


def variable_length_run(
    m: ModelSpec,
    gpu: GpuModel,
    c: TrainConfig,
    lengths: list[int],
    alloc_conf: str = "",
    pad_to: int | None = None,
) -> LengthRun:
    """Run one GPU's allocations for a step per entry of ``lengths`` (tokens per sequence) through
    :class:`gpuinfra.models.memory.CachingAllocator` with ``PYTORCH_CUDA_ALLOC_CONF`` ``alloc_conf``.
    Model states are allocated once (one tensor per layer per kind); each step saves every layer's
    activations (split as :data:`ACT_SPLIT`, or the layer input under full recomputation) and the
    logits, then frees them in reverse order as backward would: the last pipeline stage with one
    micro-batch in flight (exact for pp = 1; the first stage's pp in-flight micro-batches are not
    replayed). ``pad_to`` pads every step to that
    length (static shapes, as CUDA graphs require). A step that OOMs is counted and its tensors
    freed (the job would have crashed there; counting the rest gives the rate). Lengths are drawn
    by the caller from its seeded stream."""
    c.check(m)
    total = int(float(gpu.memory_visible_mib or (gpu.memory_gib or 0) * 1024) * 2**20)
    dev = Gpu(total)
    alloc = CachingAllocator(dev, AllocatorConfig.parse(alloc_conf) if alloc_conf else AllocatorConfig())
    mem = memory(m, gpu, c)
    layers = m.layers // c.pp
    for i in range(layers):
        for kind, b in (("w", mem.weights), ("g", mem.gradients), ("o", mem.optimizer)):
            alloc.malloc(int(b / layers), f"{kind}{i}")
    ooms, first, first_len, longest, shortest = 0, None, None, 0, None
    for k, s in enumerate(lengths):
        s_eff = max(s, pad_to or 0)
        live: list[str] = []
        try:
            for i in range(layers):
                a_l = activation_bytes_per_layer(m, c, s_eff)
                parts = (1,) if c.recompute == "full" else ACT_SPLIT
                for j, p in enumerate(parts):
                    name = f"s{k}l{i}a{j}"
                    alloc.malloc(int(a_l * p / sum(parts)), name)
                    live.append(name)
            alloc.malloc(int(s_eff * c.micro_batch * m.vocab / c.tp * 6), f"s{k}logits")
            live.append(f"s{k}logits")
            longest = max(longest, s_eff)
        except OutOfMemoryError:
            ooms += 1
            shortest = s_eff if shortest is None else min(shortest, s_eff)
            if first is None:
                first, first_len = k, s_eff
        for name in reversed(live):
            alloc.free(name)
    st = alloc.stats
    return LengthRun(
        len(lengths),
        ooms,
        first,
        first_len,
        shortest,
        longest,
        st.peak_reserved / GIB,
        st.peak_allocated / GIB,
        st.num_alloc_retries,
    )
