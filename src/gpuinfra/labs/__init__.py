"""Labs: one per seed section; each runs every activity of its section and writes a report
whose conclusions are computed from the runs it just made.

The ``--design`` contract: a lab either uses the file in its runs and figures (and ships an
example under ``labs/designs/``, named in :attr:`LabInfo.design`), or refuses the option with a
:class:`~gpuinfra.errors.UserError` (exit 2) before any work. A lab that uses a design gets a
missing or unreadable file refused up front too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from importlib import resources
from pathlib import Path

from gpuinfra.errors import UserError


@dataclass(frozen=True)
class LabInfo:
    number: int
    title: str
    run: Callable[..., Path]
    """run(out_dir, design=None, quick=False, workers=None) -> path of report.html"""
    design: str | None = None
    """What a --design file is for this lab, or None when the lab takes no design."""
    example: str | None = None
    """File name of the shipped example design under labs/designs/."""


def designs_dir() -> Path:
    """The packaged example design files (``gpuinfra/labs/designs``)."""
    return Path(str(resources.files("gpuinfra").joinpath("labs", "designs")))


def write_lab(out_dir: Path, summary: dict, html: str) -> Path:
    """Write a lab's summary.json and report.html, each atomically (temporary file, fsync, rename:
    :mod:`gpuinfra.io.atomic`), so a killed lab leaves either the whole file or none; return the
    report's path. The run manifest comes after this (the CLI writes it once the lab returned)."""
    from gpuinfra.io.results import write_json

    write_json(out_dir / "summary.json", summary)
    return write_lab_file(out_dir / "report.html", html)


def write_lab_file(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write one file of a lab's output (a table, a figure page, a config, a report) atomically:
    the target appears complete or not at all, and a failure leaves an earlier file untouched.
    Text is UTF-8; ``mode`` as :func:`gpuinfra.io.atomic.write_bytes` (e.g. 0o600 for a key).
    Returns ``path``."""
    from gpuinfra.io.atomic import write_bytes

    return write_bytes(Path(path), data.encode("utf-8") if isinstance(data, str) else data, mode=mode)


def _contract(
    number: int, run: Callable[..., Path], what: str | None, example: str | None, takers: str = ""
) -> Callable[..., Path]:
    """Wrap a lab's run so --design is refused (no design) or checked to be a readable file first."""

    @wraps(run)
    def checked(out_dir: Path, design: Path | None = None, **kw) -> Path:
        design_file = design
        if design_file is not None:
            if what is None:
                raise UserError(
                    f"lab {number} takes no design file (got --design {design_file})",
                    where="--design",
                    expected="no --design for this lab",
                    fix=f"run it without --design; {takers} take a design file"
                    if takers
                    else "run it without --design",
                )
            p = Path(design_file)
            if not p.is_file():
                raise UserError(
                    f"{design_file}: no such file" if not p.exists() else f"{design_file}: not a file",
                    where="--design",
                    expected=what,
                    fix=f"start from the example: {designs_dir() / example}" if example else "",
                )
        return run(out_dir, design=design_file, **kw)

    return checked


def registry() -> dict[int, LabInfo]:
    from gpuinfra.labs import (
        lab1,
        lab2,
        lab3,
        lab4,
        lab5,
        lab6,
        lab7,
        lab8,
        lab9,
        lab10,
        lab11,
        lab12,
        lab13,
        lab14,
        lab15,
        lab16,
    )  # fmt: skip

    # a lab module may declare DESIGN (what its --design file is) and DESIGN_EXAMPLE (a file in
    # labs/designs/); the entries here are the defaults for labs that do not
    specs = [
        (1, lab1, None, None),
        (2, lab2, None, None),
        (3, lab3, "a saved `nvidia-smi topo -m` output of your node", "lab3-topo.txt"),
        (4, lab4, "a YAML sharing design (policy, replicas, layout)", getattr(lab4, "DESIGN_EXAMPLE", None)),
        (5, lab5, None, None),
        (6, lab6, "a YAML scheduler profile (filters, scores, plugin_args)", "lab6-policy.yaml"),
        (7, lab7, None, None),
        (8, lab8, None, None),
        (9, lab9, "a YAML serving design (runtime, batching, replicas, autoscaler)", "lab9-serving.yaml"),
        (10, lab10, "a YAML rollback strategy (strategy, canary_weight, bake_s, ...)", "lab10-rollback.yaml"),
        (11, lab11, "a YAML security model (estate, compromised, guardrails)", "lab11-security.yaml"),
        (
            12,
            lab12,
            "a YAML upgrade strategy (strategy, max_surge, max_unavailable, order, target)",
            "lab12-upgrade.yaml",
        ),
        (13, lab13, "a YAML set of guardrails (GPU cap, TTL, preemptible tier, team quotas)", "lab13-guardrails.yaml"),
        (
            14,
            lab14,
            "a YAML infra redesign (gpu_nodes, spot_nodes, score, upgrade_order, fault_detect_s)",
            "lab14-burn.yaml",
        ),
        (15, lab15, getattr(lab15, "DESIGN", None), getattr(lab15, "DESIGN_EXAMPLE", None)),
        (16, lab16, None, None),
    ]
    specs = [(n, mod, getattr(mod, "DESIGN", d), getattr(mod, "DESIGN_EXAMPLE", e)) for n, mod, d, e in specs]
    takers = [str(n) for n, _, d, _ in specs if d]
    said = ("lab " if len(takers) == 1 else "labs ") + ", ".join(takers)
    return {
        n: LabInfo(n, mod.TITLE, _contract(n, mod.run, design, example, said if takers else ""), design, example)
        for n, mod, design, example in specs
    }
