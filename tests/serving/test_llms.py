"""Model profiles: counted parameters against the model cards, KV bytes by hand, the config parser."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.catalog.llms import llm_model, llm_models, load_hf_config, profile_from_hf
from gpuinfra.errors import UserError


@pytest.mark.parametrize("m", llm_models(), ids=lambda m: m.name)
def test_counted_parameters_match_the_model_card(m):
    # the shapes are copied from config.json, the total from the model card: they agree only if
    # the shapes (and the counting) are right
    assert m.params / 1e9 == pytest.approx(m.params_published_b, rel=0.01)


def test_mixtral_active_parameters_match_the_announcement():
    assert llm_model("mixtral-8x7b").active_params / 1e9 == pytest.approx(12.9, rel=0.01)


def test_kv_bytes_by_hand():
    # Llama-2-7B: 2 x 32 layers x 32 heads x 128 x 2 bytes = 524,288 B = 0.5 MiB per token
    assert llm_model("llama-2-7b").kv_bytes_per_token("bf16") == 2 * 32 * 32 * 128 * 2 == 524288
    # Llama-2-13B: 819,200 B per token, x 2048 tokens = 1.68 GB (vLLM blog: "up to 1.7 GB")
    assert llm_model("llama-2-13b").kv_bytes_per_token() * 2048 / 1e9 == pytest.approx(1.68, abs=0.01)
    # Llama-3-70B (GQA 8): 2 x 80 x 8 x 128 x 2 = 327,680; fp8 halves it
    assert llm_model("llama-3-70b").kv_bytes_per_token() == 327680
    assert llm_model("llama-3-70b").kv_bytes_per_token("fp8") == 163840
    # Qwen2.5-7B: 2 x 28 x 4 x 128 x 2 = 57,344
    assert llm_model("Qwen2.5-7B").kv_bytes_per_token() == 57344


def test_unknown_model_says_did_you_mean():
    with pytest.raises(UserError, match="Did you mean 'llama-2-7b'"):
        llm_model("llama-2-7")


def test_user_config_file(tmp_path):
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 100,
        "tie_word_embeddings": True,
    }
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(cfg))
    m = llm_model(str(p))
    # per layer: q 64x64 + k,v 2x(64x32) + o 64x64 + mlp 3x64x128 + norms 2x64 = 36,992; x2 layers
    # + embedding 100x64 (tied head) + final norm 64
    assert m.params == 2 * (4096 + 4096 + 4096 + 24576 + 128) + 6400 + 64
    assert m.kv_bytes_per_token() == 2 * 2 * 2 * 16 * 2


def test_config_missing_field_names_it(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 64}))
    with pytest.raises(UserError, match="num_attention_heads"):
        load_hf_config(p)
    p.write_text("{not json")
    with pytest.raises(UserError, match="bad.json:1"):
        load_hf_config(p)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "num_hidden_layers",
                "hidden_size",
                "num_attention_heads",
                "num_key_value_heads",
                "intermediate_size",
                "vocab_size",
                "num_local_experts",
                "num_experts_per_tok",
                "head_dim",
            ]
        ),
        st.one_of(st.integers(-5, 300), st.text(max_size=3), st.none(), st.floats(allow_nan=True)),
    )
)
def test_config_parser_never_crashes(cfg):
    try:
        m = profile_from_hf(cfg, "x")
    except UserError:
        return
    assert m.params > 0 and m.kv_bytes_per_token() > 0
