"""Step time of data-, tensor- and pipeline-parallel transformer training, from the device roofline
and the collective model, on a given node topology and network; scaling curves from 1 to
thousands of GPUs.

One training step of a decoder-only transformer (per GPU), with ranks laid out tensor-parallel
innermost, then pipeline, then data parallel (Megatron-LM's order, Narayanan et al., SC'21):

- compute: every layer's operations through :mod:`gpuinfra.models.roofline` (QKV, attention
  (fused, causal: half the s^2 FLOPs), output projection, MLP, norms and residuals as
  elementwise passes), sharded by the tensor-parallel degree tp; backward = 2 x forward (a GEMM's
  input and weight gradients are two GEMMs of the same size) [assumption]. Roofline time is a
  lower bound: the achieved fraction of it is ``efficiency`` (default 1, no fudge factor).
- tensor parallel: 2 all-reduces of the activations (b x s x h x 2 bytes) per layer forward and
  2 backward, on the tp group, not overlapped (Megatron's sequence of GEMM -> all-reduce).
- pipeline parallel: the 1F1B schedule's time (m + pp - 1) x (forward + backward of one
  micro-batch on one stage), i.e. the bubble fraction (pp-1)/(m+pp-1), plus a send/recv of the
  activations each way per micro-batch at stage boundaries.
- data parallel: one all-reduce of the bf16 gradients of a GPU's shard (2 x params / (tp x pp)
  bytes), of which ``overlap`` x (backward time of the last micro-batch) hides behind backward
  compute (bucketed DDP; the earlier micro-batches of gradient accumulation run without
  synchronising, so they hide nothing).
- optimizer: Adam with fp32 master weights, memory-bound: 28 bytes read+written per parameter of
  the shard (fp32 param 4+4, bf16 grad 2, m 4+4, v 4+4, bf16 copy 2) [D].

The same ratio rules all of it: compute grows with tokens per GPU, data-parallel communication
with parameters per GPU; a job whose tokens per GPU per step are few against its parameters
stops scaling as soon as it leaves the NVLink domain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gpuinfra.errors import UserError
from gpuinfra.models import roofline as rl
from gpuinfra.models.collectives import Fabric, Placement, collective, nic_assignment
from gpuinfra.models.topology import Topology


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    swiglu: bool
    source: str

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params(self) -> float:
        h, kv = self.hidden, self.kv_heads * self.head_dim
        attn = 2 * h * h + 2 * h * kv
        mlp = (3 if self.swiglu else 2) * h * self.ffn
        # RMSNorm (Llama): 2 weight vectors per layer + a final one; LayerNorm (GPT): weight and
        # bias, 2 per layer + a final one, plus linear-layer biases and learned positions (2048)
        if self.swiglu:
            return self.layers * (attn + mlp + 2 * h) + h + 2 * self.vocab * h
        biases = (h + 2 * kv) + h + self.ffn + h
        return self.layers * (attn + mlp + 4 * h + biases) + 2 * h + self.vocab * h + 2048 * h


MODELS = {
    m.name: m
    for m in [
        ModelSpec(
            "gpt3-1.3b", 24, 2048, 16, 16, 8192, 50257, False, "Brown et al. 2020, GPT-3 paper Table 2.1 (GPT-3 XL)"
        ),
        ModelSpec(
            "llama2-7b",
            32,
            4096,
            32,
            32,
            11008,
            32000,
            True,
            "Touvron et al. 2023, Llama 2; ffn from the released config",
        ),
        ModelSpec(
            "llama2-70b",
            80,
            8192,
            64,
            8,
            28672,
            32000,
            True,
            "Touvron et al. 2023, Llama 2 (GQA, 8 KV heads); released config",
        ),
        ModelSpec("gpt3-175b", 96, 12288, 96, 96, 49152, 50257, False, "Brown et al. 2020, GPT-3 paper Table 2.1"),
    ]
}


@dataclass(frozen=True)
class Parallelism:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    micro_batch: int = 1
    """Sequences per micro-batch."""
    microbatches: int = 1
    """Micro-batches per step (gradient accumulation / pipeline depth)."""
    seq: int = 4096
    overlap: float = 0.0
    """Fraction of the backward pass that can hide the data-parallel all-reduce (0..1)."""
    efficiency: float = 1.0
    """Fraction of the roofline the kernels achieve (1 = the roofline itself)."""

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp


@dataclass(frozen=True)
class StepTime:
    gpus: int
    nodes: int
    tp: int
    pp: int
    dp: int
    compute_s: float
    tp_comm_s: float
    pp_comm_s: float
    bubble_s: float
    dp_comm_s: float
    dp_exposed_s: float
    optimizer_s: float
    step_s: float
    tokens_per_s: float
    mfu: float
    """Model FLOPs utilisation: 6 x params x tokens/s over the GPUs' dense BF16 peak."""
    comm_s: float
    """Communication on the critical path (tp + pp + exposed dp + the overlap's compute cost)."""
    comm_bound: bool
    memory_gib: float
    """Per-GPU memory: weights, gradients and Adam states (16 bytes/param of the shard) plus
    activations of the micro-batches in flight (:func:`memory_bytes`)."""
    fits: bool
    dp_overlap_cost_s: float = 0.0
    """Compute time lost to the SMs NCCL holds while the hidden part of the all-reduce runs."""

    def as_dict(self) -> dict:
        return asdict(self)


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        from gpuinfra.errors import did_you_mean

        raise UserError(
            f"unknown model '{name}'", where="--model", expected=", ".join(MODELS), fix=did_you_mean(name, MODELS)
        )
    return MODELS[name]


def layer_ops(m: ModelSpec, tokens: int, micro_batch: int, seq: int, tp: int) -> list[rl.Op]:
    h, d = m.hidden, m.head_dim
    kv = m.kv_heads * d
    ops = [
        rl.gemm(tokens, (h + 2 * kv) // tp, h),
        rl.gemm(tokens, h, h // tp),
        rl.gemm(tokens, (2 if m.swiglu else 1) * m.ffn // tp, h),
        rl.gemm(tokens, h, m.ffn // tp),
    ]
    att = rl.attention(micro_batch, max(m.heads // tp, 1), seq, d)
    ops.append(rl.Op(att.name + " causal", att.flops / 2, att.bytes))
    # two norms, two residual adds (read 2, write 1), the activation over the MLP width
    ops += [rl.elementwise(tokens * h, operands=1, flops_per_element=5)] * 2
    ops += [rl.elementwise(tokens * h, operands=2)] * 2
    ops.append(rl.elementwise(tokens * m.ffn // tp, operands=2 if m.swiglu else 1, flops_per_element=8))
    return ops


def _time(ops: list[rl.Op], device: str, efficiency: float) -> float:
    return sum(rl.estimate(o, device, "bf16").time_s for o in ops) / efficiency


def _dp_placement(topo: Topology, par: Parallelism, fabric: Fabric) -> Placement | None:
    """The data-parallel group of local GPU 0: every (tp x pp)-th GPU of a node, over the nodes
    the group needs. Groups of the other local GPUs run at the same time and share NICs."""
    if par.dp == 1:
        return None
    per_node = len(topo.gpus)
    stride = par.tp * par.pp
    local = topo.gpus[::stride] if stride < per_node else topo.gpus[:1]
    local = local[: min(len(local), par.dp)]
    nodes = -(-par.dp // len(local))
    pl = Placement.make(topo, list(local), nodes=nodes, fabric=fabric)
    if nodes > 1 and stride > 1:
        # NICs used by this group against the NICs all concurrent groups use
        mine = set(nic_assignment(topo, pl.gpus).values())
        allg = set(nic_assignment(topo, tuple(topo.gpus[: len(local) * stride])).values())
        share = stride * len(mine) / max(len(allg), 1)
        if share > 1:
            pl = Placement(
                topo, pl.gpus, nodes, Fabric(fabric.nic, fabric.nodes_per_leaf, fabric.oversubscription), share
            )
    return pl


def nccl_channels(topo: Topology, pl) -> int:
    """Channels (one SM each) NCCL runs a data-parallel all-reduce on: 2 per NIC across nodes (NCCL
    logs on 8-NIC DGX H100 nodes show 16 channels, NVIDIA/nccl#820 and #1453; "a PCI system with a
    single NIC ... should just launch 2 SMs", NVIDIA/nccl#689), and at least 2."""
    if pl is None:
        return 0
    return max(2, 2 * len(topo.nics)) if getattr(pl, "nodes", 1) > 1 else max(2, 2 * max(1, len(topo.nics)))


def step_time(m: ModelSpec, topo: Topology, par: Parallelism, fabric: Fabric | None = None) -> StepTime:
    """One training step of model ``m`` under data/tensor/pipeline parallelism ``par`` on nodes of ``topo``.

    Compute: the roofline time of each layer's operators at the stated efficiency; TP: Megatron's
    all-reduces per layer (forward and backward) from the collective model inside a node; PP:
    the 1F1B bubble (pp - 1) / microbatches; DP: bucketed gradient all-reduce across nodes,
    overlapped with the backward pass where it fits; optimizer: Adam's memory-bound update.
    Returns a :class:`StepTime` (seconds per component, step total, tokens/s, MFU, memory per
    GPU in GiB and whether it fits). Raises ``UserError`` when a degree is < 1, TP exceeds the
    GPUs of a node or does not divide the heads/FFN width, PP does not divide the layers, or
    overlap/efficiency are out of range.
    """
    fabric = fabric or Fabric()
    per_node = len(topo.gpus)
    for k, v in (
        ("tp", par.tp),
        ("pp", par.pp),
        ("dp", par.dp),
        ("micro-batch", par.micro_batch),
        ("microbatches", par.microbatches),
    ):
        if v < 1:
            raise UserError(f"{k} must be at least 1", where=f"--{k}")
    if par.tp > per_node:
        raise UserError(
            f"tensor parallel {par.tp} is larger than the node's {per_node} GPUs",
            where="--tp",
            fix="keep tp inside one node",
        )
    if m.heads % par.tp or m.ffn % par.tp:
        raise UserError(f"tp {par.tp} does not divide {m.name}'s {m.heads} heads and {m.ffn} ffn width", where="--tp")
    if m.layers % par.pp:
        raise UserError(f"pp {par.pp} does not divide {m.name}'s {m.layers} layers", where="--pp")
    if not 0.0 <= par.overlap <= 1.0 or not 0.0 < par.efficiency <= 1.0:
        raise UserError("overlap must be in [0, 1] and efficiency in (0, 1]", where="--overlap/--efficiency")
    dev = topo.gpu.name
    tokens = par.micro_batch * par.seq
    layers = m.layers // par.pp
    f_layer = _time(layer_ops(m, tokens, par.micro_batch, par.seq, par.tp), dev, par.efficiency)
    head = _time([rl.gemm(tokens, m.vocab // par.tp, m.hidden), rl.embedding(tokens, m.hidden)], dev, par.efficiency)
    f_mb = layers * f_layer + head / par.pp  # the last stage has the head: spread for the average stage
    b_mb = 2 * f_mb
    # tensor parallel: 4 all-reduces of the activations per layer (2 forward, 2 backward)
    tp_mb = 0.0
    if par.tp > 1:
        act = 2 * tokens * m.hidden
        tp_mb = 4 * layers * collective("all_reduce", act, Placement.make(topo, par.tp), dtype="bfloat16").time_s
    # pipeline: send/recv of the activations forward and their gradients backward per micro-batch
    pp_mb = 0.0
    if par.pp > 1:
        act = 2 * tokens * m.hidden
        stride = par.tp
        if par.tp * par.pp <= per_node:
            pl = Placement.make(topo, [topo.gpus[0], topo.gpus[stride]])
        else:
            pl = Placement.make(topo, 1, nodes=2, fabric=fabric)
        pp_mb = 2 * collective("send_recv", act, pl, dtype="bfloat16").time_s
    per_mb = f_mb + b_mb + tp_mb + pp_mb
    pipe = (par.microbatches + par.pp - 1) * per_mb
    bubble = (par.pp - 1) * per_mb
    compute = par.microbatches * (f_mb + b_mb)
    shard = m.params / (par.tp * par.pp)
    sms = int(getattr(topo.gpu, "sm_count", 0) or 0)
    dp_comm = 0.0
    pl_dp = _dp_placement(topo, par, fabric)
    if pl_dp is not None:
        dp_comm = collective("all_reduce", int(2 * shard), pl_dp, dtype="bfloat16").time_s
    # Gradients are final only in the last micro-batch's backward: with gradient accumulation the
    # earlier micro-batches run without synchronising (DDP no_sync), so bucketed all-reduce can
    # hide behind one micro-batch's backward at most, not behind all of them.
    exposed = max(0.0, dp_comm - par.overlap * b_mb)
    # Overlap is not free: while the all-reduce runs beside the backward pass, NCCL's kernels hold
    # one SM per channel, so compute runs on the rest (a lower bound: HBM bandwidth contention
    # slows it further, measured in NVIDIA/nccl#338 and parasailteam/coconet#6, not modelled).
    hidden = dp_comm - exposed
    overlap_cost = hidden * min(1.0, nccl_channels(topo, pl_dp) / sms) if hidden > 0 and sms else 0.0
    opt = rl.estimate(rl.Op("adam", 12 * shard, 28 * shard), dev, "fp32").time_s
    step = pipe + exposed + overlap_cost + opt
    tokens_step = par.dp * par.microbatches * tokens
    tps = tokens_step / step
    peak = rl.peak(topo.gpu, "bf16")
    mfu = 6 * m.params * tps / (par.gpus * peak)
    comm = par.microbatches * (tp_mb + pp_mb) + exposed + overlap_cost
    nodes = -(-par.gpus // per_node)
    mem = memory_bytes(m, par) / 2**30
    cap = (topo.gpu.memory_visible_mib or (topo.gpu.memory_gib or 0) * 1024) / 1024
    return StepTime(
        par.gpus,
        nodes,
        par.tp,
        par.pp,
        par.dp,
        compute,
        par.microbatches * tp_mb,
        par.microbatches * pp_mb,
        bubble,
        dp_comm,
        exposed,
        opt,
        step,
        tps,
        mfu,
        comm,
        comm >= compute,
        mem,
        mem <= cap,
        overlap_cost,
    )


def memory_bytes(m: ModelSpec, par: Parallelism) -> float:
    """Weights (bf16 2) + gradients (bf16 2) + Adam (fp32 master, m, v: 12) bytes per parameter of
    the shard (no ZeRO sharding), plus activations: s b h (34 + 5 a s / h) / tp bytes per layer
    (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models", 2022),
    without the 5 a s / h term because the fused attention modelled here never stores the s x s
    scores [D], for the micro-batches in flight (1F1B keeps up to pp of them on the first stage)."""
    shard = m.params / (par.tp * par.pp)
    act_layer = par.seq * par.micro_batch * m.hidden * 34 / par.tp
    in_flight = min(par.pp, par.microbatches)
    return 16 * shard + act_layer * (m.layers // par.pp) * in_flight


def scaling_curve(
    m: ModelSpec, topo: Topology, par: Parallelism, max_gpus: int, fabric: Fabric | None = None
) -> list[dict]:
    """Weak scaling: the per-GPU work fixed, data parallel grown in powers of two up to max_gpus.
    Efficiency = (tokens/s per GPU at N) / (tokens/s per GPU with data parallel 1)."""
    base = step_time(m, topo, Parallelism(**{**asdict(par), "dp": 1}), fabric)
    out = []
    dp = 1
    while par.tp * par.pp * dp <= max_gpus:
        s = step_time(m, topo, Parallelism(**{**asdict(par), "dp": dp}), fabric)
        row = s.as_dict()
        row["efficiency"] = (s.tokens_per_s / s.gpus) / (base.tokens_per_s / base.gpus)
        row["speedup"] = s.tokens_per_s / base.tokens_per_s
        out.append(row)
        dp *= 2
    return out


def comm_dominates_at(curve: list[dict]) -> int | None:
    """The smallest GPU count at which communication on the critical path exceeds compute."""
    return next((r["gpus"] for r in curve if r["comm_bound"]), None)
