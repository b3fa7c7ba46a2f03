"""`gpuinfra artifact` (inspect, scan, manifest, keygen, sign, policy) and `gpuinfra compat` (check,
upgrades): parse, call the library, print. Exit codes: 0 fine, 1 a finding (unsafe pickle, refused
stack or policy), 2 bad input."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpuinfra.cli._common import _console
from gpuinfra.errors import UserError

out = _console(highlight=False, soft_wrap=True)
artifact_app = typer.Typer(
    help="Model files: what they hold, whether loading them runs code, their supply chain.", no_args_is_help=True
)
compat_app = typer.Typer(help="Driver / CUDA / PyTorch / GPU architecture compatibility.", no_args_is_help=True)


def _write_new(path: Path, data: bytes, force: bool, mode: int = 0o600) -> None:
    """Write ``data`` atomically (gpuinfra.io.atomic) with ``mode`` (0o600: keys, manifests and
    signatures stay private to the owner, as before); refuse to overwrite without ``force``."""
    from gpuinfra.io.atomic import check_output_file, write_bytes

    check_output_file(path, force=force, where=str(path))
    write_bytes(path, data, str(path), mode)


def _gib(b: float) -> str:
    """Bytes in the largest binary unit that keeps the figure at least 1 (KiB, MiB, GiB, TiB)."""
    for unit, k in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if b >= 2**k:
            return f"{b / 2**k:,.2f} {unit}"
    return f"{b:,.0f} bytes"


@artifact_app.command("inspect")
def inspect_cmd(
    file: Annotated[Path, typer.Argument(help="A .safetensors, .gguf, .onnx or PyTorch .pt/.pth/.bin file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Format, parameters, precision, memory to serve at each precision, and what the file assumes of
    its runtime (opset, operators, architecture, tokenizer), without executing it."""
    from gpuinfra.io.artifact import inspect

    r = inspect(file)
    if as_json:
        print(json.dumps(r.as_dict(), indent=1, default=str))
        return
    out.print(
        f"[bold]{escape(r.path)}[/]: {r.format}, {r.bytes:,} bytes, {r.tensors} tensors, {r.parameters:,} parameters"
    )
    out.print("stored as: " + escape(", ".join(f"{k} {v:,}" for k, v in r.dtypes.items()) or "-"))
    out.print(f"loading it {'[red]can execute code[/]' if r.executes_code_on_load else 'executes no code'}")
    t = Table("precision", "weights to serve", title="memory to serve (weights only)")
    for p, b in r.serve_bytes.items():
        t.add_row(p, _gib(b))
    out.print(t)
    for k, v in r.assumptions.items():
        out.print(f"  {escape(k)}: {escape(json.dumps(v, default=str)[:300])}")
    for w in r.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")


@artifact_app.command("scan")
def scan_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (scanned recursively).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    allow: Annotated[list[str], typer.Option("--allow", help="Extra allowed import, module.name (repeatable).")] = [],  # noqa: B006
) -> None:
    """Walk the pickles in model files without executing them; flag imports outside the allow-list.
    Exit 1 when any file is unsafe or malformed."""
    from gpuinfra.io.pickle_scan import scan_path

    extra: dict[str, set[str]] = {}
    for a in allow:
        mod, _, name = a.rpartition(".")
        if not mod or not name:
            raise UserError(
                f"'{a}' is not module.name", where="--allow", expected="e.g. sklearn.tree.DecisionTreeClassifier"
            )
        extra.setdefault(mod, set()).add(name)
        from gpuinfra.io.pickle_scan import classify

        if classify(mod, name) == "critical":
            from gpuinfra.cli._common import warn

            warn(f"--allow {a}: {a} is a known code-execution gadget; files importing it will be reported safe")
    files: list[Path] = []
    data_only: list[Path] = []
    for p in paths:
        if p.is_dir():
            data_only += sorted(
                q for q in p.rglob("*") if q.is_file() and q.suffix in (".safetensors", ".gguf", ".onnx")
            )
            files += sorted(
                q
                for q in p.rglob("*")
                if q.is_file() and q.suffix in (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".npy", ".joblib")
            )
        elif p.exists():
            files.append(p)
        else:
            raise UserError(f"no such file or directory: {p}", where=str(p))
    results = [scan_path(f, extra) for f in files]
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
    else:
        for r in results:
            colour = {"safe": "green", "unsafe": "red", "malformed": "yellow"}[r.verdict]
            free = [f.message for f in r.findings if f.kind == "no-pickle" and f.what != "zip"]
            what = free[0] if free else f"{r.pickles} pickle streams"
            out.print(f"[{colour}]{r.verdict}[/] {escape(r.path)} ({escape(what)})")
            for f in r.findings:
                if f.severity != "info":
                    out.print(f"  {f.severity}: {escape(f.what)} at {escape(f.where)}: {escape(f.message)}")
    bad = [r for r in results if r.verdict != "safe"]
    if data_only and not as_json:
        out.print(f"{len(data_only)} safetensors/GGUF/ONNX file(s) hold no pickle: loading them executes no code")
    if not files and not data_only:
        out.print("no model files found")
    raise typer.Exit(1 if bad else 0)


@artifact_app.command("roundtrip")
def roundtrip_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the model files are written.")],
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One small model as safetensors, GGUF and ONNX at fp32/fp16/bf16: sizes, load times, output
    error against fp32 with its tolerance, and what breaks (a dtype without kernels, a newer opset)."""
    from gpuinfra.io.artifact_roundtrip import run
    from gpuinfra.units import check_seed

    check_seed(seed)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file", where="--out", expected="a directory")
    r = run(out_dir, seed)
    if as_json:
        print(json.dumps(r.as_dict(), indent=1))
        return
    t = Table("format", "precision", "bytes", "load ms", "max rel. error", "tolerance", "ok", "note")
    for row in r.rows:
        t.add_row(
            row.format,
            row.precision,
            f"{row.bytes:,}",
            f"{row.load_s * 1e3:.2f}",
            "-" if row.max_rel_err is None else f"{row.max_rel_err:.2e}",
            "-" if row.tolerance is None else f"{row.tolerance:.1e}",
            "yes" if row.ok else "no",
            escape(row.note),
        )
    out.print(t)
    for b in r.breaks:
        out.print(f"[yellow]breaks:[/] {escape(b['what'])}: {escape(b['error'][:200])}")


@artifact_app.command("manifest")
def manifest_cmd(
    directory: Annotated[Path, typer.Argument(help="The model directory.")],
    source: Annotated[str, typer.Option(help="Provenance: where the files came from (repository URL).")] = "",
    revision: Annotated[str, typer.Option(help="Provenance: the revision (commit, tag).")] = "",
    producer: Annotated[str, typer.Option(help="Provenance: who or what produced the files.")] = "",
    force: Annotated[bool, typer.Option(help="Overwrite an existing manifest.")] = False,
) -> None:
    """Write gpuinfra-manifest.json: sha256 and size of every file, its format, whether loading it runs
    code and the pickle scan's verdict for those, and provenance."""
    from gpuinfra.io.supply_chain import MANIFEST, make_manifest

    prov = {k: v for k, v in (("source", source), ("revision", revision), ("producer", producer)) if v}
    data = make_manifest(directory, prov)
    _write_new(directory / MANIFEST, data, force)
    n = len(json.loads(data)["files"])
    out.print(f"wrote {escape(str(directory / MANIFEST))} ({n} files)")


@artifact_app.command("keygen")
def keygen_cmd(
    prefix: Annotated[Path, typer.Argument(help="Writes PREFIX.key (private) and PREFIX.pub.")],
    force: Annotated[bool, typer.Option()] = False,
) -> None:
    """A new Ed25519 key pair for signing manifests."""
    from gpuinfra.io.supply_chain import keygen

    priv, pub = keygen()
    _write_new(prefix.with_suffix(".key"), priv, force)
    os.chmod(prefix.with_suffix(".key"), 0o600)
    _write_new(prefix.with_suffix(".pub"), pub, force)
    out.print(f"wrote {escape(str(prefix.with_suffix('.key')))} and {escape(str(prefix.with_suffix('.pub')))}")


@artifact_app.command("sign")
def sign_cmd(
    directory: Annotated[Path, typer.Argument()],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM).")],
    force: Annotated[bool, typer.Option()] = False,
) -> None:
    """Sign the directory's manifest (gpuinfra-manifest.sig)."""
    from gpuinfra.io.supply_chain import MANIFEST, SIGNATURE, sign

    m = directory / MANIFEST
    if not m.is_file():
        raise UserError(
            f"no {MANIFEST} in {directory}", where=str(directory), fix="run `gpuinfra artifact manifest` first"
        )
    _write_new(directory / SIGNATURE, sign(m.read_bytes(), key), force)
    out.print(f"signed {escape(str(m))}")


@artifact_app.command("policy")
def policy_cmd(
    directory: Annotated[Path, typer.Argument()],
    public_key: Annotated[Path | None, typer.Option("--public-key", help="Ed25519 public key (PEM).")] = None,
    unsigned_ok: Annotated[bool, typer.Option("--unsigned-ok", help="Do not require a signature.")] = False,
) -> None:
    """Admit the directory only if it is signed, unchanged since its manifest, and every file that
    executes code on load was scanned safe. Exit 1 when refused."""
    from gpuinfra.io.supply_chain import check_policy

    r = check_policy(directory, public_key, require_signature=not unsigned_ok)
    if r.ok:
        out.print(f"[green]admitted[/] {escape(str(directory))} ({r.checked_files} files)")
        return
    out.print(f"[red]refused[/] {escape(str(directory))}:")
    for why in r.reasons:
        out.print(f"  - {escape(why)}")
    raise typer.Exit(1)


@compat_app.command("check")
def compat_check(
    gpu: Annotated[str, typer.Option(help="GPU, e.g. H100, A100-80GB, L40S, B200.")],
    driver: Annotated[str, typer.Option(help="NVIDIA driver version, e.g. 535.104.05.")],
    cuda: Annotated[str | None, typer.Option(help="CUDA the application was built with (e.g. 12.4).")] = None,
    torch: Annotated[str | None, typer.Option(help="PyTorch version (its wheel brings its CUDA runtime).")] = None,
    consumer: Annotated[bool, typer.Option(help="A GeForce/consumer card (no forward compatibility).")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Will this stack run? Every rule with its verdict, source and fix; exit 1 when a rule refuses."""
    from gpuinfra.models.compat import Stack, check

    if cuda is None and torch is None:
        raise UserError("nothing to check against the driver", where="command line", expected="--cuda and/or --torch")
    rep = check(Stack(gpu, driver, cuda, torch, consumer))
    if as_json:
        print(json.dumps(rep.as_dict(), indent=1))
    else:
        out.print(
            f"[bold]{escape(gpu)}[/] ({escape(rep.arch.architecture)}, sm_{rep.arch.sm}), driver "
            f"{escape(driver)}: [bold]{rep.verdict}[/]"
        )
        for f in rep.findings:
            colour = {"ok": "green", "warn": "yellow", "refuse": "red"}[f.verdict]
            out.print(f"  [{colour}]{f.verdict:6s}[/] {f.rule}: {escape(f.message)} [dim]({f.source})[/]")
            if f.fix and f.verdict != "ok":
                out.print(f"         fix: {escape(f.fix)}")
        out.print("[dim]sources: gpuinfra/catalog/data/compat/SOURCE.md[/]")
    raise typer.Exit(1 if rep.verdict == "refuse" else 0)


@compat_app.command("upgrades")
def compat_upgrades(
    gpu: Annotated[str, typer.Option()],
    driver: Annotated[str, typer.Option()],
    consumer: Annotated[bool, typer.Option()] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """PyTorch wheels that run on this GPU and driver without a driver change (newest first)."""
    from gpuinfra.models.compat import Stack, safe_upgrades

    rows = safe_upgrades(Stack(gpu, driver, consumer=consumer))
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    t = Table("PyTorch", "wheel", "status", "verdict", title=f"wheels that run on {gpu} with driver {driver}")
    for r in rows:
        t.add_row(r["torch"], r["wheel"], r["status"], r["verdict"])
    out.print(t)
    if not rows:
        out.print("none: the driver is too old for every wheel in the data; upgrade the driver first")
    sys.stdout.flush()
