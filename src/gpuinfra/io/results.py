"""The run directory: summary.json, metrics.parquet, pods.parquet, events.jsonl, scenario.yaml.

Every file is written deterministically (sorted keys, fixed float formatting, no wall-clock
stamps), so the same scenario and seed produce the same bytes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


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
    path.write_text(json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n")


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)  # drop pandas metadata (it carries library versions)
    pq.write_table(table, path, compression="zstd")


def write_events(path: Path, events: list[dict]) -> None:
    with open(path, "w") as fh:
        for ev in events:
            fh.write(json.dumps(_clean(ev), sort_keys=True, separators=(",", ":")) + "\n")
