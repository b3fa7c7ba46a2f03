"""CPU models (for the roofline) and the historical CPU table (seed section 1); every row tagged
with its evidence (catalog/data/CPU_SOURCES.md: recalled launch specifications, U)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError, did_you_mean


@dataclass(frozen=True, slots=True)
class CpuModel:
    name: str
    kind: str
    year: int
    cores: int
    base_ghz: float
    boost_ghz: float
    simd: str
    fp32_flops_per_cycle_per_core: float
    bf16_flops_per_cycle_per_core: float | None
    mem_bw_bytes_per_s: float
    tdp_w: float
    evidence: str
    source: str

    @property
    def fp32_flops(self) -> float:
        """All cores at the base clock (sustained all-core throughput) [D]."""
        return self.cores * self.base_ghz * 1e9 * self.fp32_flops_per_cycle_per_core

    @property
    def bf16_flops(self) -> float:
        """With a matrix unit (AMX), its rate; otherwise BF16 runs at the FP32 rate [assumption]."""
        per = self.bf16_flops_per_cycle_per_core or self.fp32_flops_per_cycle_per_core
        return self.cores * self.base_ghz * 1e9 * per

    @property
    def single_core_fp32_flops(self) -> float:
        return self.boost_ghz * 1e9 * self.fp32_flops_per_cycle_per_core


@cache
def cpu_models() -> dict[str, CpuModel]:
    out = {}
    for r in read_csv_rows("cpus.csv"):
        out[r["name"]] = CpuModel(
            r["name"],
            r["kind"],
            int(r["year"]),
            int(r["cores"]),
            float(r["base_ghz"]),
            float(r["boost_ghz"]),
            r["simd"],
            float(r["fp32_flops_per_cycle_per_core"]),
            float(r["bf16_flops_per_cycle_per_core"]) if r["bf16_flops_per_cycle_per_core"] else None,
            float(r["mem_bw_gb_s"]) * 1e9,
            float(r["tdp_w"]),
            r["evidence"],
            r["source"],
        )
    return out


def is_cpu(name: str) -> bool:
    return name.strip().lower() in {k.lower() for k in cpu_models()}


def cpu_model(name: str) -> CpuModel:
    for k, v in cpu_models().items():
        if k.lower() == name.strip().lower():
            return v
    raise UserError(
        f"unknown CPU model '{name}'", expected=", ".join(cpu_models()), fix=did_you_mean(name, cpu_models())
    )


@dataclass(frozen=True, slots=True)
class CpuYear:
    year: int
    processor: str
    transistors: float | None
    clock_mhz: float
    cores: int
    tdp_w: float | None
    fp32_flops_per_cycle_per_core: float

    @property
    def single_core_peak(self) -> float:
        return self.clock_mhz * 1e6 * self.fp32_flops_per_cycle_per_core

    @property
    def chip_peak(self) -> float:
        return self.single_core_peak * self.cores


@cache
def cpu_history() -> tuple[CpuYear, ...]:
    return tuple(
        CpuYear(
            int(r["year"]),
            r["processor"],
            float(r["transistors"]) if r["transistors"] else None,
            float(r["clock_mhz"]),
            int(r["cores"]),
            float(r["tdp_w"]) if r["tdp_w"] else None,
            float(r["fp32_flops_per_cycle_per_core"]),
        )
        for r in read_csv_rows("cpu_history.csv")
    )
