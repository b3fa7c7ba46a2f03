"""One model, several formats: write a small MLP as safetensors, GGUF and ONNX at several precisions,
load each back with the format's own library, run it, and compare with the fp32 reference.

The model is ``y = relu(x W1 + b1) W2 + b2`` with weights drawn from the run's seeded stream
(``Rngs(seed).stream("artifact")``), so every run is the same bytes. The reference forward pass is
NumPy in float64. ONNX graphs run in onnxruntime (CPU); safetensors and GGUF tensors are loaded
with their libraries and run in NumPy at the stored precision (upcast for the matmul, as CPU
kernels do).

What it shows, from the run itself:
- size on disk per format and precision, and load time (wall clock of the load call only);
- the output error per precision against fp32 (max abs and max relative), each checked against a
  tolerance derived from the format's unit roundoff: 2^-11 for fp16, 2^-8 for bf16 (IEEE 754 /
  bfloat16 definitions), times a safety factor for the two matmuls' accumulated error, stated
  beside the number;
- what breaks: a graph whose opset is newer than the runtime supports, and a dtype a runtime has
  no kernel for, each captured as the runtime's own error text rather than crashing the run.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpuinfra.rng import Rngs

UNIT_ROUNDOFF = {"fp32": 2.0**-24, "fp16": 2.0**-11, "bf16": 2.0**-8}
"""Half the spacing of floating-point numbers near 1 (IEEE 754 binary32/binary16; bfloat16 has 8
significand bits)."""
ERROR_FACTOR = 32 + 64 + 4
"""Tolerance = unit roundoff x this: the worst-case relative error of a dot product of length n is
about n x u (Higham, Accuracy and Stability of Numerical Algorithms, 3.1); the chain has dot
products of length 32 (d_in) and 64 (hidden) plus about 4 roundings of weights, inputs and
activations. A worst-case bound: typical errors are far smaller (the run shows both)."""


@dataclass
class Row:
    format: str
    precision: str
    bytes: int
    load_s: float
    max_abs_err: float | None
    max_rel_err: float | None
    tolerance: float | None
    ok: bool
    note: str = ""


@dataclass
class Roundtrip:
    rows: list[Row] = field(default_factory=list)
    breaks: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"rows": [r.__dict__ for r in self.rows], "breaks": self.breaks}


def make_model(seed: int = 0, d_in: int = 32, hidden: int = 64, d_out: int = 16) -> dict[str, np.ndarray]:
    rng = Rngs(seed).stream("artifact")
    s1, s2 = 1 / np.sqrt(d_in), 1 / np.sqrt(hidden)
    return {
        "w1": (rng.standard_normal((d_in, hidden)) * s1).astype(np.float32),
        "b1": (rng.standard_normal(hidden) * 0.1).astype(np.float32),
        "w2": (rng.standard_normal((hidden, d_out)) * s2).astype(np.float32),
        "b2": (rng.standard_normal(d_out) * 0.1).astype(np.float32),
    }


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    f = {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}
    h = np.maximum(x.astype(np.float64) @ f["w1"] + f["b1"], 0.0)
    return h @ f["w2"] + f["b2"]


def _bf16(a: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16, kept in float32 (the upper 16 bits)."""
    u = a.astype(np.float32).view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return r.view(np.float32)


def _bits_bf16(a: np.ndarray) -> np.ndarray:
    """The bfloat16 bit patterns (uint16) of values already rounded to bfloat16."""
    return (a.astype(np.float32).view(np.uint32) >> 16).astype("<u2")


def _widen_bf16(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _safetensors_bf16(p: dict[str, np.ndarray]) -> bytes:
    """A safetensors file with BF16 tensors, per the format: header length (u64 LE), JSON header
    padded with spaces to 8 bytes, then the tensors' bytes in header order."""
    header: dict = {}
    blobs, off = [], 0
    for k in sorted(p):
        b = _bits_bf16(p[k]).tobytes()
        header[k] = {"dtype": "BF16", "shape": list(p[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def _cast(p: dict[str, np.ndarray], precision: str) -> dict[str, np.ndarray]:
    if precision == "fp16":
        return {k: v.astype(np.float16) for k, v in p.items()}
    if precision == "bf16":
        return {k: _bf16(v) for k, v in p.items()}
    return dict(p)


def _err(ref: np.ndarray, y: np.ndarray, precision: str) -> tuple[float, float, float, bool]:
    abs_err = float(np.max(np.abs(y - ref)))
    rel = float(abs_err / max(float(np.max(np.abs(ref))), 1e-30))
    tol = UNIT_ROUNDOFF[precision] * ERROR_FACTOR
    return abs_err, rel, tol, rel <= tol


def _onnx_model(p: dict[str, np.ndarray], precision: str, opset: int):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[precision]
    if precision == "bf16":
        inits = [
            helper.make_tensor(k, elem, v.shape, v.astype(np.float32).view(np.uint32) >> 16, raw=False)
            for k, v in p.items()
        ]
    else:
        inits = [numpy_helper.from_array(v, k) for k, v in p.items()]
    d_in, d_out = p["w1"].shape[0], p["w2"].shape[1]
    g = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h0"]),
            helper.make_node("Add", ["h0", "b1"], ["h1"]),
            helper.make_node("Relu", ["h1"], ["h2"]),
            helper.make_node("MatMul", ["h2", "w2"], ["y0"]),
            helper.make_node("Add", ["y0", "b2"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", elem, ["batch", d_in])],
        [helper.make_tensor_value_info("y", elem, ["batch", d_out])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="gpuinfra")
    m.ir_version = min(m.ir_version, 10)
    onnx.checker.check_model(m)
    return m


def run(out_dir: str | Path, seed: int = 0, batch: int = 8) -> Roundtrip:
    """Write, load, run and compare; files land in ``out_dir``."""
    import onnx
    import onnxruntime as ort
    import safetensors
    from safetensors.numpy import load_file, save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = make_model(seed)
    x = Rngs(seed).stream("artifact-input").standard_normal((batch, p["w1"].shape[0])).astype(np.float32)
    ref = forward(p, x)
    res = Roundtrip()
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    for prec in ("fp32", "fp16", "bf16"):
        q = _cast(p, prec)
        path = out / f"mlp-{prec}.safetensors"
        if prec == "bf16":
            # NumPy has no bfloat16: write the format by hand (8-byte header length, JSON header,
            # raw little-endian bfloat16 bits) and read it back with the reference library
            path.write_bytes(_safetensors_bf16(q))
            t0 = time.perf_counter()
            back = {
                name: _widen_bf16(np.frombuffer(bytes(t["data"]), "<u2")).reshape(t["shape"])
                for name, t in safetensors.deserialize(path.read_bytes())
            }
        else:
            save_file({k: np.ascontiguousarray(v) for k, v in q.items()}, str(path))
            t0 = time.perf_counter()
            back = load_file(str(path))
        dt = time.perf_counter() - t0
        a, r, tol, ok = _err(ref, forward(back, x), prec)
        res.rows.append(Row("safetensors", prec, path.stat().st_size, dt, a, r, tol, ok))
        import gguf

        path = out / f"mlp-{prec}.gguf"
        w = gguf.GGUFWriter(str(path), "mlp")
        for k, v in q.items():
            if prec == "bf16":
                w.add_tensor(k, _bits_bf16(v), raw_shape=v.shape, raw_dtype=gguf.GGMLQuantizationType.BF16)
            else:
                w.add_tensor(k, v)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        t0 = time.perf_counter()
        rd = gguf.GGUFReader(str(path))
        gp = {}
        for t in rd.tensors:
            shape = tuple(reversed([int(d) for d in t.shape]))
            arr = np.array(t.data)
            if prec == "bf16":
                arr = _widen_bf16(arr.view("<u2").reshape(-1))
            gp[t.name] = arr.reshape(shape)
        dt = time.perf_counter() - t0
        a, r, tol, ok = _err(ref, forward(gp, x), prec)
        res.rows.append(Row("gguf", prec, path.stat().st_size, dt, a, r, tol, ok))
        path = out / f"mlp-{prec}.onnx"
        onnx.save(_onnx_model(q, prec, 17), str(path))
        try:
            t0 = time.perf_counter()
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            dt = time.perf_counter() - t0
            xin = x.astype(np.float16) if prec == "fp16" else x
            y = sess.run(None, {"x": xin})[0].astype(np.float64)
            a, r, tol, ok = _err(ref, y, prec)
            res.rows.append(Row("onnx", prec, path.stat().st_size, dt, a, r, tol, ok))
        except Exception as e:  # noqa: BLE001 - a runtime without a kernel for a dtype is a finding
            res.rows.append(
                Row(
                    "onnx",
                    prec,
                    path.stat().st_size,
                    0.0,
                    None,
                    None,
                    None,
                    False,
                    "onnxruntime cannot run it (see breaks)",
                )
            )
            res.breaks.append({"what": f"ONNX {prec} graph on onnxruntime CPU", "error": str(e).splitlines()[0][:300]})
    # an opset newer than the runtime knows
    newest = onnx.defs.onnx_opset_version()
    path = out / "mlp-future-opset.onnx"
    m = _onnx_model(p, "fp32", newest)
    m.opset_import[0].version = newest + 5
    onnx.save(m, str(path))
    try:
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        res.breaks.append({"what": f"opset {newest + 5}", "error": "loaded (the runtime accepted it)"})
    except Exception as e:  # noqa: BLE001
        res.breaks.append(
            {
                "what": f"ONNX opset {newest + 5} (this onnx package knows {newest})",
                "error": str(e).splitlines()[0][:300],
            }
        )
    return res
