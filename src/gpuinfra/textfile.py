"""Reading a user's text file whatever wrote it: bounded size, and one encoding rule for every reader.

Kernel logs, ``nvidia-smi`` outputs, traces, scenarios and memory traces all come through here.

UTF-8 (a leading BOM is dropped) is read as is; UTF-16 and UTF-32 are decoded when the file
starts with their byte-order mark (what Windows editors and PowerShell's ``>`` write); anything
else (latin-1, cp1252, binary) is refused with one message naming the file, the line and the
byte, instead of a ``UnicodeDecodeError`` or silently replaced characters.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from gpuinfra.errors import UserError

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Default bound for a configuration file: a scenario or design is a page of YAML, 4 MiB leaves
three orders of magnitude."""

MAX_LOG_BYTES = 2 * 1024**3
"""Bound for logs and tool outputs (a kernel log of a long-lived node): 2 GiB, well under memory."""


def decode_text(data: bytes, label: str) -> str:
    """Decode a file's bytes: UTF-8 (a BOM is dropped), or UTF-16/UTF-32 when the file starts with
    their byte-order mark. Anything else raises :class:`UserError` naming the file and the line
    and byte that cannot be decoded."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        enc, body = "utf-32", data
    elif data.startswith(codecs.BOM_UTF8):
        enc, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc, body = "utf-16", data
    else:
        enc, body = "utf-8", data
    if enc == "utf-8" and b"\x00" in body:
        line = body[: body.index(b"\x00")].count(b"\n") + 1
        raise UserError(
            "the file holds NUL bytes: binary data, or UTF-16 text without a byte-order mark",
            where=f"{label}:{line}",
            expected="UTF-8 text (with or without a BOM), or UTF-16 with a BOM",
            fix="save the file as UTF-8",
        )
    try:
        return body.decode(enc)
    except UnicodeDecodeError as e:
        line = body[: e.start].count(b"\n") + 1 if enc == "utf-8" else None
        byte = body[e.start : e.start + 1].hex()
        raise UserError(
            f"not {enc.upper()} text: "
            f"{f'byte 0x{byte} at offset {e.start + len(data) - len(body)}' if byte else 'the end of the file'} "
            f"cannot be decoded ({e.reason})",
            where=f"{label}:{line}" if line else label,
            expected="UTF-8 text (with or without a BOM), or UTF-16 with a BOM",
            fix="save the file as UTF-8 (for example `iconv -f latin1 -t utf-8 FILE > NEW`)",
        ) from None


def read_text_file(path: str | Path, label: str | None = None, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a text input file: exists, is a file, at most ``max_bytes``, decodable (:func:`decode_text`)."""
    p = Path(path)
    label = label or str(path)
    if not p.exists():
        raise UserError("file not found", where=label, fix="check the path")
    if not p.is_file():
        raise UserError("not a file", where=label, expected="a path to a file, not a directory")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise UserError(
                f"file is {size:,} bytes", where=label, expected=f"at most {max_bytes:,} bytes for this kind of file"
            )
        data = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read file ({e.strerror or e})", where=label) from None
    return decode_text(data, label)


def read_text(path: str | Path) -> str:
    """A log or tool output (kernel log, ``nvidia-smi`` output, trace): :func:`read_text_file`
    with the larger :data:`MAX_LOG_BYTES` bound."""
    return read_text_file(path, max_bytes=MAX_LOG_BYTES)
