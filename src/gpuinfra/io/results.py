"""The run directory: summary.json, metrics.parquet, pods.parquet, events.jsonl, scenario.yaml.

Every file is written deterministically (sorted keys, fixed float formatting, no wall-clock
stamps), so the same scenario and seed produce the same bytes. Every file is written atomically
(``io.atomic``) and a finished run ends with ``manifest.json`` (``io.manifest``); readers call
:func:`open_run_dir`, which refuses a directory without one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gpuinfra.io.atomic import write_text, write_with


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):
        return _clean(x.item())
    return x


def write_json(path: Path, obj: Any) -> None:
    """Deterministic JSON (sorted keys, NaN/inf as null), written atomically."""
    write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n")


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    """Parquet (zstd) without pandas metadata (it carries library versions), written atomically."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)  # drop pandas metadata (it carries library versions)
    write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_events(path: Path, events: list[dict]) -> None:
    """One JSON object per line (sorted keys, compact), written atomically."""

    def _write(tmp: Path) -> None:
        with open(tmp, "w") as fh:
            for ev in events:
                fh.write(json.dumps(_clean(ev), sort_keys=True, separators=(",", ":")) + "\n")

    write_with(path, _write)


def open_run_dir(path: Path, command: str = "simulate", where: str | None = None) -> Path:
    """A finished run directory of ``command``, verified against its manifest (every file present
    with its recorded size and SHA-256). Returns ``path``.

    Raises:
        UserError: no manifest (an interrupted run), another command's run, or altered files.
    """
    from gpuinfra.io.manifest import verify

    verify(path, command, where)
    return Path(path)
