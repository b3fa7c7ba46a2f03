"""What a model file holds, read without running it: safetensors, GGUF, ONNX and PyTorch checkpoints.

- **safetensors** (Hugging Face's format spec): an 8-byte little-endian header length, a JSON
  header (``dtype``, ``shape``, ``data_offsets`` per tensor, optional ``__metadata__``), then the
  raw bytes. Read by hand so that a header that lies (a length beyond the file, offsets outside
  the data, a byte count that disagrees with dtype x shape, overlapping tensors) is named exactly.
- **GGUF** (ggml's format): read with the ``gguf`` package (the format's reference reader):
  metadata keys (``general.architecture``, ``tokenizer.ggml.model`` ...) and tensor types.
- **ONNX**: read with ``onnx`` without external data: opset imports, graph inputs and outputs
  with their element types and shapes, initialisers, the operators the graph needs and any
  custom-op domains (which need a runtime that implements them); ``onnx.checker`` validates it.
- **PyTorch** zip checkpoints (``torch.save`` since 1.6): the pickle is *never* unpickled; the
  scanner (``io/pickle_scan``) judges it and its persistent ids ``('storage', torch.<T>Storage,
  key, location, numel)`` give each storage's dtype and size.

Memory to serve at each precision is parameters x bytes per parameter (fp32 4, bf16/fp16 2,
fp8/int8 1, int4 0.5 plus one fp16 scale per group of 128: 0.5 + 2/128; the group size is the
common GPTQ/AWQ default, an assumption stated here), weights only: KV cache and activations are
the serving model's to add.
"""

from __future__ import annotations

import json
import math
import pickletools
import re
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpuinfra.errors import UserError

SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "U16": 2, "U32": 4,
    "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}  # fmt: skip
"""Bytes per element of each safetensors dtype (the format's dtype list)."""

MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
"""The safetensors reference implementation refuses headers above 100 MB (a parsing-bomb guard)."""

TORCH_STORAGE_BYTES = {
    "FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
    "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
    "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "UntypedStorage": 1,
}  # fmt: skip

SERVE_BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5 + 2 / 128}

EXECUTES_CODE_ON_LOAD = {
    "safetensors": False,
    "gguf": False,
    "onnx": False,
    "pytorch": True,
    "pickle": True,
    "numpy": False,
}
"""Whether loading the format can run code: pickle-based formats can (torch.load without
weights_only=True unpickles); safetensors and GGUF are data only; ONNX is a graph, but custom-op
domains need native libraries a runtime loads (noted per file)."""


@dataclass
class Inspection:
    path: str
    format: str
    bytes: int
    parameters: int
    dtypes: dict[str, int]
    """Parameters by stored dtype."""
    tensors: int
    executes_code_on_load: bool
    assumptions: dict[str, object] = field(default_factory=dict)
    """What the file requires of its runtime: opset, operators, architecture, tokenizer ..."""
    metadata: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def serve_bytes(self) -> dict[str, int]:
        """Weights' memory to serve at each precision, bytes."""
        return {p: int(math.ceil(self.parameters * b)) for p, b in SERVE_BYTES_PER_PARAM.items()}

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["serve_bytes"] = self.serve_bytes
        return d


def _bad(path: Path, what: str, fix: str = "re-export or re-download the file") -> UserError:
    return UserError(what, where=str(path), fix=fix)


def detect(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:4] == b"GGUF":
        return "gguf"
    if head[:2] == b"PK":
        return "pytorch"
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        return "safetensors"
    if head[:1] == b"\x80" or path.suffix in (".pkl", ".pickle"):
        return "pickle"
    raise _bad(path, "not a recognised model file", "give a .safetensors, .gguf, .onnx or PyTorch .pt/.pth/.bin file")


def inspect(path: str | Path) -> Inspection:
    """Inspect a model file. Raises UserError for a missing, truncated, corrupt or lying file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no such file: {p}", where=str(p), expected="a model file")
    fmt = detect(p)
    return {"safetensors": _safetensors, "gguf": _gguf, "onnx": _onnx, "pytorch": _torch_zip, "pickle": _pickle}[fmt](p)


MAX_SAFETENSORS_NESTING = 8
"""Deepest JSON nesting accepted in a safetensors header. The format's header is an object of
tensors, each an object whose ``shape`` and ``data_offsets`` are lists of integers, plus a
``__metadata__`` object of strings (huggingface/safetensors README, "Format"): 3 levels; 8 leaves room
and still refuses a hostile header long before Python's recursion limit."""

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_nesting(text: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (brackets inside strings not counted);
    linear in the length, with no recursion."""
    bare = np.frombuffer(_JSON_STRING.sub(b'""', text), dtype=np.uint8)
    if not len(bare):
        return 0
    step = np.isin(bare, (ord("["), ord("{"))).astype(np.int64) - np.isin(bare, (ord("]"), ord("}")))
    return int(max(0, np.cumsum(step).max()))


def read_safetensors_header(p: Path) -> tuple[dict, int]:
    """The parsed JSON header and the offset where tensor data starts; every lie named."""
    size = p.stat().st_size
    with open(p, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise _bad(p, f"safetensors file of {size} bytes has no 8-byte header length")
        n = struct.unpack("<Q", raw)[0]
        if n > MAX_SAFETENSORS_HEADER:
            raise _bad(p, f"safetensors header claims {n} bytes, above the format's 100 MB limit")
        if 8 + n > size:
            raise _bad(p, f"safetensors header claims {n} bytes but the file has only {size - 8} after the length")
        text = fh.read(n)
    depth = json_nesting(text)
    if depth > MAX_SAFETENSORS_NESTING:
        raise _bad(
            p,
            f"safetensors header nests {depth} levels of [ or {{, above the {MAX_SAFETENSORS_NESTING} a header can "
            "need (object > tensor > shape list)",
        )
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(p, f"safetensors header is not valid UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise _bad(p, "safetensors header is not a JSON object")
    return header, 8 + n


def _safetensors(p: Path) -> Inspection:
    header, start = read_safetensors_header(p)
    data_len = p.stat().st_size - start
    meta = header.pop("__metadata__", {}) or {}
    dtypes: Counter = Counter()
    spans = []
    params = 0
    for name, t in header.items():
        if not isinstance(t, dict) or not {"dtype", "shape", "data_offsets"} <= set(t):
            raise _bad(p, f"tensor '{name}' lacks dtype, shape or data_offsets")
        dt, shape, (a, b) = t["dtype"], t["shape"], t["data_offsets"]
        if dt not in SAFETENSORS_DTYPE_BYTES:
            raise _bad(p, f"tensor '{name}' has unknown dtype '{dt}'")
        if not all(isinstance(x, int) and x >= 0 for x in (*shape, a, b)) or b < a:
            raise _bad(p, f"tensor '{name}' has a negative or non-integer shape or offset")
        n = math.prod(shape)
        want = math.ceil(n * SAFETENSORS_DTYPE_BYTES[dt])
        if b - a != want:
            raise _bad(p, f"tensor '{name}': {dt} x {shape} is {want} bytes but its offsets span {b - a}")
        if b > data_len:
            raise _bad(p, f"tensor '{name}' ends at byte {b} of a data section of {data_len} bytes (truncated?)")
        spans.append((a, b, name))
        dtypes[dt] += n
        params += n
    spans.sort()
    for (_, b1, n1), (a2, _, n2) in zip(spans, spans[1:]):
        if a2 < b1:
            raise _bad(p, f"tensors '{n1}' and '{n2}' overlap in the data section")
    assumptions: dict[str, object] = {}
    cfg = p.parent / "config.json"
    if cfg.is_file():
        try:
            c = json.loads(cfg.read_text())
            assumptions["architecture"] = (c.get("architectures") or [c.get("model_type")])[0]
            assumptions["torch_dtype"] = c.get("torch_dtype")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError):
            assumptions["config_json"] = "present but not readable JSON"
    for tok in ("tokenizer.json", "tokenizer.model"):
        if (p.parent / tok).is_file():
            assumptions["tokenizer"] = tok
    return Inspection(
        str(p),
        "safetensors",
        p.stat().st_size,
        params,
        dict(dtypes),
        len(header),
        False,
        assumptions,
        {str(k): v for k, v in meta.items()},
    )


def _gguf(p: Path) -> Inspection:
    try:
        from gguf import GGUFReader

        r = GGUFReader(str(p))
        fields = {}
        for k, f in r.fields.items():
            if k.startswith("tokenizer.ggml.") and k not in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
                continue  # vocabularies: large and not needed here
            try:
                v = f.contents()
            except Exception:  # noqa: BLE001 - a field the reader cannot render is skipped, not fatal
                continue
            fields[k] = v if not isinstance(v, list) or len(v) <= 16 else f"<{len(v)} values>"
        dtypes: Counter = Counter()
        params = 0
        for t in r.tensors:
            n = int(t.n_elements)
            dtypes[t.tensor_type.name] += n
            params += n
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the reader raises many types on corrupt files
        raise _bad(p, f"GGUF file cannot be read ({type(e).__name__}: {e})") from None
    assumptions = {
        "architecture": fields.get("general.architecture"),
        "tokenizer": fields.get("tokenizer.ggml.model"),
        "file_type": fields.get("general.file_type"),
        "quantization_version": fields.get("general.quantization_version"),
    }
    return Inspection(
        str(p),
        "gguf",
        p.stat().st_size,
        params,
        dict(dtypes),
        len(r.tensors),
        False,
        {k: v for k, v in assumptions.items() if v is not None},
        {k: v for k, v in fields.items() if isinstance(v, (str, int, float, bool))},
    )


def _onnx(p: Path) -> Inspection:
    try:
        import onnx

        m = onnx.load(str(p), load_external_data=False)
        onnx.checker.check_model(m)
    except ImportError as e:
        raise UserError("reading ONNX needs the onnx package", fix="pip install onnx") from e
    except Exception as e:  # noqa: BLE001 - protobuf and checker errors come in many types
        raise _bad(p, f"ONNX model cannot be read or is invalid ({type(e).__name__}: {str(e)[:200]})") from None
    dtypes: Counter = Counter()
    params = 0
    external = 0
    for init in m.graph.initializer:
        n = math.prod(init.dims) if init.dims else 1
        dtypes[onnx.TensorProto.DataType.Name(init.data_type)] += n
        params += n
        external += init.data_location == onnx.TensorProto.EXTERNAL

    def _io(v):
        tt = v.type.tensor_type
        return {
            "name": v.name,
            "dtype": onnx.TensorProto.DataType.Name(tt.elem_type),
            "shape": [d.dim_param or d.dim_value for d in tt.shape.dim],
        }

    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in m.graph.node})
    custom = sorted({d for d, _ in ops if d not in ("ai.onnx", "ai.onnx.ml", "com.microsoft")})
    opsets = {(o.domain or "ai.onnx"): o.version for o in m.opset_import}
    warnings = []
    if custom:
        warnings.append(f"custom-op domains {custom}: the runtime must load native code that implements them")
    if external:
        warnings.append(f"{external} initialisers are stored outside the file (external data)")
    return Inspection(
        str(p),
        "onnx",
        p.stat().st_size,
        params,
        dict(dtypes),
        len(m.graph.initializer),
        False,
        {
            "opset": opsets,
            "ir_version": m.ir_version,
            "operators": [f"{d}:{o}" for d, o in ops],
            "inputs": [_io(v) for v in m.graph.input],
            "outputs": [_io(v) for v in m.graph.output],
            "custom_domains": custom,
            "producer": f"{m.producer_name} {m.producer_version}".strip(),
        },
        {},
        warnings,
    )


def _storages_from_pickle(data: bytes) -> dict[str, tuple[str, int]]:
    """Persistent ids ('storage', torch.<T>Storage, key, location, numel) -> {key: (type, numel)},
    from the opcode stream alone."""
    out: dict[str, tuple[str, int]] = {}
    window: list = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in (
            "SHORT_BINUNICODE",
            "BINUNICODE",
            "BINUNICODE8",
            "UNICODE",
            "STRING",
            "BINSTRING",
            "SHORT_BINSTRING",
            "GLOBAL",
            "BININT",
            "BININT1",
            "BININT2",
            "LONG1",
            "INT",
            "LONG",
        ):
            window.append((op.name, arg))
            window = window[-5:]
        elif op.name == "BINPERSID" and len(window) == 5 and window[0][1] == "storage":
            typ = str(window[1][1]).split(" ")[-1] if window[1][0] == "GLOBAL" else str(window[1][1])
            out[str(window[2][1])] = (typ, int(window[4][1]))
            window = []
    return out


def _torch_zip(p: Path) -> Inspection:
    from gpuinfra.io.pickle_scan import scan_path

    scan = scan_path(p)
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            pkl = next((n for n in names if n.endswith("data.pkl")), None)
            if pkl is None:
                raise _bad(p, "zip file has no data.pkl: not a PyTorch checkpoint")
            from gpuinfra.io.pickle_scan import _too_big

            if (why := _too_big(z.getinfo(pkl))) is not None:
                raise _bad(p, why, "inspect the archive with `unzip -l`; a real checkpoint's data.pkl is small")
            data = z.read(pkl)
            prefix = pkl[: -len("data.pkl")]
            sizes = {n[len(prefix) + 5 :]: z.getinfo(n).file_size for n in names if n.startswith(prefix + "data/")}
    except zipfile.BadZipFile as e:
        raise _bad(p, f"corrupt zip archive ({e})") from None
    try:
        storages = _storages_from_pickle(data)
    except Exception as e:  # noqa: BLE001 - a truncated stream is a user-file problem
        raise _bad(p, f"the checkpoint's pickle cannot be decoded ({type(e).__name__}: {e})") from None
    dtypes: Counter = Counter()
    params = 0
    warnings = []
    for key, (typ, numel) in storages.items():
        per = TORCH_STORAGE_BYTES.get(typ)
        if per is None:
            warnings.append(f"storage {key}: unknown type {typ}")
            continue
        dtypes[typ.replace("Storage", "") or "Untyped(bytes)"] += numel  # untyped storages count bytes
        params += numel
        if key in sizes and sizes[key] != numel * per:
            warnings.append(f"storage {key}: {numel} x {per} bytes declared, {sizes[key]} stored")
    if scan.verdict != "safe":
        warnings.append(f"pickle scan: {scan.verdict} ({len(scan.findings)} findings; run `gpuinfra artifact scan`)")
    return Inspection(
        str(p),
        "pytorch",
        p.stat().st_size,
        params,
        dict(dtypes),
        len(storages),
        True,
        {"pickle_globals": scan.globals, "pickle_verdict": scan.verdict},
        {},
        warnings,
    )


def _pickle(p: Path) -> Inspection:
    from gpuinfra.io.pickle_scan import scan_path

    scan = scan_path(p)
    return Inspection(
        str(p),
        "pickle",
        p.stat().st_size,
        0,
        {},
        0,
        True,
        {"pickle_globals": scan.globals, "pickle_verdict": scan.verdict},
        {},
        [f"pickle scan: {scan.verdict}"] if scan.verdict != "safe" else [],
    )
