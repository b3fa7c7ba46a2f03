"""Access to the data files shipped inside the package (no network, no ../shared)."""

from __future__ import annotations

import csv
import gzip
import io
from importlib import resources
from pathlib import Path


def data_path(*parts: str) -> Path:
    """Filesystem path of a packaged data file."""
    return Path(str(resources.files("gpuinfra.catalog").joinpath("data", *parts)))


def read_csv_rows(*parts: str) -> list[dict[str, str]]:
    path = data_path(*parts)
    if path.suffix == ".gz":
        with gzip.open(path, "rt", newline="") as fh:
            return list(csv.DictReader(fh))
    with open(path, newline="") as fh:
        return list(csv.DictReader(io.StringIO(fh.read())))
