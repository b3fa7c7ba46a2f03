"""Reading a user's text file whatever editor or tool wrote it.

Kernel logs, ``nvidia-smi`` outputs and traces arrive as UTF-8 (with or without a byte-order
mark), or as UTF-16 when saved from Windows tools or PowerShell redirection (``>`` writes
UTF-16 LE with a BOM). Those are decoded by their BOM; anything that is none of these raises one
:class:`~gpuinfra.errors.UserError` naming the file and the first undecodable byte.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from gpuinfra.errors import UserError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE"),
)


def decode_text(data: bytes, label: str) -> str:
    """``data`` as text: UTF-8 or UTF-16 by BOM, else strict UTF-8.

    Raises UserError (naming ``label`` and the byte offset) for any other encoding."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as e:
                raise UserError(
                    f"starts with a {name} byte-order mark but byte {e.start} is not valid {name}",
                    where=label,
                    expected=f"a {name} text file",
                    fix="save the file again as UTF-8",
                ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} cannot be decoded",
            where=label,
            expected="UTF-8 (with or without BOM) or UTF-16 with a BOM",
            fix="convert it, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`, or save it as UTF-8",
        ) from None


def read_text(path: Path) -> str:
    """The text of ``path`` (see :func:`decode_text`). Raises UserError if it is missing, a
    directory or unreadable."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", where=str(path), fix="check the path")
    if path.is_dir():
        raise UserError("is a directory", where=str(path), expected="a text file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot be read ({e.strerror})", where=str(path)) from None
    return decode_text(data, str(path))
