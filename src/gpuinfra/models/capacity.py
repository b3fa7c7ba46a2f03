"""Capacity and purchasing: committed vs on-demand vs spot, spot's lost work, growth plans.

Closed forms (each checked by a test against brute force or the simulator):

- **Committed-use level** (the newsvendor rule): committing one more GPU costs ``c`` every hour
  and saves the on-demand price ``p`` in the hours demand exceeds the level, so the cheapest
  committed level L is the smallest with P(demand > L) <= c / p, i.e. the (1 - c/p) quantile
  of hourly demand. Committed hours are paid whether used or not (facts section 1.3: Savings
  Plans commit to a $/hour for 1 or 3 years).
- **Spot lost work** (first order, as Young's checkpoint interval is derived): with reclaims at
  rate r per node-second, checkpoints every T seconds costing C seconds each and a restart of R
  seconds, a reclaim loses R + T/2 of work on average (R when the checkpoint fits in the notice
  window and the job saves on notice); the share of paid GPU time that is useful is
  ``1 - r (R + lost) - C / T``. Spot pays while ``spot / useful < on_demand``; the break-even
  reclaim rate solves it for r.
- **Expansion vs replacement**: capacity in throughput units of the current GPU, week by week:
  expansion adds GPUs after a lead time (capped by quota, scaled by the share the provider can
  deliver); replacement swaps old GPUs for new ones after a lead time, each swapped node out for
  ``swap_weeks``; unmet demand and cost follow.
- **Launch spike**: orders placed ``lead_weeks`` before each week the forecast exceeds capacity;
  weeks already inside the lead time fall back to on-demand burst, capped by what the provider
  makes available (``burst_gpus``); the rest is unmet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuinfra.errors import UserError

DAY_S = 86400.0


def committed_level(hourly_demand: np.ndarray, on_demand_usd: float, committed_usd: float) -> int:
    """Cheapest number of committed GPUs for an hourly demand series (GPUs), by the newsvendor rule."""
    d = np.asarray(hourly_demand, dtype=float)
    if not len(d) or on_demand_usd <= 0 or committed_usd < 0:
        raise UserError("committed_level needs demand and positive prices", where="capacity")
    if committed_usd >= on_demand_usd:
        return 0
    ratio = committed_usd / on_demand_usd
    for level in range(int(np.ceil(d.max())) + 1):
        if float((d > level).mean()) <= ratio:
            return level
    return int(np.ceil(d.max()))


def mix_cost(
    hourly_demand: np.ndarray,
    committed_gpus: int,
    on_demand_usd: float,
    committed_usd: float,
    *,
    spot_gpus: int = 0,
    spot_usd: float = 0.0,
    spot_useful: float = 1.0,
) -> dict[str, float]:
    """USD over the series: committed GPUs paid every hour; demand above them served by spot (up to
    ``spot_gpus``, each delivering ``spot_useful`` of a GPU-hour, so more spot GPU-hours are bought
    for the same work) and then on-demand."""
    d = np.asarray(hourly_demand, dtype=float)
    over = np.maximum(d - committed_gpus, 0.0)
    spot_work = np.minimum(over, spot_gpus * spot_useful)
    od = over - spot_work
    out = {
        "committed_usd": committed_gpus * committed_usd * len(d),
        "spot_usd": float(spot_work.sum()) / max(spot_useful, 1e-12) * spot_usd,
        "on_demand_usd": float(od.sum()) * on_demand_usd,
        "committed_idle_gpu_hours": float(np.maximum(committed_gpus - d, 0.0).sum()),
    }
    out["total_usd"] = out["committed_usd"] + out["spot_usd"] + out["on_demand_usd"]
    return out


@dataclass(frozen=True)
class SpotPolicy:
    """How a job lives on spot: reclaims per node-day, notice, checkpoint interval/cost, restart."""

    reclaims_per_day: float
    notice_s: float = 120.0
    """AWS: 2 minutes; GCP spot: 30 s (facts section 1.2)."""
    checkpoint_interval_s: float | None = 3600.0
    checkpoint_s: float = 60.0
    restart_s: float = 300.0
    """Reschedule + container start + checkpoint load: an assumption, state yours."""
    save_on_notice: bool = False

    def lost_per_reclaim_s(self) -> float:
        """Expected seconds of work lost per reclaim (restart + work since the last checkpoint)."""
        if self.save_on_notice and self.checkpoint_s <= self.notice_s:
            return self.restart_s
        if self.checkpoint_interval_s is None:
            raise UserError("no checkpoints: a reclaim loses the whole run so far", where="spot policy")
        return self.restart_s + self.checkpoint_interval_s / 2.0

    def useful_fraction(self) -> float:
        """Share of paid spot GPU time that advances the job (first order; clipped at 0)."""
        r = self.reclaims_per_day / DAY_S
        ckpt = self.checkpoint_s / self.checkpoint_interval_s if self.checkpoint_interval_s else 0.0
        return max(0.0, 1.0 - r * self.lost_per_reclaim_s() - ckpt)

    def effective_usd(self, spot_usd: float) -> float:
        """USD per useful GPU-hour on spot (inf when nothing useful is left)."""
        u = self.useful_fraction()
        return spot_usd / u if u > 0 else float("inf")

    def breakeven_reclaims_per_day(self, spot_usd: float, on_demand_usd: float) -> float:
        """The reclaim rate at which spot costs as much per useful hour as on-demand."""
        ckpt = self.checkpoint_s / self.checkpoint_interval_s if self.checkpoint_interval_s else 0.0
        return max(0.0, (1.0 - spot_usd / on_demand_usd - ckpt) * DAY_S / self.lost_per_reclaim_s())


@dataclass(frozen=True)
class GrowthOption:
    """One way to grow: ``expand`` (add GPUs) or ``replace`` (swap old GPUs for new ones)."""

    name: str
    kind: str
    gpus: int
    speedup: float
    """Throughput of one new GPU in units of one current GPU (e.g. from models/roofline)."""
    lead_weeks: int
    usd_per_gpu_hour: float
    delivered_share: float = 1.0
    """Share of the order the provider delivers (availability); 1 = all."""
    quota_gpus: int | None = None
    """Cloud quota on new GPUs (expand only): the order is capped at it."""
    swap_weeks: int = 1
    """Replace: weeks each swapped GPU is out of service."""


def growth_timeline(current_gpus: int, demand: np.ndarray, opt: GrowthOption, old_usd_per_gpu_hour: float) -> dict:
    """Week-by-week capacity (current-GPU units), unmet demand and cost of one growth option."""
    d = np.asarray(demand, dtype=float)
    w = np.arange(len(d))
    n = opt.gpus if opt.quota_gpus is None or opt.kind != "expand" else min(opt.gpus, opt.quota_gpus)
    got = n * opt.delivered_share
    if opt.kind == "expand":
        cap = current_gpus + np.where(w >= opt.lead_weeks, got * opt.speedup, 0.0)
        old = np.full(len(d), float(current_gpus))
        new = np.where(w >= opt.lead_weeks, got, 0.0)
    elif opt.kind == "replace":
        if got > current_gpus:
            raise UserError(f"{opt.name}: replaces {got:g} GPUs of {current_gpus}", where=f"options.{opt.name}")
        out_of_service = np.where((w >= opt.lead_weeks) & (w < opt.lead_weeks + opt.swap_weeks), got, 0.0)
        swapped = np.where(w >= opt.lead_weeks + opt.swap_weeks, got, 0.0)
        old = current_gpus - out_of_service - swapped
        new = swapped
        cap = old + swapped * opt.speedup
    else:
        raise UserError(f"growth option kind '{opt.kind}'", where=f"options.{opt.name}", expected="expand or replace")
    unmet = np.maximum(d - cap, 0.0)
    hours = 168.0
    cost = float((old * old_usd_per_gpu_hour + new * opt.usd_per_gpu_hour).sum() * hours)
    return {
        "option": opt.name,
        "capacity": cap,
        "unmet_gpu_weeks": float(unmet.sum()),
        "weeks_short": int((unmet > 1e-9).sum()),
        "cost_usd": cost,
        "gpus_ordered": n,
        "gpus_delivered": got,
    }


def spike_plan(forecast: np.ndarray, capacity: float, lead_weeks: int, burst_gpus: float, now_week: int = 0) -> dict:
    """Orders for a demand forecast (GPUs per week): each increment ordered ``lead_weeks`` ahead;
    increments needed inside the lead time are served by on-demand burst (up to ``burst_gpus``)."""
    f = np.asarray(forecast, dtype=float)
    orders: list[dict] = []
    cap = np.full(len(f), float(capacity))
    have = float(capacity)
    for wk in range(len(f)):
        need = f[wk] - have
        if need <= 1e-9:
            continue
        place = wk - lead_weeks
        if place >= now_week:
            orders.append({"order_week": place, "arrives_week": wk, "gpus": float(np.ceil(need))})
            have += float(np.ceil(need))
            cap[wk:] = have
    short = np.maximum(f - cap, 0.0)
    burst = np.minimum(short, burst_gpus)
    unmet = short - burst
    return {
        "orders": orders,
        "capacity": cap,
        "burst_gpu_weeks": float(burst.sum()),
        "unmet_gpu_weeks": float(unmet.sum()),
        "first_short_week": int(np.flatnonzero(unmet > 1e-9)[0]) if (unmet > 1e-9).any() else None,
    }
