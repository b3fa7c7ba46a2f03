"""Cost: a price book of USD per GPU-hour by GPU model, and what GPU-time costs under it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PriceBook:
    usd_per_gpu_hour: dict[str, float | None]
    """GPU model -> USD per GPU-hour (None: unpriced, excluded from cost totals and listed)."""
    sources: dict[str, str]
    basis: str
    """'on_demand' or 'spot'."""

    def cost(self, model: str, gpu_hours: float) -> float | None:
        p = self.usd_per_gpu_hour.get(model)
        return None if p is None else p * gpu_hours
