"""A static scanner for pickles in model files: what a ``torch.load`` / ``pickle.load`` would import
and call, found without executing anything.

Pickle is a stack machine whose GLOBAL/STACK_GLOBAL/INST opcodes import any callable and whose
REDUCE/OBJ/NEWOBJ/BUILD opcodes call it: loading a pickle runs code (Python docs, "pickle:
Warning: The pickle module is not secure"). This scanner walks the opcodes with
``pickletools.genops`` (a decoder only) and runs a *symbolic* stack: strings, memo entries and
imported globals are tracked, everything else is an opaque value. So it

- resolves ``STACK_GLOBAL`` whose module and name come from the memo (``BINGET``), and flags a
  ``STACK_GLOBAL`` whose operands are not literal strings (a computed name) as critical;
- judges every import against an **allow-list** of what PyTorch, NumPy and ``collections`` need
  to rebuild tensors and containers (anything else is at least "high"), with a deny-list only to
  rank severity (``os.system``, ``builtins.eval``, ``subprocess`` ... are "critical");
- scans every pickle in a file (several are concatenated in legacy PyTorch files and in attacks
  that hide a second pickle after STOP), nested pickles carried as bytes or strings (depth 4),
  every ``*.pkl`` member of a zip checkpoint (PyTorch >= 1.6 format), and the object payload of
  ``.npy`` files saved with ``allow_pickle``;
- reports a malformed or truncated pickle as such (a loader's behaviour on it is undefined).

Severity: critical (a known code-execution gadget or an unresolvable import), high (an import
outside the allow-list), medium (an allowed import used in an unusual way, e.g. a nested
pickle), info. The verdict is ``unsafe`` with any critical or high finding, ``malformed`` when a
stream could not be decoded, else ``safe``. Nothing here imports the modules a pickle names.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from gpuinfra.errors import UserError

ALLOWED: dict[str, frozenset[str]] = {
    # PyTorch's tensor and storage rebuilding (torch/_utils.py, torch/storage.py, torch/_tensor.py)
    "torch._utils": frozenset(
        {
            "_rebuild_tensor",
            "_rebuild_tensor_v2",
            "_rebuild_tensor_v3",
            "_rebuild_parameter",
            "_rebuild_parameter_with_state",
            "_rebuild_qtensor",
            "_rebuild_sparse_tensor",
            "_rebuild_nested_tensor",
            "_rebuild_device_tensor_from_numpy",
            "_rebuild_wrapper_subclass",
            "_rebuild_meta_tensor_no_storage",
        }
    ),
    "torch._tensor": frozenset({"_rebuild_from_type_v2"}),
    "torch.nn.parameter": frozenset({"Parameter"}),
    "torch": frozenset(
        {
            "FloatStorage",
            "DoubleStorage",
            "HalfStorage",
            "BFloat16Storage",
            "LongStorage",
            "IntStorage",
            "ShortStorage",
            "CharStorage",
            "ByteStorage",
            "BoolStorage",
            "ComplexFloatStorage",
            "ComplexDoubleStorage",
            "QInt8Storage",
            "QUInt8Storage",
            "QInt32Storage",
            "UntypedStorage",
            "Size",
            "device",
            "float32",
            "float16",
            "bfloat16",
            "float64",
            "int64",
            "int32",
            "int16",
            "int8",
            "uint8",
            "bool",
            "float8_e4m3fn",
            "float8_e5m2",
            "per_tensor_affine",
            "per_channel_affine",
        }
    ),  # fmt: skip
    "torch.storage": frozenset({"UntypedStorage", "TypedStorage"}),
    "collections": frozenset({"OrderedDict", "defaultdict", "Counter", "deque"}),
    "builtins": frozenset(
        {
            "set",
            "frozenset",
            "slice",
            "range",
            "complex",
            "bytearray",
            "tuple",
            "list",
            "dict",
            "int",
            "float",
            "bool",
            "str",
            "bytes",
        }
    ),
    "__builtin__": frozenset({"set", "frozenset", "slice", "complex", "bytearray"}),
    "_codecs": frozenset({"encode"}),
    "copyreg": frozenset({"_reconstructor"}),
    "copy_reg": frozenset({"_reconstructor"}),
    "numpy": frozenset(
        {"ndarray", "dtype", "float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool_"}
    ),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy.dtypes": frozenset(
        {"Float32DType", "Float64DType", "Float16DType", "Int64DType", "Int32DType", "UInt8DType", "BoolDType"}
    ),
    "argparse": frozenset({"Namespace"}),
}
"""What a model checkpoint legitimately imports (PyTorch, NumPy, containers). Anything else is
reported; a project may widen it with ``extra_allowed``."""

DANGEROUS_MODULES = frozenset(
    {
        "os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "runpy", "importlib", "pickle", "_pickle",
        "marshal", "types", "ctypes", "webbrowser", "pty", "code", "codeop", "commands", "multiprocessing",
        "asyncio", "signal", "tempfile", "zipimport", "pip", "requests", "urllib", "urllib2", "http", "httplib",
        "ftplib", "smtplib", "telnetlib", "platform", "inspect", "pydoc", "timeit", "bdb", "pdb", "trace",
        "cProfile", "profile", "dill", "cloudpickle", "joblib", "torch.hub", "torch.serialization", "torch.jit",
        "torch._C", "numpy.testing", "operator", "functools", "gc", "threading", "_thread", "sqlite3", "io",
    }
)  # fmt: skip
"""Modules whose callables are known code-execution or file/network gadgets (ranks severity only)."""

DANGEROUS_BUILTINS = frozenset(
    {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals", "vars",
     "breakpoint", "input", "apply", "execfile", "file", "reload", "memoryview", "type", "object", "super"}
)  # fmt: skip

MAX_NESTING = 4
STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
BYTES_OPS = {"SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8"}
CALL_OPS = {"REDUCE", "OBJ", "NEWOBJ", "NEWOBJ_EX", "INST", "BUILD"}


@dataclass(frozen=True)
class Finding:
    severity: str
    """critical, high, medium or info."""
    kind: str
    """import, computed-import, nested-pickle, malformed, ext-registry, trailing-data."""
    what: str
    """The global (``module.name``) or a short description."""
    where: str
    """Member and byte offset: ``archive/data.pkl@123``."""
    message: str


@dataclass
class ScanResult:
    path: str
    pickles: int = 0
    """Pickle streams decoded (top-level and nested)."""
    members: list[str] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)
    """Every import seen, in order, deduplicated."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        sev = {f.severity for f in self.findings}
        if sev & {"critical", "high"}:
            return "unsafe"
        if any(f.kind == "malformed" for f in self.findings):
            return "malformed"
        return "safe"

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "pickles": self.pickles,
            "members": self.members,
            "globals": self.globals,
            "findings": [f.__dict__ for f in self.findings],
        }


class _Str(str):
    """A literal string on the symbolic stack."""


class _Global:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_MARK = object()
_ANY = object()


def classify(module: str, name: str, extra_allowed: dict[str, set[str]] | None = None) -> str | None:
    """Severity of importing ``module.name``: None when allowed, else critical/high."""
    allowed = ALLOWED.get(module, frozenset()) | frozenset((extra_allowed or {}).get(module, ()))
    if name in allowed:
        return None
    parts = module.split(".")
    if any(".".join(parts[:k]) in DANGEROUS_MODULES for k in range(1, len(parts) + 1)):
        return "critical"
    if module in ("builtins", "__builtin__") and name in DANGEROUS_BUILTINS:
        return "critical"
    return "high"


class _Scanner:
    def __init__(self, res: ScanResult, extra_allowed: dict[str, set[str]] | None) -> None:
        self.res = res
        self.extra = extra_allowed

    def _import(self, module: str, name: str, where: str, via: str) -> _Global:
        full = f"{module}.{name}"
        if full not in self.res.globals:
            self.res.globals.append(full)
        sev = classify(module, name, self.extra)
        if sev:
            self.res.findings.append(
                Finding(
                    sev,
                    "import",
                    full,
                    where,
                    f"{via} imports {full}, which is not on the allow-list"
                    + (" and is a known code-execution gadget" if sev == "critical" else ""),
                )
            )
        return _Global(full)

    def scan_stream(self, data: bytes, member: str, depth: int = 0) -> None:
        """Scan every pickle in ``data`` (several may follow one another)."""
        pos = 0
        while pos < len(data):
            if depth == 0 and pos > 0 and not data[pos:].strip(b"\x00\n\r "):
                return
            end = self._one(data, pos, member, depth)
            if end is None:
                return
            if end < len(data) and depth == 0 and pos == 0 and data[end : end + 1] not in (b"\x80", b"("):
                # bytes after STOP that are not another pickle: legacy files end this way; note it
                self.res.findings.append(
                    Finding(
                        "info",
                        "trailing-data",
                        f"{len(data) - end} bytes",
                        f"{member}@{end}",
                        "data after the last STOP opcode",
                    )
                )
                return
            pos = end

    def _one(self, data: bytes, start: int, member: str, depth: int) -> int | None:
        stack: list = []
        memo: dict = {}
        self.res.pickles += 1
        f = io.BytesIO(data)
        f.seek(start)
        last = start
        try:
            for op, arg, pos in pickletools.genops(f):
                last = pos if pos is not None else last
                where = f"{member}@{pos}"
                n = op.name
                if n == "PROTO" and not 0 <= int(arg) <= 5:
                    raise ValueError(f"protocol {arg}")
                if n in STRING_OPS:
                    stack.append(_Str(arg))
                    self._maybe_nested(arg.encode("latin-1", "ignore") if isinstance(arg, str) else arg, where, depth)
                elif n in BYTES_OPS:
                    stack.append(_ANY)
                    self._maybe_nested(bytes(arg), where, depth)
                elif n == "MARK":
                    stack.append(_MARK)
                elif n == "MEMOIZE":
                    memo[len(memo)] = stack[-1] if stack else _ANY
                elif n in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg)] = stack[-1] if stack else _ANY
                elif n in ("GET", "BINGET", "LONG_BINGET"):
                    stack.append(memo.get(int(arg), _ANY))
                elif n in ("GLOBAL", "INST"):
                    module, name = str(arg).split(" ", 1) if " " in str(arg) else (str(arg), "")
                    g = self._import(module, name, where, n)
                    if n == "INST":
                        self._pop_mark(stack)
                    stack.append(g if n == "GLOBAL" else _ANY)
                elif n == "STACK_GLOBAL":
                    name = stack.pop() if stack else _ANY
                    module = stack.pop() if stack else _ANY
                    if isinstance(module, _Str) and isinstance(name, _Str):
                        stack.append(self._import(str(module), str(name), where, "STACK_GLOBAL"))
                    else:
                        self.res.findings.append(
                            Finding(
                                "critical",
                                "computed-import",
                                "STACK_GLOBAL",
                                where,
                                "STACK_GLOBAL's module or name is computed at load time, "
                                "not a literal: what it imports cannot be known statically",
                            )
                        )
                        stack.append(_Global("<computed>"))
                elif n in ("EXT1", "EXT2", "EXT4"):
                    self.res.findings.append(
                        Finding(
                            "critical",
                            "ext-registry",
                            f"extension code {arg}",
                            where,
                            "imports through copyreg's extension registry, which the loader's "
                            "process defines: unresolvable statically",
                        )
                    )
                    stack.append(_ANY)
                elif n == "STOP":
                    return f.tell()
                else:
                    self._generic(op, stack)
        except Exception as e:  # noqa: BLE001 - any decoding failure is a finding, never a crash
            self.res.findings.append(
                Finding(
                    "medium",
                    "malformed",
                    type(e).__name__,
                    f"{member}@{last}",
                    f"the pickle stream cannot be decoded ({e}); a loader's behaviour on it is undefined",
                )
            )
            return None
        self.res.findings.append(
            Finding("medium", "malformed", "no STOP", f"{member}@{last}", "the pickle ends without STOP (truncated)")
        )
        return None

    @staticmethod
    def _pop_mark(stack: list) -> None:
        while stack:
            if stack.pop() is _MARK:
                return

    def _generic(self, op, stack: list) -> None:
        before = op.stack_before
        if pickletools.markobject in before:
            self._pop_mark(stack)
            k = before.index(pickletools.markobject)  # items below the mark (APPENDS' list, SETITEMS' dict)
            for _ in range(k):
                if stack:
                    stack.pop()
        else:
            for _ in range(len(before)):
                if stack:
                    stack.pop()
        stack.extend([_ANY] * len(op.stack_after))

    def _maybe_nested(self, blob: bytes, where: str, depth: int) -> None:
        if len(blob) < 4 or blob[0] != 0x80 or blob[1] > 5 or not blob.rstrip().endswith(b"."):
            return
        if depth >= MAX_NESTING:
            self.res.findings.append(
                Finding(
                    "high",
                    "nested-pickle",
                    f"depth {depth + 1}",
                    where,
                    "pickles nested deeper than the scanner follows",
                )
            )
            return
        self.res.findings.append(
            Finding(
                "medium",
                "nested-pickle",
                f"{len(blob)} bytes",
                where,
                "a pickle carried as data inside the pickle (scanned too)",
            )
        )
        self.scan_stream(blob, f"{where}/nested", depth + 1)


def scan_bytes(data: bytes, label: str = "<bytes>", extra_allowed: dict[str, set[str]] | None = None) -> ScanResult:
    """Scan one pickle byte string (and whatever follows or nests in it)."""
    res = ScanResult(label, members=[label])
    _Scanner(res, extra_allowed).scan_stream(data, label)
    return res


MAX_MEMBER_BYTES = 1 << 30
"""A pickle member larger than this is refused rather than read. A checkpoint's pickle holds only
tensor metadata (storages are separate members), a few MiB even for 10^11 parameters."""
MAX_RATIO = 100
"""A pickle member above 64 MiB that inflates more than this is refused as a likely zip bomb."""


def _too_big(info: zipfile.ZipInfo) -> str | None:
    if info.file_size > MAX_MEMBER_BYTES:
        return f"pickle member of {info.file_size:,} bytes exceeds the {MAX_MEMBER_BYTES:,}-byte scan limit"
    if info.file_size > 64 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return (
            f"pickle member inflates {info.compress_size:,} -> {info.file_size:,} bytes "
            f"({info.file_size // max(info.compress_size, 1)}x): a likely zip bomb, not read"
        )
    return None


def pickle_free_format(p: Path, head: bytes) -> str | None:
    """The name of a weights format that holds no pickle, recognised by its first bytes: GGUF
    (magic ``GGUF``, ggml docs/gguf.md), safetensors (an 8-byte little-endian header length, then
    the JSON header's ``{``; huggingface/safetensors README) or ONNX (a protobuf, by its ``.onnx``
    suffix when the bytes do not open as a pickle, ``\\x80``). None: scan it as a pickle."""
    if head[:4] == b"GGUF":
        return "GGUF"
    if len(head) >= 9 and head[8:9] == b"{" and head[:1] != b"\x80":
        return "safetensors"
    if p.suffix == ".onnx" and head[:1] != b"\x80":
        return "ONNX"
    return None


def scan_path(path: str | Path, extra_allowed: dict[str, set[str]] | None = None) -> ScanResult:
    """Scan a file: a zip checkpoint (every ``*.pkl`` member), a ``.npy`` with an object payload,
    or a raw pickle. Raises UserError for a missing or unreadable file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(
            f"no such file: {p}", where=str(p), expected="a model file (.pt, .pth, .bin, .pkl, .ckpt, .npy)"
        )
    res = ScanResult(str(p))
    sc = _Scanner(res, extra_allowed)
    with open(p, "rb") as fh:
        head = fh.read(9)
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:
                for info in z.infolist():
                    if not info.filename.endswith(".pkl"):
                        continue
                    if info.file_size > MAX_MEMBER_BYTES:
                        res.findings.append(
                            Finding(
                                "high",
                                "malformed",
                                info.filename,
                                info.filename,
                                f"pickle member of {info.file_size} bytes exceeds the scan limit",
                            )
                        )
                        continue
                    res.members.append(info.filename)
                    sc.scan_stream(z.read(info), info.filename)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
            res.findings.append(Finding("high", "malformed", "zip", str(p), f"the zip archive is corrupt: {e}"))
        if not res.members:
            res.findings.append(Finding("info", "no-pickle", "zip", str(p), "no pickle member in the archive"))
        return res
    fmt = pickle_free_format(p, head)
    if fmt:
        res.members.append(p.name)
        res.findings.append(
            Finding("info", "no-pickle", fmt, str(p), f"a {fmt} file holds no pickle: loading it executes no code")
        )
        return res
    data = p.read_bytes()
    if head.startswith(b"\x93NUMPY"):
        hlen = int.from_bytes(data[8:10], "little") if data[6] == 1 else int.from_bytes(data[8:12], "little")
        off = 10 + hlen if data[6] == 1 else 12 + hlen
        header = data[off - hlen : off].decode("latin-1", "replace")
        res.members.append(p.name)
        if "'O'" in header or "|O" in header:
            sc.scan_stream(data[off:], f"{p.name}[object payload]")
        return res
    res.members.append(p.name)
    sc.scan_stream(data, p.name)
    return res
