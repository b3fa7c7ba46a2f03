"""Model files built here with numpy and the formats' own writers, inspected without running them;
files that lie about themselves are named exactly; supply-chain policy on a real directory."""

from __future__ import annotations

import json
import struct
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from gpuinfra.errors import UserError
from gpuinfra.io.artifact import inspect
from gpuinfra.io.supply_chain import MANIFEST, SIGNATURE, check_policy, keygen, make_manifest, sign
from tests.io.pickle_corpus import _tensor_pickle

W1 = np.arange(12, dtype=np.float32).reshape(3, 4)
B1 = np.ones(4, dtype=np.float16)


def _safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata={"format": "np"})
    return path


def test_safetensors_counts_parameters_and_serving_memory(tmp_path):
    p = _safetensors(tmp_path / "m.safetensors", {"w1": W1, "b1": B1})
    r = inspect(p)
    assert (r.format, r.parameters, r.tensors) == ("safetensors", 16, 2)
    assert r.dtypes == {"F32": 12, "F16": 4}
    assert r.serve_bytes["bf16"] == 32 and r.serve_bytes["int8"] == 16
    assert not r.executes_code_on_load


def _raw_safetensors(path, header: dict, data: bytes, claimed_len=None):
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", claimed_len if claimed_len is not None else len(h)) + h + data)
    return path


@pytest.mark.parametrize(
    "header,data,claimed,match",
    [
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, 1000, "file has only"),
        (
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "16 bytes but its offsets span 8",
        ),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, None, "truncated"),
        ({"w": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, None, "unknown dtype"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            None,
            "overlap",
        ),
        ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, None, "negative"),
    ],
)
def test_safetensors_headers_that_lie_are_named(tmp_path, header, data, claimed, match):
    p = _raw_safetensors(tmp_path / "x.safetensors", header, data, claimed)
    with pytest.raises(UserError, match=match):
        inspect(p)


def test_onnx_graph_assumptions(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(W1, "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])],
        [w],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    p = tmp_path / "m.onnx"
    onnx.save(m, str(p))
    r = inspect(p)
    assert r.parameters == 12 and r.assumptions["opset"] == {"ai.onnx": 17}
    assert r.assumptions["operators"] == ["ai.onnx:MatMul", "ai.onnx:Relu"]
    assert r.assumptions["inputs"][0]["shape"] == ["batch", 3]


def test_gguf_metadata_and_types(tmp_path):
    gguf = pytest.importorskip("gguf")
    p = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_tensor("w1", W1)
    w.add_tensor("b1", B1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = inspect(p)
    assert r.format == "gguf" and r.parameters == 16
    assert r.assumptions["architecture"] == "llama"
    assert r.dtypes == {"F32": 12, "F16": 4}


def test_pytorch_zip_checkpoint_read_without_unpickling(tmp_path):
    p = tmp_path / "m.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("archive/data.pkl", _tensor_pickle())
        z.writestr("archive/data/0", b"\0" * 16)
    r = inspect(p)
    assert r.format == "pytorch" and r.executes_code_on_load
    assert r.parameters == 4 and r.dtypes == {"Float": 4}
    assert r.assumptions["pickle_verdict"] == "safe"


def test_truncated_and_garbage_files_are_user_errors(tmp_path):
    p = tmp_path / "m.safetensors"
    p.write_bytes(b"\x05\x00")
    with pytest.raises(UserError):
        inspect(p)
    q = tmp_path / "m.gguf"
    q.write_bytes(b"GGUF" + b"\xff" * 40)
    with pytest.raises(UserError):
        inspect(q)
    o = tmp_path / "m.onnx"
    o.write_bytes(b"\x08\x07garbage")
    with pytest.raises(UserError):
        inspect(o)


def _model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    _safetensors(d / "model.safetensors", {"w1": W1})
    with zipfile.ZipFile(d / "extra.pt", "w") as z:
        z.writestr("archive/data.pkl", _tensor_pickle())
    return d


def test_manifest_is_deterministic_and_policy_admits_a_signed_directory(tmp_path):
    d = _model_dir(tmp_path)
    assert make_manifest(d, {"source": "x"}) == make_manifest(d, {"source": "x"})
    (d / MANIFEST).write_bytes(make_manifest(d, {"source": "x"}))
    priv, pub = keygen()
    (tmp_path / "k.key").write_bytes(priv)
    (tmp_path / "k.pub").write_bytes(pub)
    (d / SIGNATURE).write_bytes(sign((d / MANIFEST).read_bytes(), tmp_path / "k.key"))
    assert check_policy(d, tmp_path / "k.pub").ok


def test_policy_refuses_unsigned_tampered_and_unsafe(tmp_path):
    d = _model_dir(tmp_path)
    assert not check_policy(d, None).ok  # no manifest
    (d / MANIFEST).write_bytes(make_manifest(d))
    r = check_policy(d, None)
    assert not r.ok and any("public key" in x for x in r.reasons)
    assert check_policy(d, None, require_signature=False).ok
    (d / "model.safetensors").write_bytes(b"changed")
    assert any("differ" in x for x in check_policy(d, None, require_signature=False).reasons)
    (d / "evil.pkl").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    reasons = check_policy(d, None, require_signature=False).reasons
    assert any("evil.pkl" in x and "not in the manifest" in x for x in reasons)


def test_cli_artifact_and_compat(tmp_path):
    from gpuinfra.cli import app

    p = _safetensors(tmp_path / "m.safetensors", {"w1": W1})
    run = CliRunner().invoke
    r = run(app, ["artifact", "inspect", str(p), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["parameters"] == 12
    (tmp_path / "e.pkl").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    r = run(app, ["artifact", "scan", str(tmp_path / "e.pkl")])
    assert r.exit_code == 1 and "os.system" in r.stdout
    r = run(app, ["compat", "check", "--gpu", "V100", "--driver", "580.65.06", "--cuda", "13.0", "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["verdict"] == "refuse"
    r = run(app, ["compat", "upgrades", "--gpu", "H100", "--driver", "580.65.06", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)


def test_roundtrip_formats_agree_within_roundoff_bounds(tmp_path):
    pytest.importorskip("onnxruntime")
    from gpuinfra.io.artifact_roundtrip import UNIT_ROUNDOFF, run

    r = run(tmp_path, seed=3)
    by = {(x.format, x.precision): x for x in r.rows}
    # fp32 in every format reproduces the float64 reference to fp32 roundoff
    for f in ("safetensors", "gguf", "onnx"):
        assert by[(f, "fp32")].ok and by[(f, "fp32")].max_rel_err < 100 * UNIT_ROUNDOFF["fp32"]
    # halving the bytes costs accuracy: fp16 error is above fp32's and within its own bound
    assert by[("onnx", "fp16")].max_rel_err > by[("onnx", "fp32")].max_rel_err and by[("onnx", "fp16")].ok
    assert by[("safetensors", "fp16")].bytes < by[("safetensors", "fp32")].bytes
    # bf16 is stored as bf16 (2 bytes a weight), readable by the reference library and our inspector
    assert by[("safetensors", "bf16")].bytes == by[("safetensors", "fp16")].bytes and by[("gguf", "bf16")].ok
    assert set(inspect(tmp_path / "mlp-bf16.safetensors").dtypes) == {"BF16"}
    # a newer opset than the runtime knows is refused by the runtime, and recorded, not raised
    assert any("opset" in b["what"] for b in r.breaks)
    # same seed, same files
    r2 = run(tmp_path / "again", seed=3)
    assert (tmp_path / "mlp-fp16.safetensors").read_bytes() == (
        tmp_path / "again" / "mlp-fp16.safetensors"
    ).read_bytes()
    assert [x.max_rel_err for x in r.rows] == [x.max_rel_err for x in r2.rows]
