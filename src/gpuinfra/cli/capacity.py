"""`gpuinfra capacity plan`: expansion vs replacement under quotas, lead times and availability, and
launch-spike orders, from a demand forecast (file or flag). Parse, call models/capacity.py, print.
Exit codes: 0 fine, 2 bad input (a forecast row, a negative quota, a GPU model without a price)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, _console, check_input_file, esc
from gpuinfra.errors import UserError
from gpuinfra.units import check_all

out = _console(highlight=False, soft_wrap=True)
capacity_app = typer.Typer(
    help="Capacity: expansion vs replacement, launch spikes, committed level, from a demand forecast.",
    no_args_is_help=True,
)


def _demand(forecast: Path | None, demand: str | None) -> tuple[Any, str]:
    from gpuinfra.io.forecast import load_forecast, parse_flag

    if (forecast is None) == (demand is None):
        raise UserError(
            "give the demand forecast once",
            where="--forecast/--demand",
            expected="either --forecast FILE (CSV week,gpus or YAML) or --demand 120,120,180",
        )
    if forecast is not None:
        check_input_file(forecast, "--forecast", "forecast file")
        return load_forecast(forecast)
    return parse_flag(demand or ""), "--demand"


DEFAULT_COMMITTED_DISCOUNT = 0.5
"""ASSUMPTION, not a published GPU rate: committed price = on-demand x (1 - 0.5). It lies inside the
vendors' published "up to" ranges: AWS EC2 Instance Savings Plans and Standard Reserved Instances
"up to 72 %" off On-Demand (AWS Savings Plans / Reserved Instances pages; the stored facts mark the
figure unverified, docs/facts cost-lifecycle-security 1.3), Compute Savings Plans "up to 66 %"; GCP
resource-based committed use discounts "up to 57 %" on most machine types and GPUs for 3 years. Rates
for a given GPU family, term and payment option differ (GCP: "don't hard-code"); give yours with
--committed-discount."""
COMMITTED_DISCOUNT_ASSUMPTION = (
    "assumption: default 50 %, not a published GPU rate; vendors publish 'up to' figures (AWS EC2 Instance "
    "Savings Plans / Standard RIs up to 72 %, GCP 3-year resource-based CUDs up to 57 %); give yours with "
    "--committed-discount"
)


def plan_dict(
    demand,
    source: str,
    *,
    current_gpus: int,
    gpu: str,
    new_gpu: str,
    speedup: float | None,
    lead_weeks: int,
    quota: int | None,
    availability: float,
    swap_weeks: int,
    order_gpus: int | None,
    burst_gpus: float,
    committed_discount: float | None,
    cloud: str | None,
) -> dict[str, Any]:
    """Everything `capacity plan` computes, as one JSON-able dict (the CLI prints and writes it)."""
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.models.capacity import (
        CONSERVATIVE_SPEEDUP,
        committed_level,
        growth_plan,
        mix_cost,
        peak_speedup,
        spike_plan,
    )

    check_all(
        [
            (current_gpus, "--current-gpus", dict(lo=0, hi=1e7)),
            (lead_weeks, "--lead-weeks", dict(lo=0, hi=520)),
            (quota, "--quota", dict(lo=0, hi=1e7)),
            (availability, "--availability", dict(lo=0, hi=1, lo_open=True)),
            (swap_weeks, "--swap-weeks", dict(lo=0, hi=520)),
            (order_gpus, "--order-gpus", dict(lo=0, hi=1e7)),
            (burst_gpus, "--burst-gpus", dict(lo=0, hi=1e7)),
            (committed_discount, "--committed-discount", dict(lo=0, hi=1, hi_open=True)),
            (speedup, "--speedup", dict(lo=0, hi=1000, lo_open=True)),
        ]
    )
    prices = {}
    for name, where in ((gpu, "--gpu"), (new_gpu, "--new-gpu")):
        try:
            p = gpu_hour_price(name, cloud=cloud)
        except UserError as e:
            raise UserError(e.what, where=where, expected=e.expected, fix=e.fix) from None
        if p.on_demand_usd is None:
            raise UserError(f"no on-demand price for {p.gpu_model}", where=where, fix="choose another model or --cloud")
        prices[where] = p
    try:
        bound, bound_note = peak_speedup(gpu, new_gpu)
    except UserError:
        bound, bound_note = None, "no dense tensor peak in the catalog"
    if speedup is None:
        speedup = CONSERVATIVE_SPEEDUP
        speedup_note = (
            "default 1.0, conservative: the catalog has no measured training-throughput ratio; "
            "give --speedup with a measured one"
        )
    else:
        speedup_note = "given (--speedup)"
    if bound is not None and speedup > bound * (1 + 1e-9):
        speedup_note += f"; above the peak-ratio upper bound {bound:.2f}"
    old, new = prices["--gpu"], prices["--new-gpu"]
    g = growth_plan(
        demand,
        current_gpus,
        speedup=speedup,
        old_usd=old.on_demand_usd,
        new_usd=new.on_demand_usd,
        lead_weeks=lead_weeks,
        quota_gpus=quota,
        delivered_share=availability,
        swap_weeks=swap_weeks,
        order_gpus=order_gpus,
    )
    s = spike_plan(demand, float(current_gpus), lead_weeks, burst_gpus, quota_gpus=quota)
    if committed_discount is None:
        committed_discount, discount_basis = DEFAULT_COMMITTED_DISCOUNT, COMMITTED_DISCOUNT_ASSUMPTION
    else:
        discount_basis = "given (--committed-discount)"
    committed_usd = old.on_demand_usd * (1.0 - committed_discount)
    level = committed_level(demand, old.on_demand_usd, committed_usd)
    weekly_h = 168.0
    mix = mix_cost(demand, level, old.on_demand_usd * weekly_h, committed_usd * weekly_h)
    return {
        "schema": "gpuinfra.capacity-plan/1",
        "forecast": {"gpus_per_week": [float(x) for x in demand], "source": source},
        "current_gpus": current_gpus,
        "gpu": {"model": old.gpu_model, "on_demand_usd_per_gpu_hour": old.on_demand_usd, "source": old.source},
        "new_gpu": {"model": new.gpu_model, "on_demand_usd_per_gpu_hour": new.on_demand_usd, "source": new.source},
        "speedup": speedup,
        "speedup_basis": speedup_note,
        "speedup_upper_bound": bound,
        "speedup_upper_bound_basis": bound_note,
        "growth": {
            "recommended": g["recommended"],
            "recommendation": g["recommendation"],
            "meets_demand": g["meets_demand"],
            "no_order_unmet_gpu_weeks": g["no_order_unmet_gpu_weeks"],
            "peak_gap_gpus": g["peak_gap_gpus"],
            "options": [{k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in r.items()} for r in g["options"]],
        },
        "spike": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in s.items()},
        "committed": {
            "discount": committed_discount,
            "discount_basis": discount_basis,
            "level_gpus": level,
            "cost_usd": {k: v for k, v in mix.items() if k != "committed_idle_gpu_hours"},
            "committed_idle_gpu_weeks": mix["committed_idle_gpu_hours"],
            "all_on_demand_usd": float(sum(demand)) * old.on_demand_usd * weekly_h,
        },
    }


@capacity_app.command("plan")
def plan_cmd(
    forecast: Annotated[
        Path | None,
        typer.Option("--forecast", "-f", help="Demand forecast: CSV (week,gpus) or YAML (forecast: [...])."),
    ] = None,
    demand: Annotated[str | None, typer.Option(help="Demand per week instead of a file: 120,120,180,...")] = None,
    current_gpus: Annotated[int, typer.Option("--current-gpus", help="GPUs in service now (current model).")] = 0,
    gpu: Annotated[str, typer.Option(help="Current GPU model (catalog name or alias).")] = "A100-80GB",
    new_gpu: Annotated[str, typer.Option("--new-gpu", help="GPU model to expand with or replace by.")] = "H100-SXM",
    speedup: Annotated[
        float | None,
        typer.Option(
            help="One new GPU in current GPUs, measured (default 1.0, conservative; the peak ratio is shown as a bound)."
        ),
    ] = None,
    lead_weeks: Annotated[int, typer.Option("--lead-weeks", help="Weeks from order to GPUs in service.")] = 8,
    quota: Annotated[
        int | None, typer.Option(help="Cloud quota on new GPUs: caps every order (expand, replace, spike).")
    ] = None,
    availability: Annotated[float, typer.Option(help="Share of an order the provider delivers, in (0, 1].")] = 1.0,
    swap_weeks: Annotated[
        int,
        typer.Option(
            "--swap-weeks",
            help="Replacement: weeks new and old GPUs overlap (validation) before the old is decommissioned.",
        ),
    ] = 1,
    order_gpus: Annotated[
        int | None, typer.Option("--order-gpus", help="New GPUs to order (default: what closes the peak gap).")
    ] = None,
    burst_gpus: Annotated[
        float, typer.Option("--burst-gpus", help="Spike: on-demand GPUs the provider lends inside the lead time.")
    ] = 0.0,
    committed_discount: Annotated[
        float | None,
        typer.Option(
            "--committed-discount",
            help="Committed price = on-demand x (1 - this); default 0.5, an assumption (see docs/capacity.md).",
        ),
    ] = None,
    cloud: Annotated[str | None, typer.Option(help="Price rows of one cloud (aws, gcp, azure).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Write plan.json + manifest.json here.")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Expansion vs replacement (quota, lead time, availability), launch-spike orders and the committed
    level, all from one demand forecast in GPUs per week (units of the current GPU)."""
    from gpuinfra.io import manifest
    from gpuinfra.io.results import write_json

    if out_dir is not None:
        manifest.prepare(out_dir, "capacity plan", force=force)
    d, source = _demand(forecast, demand)
    p = plan_dict(
        d,
        source,
        current_gpus=current_gpus,
        gpu=gpu,
        new_gpu=new_gpu,
        speedup=speedup,
        lead_weeks=lead_weeks,
        quota=quota,
        availability=availability,
        swap_weeks=swap_weeks,
        order_gpus=order_gpus,
        burst_gpus=burst_gpus,
        committed_discount=committed_discount,
        cloud=cloud,
    )
    if out_dir is not None:
        manifest.begin(out_dir)
        write_json(out_dir / "plan.json", p)
        params = {k: v for k, v in p.items() if k in ("current_gpus", "speedup")} | {"source": source}
        manifest.write_manifest(out_dir, "capacity plan", params, [out_dir / "plan.json"])
    if as_json:
        print(json.dumps(p, indent=1, default=str))
        return
    _print_plan(p)
    if out_dir is not None:
        out.print(f"wrote {esc(out_dir / 'plan.json')}, manifest.json")


def _print_plan(p: dict[str, Any]) -> None:
    g, s, c = p["growth"], p["spike"], p["committed"]
    weeks = len(p["forecast"]["gpus_per_week"])
    bound = p.get("speedup_upper_bound")
    out.print(
        f"forecast: {weeks} week{'s' if weeks != 1 else ''}, peak {max(p['forecast']['gpus_per_week']):,.0f} GPUs "
        f"({esc(p['forecast']['source'])}); now {p['current_gpus']:,} x {esc(p['gpu']['model'])}; one "
        f"{esc(p['new_gpu']['model'])} = {p['speedup']:.2f} current GPUs ({esc(p['speedup_basis'])})"
        + (f"; upper bound {bound:.2f} ({esc(p['speedup_upper_bound_basis'])})" if bound is not None else "")
    )
    t = Table(
        "option",
        "ordered",
        "delivered in horizon",
        "unmet GPU-weeks",
        "weeks short",
        "cost in horizon (USD)",
        "of it: current GPUs (USD)",
        title="growth",
    )
    for r in g["options"]:
        style = "bold green" if r["option"] == g["recommended"] else None
        ordered = f"{r['gpus_ordered']:,}"
        if r.get("why_no_order"):
            ordered += f" ({r['why_no_order']})"
        if r.get("quota_binds"):
            ordered += f" (quota; {r['gpus_requested']:,} needed)"
        if r.get("deliverable_in_horizon") is False:
            delivered = f"none: arrives week {r['arrives_week']}, not deliverable in the {weeks}-week horizon"
            if r["option"] == "replace" and r["arrives_week"] < weeks:
                delivered = (
                    f"{r['gpus_delivered']:,.1f} (validated from week {r['serving_from_week']}, after the horizon)"
                )
        else:
            delivered = f"{r['gpus_delivered_in_horizon']:,.1f}"
        t.add_row(
            r["option"],
            ordered,
            delivered,
            f"{r['unmet_gpu_weeks']:,.1f}",
            str(r["weeks_short"]),
            f"{r['cost_usd']:,.0f}",
            f"{r['current_fleet_usd']:,.0f}",
            style=style,
        )
    out.print(t)
    out.print(
        f"cost in horizon: every GPU paid each week x its on-demand price x 168 h over the {weeks}-week forecast: "
        f"the current {p['current_gpus']:,} x {esc(p['gpu']['model'])} still in service (paid whatever the option) "
        f"plus the new GPUs from delivery"
    )
    out.print(
        f"ordering nothing leaves {g['no_order_unmet_gpu_weeks']:,.1f} GPU-weeks unmet; "
        f"recommended: {esc(g['recommendation'])}"
    )
    o = Table("order week", "arrives week", "GPUs", title="launch-spike orders (current GPU)")
    for r in s["orders"]:
        o.add_row(str(r["order_week"]), str(r["arrives_week"]), f"{r['gpus']:,.0f}")
    if s["orders"]:
        out.print(o)
    else:
        out.print(f"launch-spike orders: none ({esc(s['why_no_orders'] or '')})")
    if s["too_late"]:
        out.print(
            "too late to order (needed before an order placed now arrives): "
            + ", ".join(f"week {x['week']} +{x['gpus']:,.0f}" for x in s["too_late"])
        )
    if s["quota_binds"]:
        out.print(f"the quota of {s['quota_gpus']:,.0f} GPUs binds: {s['gpus_refused_by_quota']:,.0f} more were needed")
    fs = s["first_short_week"]
    out.print(
        f"on-demand burst {s['burst_gpu_weeks']:,.1f} GPU-weeks; unmet {s['unmet_gpu_weeks']:,.1f} GPU-weeks"
        + (f", first short week {fs}" if fs is not None else "")
    )
    out.print(
        f"committed level at {100 * c['discount']:.0f} % off ({esc(c['discount_basis'])}): {c['level_gpus']:,} GPUs, "
        f"{c['cost_usd']['total_usd']:,.0f} USD vs {c['all_on_demand_usd']:,.0f} USD all on-demand"
    )
