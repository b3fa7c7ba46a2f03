"""Labs: one per seed section; each runs every activity of its section and writes a report
whose conclusions are computed from the runs it just made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabInfo:
    number: int
    title: str
    run: Callable[..., Path]
    """run(out_dir, design=None, quick=False, workers=None) -> path of report.html"""


def write_lab(out_dir: Path, summary: dict, html: str) -> Path:
    """Write a lab's summary.json and report.html; return the report's path."""
    from gpuinfra.io.results import write_json

    write_json(out_dir / "summary.json", summary)
    (out_dir / "report.html").write_text(html)
    return out_dir / "report.html"


def registry() -> dict[int, LabInfo]:
    from gpuinfra.labs import lab1, lab2, lab3, lab4, lab5, lab6, lab9, lab15, lab16

    labs = [
        LabInfo(1, lab1.TITLE, lab1.run),
        LabInfo(2, lab2.TITLE, lab2.run),
        LabInfo(3, lab3.TITLE, lab3.run),
        LabInfo(4, lab4.TITLE, lab4.run),
        LabInfo(5, lab5.TITLE, lab5.run),
        LabInfo(6, lab6.TITLE, lab6.run),
        LabInfo(9, lab9.TITLE, lab9.run),
        LabInfo(15, lab15.TITLE, lab15.run),
        LabInfo(16, lab16.TITLE, lab16.run),
    ]
    return {lab.number: lab for lab in labs}
