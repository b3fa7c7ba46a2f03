"""GPU prices per hour, from the SkyPilot-derived catalog in ``data/prices/`` (see its SOURCE.md).

A *per-GPU-hour* price is the instance price divided by its GPU count (it includes the host's
share), or, for GCP rows, the GPU-only price (GCP bills the host VM separately). Which rows are
used is the caller's choice (cloud, region); the statistic over the chosen rows is the median,
so one odd region (SOURCE.md caveat 2) cannot set the price alone.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError


@dataclass(frozen=True, slots=True)
class PriceRow:
    cloud: str
    instance_type: str
    accelerator: str
    gpu_count: int
    region: str
    on_demand_usd_hr: float | None
    spot_usd_hr_min: float | None
    price_basis: str
    source_file: str

    @property
    def on_demand_per_gpu_hr(self) -> float | None:
        return None if self.on_demand_usd_hr is None else self.on_demand_usd_hr / self.gpu_count

    @property
    def spot_per_gpu_hr(self) -> float | None:
        if self.spot_usd_hr_min is None:
            return None
        # SOURCE.md caveat 1: spot >= 0.99 x on-demand means "no spot capacity", not a spot price.
        if self.on_demand_usd_hr is not None and self.spot_usd_hr_min >= 0.99 * self.on_demand_usd_hr:
            return None
        return self.spot_usd_hr_min / self.gpu_count


def _opt(v: str) -> float | None:
    return float(v) if v.strip() else None


@cache
def price_rows() -> tuple[PriceRow, ...]:
    out = []
    for r in read_csv_rows("prices", "gpu_instance_prices.csv"):
        count = int(r["gpu_count"])
        if r["instance_type"] == "Standard_ND96isr_H100_v5":
            count = 8  # SOURCE.md caveat 3: upstream lists 12 GPUs; the product has 8
        out.append(
            PriceRow(
                cloud=r["cloud"],
                instance_type=r["instance_type"],
                accelerator=r["accelerator"],
                gpu_count=count,
                region=r["region"],
                on_demand_usd_hr=_opt(r["price_usd_hr"]),
                spot_usd_hr_min=_opt(r["spot_usd_hr_min"]),
                price_basis=r["price_basis"],
                source_file=r["source_file"],
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class GpuHourPrice:
    gpu_model: str
    on_demand_usd: float | None
    spot_usd: float | None
    rows_used: int
    source: str


def gpu_hour_price(model: str, *, cloud: str | None = None, region: str | None = None) -> GpuHourPrice:
    """Median per-GPU-hour on-demand and spot price of ``model`` over the matching catalog rows."""
    m = gpu_model(model)
    if m.opaque or m.price_name is None:
        raise UserError(
            f"GPU model '{m.name}' has no price in the catalog",
            expected="a disclosed GPU model with catalog rows",
            fix=f"give the scenario a price for {m.name} (prices.overrides) or map it to another model",
        )
    rows = [
        r
        for r in price_rows()
        if r.accelerator == m.price_name
        and (cloud is None or r.cloud == cloud)
        and (region is None or r.region == region)
    ]
    od = [p for r in rows if (p := r.on_demand_per_gpu_hr) is not None]
    sp = [p for r in rows if (p := r.spot_per_gpu_hr) is not None]
    if not od and not sp:
        raise UserError(
            f"no catalog price for {m.name} with cloud={cloud} region={region}",
            expected="a cloud/region that lists this accelerator",
            fix=_no_rows_fix(m.price_name, cloud, region),
        )
    return GpuHourPrice(
        gpu_model=m.name,
        on_demand_usd=statistics.median(od) if od else None,
        spot_usd=statistics.median(sp) if sp else None,
        rows_used=len(rows),
        source=(
            f"median over {len(rows)} skypilot-catalog rows for '{m.price_name}'"
            f" (cloud={cloud or 'any'}, region={region or 'any'}); catalog/data/prices/SOURCE.md"
        ),
    )


def _no_rows_fix(accelerator: str, cloud: str | None, region: str | None) -> str:
    """What to try when no row matches: the clouds that list ``accelerator`` and, for a cloud that
    does not, its accelerators with a similar name (AWS sells the A10G, not the A10)."""
    from gpuinfra.errors import did_you_mean

    clouds = sorted({r.cloud for r in price_rows() if r.accelerator == accelerator})
    parts = [f"{accelerator} is listed for {', '.join(clouds)}" if clouds else f"no cloud lists {accelerator}"]
    if cloud is not None:
        near = did_you_mean(accelerator, sorted({r.accelerator for r in price_rows() if r.cloud == cloud}))
        if near:
            parts.append(f"{cloud}: {near}")
    parts.append("or drop the cloud/region filter, or add a price override")
    return "; ".join(parts)


def price_spread(model: str, *, cloud: str | None = None, region: str | None = None) -> list[dict]:
    """The rows behind :func:`gpu_hour_price`, grouped by (cloud, instance type): GPUs per instance,
    regions, and the min / max per-GPU-hour on-demand and spot price (USD; None when absent), so a
    median can be read against what it is made of (e.g. Azure's A10 comes only in VMs with a 36- or
    72-vCPU host, which the per-GPU price includes)."""
    m = gpu_model(model)
    groups: dict[tuple[str, str], list[PriceRow]] = {}
    for r in price_rows():
        if (
            r.accelerator == m.price_name
            and (cloud is None or r.cloud == cloud)
            and (region is None or r.region == region)
        ):
            groups.setdefault((r.cloud, r.instance_type), []).append(r)
    out = []
    for (c, it), rs in sorted(groups.items()):
        od = [p for r in rs if (p := r.on_demand_per_gpu_hr) is not None]
        sp = [p for r in rs if (p := r.spot_per_gpu_hr) is not None]
        out.append(
            {
                "cloud": c,
                "instance_type": it or "(GPU only)",
                "gpus": rs[0].gpu_count,
                "rows": len(rs),
                "on_demand_min": min(od) if od else None,
                "on_demand_max": max(od) if od else None,
                "spot_min": min(sp) if sp else None,
                "spot_max": max(sp) if sp else None,
            }
        )
    return out
