"""Cost: a price book of USD per GPU-hour by GPU model and by node pool, and what GPU-time costs under it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gpuinfra.errors import UserError

PURCHASES = ("on_demand", "spot")
"""How a node pool is bought: on-demand, or spot/preemptible (listed in the scenario's ``spot.pools``)."""


@dataclass(frozen=True)
class PoolPrice:
    """The price of one node pool's GPU-hours: its GPU model, how it is bought and the catalog row."""

    gpu_model: str
    purchase: str
    """'on_demand' or 'spot' (:data:`PURCHASES`)."""
    usd_per_gpu_hour: float | None
    """None: the price book has no price of this purchase kind for the model."""
    source: str


@dataclass(frozen=True)
class PriceBook:
    usd_per_gpu_hour: dict[str, float | None]
    """GPU model -> USD per GPU-hour on ``basis`` (None: unpriced, excluded from cost totals and listed)."""
    sources: dict[str, str]
    basis: str
    """'on_demand' or 'spot': how the pools not listed in ``pools`` are bought."""
    pools: dict[str, PoolPrice] = field(default_factory=dict)
    """Node pool -> its price (io/scenario_build: spot pools at the spot price, the others on ``basis``);
    a pool not listed is priced by its GPU model on ``basis``."""

    def cost(self, model: str, gpu_hours: float) -> float | None:
        p = self.usd_per_gpu_hour.get(model)
        return None if p is None else p * gpu_hours

    def pool_price(self, pool: str, model: str) -> PoolPrice:
        """The price of ``pool``'s GPU-hours (its entry, else ``model`` on ``basis``); the price may be None."""
        pp = self.pools.get(pool)
        if pp is not None:
            return pp
        return PoolPrice(model, self.basis, self.usd_per_gpu_hour.get(model), self.sources.get(model, ""))

    def pool_usd(self, pool: str, model: str, where: str = "prices") -> float:
        """USD per GPU-hour of ``pool`` (GPU model ``model``).

        Raises:
            UserError: the book has no price of the pool's purchase kind for its model (naming the
                model, the pool and the override that fixes it).
        """
        pp = self.pool_price(pool, model)
        p = pp.usd_per_gpu_hour
        if p is None or not math.isfinite(p):
            kind = "spot" if pp.purchase == "spot" else "on-demand"
            key = "spot_usd_per_gpu_hour" if pp.purchase == "spot" else "on_demand_usd_per_gpu_hour"
            raise UserError(
                f"no {kind} price for GPU model '{model}' (node pool '{pool}', bought {kind}), which the scenario's "
                "cluster holds: its GPU-time cannot be billed",
                where=f"{where} (prices.overrides.{model})",
                expected=f"a catalog {kind} price for every GPU model of the cluster",
                fix=f"add prices.overrides.{model}.{key} with its source"
                + (", or same_as" if pp.purchase != "spot" else ""),
            )
        return float(p)
