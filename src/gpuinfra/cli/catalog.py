"""``catalog gpus|cpus|shapes|prices``: the packaged facts."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import esc, out

catalog_app = typer.Typer(
    help="Browse the packaged facts: GPU and CPU models, node shapes, prices.", no_args_is_help=True
)


@catalog_app.command("gpus")
def catalog_gpus(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """GPU models with their limits and sources."""
    from dataclasses import asdict

    from gpuinfra.catalog import gpu_models

    if as_json:
        sys.stdout.write(json.dumps([asdict(m) for m in gpu_models()], indent=2) + "\n")
        return
    t = Table(
        "model",
        "memory (name)",
        "visible GiB",
        "mem BW GB/s",
        "SMs",
        "FP16/BF16 TF",
        "FP32 TF",
        "NVLink GB/s",
        "PCIe",
        "TDP W",
        "MIG",
        "NVML name",
        "ev",
    )

    def f(x: float | None, scale: float = 1.0) -> str:
        return "-" if x is None else f"{x / scale:g}"

    for m in gpu_models():
        t.add_row(
            m.name,
            "-" if m.memory_gib is None else f"{m.memory_gib:g} GB",
            "-" if m.memory_visible_mib is None else f"{m.memory_visible_mib / 1024:.1f}",
            f(m.mem_bw_bytes_per_s, 1e9),
            f(m.sm_count),
            f(m.fp16_tensor_dense_flops, 1e12),
            f(m.fp32_flops, 1e12),
            f(m.nvlink_bw_bytes_per_s, 1e9),
            f(m.pcie_gen),
            f(m.tdp_w),
            "yes" if m.mig else "",
            m.nvml_name or "-",
            m.evidence,
        )
    out.print(t)
    out.print(
        "memory (name): the capacity in the product name and datasheet, which NVIDIA writes as GB (for "
        "HBM parts it is effectively binary: an 80 GB H100 has 80 GiB physical, facts/gpu.md 'Units'). "
        "visible GiB: the total a published nvidia-smi / deviceQuery output reports (memory_visible_mib / "
        "1024), what software can allocate from; '-' where the repo has no such output. "
        "Sources: `gpuinfra catalog gpus --json` (field 'source'); evidence P primary, S secondary, "
        "D derived, U unverified."
    )


@catalog_app.command("cpus")
def catalog_cpus() -> None:
    """CPU models for the roofline: cores, clocks, SIMD, FLOP/s, memory bandwidth, sources."""
    from gpuinfra.catalog.cpus import cpu_models

    t = Table(
        "CPU", "kind", "year", "cores", "GHz base/boost", "SIMD", "FP32 TFLOP/s", "BF16 TFLOP/s", "GB/s", "W", "ev."
    )
    for m in cpu_models().values():
        t.add_row(
            m.name,
            m.kind,
            str(m.year),
            str(m.cores),
            f"{m.base_ghz}/{m.boost_ghz}",
            m.simd,
            f"{m.fp32_flops / 1e12:.2f}",
            f"{m.bf16_flops / 1e12:.2f}",
            f"{m.mem_bw_bytes_per_s / 1e9:.0f}",
            f"{m.tdp_w:.0f}",
            m.evidence,
        )
    out.print(t)
    out.print("sources: src/gpuinfra/catalog/data/cpus.csv and CPU_SOURCES.md (recalled launch specs, tagged U)")


@catalog_app.command("shapes")
def catalog_shapes() -> None:
    """Node shapes (cloud instance types and the openb trace's nodes)."""
    from gpuinfra.catalog import node_shapes

    t = Table("shape", "GPU", "GPUs", "vCPU", "memory GiB")
    for s in node_shapes():
        t.add_row(s.name, s.gpu_model, str(s.gpus), f"{s.cpu_milli / 1000:g}", f"{s.memory_mib / 1024:g}")
    out.print(t)


@catalog_app.command("prices")
def catalog_prices(
    model: Annotated[str, typer.Argument(help="GPU model, e.g. H100")],
    cloud: Annotated[str | None, typer.Option()] = None,
    region: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Median USD per GPU-hour of a model in the packaged price catalog, and the instance types behind it."""
    from gpuinfra.catalog import gpu_hour_price
    from gpuinfra.catalog.prices import price_spread

    p = gpu_hour_price(model, cloud=cloud, region=region)
    out.print(
        f"{p.gpu_model}: on-demand {usd(p.on_demand_usd)} USD/GPU-h, spot {usd(p.spot_usd)} USD/GPU-h (medians)",
        highlight=False,
    )
    out.print(f"[dim]{esc(p.source)}[/]", markup=True)
    t = Table("cloud", "instance type", "GPUs", "rows", "on-demand USD/GPU-h", "spot USD/GPU-h")
    for r in price_spread(model, cloud=cloud, region=region):
        t.add_row(
            r["cloud"],
            esc(r["instance_type"]),
            str(r["gpus"]),
            str(r["rows"]),
            _span(r["on_demand_min"], r["on_demand_max"]),
            _span(r["spot_min"], r["spot_max"]),
        )
    out.print(t)
    out.print(
        "per-GPU-hour = instance price / its GPUs, so it includes the host's share (vCPUs, memory); GCP rows are "
        "GPU-only (the host VM is billed apart); ranges are over regions",
        highlight=False,
    )


def usd(x: float | None) -> str:
    """A price for people: 4 significant digits, trailing zeros kept (0.6058, 2.010, 12.54), "-" when absent."""
    if x is None:
        return "-"
    return f"{x:#.4g}" if abs(x) < 1000 else f"{x:,.0f}"


def _span(lo: float | None, hi: float | None) -> str:
    if lo is None:
        return "-"
    return usd(lo) if hi is None or usd(lo) == usd(hi) else f"{usd(lo)}-{usd(hi)}"
