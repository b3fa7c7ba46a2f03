"""Version-coupling tables: CUDA toolkit vs driver, driver branches, GPU architectures, PyTorch
wheels and their SM lists, NCCL per build.

The CSVs under ``data/compat/`` were written by hand from NVIDIA's and PyTorch's documentation;
each row carries a ``source_id`` whose source is in ``data/compat/SOURCE.md`` (NVIDIA CUDA
release notes and compatibility pages, NVIDIA's supported-drivers table, PyTorch's RELEASE.md).
Rows marked ``verified=no/partial`` come from secondary material and are reported as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError

MAX_VERSION_PARTS = 4
"""Dot-separated parts a version may have: driver versions have three (535.104.05), CUDA, NCCL and
PyTorch two or three (12.4, 2.21.5); four leaves room for a build number."""
MAX_PART_DIGITS = 4
"""Digits per part: a driver branch has three (570), no version part reaches five."""


def version_tuple(text: str, *, where: str = "version") -> tuple[int, ...]:
    """``"535.104.05"`` -> (535, 104, 5); ``"12.4"`` -> (12, 4). Raises UserError on anything
    else, saying which rule the text breaks: only digits and dots, 1 to :data:`MAX_VERSION_PARTS`
    parts, each 1 to :data:`MAX_PART_DIGITS` digits."""
    t = text.strip()
    rule = (
        f"1 to {MAX_VERSION_PARTS} dot-separated parts of 1 to {MAX_PART_DIGITS} digits each, "
        "e.g. 535.104.05 (driver) or 12.4 (CUDA)"
    )
    d, more = MAX_PART_DIGITS, MAX_VERSION_PARTS - 1
    if re.fullmatch(rf"\d{{1,{d}}}(\.\d{{1,{d}}}){{0,{more}}}", t):
        return tuple(int(x) for x in t.split("."))
    if re.fullmatch(r"\d+(\.\d+)*", t):
        parts = t.split(".")
        why = (
            f"it has {len(parts)} parts"
            if len(parts) > MAX_VERSION_PARTS
            else f"part '{next(x for x in parts if len(x) > MAX_PART_DIGITS)}' has more than {MAX_PART_DIGITS} digits"
        )
        raise UserError(f"'{text}' is not a version gpuinfra knows: {why}", where=where, expected=rule)
    raise UserError(f"'{text}' is not a version number", where=where, expected=rule)


@dataclass(frozen=True, slots=True)
class ToolkitRelease:
    cuda: tuple[int, ...]
    label: str
    linux_driver: tuple[int, ...]
    """The driver shipped with this toolkit (its "corresponding driver"): full features from here."""
    family_min_driver: tuple[int, ...]
    """Minor-version compatibility floor of the CUDA major (11.x: 450.80.02, 12.x: 525, 13.x: 580)."""
    source: str


@dataclass(frozen=True, slots=True)
class DriverBranch:
    branch: int
    designation: str
    end_of_life: str
    """YYYY-MM, 'EOL', or empty when unknown."""
    max_cuda: str
    verified: str
    source: str


@dataclass(frozen=True, slots=True)
class GpuArch:
    names: tuple[str, ...]
    architecture: str
    sm: int
    """Compute capability x 10 (sm_90 -> 90)."""
    min_cuda: tuple[int, ...] | None
    dropped_in_cuda_major: int | None
    """First CUDA major that no longer compiles for it (None: still supported)."""
    verified: str
    source: str


@dataclass(frozen=True, slots=True)
class TorchWheel:
    torch: tuple[int, int]
    tag: str
    cuda: tuple[int, ...]
    status: str
    nccl: str
    source: str


@dataclass(frozen=True, slots=True)
class TorchArchList:
    torch: tuple[tuple[int, int], ...]
    cuda: tuple[int, ...]
    platform: str
    sms: frozenset[int]
    ptx: bool
    source: str


def _v(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text))


@cache
def toolkits() -> tuple[ToolkitRelease, ...]:
    return tuple(
        ToolkitRelease(
            _v(r["cuda_version"]),
            r["release_label"],
            _v(r["linux_x86_64_driver"]),
            _v(r["family_min_driver_for_minor_version_compat"]),
            r["source_id"],
        )
        for r in read_csv_rows("compat", "cuda_toolkit_driver.csv")
    )


@cache
def driver_branches() -> dict[int, DriverBranch]:
    out = {}
    for r in read_csv_rows("compat", "driver_branches.csv"):
        b = int(r["branch"].lstrip("R"))
        out[b] = DriverBranch(
            b, r["designation"], r["end_of_life"], r["max_cuda_via_minor_compat"], r["verified"], r["source_id"]
        )
    return out


@cache
def gpu_archs() -> tuple[GpuArch, ...]:
    out = []
    for r in read_csv_rows("compat", "gpu_arch_cuda.csv"):
        sm = int(re.search(r"sm_(\d+)", r["sm"]).group(1))
        drop = re.search(r"dropped in CUDA (\d+)|removed in CUDA (\d+)", r["last_cuda_major_with_offline_compile"])
        dropped = int(next(g for g in drop.groups() if g)) if drop else None
        names = tuple(n.strip() for n in r["gpu"].split("/"))
        out.append(
            GpuArch(
                names,
                r["architecture"],
                sm,
                _v(r["min_cuda_for_native_sass"]) or None,
                dropped,
                r["verified"],
                r["source_id"],
            )
        )
    return tuple(out)


@cache
def torch_wheels() -> tuple[TorchWheel, ...]:
    out = []
    for r in read_csv_rows("compat", "pytorch_cuda_wheels.csv"):
        maj, mnr = (int(x) for x in r["torch_minor"].split("."))
        out.append(TorchWheel((maj, mnr), r["wheel_tag"], _v(r["cuda"]), r["status"], r["nccl"], r["source_id"]))
    return tuple(out)


@cache
def torch_arch_lists() -> tuple[TorchArchList, ...]:
    out = []
    for r in read_csv_rows("compat", "pytorch_build_arch_lists.csv"):
        rel = r["torch_releases"]
        if "-" in rel:
            a, b = rel.split("-")
            (ma, na), (_, nb) = _v(a), _v(b)
            releases = tuple((ma, n) for n in range(na, nb + 1))
        else:
            releases = (tuple(_v(rel)[:2]),)
        text = r["sm_targets"]
        sms = {int(m) for m in re.findall(r"sm_(\d+)", text)}
        sms |= {int(a) * 10 + int(b) for a, b in re.findall(r"(?<![\d_])(\d{1,2})\.(\d)(?!\d)", text)}
        out.append(
            TorchArchList(releases, _v(r["cuda_build"]), r["platform"], frozenset(sms), "PTX" in text, r["source_id"])
        )
    return tuple(out)


def find_arch(gpu: str) -> GpuArch:
    """The architecture row of a GPU named as users name it (``H100``, ``H100-SXM``, ``A100-80GB``, ``L40S``)."""
    key = gpu.upper().replace("NVIDIA ", "").strip()
    best = None
    for a in gpu_archs():
        for n in a.names:
            n2 = n.upper()
            rest = key[len(n2) :] if key.startswith(n2) else None
            named = rest is not None and not rest[:1].isalnum()  # "H100", "H100-SXM", "A100 80GB"
            if named and (best is None or len(n2) > len(best[1])):
                best = (a, n2)
    if best is None:
        from gpuinfra.errors import did_you_mean

        names = [n for a in gpu_archs() for n in a.names]
        raise UserError(
            f"unknown GPU '{gpu}'",
            where="--gpu",
            expected="one of " + ", ".join(names),
            fix=did_you_mean(gpu, names) or "name the GPU as NVIDIA does (H100, A100, L40S, B200 ...)",
        )
    return best[0]
