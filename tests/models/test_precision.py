"""Precision and quantisation: hand-computed memory, roofline closed forms, refusals, sourced data."""

import pytest

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models.precision import (
    accuracy_deltas,
    bits_per_weight,
    model_shape,
    precision_row,
    precision_table,
    weight_bytes,
)


def test_int4_group_overhead_by_hand():
    # fp16 scale (16 bits) + packed 4-bit zero per group: (16 + 4) / 128 = 0.15625 bit/weight
    assert bits_per_weight("int4", 128) == pytest.approx(4.15625)
    assert bits_per_weight("int4", 32) == pytest.approx(4.625)
    assert bits_per_weight("bf16") == 16 and bits_per_weight("fp8") == 8


def test_llama3_8b_kv_is_128_kib_per_token():
    # facts 5.6: 2 x 32 layers x 8 KV heads x 128 x 2 bytes = 131072 bytes
    assert model_shape("Llama-3-8B").kv_bytes_per_token() == 131072


def test_int4_keeps_embeddings_16bit():
    m = model_shape("Llama-3-8B")
    by_hand = (m.params - m.embed_params) * 4.15625 / 8 + m.embed_params * 2
    assert weight_bytes(m, "int4") == pytest.approx(by_hand)
    assert weight_bytes(m, "bf16") == pytest.approx(m.params * 2)


def test_decode_batch1_is_weights_over_bandwidth():
    m, g = model_shape("Llama-3-8B"), gpu_model("H100-SXM")
    r = precision_row(m, g, "bf16", batch=1, context=1, prompt=1)
    assert r.decode_bound == "memory"
    assert r.decode_step_s == pytest.approx((m.params * 2 + m.kv_bytes_per_token()) / g.mem_bw_bytes_per_s)


def test_fewer_bits_never_slower_or_bigger():
    rows = precision_table(model_shape("Llama-3-8B"), "H100-SXM")
    assert [r.precision for r in rows] == ["fp32", "bf16", "fp8", "int8", "int4"]
    for a, b in zip(rows, rows[1:]):
        assert b.weight_bytes <= a.weight_bytes
        assert b.decode_step_s <= a.decode_step_s * (1 + 1e-12)


def test_fp8_refused_on_ampere_and_left_out_of_table():
    with pytest.raises(UserError, match="FP8"):
        precision_row(model_shape("Llama-3-8B"), "A100-80GB", "fp8")
    assert "fp8" not in [r.precision for r in precision_table(model_shape("Llama-3-8B"), "A100-80GB")]


@pytest.mark.parametrize("bad", ["fp4", "INT4", ""])
def test_unknown_precision_is_user_error(bad):
    with pytest.raises(UserError):
        bits_per_weight(bad)


def test_accuracy_rows_each_have_a_source_and_consistent_delta():
    rows = accuracy_deltas()
    assert len(rows) >= 20
    for r in rows:
        assert r.source.strip()
        if r.baseline is not None and r.quantized is not None:
            assert r.quantized - r.baseline == pytest.approx(r.delta, abs=0.006)


def test_serving_model_agrees_in_order_and_is_never_faster_than_the_bound():
    rows = {r.precision: r for r in precision_table(model_shape("Llama-3-8B"), "H100-SXM")}
    assert rows["fp32"].serving_decode_tokens_per_s is None and rows["int4"].serving_decode_tokens_per_s is None
    bf, f8 = rows["bf16"], rows["fp8"]
    # the per-operator step adds overheads to the same bytes: never faster than the roofline bound
    assert bf.serving_decode_tokens_per_s <= bf.decode_tokens_per_s
    assert f8.serving_decode_tokens_per_s <= f8.decode_tokens_per_s
    assert f8.serving_decode_tokens_per_s > bf.serving_decode_tokens_per_s
