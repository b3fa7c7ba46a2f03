"""Supply chain of a model directory: a sha256 manifest, an Ed25519 signature over it, and a policy
that refuses what is unsigned, tampered with or unscanned.

- :func:`make_manifest` hashes every file (sha256, size), records its format, whether loading it
  can execute code (pickle-based formats can), the pickle scanner's verdict for those, and
  provenance fields the user supplies (source repository, revision, producer). The manifest is
  canonical JSON (sorted keys, no timestamps), so the same directory gives the same bytes.
- :func:`sign` / :func:`verify_signature` use Ed25519 (RFC 8032, via ``cryptography``) over the
  manifest's bytes, the scheme OpenSSF's model-signing uses with plain keys; keys are PEM files.
- :func:`check_policy` refuses a directory whose manifest is missing, unsigned (when a public
  key is required), does not match the files (changed, missing or extra), or lists a
  code-executing file that was not scanned or was found unsafe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gpuinfra.errors import UserError
from gpuinfra.io.manifest import sha256_file

MANIFEST = "gpuinfra-manifest.json"
SIGNATURE = "gpuinfra-manifest.sig"
SCHEMA = "gpuinfra.model-manifest/1"


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and p.name not in (MANIFEST, SIGNATURE))


def _format_of(p: Path) -> tuple[str, bool]:
    from gpuinfra.io.artifact import EXECUTES_CODE_ON_LOAD, detect

    try:
        fmt = detect(p)
    except UserError:
        return "other", False
    return fmt, EXECUTES_CODE_ON_LOAD.get(fmt, False)


def make_manifest(d: str | Path, provenance: dict[str, str] | None = None) -> bytes:
    """Canonical manifest bytes for directory ``d``. Raises UserError if it is not a directory."""
    from gpuinfra.io.pickle_scan import scan_path

    root = Path(d)
    if not root.is_dir():
        raise UserError(f"not a directory: {root}", where=str(root), expected="a model directory")
    files = {}
    for p in _files(root):
        fmt, executes = _format_of(p)
        entry = {"sha256": sha256_file(p), "bytes": p.stat().st_size, "format": fmt, "executes_code_on_load": executes}
        if executes:
            entry["pickle_scan"] = scan_path(p).verdict
        files[p.relative_to(root).as_posix()] = entry
    doc = {"schema": SCHEMA, "provenance": dict(sorted((provenance or {}).items())), "files": files}
    return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode()


def keygen() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


def _load_key(path: Path, private: bool):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    try:
        data = path.read_bytes()
        k = serialization.load_pem_private_key(data, None) if private else serialization.load_pem_public_key(data)
    except (OSError, ValueError, TypeError) as e:
        raise UserError(
            f"cannot read the {'private' if private else 'public'} key ({e})",
            where=str(path),
            expected="an Ed25519 PEM key from `gpuinfra artifact keygen`",
        ) from None
    if not isinstance(k, Ed25519PrivateKey if private else Ed25519PublicKey):
        raise UserError("not an Ed25519 key", where=str(path), expected="an Ed25519 PEM key")
    return k


def sign(manifest: bytes, private_key: Path) -> bytes:
    """Ed25519 signature (64 bytes) of the manifest bytes."""
    return _load_key(private_key, True).sign(manifest)


def verify_signature(manifest: bytes, signature: bytes, public_key: Path) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        _load_key(public_key, False).verify(signature, manifest)
        return True
    except InvalidSignature:
        return False


@dataclass
class PolicyResult:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    checked_files: int = 0


def check_policy(d: str | Path, public_key: Path | None = None, require_signature: bool = True) -> PolicyResult:
    """Refuse an unsigned, tampered or unscanned model directory (see the module docstring)."""
    from gpuinfra.io.pickle_scan import scan_path

    root = Path(d)
    if not root.is_dir():
        raise UserError(f"not a directory: {root}", where=str(root), expected="a model directory")
    reasons: list[str] = []
    mpath = root / MANIFEST
    if not mpath.is_file():
        return PolicyResult(
            False, [f"no {MANIFEST}: the directory was never inventoried (run `gpuinfra artifact manifest`)"]
        )
    raw = mpath.read_bytes()
    try:
        doc = json.loads(raw)
        files = doc["files"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        return PolicyResult(False, [f"{MANIFEST} is not a gpuinfra manifest"])
    if require_signature:
        spath = root / SIGNATURE
        if public_key is None:
            reasons.append("a signature is required but no public key was given (--public-key)")
        elif not spath.is_file():
            reasons.append(f"unsigned: no {SIGNATURE}")
        elif not verify_signature(raw, spath.read_bytes(), public_key):
            reasons.append("the signature does not match the manifest and key (tampered manifest or wrong key)")
    present = {p.relative_to(root).as_posix(): p for p in _files(root)}
    for rel, e in sorted(files.items()):
        p = present.pop(rel, None)
        if p is None:
            reasons.append(f"{rel}: listed in the manifest but missing")
        elif p.stat().st_size != e.get("bytes") or sha256_file(p) != e.get("sha256"):
            reasons.append(f"{rel}: contents differ from the manifest (sha256)")
        if e.get("executes_code_on_load"):
            verdict = e.get("pickle_scan")
            if verdict is None:
                reasons.append(f"{rel}: executes code on load and was never scanned")
            elif verdict != "safe":
                reasons.append(f"{rel}: pickle scan verdict '{verdict}'")
            elif p is not None and (now := scan_path(p).verdict) != "safe":  # the scan is re-done, not trusted
                reasons.append(f"{rel}: pickle scan verdict '{now}' now")
    for rel in sorted(present):
        reasons.append(f"{rel}: present but not in the manifest")
    return PolicyResult(not reasons, reasons, len(files))
