"""GPU models: the physical limits a scheduler and the models reason about.

Each row of ``data/gpus.csv`` carries its source and an evidence tag (P primary, S secondary,
D derived, U unverified general knowledge), following ``docs/sources.md``. Opaque models (the
undisclosed G1/G2/G3 of the Alibaba trace) have no specs: code must not invent any.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError, did_you_mean

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class GpuModel:
    name: str
    aliases: tuple[str, ...]
    arch: str
    memory_gib: float | None
    """Nominal memory in the product name, as the datasheet prints it ("80GB", "141GB"): NVIDIA
    writes GB, for HBM parts effectively binary (an 80GB H100 has 80 GiB physical; facts/gpu.md
    'Units'). Not what software sees: that is ``memory_visible_mib`` / ``cuda_total_mib``."""
    memory_visible_mib: int | None
    """What nvidia-smi / deviceQuery reports as total; None where no real reading is known."""
    cuda_total_mib: int | None
    """What CUDA reports as total (cudaMemGetInfo; the 'total capacity' of PyTorch's OOM message),
    from published messages or deviceQuery (``cuda_total_source``); None where none is known."""
    cuda_total_source: str
    mem_bw_bytes_per_s: float | None
    sm_count: int | None
    fp16_tensor_dense_flops: float | None
    bf16: bool | None
    fp32_flops: float | None
    nvlink_gen: int | None
    nvlink_bw_bytes_per_s: float | None
    """Bidirectional NVLink bandwidth per GPU (0 when the part has none)."""
    pcie_gen: int | None
    tdp_w: float | None
    mig: bool
    opaque: bool
    price_name: str | None
    """The accelerator name this GPU has in the price catalog."""
    evidence: str
    source: str
    nvml_name: str | None = None
    """The product name NVML reports (``nvmlDeviceGetName``; nvidia-smi's 'Product Name'), as
    published in real nvidia-smi outputs (``nvml_name_source``); None where no published output
    was found. The name depends on the driver generation (older drivers printed e.g.
    ``A100-SXM4-40GB`` without the ``NVIDIA`` prefix); the recorded one is from the driver named
    in the source."""
    nvml_name_source: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def _f(v: str, scale: float = 1.0) -> float | None:
    return float(v) * scale if v.strip() else None


def _i(v: str) -> int | None:
    return int(v) if v.strip() else None


def _b(v: str) -> bool | None:
    return {"true": True, "false": False}.get(v.strip().lower())


@cache
def gpu_models() -> tuple[GpuModel, ...]:
    out = []
    for r in read_csv_rows("gpus.csv"):
        out.append(
            GpuModel(
                name=r["name"],
                aliases=tuple(a for a in r["aliases"].split("|") if a),
                arch=r["arch"],
                memory_gib=_f(r["memory_gib"]),
                memory_visible_mib=_i(r["memory_visible_mib"]),
                cuda_total_mib=_i(r["cuda_total_mib"]),
                cuda_total_source=r["cuda_total_source"],
                mem_bw_bytes_per_s=_f(r["mem_bw_gb_s"], 1e9),
                sm_count=_i(r["sm_count"]),
                fp16_tensor_dense_flops=_f(r["fp16_tensor_dense_tflops"], 1e12),
                bf16=_b(r["bf16"]),
                fp32_flops=_f(r["fp32_tflops"], 1e12),
                nvlink_gen=_i(r["nvlink_gen"]),
                nvlink_bw_bytes_per_s=_f(r["nvlink_bw_gb_s"], 1e9),
                pcie_gen=_i(r["pcie_gen"]),
                tdp_w=_f(r["tdp_w"]),
                mig=bool(_b(r["mig"])),
                opaque=bool(_b(r["opaque"])),
                price_name=r["price_name"] or None,
                evidence=r["evidence"],
                source=r["source"],
                nvml_name=r.get("nvml_name") or None,
                nvml_name_source=r.get("nvml_name_source", ""),
            )
        )
    return tuple(out)


@cache
def _index() -> dict[str, GpuModel]:
    idx: dict[str, GpuModel] = {}
    for m in gpu_models():
        for n in m.names:
            idx[n.lower()] = m
    return idx


def gpu_model(name: str, *, where: str | None = None) -> GpuModel:
    """Look up a GPU model by name or alias (case-insensitive)."""
    m = _index().get(name.strip().lower())
    if m is None:
        names = [n for g in gpu_models() for n in g.names]
        hint = did_you_mean(name, names)
        raise UserError(
            f"unknown GPU model '{name}'",
            where=where,
            expected="one of " + ", ".join(g.name for g in gpu_models()),
            fix=(hint if hint else "use a catalog name (gpuinfra catalog gpus)"),
        )
    return m


def gpu_by_nvml_name(product_name: str) -> GpuModel | None:
    """The catalog model whose sourced NVML product name is exactly ``product_name`` (as
    nvidia-smi prints it, surrounding blanks ignored); None when no model carries that name."""
    want = product_name.strip()
    for m in gpu_models():
        if m.nvml_name and m.nvml_name == want:
            return m
    return None
