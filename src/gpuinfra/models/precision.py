"""Precision and quantisation: memory and speed of serving one model at fp32, bf16, fp8, int8, int4.

Weights' bytes are parameters x bits / 8 (facts/cost-lifecycle-security.md 5.6): fp32 32, bf16
and fp16 16, fp8 8, int8 8 (W8A8, SmoothQuant-style, per-channel scales ignored), int4 4 plus the
group-scale overhead of GPTQ/AWQ: one fp16 scale and one packed 4-bit zero point per
``group_size`` weights, (16 + 4) / group_size bits per weight (4.16 at group 128, 4.625 at 32).
Embeddings and the LM head stay 16-bit in int4 files (the usual practice the fact sheet notes), so
their parameters are counted at 16 bits.

Speed is the roofline of one decode step and one prefill (:mod:`gpuinfra.models.roofline`'s
rule: max(FLOPs / peak, bytes / bandwidth)): a decode step of batch B at context C reads all
weights once and every sequence's KV cache (B x C x KV bytes/token) and does 2 x params x B
FLOPs; a prefill of T tokens does 2 x params x T FLOPs and reads the weights once. The peak a
precision computes at: fp32 the CUDA-core FP32 peak; bf16/fp16 the dense tensor peak; fp8 2x
that on Ada/Hopper/Blackwell (H100/L40S/B200 datasheets list FP8 at twice FP16), refused
elsewhere; int8 W8A8 2x the FP16 tensor peak on Turing and newer (A100 datasheet: 624 INT8 TOPS
vs 312 FP16 TFLOPS), refused on older GPUs; int4 W4A16 (weight-only) computes at the fp16 tensor
peak after dequantising (dequantisation cost not modelled: an optimistic bound, stated). KV cache
stays 16-bit unless ``kv_bits`` says otherwise; weight quantisation alone does not shrink it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.catalog.gpus import GpuModel, gpu_model
from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.models import roofline as rl

PRECISIONS = ("fp32", "bf16", "fp8", "int8", "int4")
FP8_ARCHS = ("Ada", "Hopper", "Blackwell")
INT8_ARCHS = ("Turing", "Ampere", "Ada", "Hopper", "Blackwell")


@dataclass(frozen=True)
class ModelShape:
    """A dense decoder's size: parameters, 16-bit-kept parameters (embeddings + LM head), and KV
    bytes per token at 16 bits = 2 (K, V) x layers x KV heads x head_dim x 2 bytes."""

    name: str
    params: float
    embed_params: float
    layers: int
    kv_heads: int
    head_dim: int
    source: str

    def kv_bytes_per_token(self, kv_bits: int = 16) -> float:
        return 2.0 * self.layers * self.kv_heads * self.head_dim * kv_bits / 8


MODELS = {
    m.name: m
    for m in (
        ModelShape(
            "Llama-3-8B",
            8.03e9,
            2 * 128256 * 4096,
            32,
            8,
            128,
            "facts 5.6 (8.03 B params, 32 layers, 8 KV heads, head_dim 128); vocab 128256 x hidden 4096: "
            "its public config.json",
        ),
        ModelShape(
            "Llama-2-7B",
            6.74e9,
            2 * 32000 * 4096,
            32,
            32,
            128,
            "facts 5.6 (MHA, 32 KV heads); 6.74 B params, vocab 32000 x hidden 4096 from its public config.json",
        ),
        ModelShape(
            "Llama-3-70B",
            70.6e9,
            2 * 128256 * 8192,
            80,
            8,
            128,
            "facts 5.6 (80 layers, 8 KV heads); 70.6 B params, vocab 128256 x hidden 8192 from its public config.json",
        ),
    )
}


def model_shape(name: str) -> ModelShape:
    if name not in MODELS:
        raise UserError(
            f"unknown model '{name}'",
            where="--model",
            expected=", ".join(MODELS),
            fix=did_you_mean(name, MODELS) or "pick one of the listed models",
        )
    return MODELS[name]


def bits_per_weight(precision: str, group_size: int = 128) -> float:
    """Stored bits per (quantised) weight, including int4's group scale and zero point."""
    check_precision(precision)
    if precision == "int4":
        if group_size < 1:
            raise UserError("group size must be >= 1", where="--group-size", expected="e.g. 32, 64 or 128")
        return 4.0 + (16.0 + 4.0) / group_size
    return {"fp32": 32.0, "bf16": 16.0, "fp8": 8.0, "int8": 8.0}[precision]


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(
            f"unknown precision '{precision}'",
            where="--precision",
            expected=", ".join(PRECISIONS),
            fix=did_you_mean(precision, PRECISIONS) or "pick one of the listed precisions",
        )


def weight_bytes(m: ModelShape, precision: str, group_size: int = 128) -> float:
    """Bytes of the weights at ``precision``; int4 keeps embeddings/LM head at 16 bits."""
    bpw = bits_per_weight(precision, group_size)
    if precision == "int4":
        return (m.params - m.embed_params) * bpw / 8 + m.embed_params * 2.0
    return m.params * bpw / 8


def compute_peak(g: GpuModel, precision: str) -> float:
    """FLOP/s the matmuls run at for ``precision`` on ``g`` (see module docstring); UserError if none."""
    check_precision(precision)
    if precision == "fp32":
        return rl.peak(g, "fp32")
    base = rl.peak(g, "fp16")
    if precision == "fp8":
        if g.arch not in FP8_ARCHS:
            raise UserError(
                f"{g.name} ({g.arch}) has no FP8 tensor cores",
                where="--precision",
                expected="an Ada, Hopper or Blackwell GPU",
                fix="serve at bf16 or int8 on this GPU",
            )
        return 2.0 * base
    if precision == "int8":
        if g.arch not in INT8_ARCHS:
            raise UserError(
                f"{g.name} ({g.arch}) has no INT8 tensor cores", where="--precision", fix="use bf16 or int4 (W4A16)"
            )
        return 2.0 * base
    return base


@dataclass(frozen=True)
class PrecisionRow:
    """One precision of one model on one GPU: memory (bytes), step times (s), throughput (tokens/s)."""

    precision: str
    bits_per_weight: float
    weight_bytes: float
    kv_bytes: float
    total_bytes: float
    fits: bool
    gpus_needed: int
    decode_step_s: float
    decode_tokens_per_s: float
    decode_bound: str
    prefill_s: float
    prefill_bound: str
    serving_decode_tokens_per_s: float | None = None
    """The same decode batch through the serving model's per-operator step
    (:meth:`gpuinfra.models.serving.StepModel.decode_step`: attention, norms, CPU overhead and
    launches included), for the precisions it serves (bf16, fp8); None otherwise."""

    def as_dict(self) -> dict:
        return asdict(self)


def precision_row(
    m: ModelShape,
    gpu: str | GpuModel,
    precision: str,
    batch: int = 16,
    context: int = 2048,
    prompt: int = 2048,
    group_size: int = 128,
    kv_bits: int = 16,
) -> PrecisionRow:
    """Memory and roofline speed of ``m`` at ``precision`` on one GPU (tp 1) for a decode batch
    of ``batch`` sequences at ``context`` tokens and a prefill of ``prompt`` tokens."""
    g = gpu if isinstance(gpu, GpuModel) else gpu_model(gpu, where="--gpu")
    if batch < 1 or context < 1 or prompt < 1:
        raise UserError("batch, context and prompt must be >= 1", where="--batch/--context/--prompt")
    peak = compute_peak(g, precision)
    bw = float(g.mem_bw_bytes_per_s or 0.0)
    wb = weight_bytes(m, precision, group_size)
    kv = batch * context * m.kv_bytes_per_token(kv_bits)
    dec_c = 2.0 * m.params * batch / peak
    dec_m = (wb + kv) / bw
    dec = max(dec_c, dec_m)
    pre_c = 2.0 * m.params * prompt / peak
    pre_m = (wb + prompt * m.kv_bytes_per_token(kv_bits)) / bw
    cap = float(g.memory_gib or 0.0) * 2**30
    total = wb + kv
    return PrecisionRow(
        precision,
        bits_per_weight(precision, group_size),
        wb,
        kv,
        total,
        total <= cap,
        max(1, -(-int(total) // int(cap))) if cap else 0,
        dec,
        batch / dec,
        "compute" if dec_c >= dec_m else "memory",
        max(pre_c, pre_m),
        "compute" if pre_c >= pre_m else "memory",
        _serving_decode(m, g, precision, batch, context, kv_bits),
    )


def _serving_decode(m: ModelShape, g: GpuModel, precision: str, batch: int, context: int, kv_bits: int) -> float | None:
    """Decode tokens/s from the serving model, where it has the model and the precision."""
    from gpuinfra.models import serving

    if precision not in ("bf16", "fp8") or kv_bits != 16:
        return None
    try:
        sm = serving.step_model(m.name.lower(), g.name, precision)
    except UserError:
        return None
    return batch / sm.decode_step(batch, context).total_s


def precision_table(m: ModelShape, gpu: str, **kw) -> list[PrecisionRow]:
    """Every precision the GPU supports (the ones it lacks are left out, not guessed)."""
    g = gpu_model(gpu, where="--gpu")
    rows = []
    for p in PRECISIONS:
        try:
            rows.append(precision_row(m, g, p, **kw))
        except UserError as e:
            if "tensor cores" not in e.what:
                raise
    return rows


@dataclass(frozen=True)
class AccuracyDelta:
    """A published perplexity delta of a quantised model against its 16-bit baseline."""

    model: str
    method: str
    precision: str
    bits_per_weight: float | None
    metric: str
    baseline: float | None
    quantized: float | None
    delta: float
    source: str


@cache
def accuracy_deltas() -> tuple[AccuracyDelta, ...]:
    """The packaged table ``catalog/data/precision/quant_accuracy.csv`` (one source per row)."""

    def f(v: str) -> float | None:
        return float(v) if v.strip() else None

    return tuple(
        AccuracyDelta(
            r["model"],
            r["method"],
            r["precision"],
            f(r["bits_per_weight"]),
            r["metric"],
            f(r["baseline"]),
            f(r["quantized"]),
            float(r["delta"]),
            r["source"],
        )
        for r in read_csv_rows("precision", "quant_accuracy.csv")
    )
