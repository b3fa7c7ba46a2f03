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


def peak_speedup(old: str, new: str) -> tuple[float, str]:
    """Throughput of one ``new`` GPU in units of one ``old`` GPU as the ratio of their dense FP16/BF16
    tensor peaks (catalog/data/gpus.csv), and a note saying so: an upper bound, since real training
    rarely scales with the peak (state a measured ratio with ``speedup`` when you have one)."""
    from gpuinfra.catalog.gpus import gpu_model

    a, b = gpu_model(old, where="--gpu"), gpu_model(new, where="--new-gpu")
    if not a.fp16_tensor_dense_flops or not b.fp16_tensor_dense_flops:
        raise UserError(
            f"no dense tensor peak for {a.name if not a.fp16_tensor_dense_flops else b.name} in the catalog",
            where="--speedup",
            fix="give --speedup (throughput of one new GPU in current GPUs)",
        )
    r = b.fp16_tensor_dense_flops / a.fp16_tensor_dense_flops
    return r, f"ratio of dense FP16 tensor peaks {b.name}/{a.name} (catalog/data/gpus.csv): an upper bound"


def growth_plan(
    demand: np.ndarray,
    current_gpus: int,
    *,
    speedup: float,
    old_usd: float,
    new_usd: float,
    lead_weeks: int,
    quota_gpus: int | None = None,
    delivered_share: float = 1.0,
    swap_weeks: int = 1,
    order_gpus: int | None = None,
) -> dict:
    """Expansion vs replacement for one demand forecast (current-GPU units per week).

    Unless ``order_gpus`` is given, each option orders what closes the forecast's peak gap:
    expand ``ceil(gap / (speedup x delivered))`` new GPUs; replace ``ceil(gap / ((speedup - 1) x
    delivered))``, at most the current fleet (a replacement with ``speedup <= 1`` adds nothing).
    Returns both timelines (:func:`growth_timeline`) and the recommendation: least unmet GPU-weeks,
    then least cost. Raises UserError for negative inputs."""
    d = np.asarray(demand, dtype=float)
    for v, w in ((current_gpus, "--current-gpus"), (lead_weeks, "--lead-weeks"), (swap_weeks, "--swap-weeks")):
        if v < 0:
            raise UserError(f"{w} {v} is negative", where=w, expected="a number >= 0")
    if quota_gpus is not None and quota_gpus < 0:
        raise UserError(f"--quota {quota_gpus} is negative", where="--quota", expected="GPUs >= 0")
    if not 0 <= delivered_share <= 1:
        raise UserError(f"--availability {delivered_share}", where="--availability", expected="a share in [0, 1]")
    if speedup <= 0:
        raise UserError(f"--speedup {speedup}", where="--speedup", expected="a throughput ratio > 0")
    gap = max(0.0, float(d.max()) - current_gpus) if len(d) else 0.0
    share = max(delivered_share, 1e-12)
    n_exp = order_gpus if order_gpus is not None else int(np.ceil(gap / (speedup * share) - 1e-9))
    if order_gpus is not None:
        n_rep = min(order_gpus, current_gpus)
    elif speedup > 1:
        n_rep = min(current_gpus, int(np.ceil(gap / ((speedup - 1.0) * share) - 1e-9)))
    else:
        n_rep = 0
    opts = [
        GrowthOption("expand", "expand", n_exp, speedup, lead_weeks, new_usd, delivered_share, quota_gpus, swap_weeks),
        GrowthOption("replace", "replace", n_rep, speedup, lead_weeks, new_usd, delivered_share, None, swap_weeks),
    ]
    rows = [growth_timeline(current_gpus, d, o, old_usd) for o in opts]
    best = min(rows, key=lambda r: (round(r["unmet_gpu_weeks"], 9), r["cost_usd"]))
    return {"options": rows, "recommended": best["option"], "peak_gap_gpus": gap}
