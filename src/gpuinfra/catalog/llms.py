"""Architectures of open LLMs as data: the fields of a Hugging Face ``config.json`` that serving needs.

Each row of ``data/llm_models.csv`` is copied from the model's published ``config.json`` on the
Hugging Face Hub (the ``source`` column names it) with the parameter count of its model card in
``params_published_b``; :attr:`LlmProfile.params` is *counted* from the shapes, so the two agree
only if the shapes are right (a test checks it within 1 %). A user's own ``config.json`` with the
same fields is read by :func:`load_hf_config`.

Counting (decoder-only, Llama/Mistral/Qwen2 layout, SwiGLU MLP of three matrices, RMSNorm):
per layer q (h x H d), k and v (h x K d each), o (H d x h), experts x 3 h I, a router h x experts
when experts > 1, two norms of h; plus the embedding V h, the LM head V h unless tied, a final
norm h; Qwen2's q/k/v biases (H d + 2 K d) when ``qkv_bias``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError, did_you_mean

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}
"""Bytes per element of a stored tensor by precision name."""


@dataclass(frozen=True, slots=True)
class LlmProfile:
    """One model's architecture (units: counts of layers, heads, elements)."""

    name: str
    aliases: tuple[str, ...]
    hf_repo: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tie_embeddings: bool
    experts: int
    """MoE experts per layer (1: dense)."""
    experts_per_token: int
    max_position: int
    qkv_bias: bool
    params_published_b: float | None
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def moe(self) -> bool:
        return self.experts > 1

    def _layer_params(self, experts: int) -> int:
        h, d = self.hidden, self.head_dim
        q, kv = self.heads * d, self.kv_heads * d
        attn = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if self.qkv_bias else 0)
        mlp = experts * 3 * h * self.intermediate + (h * self.experts if self.moe else 0)
        return attn + mlp + 2 * h

    @property
    def params(self) -> int:
        """Parameters counted from the shapes (all experts)."""
        head = 0 if self.tie_embeddings else self.vocab * self.hidden
        return self.layers * self._layer_params(self.experts) + self.vocab * self.hidden + head + self.hidden

    @property
    def active_params(self) -> int:
        """Parameters one token touches (``experts_per_token`` experts of each MoE layer)."""
        head = 0 if self.tie_embeddings else self.vocab * self.hidden
        return self.layers * self._layer_params(self.experts_per_token) + self.vocab * self.hidden + head + self.hidden

    def kv_bytes_per_token(self, dtype: str = "bf16") -> float:
        """KV-cache bytes one token holds: 2 (K and V) x layers x KV heads x head_dim x bytes
        (the formula of vLLM's and Vidur's memory planners)."""
        return 2.0 * self.layers * self.kv_heads * self.head_dim * DTYPE_BYTES[dtype]

    def weight_bytes(self, dtype: str = "bf16") -> float:
        return self.params * DTYPE_BYTES[dtype]


def _b(v: str) -> bool:
    return v.strip().lower() == "true"


@cache
def llm_models() -> tuple[LlmProfile, ...]:
    """The built-in model profiles (``data/llm_models.csv``)."""
    out = []
    for r in read_csv_rows("llm_models.csv"):
        out.append(
            LlmProfile(
                name=r["name"],
                aliases=tuple(a for a in r["aliases"].split("|") if a),
                hf_repo=r["hf_repo"],
                layers=int(r["layers"]),
                hidden=int(r["hidden"]),
                heads=int(r["heads"]),
                kv_heads=int(r["kv_heads"]),
                head_dim=int(r["head_dim"]),
                intermediate=int(r["intermediate"]),
                vocab=int(r["vocab"]),
                tie_embeddings=_b(r["tie_embeddings"]),
                experts=int(r["experts"]),
                experts_per_token=int(r["experts_per_token"]),
                max_position=int(r["max_position"]),
                qkv_bias=_b(r["qkv_bias"]),
                params_published_b=float(r["params_published_b"]) if r["params_published_b"] else None,
                source=r["source"],
            )
        )
    return tuple(out)


@cache
def _index() -> dict[str, LlmProfile]:
    return {n.lower(): m for m in llm_models() for n in m.names}


class HfConfig(BaseModel):
    """The fields of a Hugging Face ``config.json`` a profile needs (others are ignored)."""

    model_config = ConfigDict(extra="ignore")
    num_hidden_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int | None = Field(default=None, gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool = False
    num_local_experts: int | None = Field(default=None, gt=0)
    num_experts_per_tok: int | None = Field(default=None, gt=0)
    max_position_embeddings: int = Field(default=4096, gt=0)
    model_type: str = ""
    attention_bias: bool = False


def profile_from_hf(cfg: dict, name: str, where: str = "config.json") -> LlmProfile:
    """A profile from a parsed ``config.json`` dict; UserError naming the field when one is missing or bad."""
    try:
        c = HfConfig.model_validate(cfg)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise UserError(
            f"field '{field}': {err['msg']}",
            where=where,
            expected="a Hugging Face config.json with num_hidden_layers, hidden_size, num_attention_heads, "
            "intermediate_size, vocab_size (positive integers)",
        ) from None
    kv = c.num_key_value_heads or c.num_attention_heads
    hd = c.head_dim or c.hidden_size // c.num_attention_heads
    if hd < 1:
        raise UserError(
            f"hidden_size {c.hidden_size} is smaller than num_attention_heads {c.num_attention_heads}", where=where
        )
    if c.num_attention_heads % kv:
        raise UserError(
            f"num_attention_heads {c.num_attention_heads} is not a multiple of num_key_value_heads {kv}", where=where
        )
    experts = c.num_local_experts or 1
    per_tok = c.num_experts_per_tok or 1
    if per_tok > experts:
        raise UserError(f"num_experts_per_tok {per_tok} > num_local_experts {experts}", where=where)
    return LlmProfile(
        name=name,
        aliases=(),
        hf_repo="",
        layers=c.num_hidden_layers,
        hidden=c.hidden_size,
        heads=c.num_attention_heads,
        kv_heads=kv,
        head_dim=hd,
        intermediate=c.intermediate_size,
        vocab=c.vocab_size,
        tie_embeddings=c.tie_word_embeddings,
        experts=experts,
        experts_per_token=per_tok if experts > 1 else 1,
        max_position=c.max_position_embeddings,
        qkv_bias=c.model_type == "qwen2" or c.attention_bias,
        params_published_b=None,
        source=f"user config {where}",
    )


def load_hf_config(path: Path) -> LlmProfile:
    """Read a Hugging Face-style ``config.json`` file into a profile."""
    from gpuinfra.textfile import read_text_file

    try:
        cfg = json.loads(read_text_file(path))
    except json.JSONDecodeError as e:
        raise UserError(f"not valid JSON: {e.msg}", where=f"{path}:{e.lineno}", expected="a config.json") from None
    if not isinstance(cfg, dict):
        raise UserError("top level is not a JSON object", where=str(path), expected="a config.json object")
    return profile_from_hf(cfg, Path(path).stem, where=str(path))


def llm_model(name: str, *, where: str | None = "--model") -> LlmProfile:
    """A built-in profile by name or alias (case-insensitive), or a path to a ``config.json``."""
    m = _index().get(name.strip().lower())
    if m is not None:
        return m
    if name.endswith(".json"):
        return load_hf_config(Path(name))
    names = [n for g in llm_models() for n in g.names]
    raise UserError(
        f"unknown model '{name}'",
        where=where,
        expected="one of " + ", ".join(g.name for g in llm_models()) + ", or a path to a config.json",
        fix=did_you_mean(name, names) or "use a built-in name or pass a Hugging Face config.json",
    )
