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
        if not on_demand_usd > 0:
            raise UserError(f"on-demand price {on_demand_usd}", where="spot policy", expected="a price > 0 USD/GPU-h")
        ckpt = self.checkpoint_s / self.checkpoint_interval_s if self.checkpoint_interval_s else 0.0
        margin = 1.0 - spot_usd / on_demand_usd - ckpt
        lost = self.lost_per_reclaim_s()
        if lost <= 0:  # a reclaim loses nothing: spot pays at any rate while it is cheaper at all
            return float("inf") if margin > 0 else 0.0
        return max(0.0, margin * DAY_S / lost)


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
    """Share of the order the provider delivers (availability), in (0, 1]; 1 = all."""
    quota_gpus: int | None = None
    """Cloud quota on new GPUs: every order (expand and replace) is capped at it."""
    swap_weeks: int = 1
    """Replace: weeks each delivered new GPU runs beside the old one it replaces (validation, burn-in,
    migration) before the old one is decommissioned; only the old one counts as capacity then."""


def _check_option(opt: GrowthOption) -> None:
    if not 0 < opt.delivered_share <= 1:
        raise UserError(
            f"--availability {opt.delivered_share:g}",
            where="--availability",
            expected="a share of the order delivered in (0, 1]",
            fix="0 delivers nothing: every division by it would blow up; give the share you expect",
        )
    if not opt.speedup > 0:
        raise UserError(f"--speedup {opt.speedup:g}", where="--speedup", expected="a throughput ratio > 0")
    for v, w in ((opt.gpus, "--order-gpus"), (opt.lead_weeks, "--lead-weeks"), (opt.swap_weeks, "--swap-weeks")):
        if v < 0:
            raise UserError(f"{w} {v} is negative", where=w, expected="a number >= 0")
    if opt.quota_gpus is not None and opt.quota_gpus < 0:
        raise UserError(f"--quota {opt.quota_gpus} is negative", where="--quota", expected="GPUs >= 0")


def growth_timeline(current_gpus: int, demand: np.ndarray, opt: GrowthOption, old_usd_per_gpu_hour: float) -> dict:
    """Week-by-week capacity (current-GPU units, shape (weeks,)), unmet demand and cost of one growth option.

    The order is ``min(gpus, quota_gpus)``; ``delivered_share`` of it arrives in week ``lead_weeks``.
    Expand: the delivered GPUs serve from then on. Replace is staggered: each delivered new GPU runs
    beside the old GPU it replaces for ``swap_weeks`` (validation), then serves while the old one is
    decommissioned, so capacity never drops below the current fleet. Cost (USD) = GPUs paid each week
    (old in service + new delivered) x their price x 168 h, inside the forecast only, split into
    ``current_fleet_usd`` (the current GPUs still in service: paid whatever the option) and
    ``new_gpus_usd``; an order
    arriving after the forecast's last week is reported with ``deliverable_in_horizon`` False and
    costs nothing inside it. Raises UserError for availability outside (0, 1], speedup <= 0 or
    negative counts."""
    _check_option(opt)
    d = np.asarray(demand, dtype=float)
    w = np.arange(len(d))
    wanted = int(opt.gpus)
    quota_binds = opt.quota_gpus is not None and wanted > opt.quota_gpus
    n = min(wanted, opt.quota_gpus) if opt.quota_gpus is not None else wanted
    got = n * opt.delivered_share
    arrives = opt.lead_weeks
    if opt.kind == "expand":
        new = np.where(w >= arrives, got, 0.0)
        old = np.full(len(d), float(current_gpus))
        cap = old + new * opt.speedup
        serving_from = arrives
    elif opt.kind == "replace":
        if got > current_gpus:
            raise UserError(f"{opt.name}: replaces {got:g} GPUs of {current_gpus}", where=f"options.{opt.name}")
        serving_from = arrives + opt.swap_weeks
        new = np.where(w >= arrives, got, 0.0)  # paid from delivery
        serving = np.where(w >= serving_from, got, 0.0)
        old = current_gpus - serving  # decommissioned only as its replacement serves
        cap = old + serving * opt.speedup
    else:
        raise UserError(f"growth option kind '{opt.kind}'", where=f"options.{opt.name}", expected="expand or replace")
    unmet = np.maximum(d - cap, 0.0)
    hours = 168.0
    current_usd = float((old * old_usd_per_gpu_hour).sum() * hours)
    new_usd = float((new * opt.usd_per_gpu_hour).sum() * hours)
    cost = current_usd + new_usd
    in_horizon = n > 0 and serving_from < len(d)
    return {
        "option": opt.name,
        "capacity": cap,
        "unmet_gpu_weeks": float(unmet.sum()),
        "weeks_short": int((unmet > 1e-9).sum()),
        "cost_usd": cost,
        "current_fleet_usd": current_usd,
        "new_gpus_usd": new_usd,
        "gpus_requested": wanted,
        "gpus_ordered": n,
        "quota_binds": bool(quota_binds),
        "gpus_delivered": got,
        "arrives_week": arrives,
        "serving_from_week": serving_from,
        "deliverable_in_horizon": bool(in_horizon) if n > 0 else None,
        "gpus_delivered_in_horizon": got if arrives < len(d) else 0.0,
    }


def spike_plan(
    forecast: np.ndarray,
    capacity: float,
    lead_weeks: int,
    burst_gpus: float,
    now_week: int = 0,
    quota_gpus: float | None = None,
) -> dict:
    """Orders for a demand forecast (GPUs per week, shape (weeks,)): each increment ordered
    ``lead_weeks`` ahead, all orders together capped at ``quota_gpus``; the shortfall that no order
    can cover in time (``too_late``: increments needed before ``now_week + lead_weeks``) or that the
    quota refuses (``quota_binds``) is served by on-demand burst up to ``burst_gpus``, the rest unmet.
    ``why_no_orders`` says why ``orders`` is empty (None when it is not)."""
    f = np.asarray(forecast, dtype=float)
    if lead_weeks < 0 or burst_gpus < 0 or (quota_gpus is not None and quota_gpus < 0):
        raise UserError("negative lead time, burst or quota", where="spike", expected="numbers >= 0")
    orders: list[dict] = []
    too_late: list[dict] = []
    cap = np.full(len(f), float(capacity))
    have = float(capacity)
    late_level = float(capacity)
    left = float("inf") if quota_gpus is None else float(quota_gpus)
    quota_short = 0.0
    for wk in range(len(f)):
        need = f[wk] - have
        if need <= 1e-9:
            continue
        place = wk - lead_weeks
        if place < now_week:
            inc = f[wk] - max(have, late_level)
            if inc > 1e-9:
                too_late.append({"week": wk, "gpus": float(np.ceil(inc - 1e-9))})
                late_level = float(f[wk])
            continue
        want = float(np.ceil(need - 1e-9))
        grant = min(want, left)
        if grant < want:
            quota_short = max(quota_short, want - grant)
        if grant <= 0:
            continue
        orders.append({"order_week": place, "arrives_week": wk, "gpus": grant})
        left -= grant
        have += grant
        cap[wk:] = have
    short = np.maximum(f - cap, 0.0)
    burst = np.minimum(short, burst_gpus)
    unmet = short - burst
    why = None
    if not orders:
        if not (f > capacity + 1e-9).any():
            why = "no order needed: the current GPUs cover every week of the forecast"
        elif quota_gpus is not None and quota_gpus <= 0 and not too_late:
            why = "the quota is 0: no order can be placed"
        elif too_late and now_week + lead_weeks >= len(f):
            why = (
                f"no order can arrive inside the {len(f)}-week forecast: one placed in week {now_week} arrives in "
                f"week {now_week + lead_weeks} ({lead_weeks}-week lead time)"
            )
        elif quota_gpus is not None and quota_gpus <= 0:
            why = "the quota is 0: no order can be placed"
        else:
            why = "every increment is needed sooner than an order placed now can arrive"
    return {
        "orders": orders,
        "too_late": too_late,
        "quota_gpus": quota_gpus,
        "quota_binds": quota_short > 0,
        "gpus_refused_by_quota": quota_short,
        "why_no_orders": why,
        "capacity": cap,
        "burst_gpu_weeks": float(burst.sum()),
        "unmet_gpu_weeks": float(unmet.sum()),
        "first_short_week": int(np.flatnonzero(unmet > 1e-9)[0]) if (unmet > 1e-9).any() else None,
    }


CONSERVATIVE_SPEEDUP = 1.0
"""Default throughput of one new GPU in current GPUs: the catalog has no measured training-throughput
ratio between GPU models (only datasheet peaks), so the planner assumes the new GPU is worth one
current GPU, which can only over-order; the peak ratio is shown beside it as the upper bound."""


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

    Unless ``order_gpus`` is given, each option asks for what closes the forecast's peak gap:
    expand ``ceil(gap / (speedup x delivered))`` new GPUs; replace ``ceil(gap / ((speedup - 1) x
    delivered))``, at most the current fleet (a replacement with ``speedup <= 1`` adds nothing); the
    quota caps both. Returns both timelines (:func:`growth_timeline`), the unmet GPU-weeks of ordering
    nothing, and the recommendation with its reason: ``none`` when nothing needs ordering or when
    neither option reduces the unmet demand inside the forecast, else the option with the least unmet
    GPU-weeks, then the least cost (``meets_demand`` says whether it closes the gap). Raises
    UserError for negative inputs, availability outside (0, 1] or speedup <= 0."""
    d = np.asarray(demand, dtype=float)
    for v, w in ((current_gpus, "--current-gpus"), (lead_weeks, "--lead-weeks"), (swap_weeks, "--swap-weeks")):
        if v < 0:
            raise UserError(f"{w} {v} is negative", where=w, expected="a number >= 0")
    if quota_gpus is not None and quota_gpus < 0:
        raise UserError(f"--quota {quota_gpus} is negative", where="--quota", expected="GPUs >= 0")
    if not 0 < delivered_share <= 1:
        raise UserError(f"--availability {delivered_share:g}", where="--availability", expected="a share in (0, 1]")
    if not speedup > 0:
        raise UserError(f"--speedup {speedup}", where="--speedup", expected="a throughput ratio > 0")
    gap = max(0.0, float(d.max()) - current_gpus) if len(d) else 0.0
    n_exp = order_gpus if order_gpus is not None else int(np.ceil(gap / (speedup * delivered_share) - 1e-9))
    if order_gpus is not None:
        n_rep = min(order_gpus, current_gpus)
    elif speedup > 1:
        n_rep = min(current_gpus, int(np.ceil(gap / ((speedup - 1.0) * delivered_share) - 1e-9)))
    else:
        n_rep = 0
    opts = [
        GrowthOption("expand", "expand", n_exp, speedup, lead_weeks, new_usd, delivered_share, quota_gpus, swap_weeks),
        GrowthOption(
            "replace", "replace", n_rep, speedup, lead_weeks, new_usd, delivered_share, quota_gpus, swap_weeks
        ),
    ]
    rows = [growth_timeline(current_gpus, d, o, old_usd) for o in opts]
    for r in rows:  # why an option orders nothing, said where its row is shown
        r["why_no_order"] = None
        if r["gpus_requested"] == 0:
            if gap <= 1e-9:
                r["why_no_order"] = "no gap to close"
            elif r["option"] == "replace" and current_gpus == 0:
                r["why_no_order"] = "no current GPUs to replace"
            elif r["option"] == "replace" and speedup <= 1:
                r["why_no_order"] = f"speed-up {speedup:g} <= 1 adds no capacity"
            elif order_gpus == 0:
                r["why_no_order"] = "--order-gpus 0"
    base_unmet = float(np.maximum(d - current_gpus, 0.0).sum())
    best = min(rows, key=lambda r: (round(r["unmet_gpu_weeks"], 9), r["cost_usd"]))
    if base_unmet <= 1e-9:
        rec, why, meets = "none", "no order needed: the current GPUs cover every week of the forecast", True
    elif best["unmet_gpu_weeks"] >= base_unmet - 1e-9:
        causes = []
        if lead_weeks >= len(d):
            causes.append(f"orders arrive in week {lead_weeks}, after the {len(d)}-week forecast")
        if quota_gpus == 0:
            causes.append("the quota is 0")
        if speedup <= 1:
            causes.append("replacing with a GPU worth <= 1 current GPU adds nothing")
        rec, meets = "none", False
        why = (
            f"neither option meets demand: both leave all {base_unmet:,.1f} unmet GPU-weeks of ordering nothing"
            + (f" ({'; '.join(causes)})" if causes else "")
            + "; cover the gap with on-demand burst or a shorter lead time"
        )
    elif best["unmet_gpu_weeks"] > 1e-9:
        rec, meets = best["option"], False
        why = (
            f"neither option meets demand; {best['option']} leaves the least unmet ({best['unmet_gpu_weeks']:,.1f} of "
            f"{base_unmet:,.1f} GPU-weeks), then the least cost"
        )
    else:
        rec, meets = best["option"], True
        why = f"{best['option']} meets demand at the least cost"
    return {
        "options": rows,
        "recommended": rec,
        "recommendation": why,
        "meets_demand": meets,
        "no_order_unmet_gpu_weeks": base_unmet,
        "peak_gap_gpus": gap,
    }
