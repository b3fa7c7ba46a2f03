"""`gpuinfra spot inventory` and `gpuinfra spot whatif`: the Alibaba spot GPU cluster's node inventory,
and on-demand vs spot vs committed+spot replayed on it (gpuinfra/spot_whatif.py). Parse, call, print.
Exit codes: 0 fine, 2 bad input (a reclaim rate outside [0, 1], a GPU model without a price, a bad
--price or spec file)."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, Interrupted, _console, check_input_file, err, esc
from gpuinfra.errors import UserError

out = _console(highlight=False, soft_wrap=True)
spot_app = typer.Typer(
    help="Spot GPUs: the Alibaba spot cluster's inventory, and spot vs on-demand vs committed replayed on it.",
    no_args_is_help=True,
)

_PRICE = re.compile(r"^\s*([^=]+?)\s*=\s*([^:]+?)\s*:\s*([^:]+?)\s*$")


def parse_price(text: str, where: str = "--price") -> tuple[str, float, float]:
    """``MODEL=ON_DEMAND:SPOT`` (USD per GPU-hour, both > 0) -> (model, on-demand, spot).

    Raises UserError naming ``where`` for anything else."""
    m = _PRICE.match(text)
    expected = "MODEL=ON_DEMAND:SPOT in USD per GPU-hour, e.g. H800=2.50:0.90"
    if not m:
        raise UserError(f"'{text[:60]}'", where=where, expected=expected)
    vals = []
    for part, name in ((m.group(2), "on-demand"), (m.group(3), "spot")):
        try:
            v = float(part)
        except ValueError:
            raise UserError(f"{name} price '{part[:30]}' is not a number", where=where, expected=expected) from None
        if not math.isfinite(v) or v <= 0 or v > 1e4:
            raise UserError(f"{name} price {part[:30]} is out of range", where=where, expected="(0, 10000] USD/GPU-h")
        vals.append(v)
    return m.group(1), vals[0], vals[1]


def build_spec(spec_file: Path | None, overrides: dict[str, Any], prices: list[str]) -> Any:
    """The what-if spec: a YAML file (validated with file:line), then the flags given over it."""
    from pydantic import ValidationError

    from gpuinfra.spot_whatif import PriceSpec, WhatIfSpec

    if spec_file is not None:
        from gpuinfra.io.scenario_load import load_model_file

        check_input_file(spec_file, "--spec", "spec file")
        base = load_model_file(spec_file, WhatIfSpec, what="a spot what-if spec").model_dump()
    else:
        base = {}
    base |= {k: v for k, v in overrides.items() if v is not None}
    from gpuinfra.spot_whatif import inventory

    models = sorted({p.model for p in inventory()})
    ps = dict(base.get("prices") or {})
    given: set[str] = set()
    for text in prices:
        model, od, sp = parse_price(text)
        if model not in models:
            from gpuinfra.errors import did_you_mean

            raise UserError(
                f"'{model}' is not a GPU model of the spot inventory",
                where="--price",
                expected="one of " + ", ".join(models),
                fix=did_you_mean(model, models) or "see `gpuinfra spot inventory`",
            )
        if model in given:
            raise UserError(f"{model} is priced twice", where="--price", fix="keep one --price per model")
        if sp > od:
            raise UserError(
                f"{model}'s spot price {sp:g} is above its on-demand price {od:g}",
                where="--price",
                expected="spot at or below on-demand (spot capacity is sold at a discount)",
                fix="check the order: MODEL=ON_DEMAND:SPOT",
            )
        given.add(model)
        ps[model] = PriceSpec(on_demand_usd=od, spot_usd=sp, source="given on the command line (--price)")
    base["prices"] = ps
    try:
        return WhatIfSpec.model_validate(base)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        flag = "--" + field.replace("_", "-")
        raise UserError(f"{first['msg']} (got {str(first.get('input'))[:40]})", where=flag) from None


@spot_app.command("inventory")
def inventory_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The packaged node inventory by pool (GPU model, GPUs per node, vCPUs) and each model's price."""
    from gpuinfra.spot_whatif import INVENTORY_SOURCE, WhatIfSpec, inventory, price_for

    pools = inventory()
    rows = []
    for p in pools:
        try:
            pr = price_for(p.model, WhatIfSpec())
            price = {"on_demand_usd": pr.on_demand_usd, "spot_usd": pr.spot_usd}
        except UserError as e:
            price = {"unpriced": e.what}
        rows.append(
            {"gpu_model": p.model, "gpus_per_node": p.gpus_per_node, "vcpus": p.vcpus, "nodes": len(p.nodes)} | price
        )
    if as_json:
        print(json.dumps({"source": INVENTORY_SOURCE, "pools": rows}, indent=1))
        return
    t = Table("GPU model", "GPUs/node", "vCPUs", "nodes", "GPUs", "on-demand $/GPU-h", "spot $/GPU-h")
    for r in rows:
        t.add_row(
            esc(r["gpu_model"]),
            str(r["gpus_per_node"]),
            str(r["vcpus"]),
            f"{r['nodes']:,}",
            f"{r['nodes'] * r['gpus_per_node']:,}",
            f"{r['on_demand_usd']:.3f}" if "on_demand_usd" in r else "no price",
            f"{r['spot_usd']:.3f}" if "spot_usd" in r else "-",
        )
    out.print(t)
    n = sum(r["nodes"] for r in rows)
    g = sum(r["nodes"] * r["gpus_per_node"] for r in rows)
    out.print(f"{n:,} nodes, {g:,} GPUs; source: {esc(INVENTORY_SOURCE)}")


@spot_app.command("whatif")
def whatif_cmd(
    spec_file: Annotated[
        Path | None, typer.Option("--spec", help="YAML with the what-if's fields (flags win).")
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Inventory GPU models, comma-separated (default: every priced one).")
    ] = None,
    scale: Annotated[float | None, typer.Option(help="Share of each pool's nodes kept, (0, 1].")] = None,
    days: Annotated[float | None, typer.Option(help="Jobs arrive over this many days.")] = None,
    load: Annotated[float | None, typer.Option(help="Offered GPU-hours / capacity over the arrival window.")] = None,
    reclaim_per_month: Annotated[
        float | None,
        typer.Option("--reclaim-rate", help="Share of spot instances interrupted a month, [0, 1] (AWS: <5 %..>20 %)."),
    ] = None,
    notice_s: Annotated[
        float | None, typer.Option("--notice-s", help="Interruption notice, s (AWS 120, GCP 30).")
    ] = None,
    replace_s: Annotated[float | None, typer.Option("--replace-s", help="Until a replacement node joins, s.")] = None,
    checkpoint_interval_s: Annotated[
        float | None, typer.Option("--checkpoint-interval-s", help="Steady work between checkpoints, s.")
    ] = None,
    replace_unavailable_prob: Annotated[
        float | None,
        typer.Option(
            "--replace-unavailable-prob",
            help="Share of reclaims after which no spot capacity comes back for a while, [0, 1] [assumption: 0.1].",
        ),
    ] = None,
    replace_unavailable_s: Annotated[
        float | None,
        typer.Option("--replace-unavailable-s", help="How long a replacement is unavailable then, s [assumption]."),
    ] = None,
    autoscale_granularity_s: Annotated[
        float | None,
        typer.Option(
            "--autoscale-granularity-s",
            help="Right-sized baseline: scale-down delay billed per job, s (cluster-autoscaler default 600).",
        ),
    ] = None,
    committed_share: Annotated[
        float | None, typer.Option("--committed-share", help="committed+spot: share of nodes committed, [0, 1].")
    ] = None,
    committed_discount: Annotated[
        float | None, typer.Option("--committed-discount", help="Committed = on-demand x (1 - this) [assumption].")
    ] = None,
    cloud: Annotated[str | None, typer.Option(help="Catalog price rows of one cloud (aws, gcp, azure).")] = None,
    price: Annotated[list[str] | None, typer.Option(help="MODEL=ON_DEMAND:SPOT USD per GPU-hour (repeatable).")] = None,
    plans: Annotated[str, typer.Option(help="Comma-separated: on-demand, spot, committed+spot.")] = (
        "on-demand,spot,committed+spot"
    ),
    scenario: Annotated[
        str | None,
        typer.Option(help="A scenario with a spot: block (file or built-in) instead of the inventory."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the jobs and reclaims, the same for every plan (default 0 / scenario's)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write summary.json, pools.csv, manifest.json here.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Replay the same checkpointed training jobs on the Alibaba spot cluster's inventory all on-demand,
    all spot (reclaimed with notice, replaced) and committed+spot; cost, goodput, lost GPU-hours,
    jobs interrupted, completion time side by side."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gpuinfra.io import manifest
    from gpuinfra.spot_whatif import whatif
    from gpuinfra.units import MAX_SEED, check_number, parse_names

    check_number(seed, "--seed", lo=0, hi=MAX_SEED)
    if out_dir is not None:
        manifest.prepare(out_dir, "spot whatif", force=force)
    if committed_discount is not None and not 0 <= committed_discount < 1:
        raise UserError(f"--committed-discount {committed_discount}", where="--committed-discount", expected="[0, 1)")
    over = {
        "models": parse_names(models, "--models") if models is not None else None,
        "scale": scale,
        "days": days,
        "load": load,
        "reclaim_per_month": reclaim_per_month,
        "notice_s": notice_s,
        "replace_s": replace_s,
        "checkpoint_interval_s": checkpoint_interval_s,
        "replace_unavailable_prob": replace_unavailable_prob,
        "replace_unavailable_s": replace_unavailable_s,
        "autoscale_granularity_s": autoscale_granularity_s,
        "committed_share": committed_share,
        "committed_discount": committed_discount,
        "cloud": cloud,
    }
    if reclaim_per_month is not None and not 0 <= reclaim_per_month <= 1:
        raise UserError(
            f"--reclaim-rate {reclaim_per_month}",
            where="--reclaim-rate",
            expected="a share of instances interrupted a month in [0, 1] (AWS Spot Advisor buckets: <0.05 .. >0.20)",
        )
    ps = tuple(parse_names(plans, "--plans"))
    if scenario is not None:
        given = [
            f"--{k.replace('_', '-')}"
            for k, v in over.items()
            if v is not None and k not in ("committed_discount", "autoscale_granularity_s")
        ]
        if spec_file is not None or price or given:
            raise UserError(
                "--scenario replays the scenario as written",
                where="--scenario",
                expected="no inventory options (--spec, --price, "
                + ", ".join(given or ["--models", "..."])
                + ") with it",
                fix="set pools, rates and prices in the scenario file",
            )
        from gpuinfra import api

        sc = api.scenario(scenario)
        spec = None
    else:
        spec = build_spec(spec_file, over, price or [])
    t0 = time.perf_counter()
    prog = Progress(
        TextColumn("[bold]spot whatif[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )
    try:
        with prog:
            task = prog.add_task("", total=len(ps))
            done: list[str] = []

            def tick(plan: str, f: float) -> None:
                if plan not in done:
                    done.append(plan)
                prog.update(task, description=plan, completed=len(done) - 1 + min(f, 1.0))

            if spec is None:
                from gpuinfra.spot_whatif import scenario_whatif

                disc = 0.5 if committed_discount is None else committed_discount
                gran = 600.0 if autoscale_granularity_s is None else autoscale_granularity_s
                r = scenario_whatif(
                    sc,
                    sc._base_dir,
                    seed=seed,
                    committed_discount=disc,
                    plans=ps,
                    progress=tick,
                    autoscale_granularity_s=gran,
                )
            else:
                r = whatif(spec, seed=seed or 0, plans=ps, progress=tick)
    except KeyboardInterrupt:
        raise Interrupted("spot whatif", "nothing: results are written once every plan has run") from None
    wall = time.perf_counter() - t0
    if out_dir is not None:
        _write(out_dir, r, spec.model_dump() if spec is not None else {"scenario": scenario}, r["seed"], ps)
    if as_json:
        print(json.dumps(r, indent=1, default=str))
        return
    _print(r)
    out.print(
        f"{_n(len(r['plans']), 'plan')} in {wall:.1f} s"
        + (f"; wrote {esc(out_dir)}/summary.json, pools.csv" if out_dir else "")
    )


def _write(out_dir: Path, r: dict, spec: dict, seed: int, plans: tuple[str, ...]) -> None:
    import pandas as pd

    from gpuinfra.io import manifest
    from gpuinfra.io.atomic import write_with
    from gpuinfra.io.results import write_json

    manifest.begin(out_dir)
    write_json(out_dir / "summary.json", r)
    rows = [{"plan": name} | p for name, res in r["plans"].items() for p in res["pools"]]
    write_with(out_dir / "pools.csv", lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
    manifest.write_manifest(
        out_dir,
        "spot whatif",
        {"spec": spec, "seed": seed, "plans": list(plans)},
        [out_dir / "summary.json", out_dir / "pools.csv"],
    )


def _print(r: dict) -> None:
    inv = r.get("inventory")
    if inv is not None:
        out.print(
            f"inventory: {inv['nodes']:,} nodes, {inv['gpus']:,} GPUs ("
            + ", ".join(f"{esc(p['gpu_model'])} {p['nodes']:,} x {p['gpus_per_node']}" for p in inv["pools"])
            + f"); workload: {r['workload']['jobs']:,} training jobs, {r['workload']['gpu_hours']:,.0f} GPU-h; "
            f"seed {r['seed']}"
        )
        from gpuinfra.cli.catalog import usd

        out.print(
            "prices (USD/GPU-h, on-demand / spot): "
            + "; ".join(
                f"{esc(m)} {usd(p['on_demand_usd'])} / {usd(p['spot_usd'])} ({esc(p['source'])})"
                for m, p in r.get("prices", {}).items()
            )
            + "; `gpuinfra catalog prices MODEL` lists the instance types behind each median"
        )
        if inv["left_out"]:
            why: dict[str, list[str]] = {}
            for s in inv["left_out"]:
                why.setdefault(s["why"], []).append(f"{esc(s['gpu_model'])} ({_n(s['gpus'], 'GPU')})")
            fix = "; give --models M --price M=ON_DEMAND:SPOT to replay one" if "no catalog price" in why else ""
            out.print("left out: " + "; ".join(f"{esc(w)}: {', '.join(ms)}" for w, ms in why.items()) + fix)
        unit = "jobs"
    else:
        sp = r["spot"]
        rate = sp["reclaim_rate_per_node_day"]
        out.print(
            f"scenario {esc(r['scenario'])}, seed {r['seed']}: spot pool{'s' if len(sp['pools']) != 1 else ''} "
            f"{esc(', '.join(sp['pools']))}: {rate:g} reclaims per node-day ({rate * 30:g} a month), notice "
            f"{sp['notice_s']:g} s, replacement after "
            + ("never" if sp.get("replace_s") is None else f"{sp['replace_s']:g} s")
            + f". Source: {esc(sp['source'])}"
        )
        unit = "pods"
    cols = [
        ("cost_usd", "cost (USD)", "{:,.0f}"),
        ("usd_per_useful_gpu_hour", "USD/useful GPU-h", "{:,.3f}"),
        ("goodput", "goodput", "{:.2%}"),
        ("lost_gpu_hours", "lost GPU-h", "{:,.1f}"),
        ("reclaims", "reclaims", "{:,}"),
        ("pods_killed", "pods killed", "{:,}"),
        (f"{unit}_interrupted", f"{unit} interrupted", "{:,}"),
        ("jobs_unfinished", "unfinished", "{:,}"),
        ("pods_at_horizon", "pods at horizon", "{:,}"),
        ("completion_time_h", "done after (h)", "{:,.1f}"),
        ("mean_jct_h", "mean JCT (h)", "{:,.2f}"),
    ]
    cols = [c for c in cols if any(c[0] in res for res in r["plans"].values())]

    def open_ended(res: dict) -> bool:  # work still running or pending when the run stopped
        return bool(res.get("pods_at_horizon") or res.get("jobs_unfinished"))

    none_done = bool(r["plans"]) and all(open_ended(res) for res in r["plans"].values())
    if none_done:  # '> T' on every row says nothing: say it once below, without the column
        cols = [c for c in cols if c[0] != "completion_time_h"]
    labelled = any(res.get("label") for res in r["plans"].values())
    t = Table("plan", *(["what it buys"] if labelled else []), *[h for _, h, _ in cols], title="same seed, same work")
    some_open = False
    for name, res in r["plans"].items():
        cells = []
        for k, _, f in cols:
            if k == "completion_time_h" and open_ended(res):
                end = res.get("billed_hours") or res.get("completion_time_h")
                cells.append(f"> {end:,.1f}")
                some_open = True
            else:
                cells.append("-" if res.get(k) is None else f.format(res[k]))
        t.add_row(name, *([esc(res.get("label") or "")] if labelled else []), *cells)
    out.print(t)
    what = "job" if inv is not None else "pod"
    if none_done:
        end = max((res.get("billed_hours") or res.get("completion_time_h") or 0.0) for res in r["plans"].values())
        out.print(
            f"no plan finished all its {what}s inside the run's {end:,.1f}-h horizon (some were still running or "
            f"pending then, e.g. long-running services), so no completion time is given"
        )
    else:
        out.print(
            f"done after (h): time from the start until the last {what} finished"
            + ("; '> T': some were still running or pending at the run's horizon T" if some_open else "")
        )
    plans = r["plans"]
    if r.get("headline"):
        _print_headline(r["headline"], r.get("capacity_risk"))
    elif "on-demand" in plans:
        base = plans["on-demand"]
        for name, res in plans.items():
            if name != "on-demand" and base["cost_usd"]:
                d = 1 - res["cost_usd"] / base["cost_usd"]
                jct = (
                    f", mean JCT {_signed(res['mean_jct_h'] - base['mean_jct_h'], 2)} h"
                    if res["mean_jct_h"] is not None and base["mean_jct_h"] is not None
                    else ""
                )
                out.print(
                    f"{name}: {100 * abs(d):.1f} % {'cheaper' if d >= 0 else 'dearer'} than all on-demand, "
                    f"{res['lost_gpu_hours']:,.1f} GPU-h of work lost to {_n(res['reclaims'], 'reclaim')}{jct}"
                )
    out.print("invariants: ok in every run (checked by the engine at the end of each replay)")


def _n(count: float, word: str) -> str:
    """``1 node``, ``2 nodes``, ``1,000 GPUs``."""
    c = f"{count:,}" if isinstance(count, int) else f"{count:,.1f}"
    return f"{c} {word}{'' if count == 1 else 's'}"


def _pct(x: float) -> str:
    return f"{100 * abs(x):.1f} % {'cheaper' if x >= 0 else 'dearer'}"


def _print_headline(h: dict, risk: dict | None) -> None:
    g = h["autoscale_granularity_s"] / 60
    out.print(
        f"strongest baseline: on-demand right-sized, billed only for the GPU time the jobs held plus "
        f"{g:g} min of scale-down per job ({h['baseline_usd']:,.0f} USD); the fixed on-demand fleet costs "
        f"{h['fixed_on_demand_usd']:,.0f} USD at {100 * h['fixed_on_demand_utilisation']:.0f} % utilisation; "
        f"the price ratio alone is {100 * h['price_ratio_saving']:.1f} % off"
    )
    for name, x in h["plans"].items():
        name = f"{name} ({x['label']})" if x.get("label") else name
        line = f"{name}: fixed fleet {x['fixed_usd']:,.0f} USD, {_pct(x['saving_vs_right_sized_on_demand'])} than "
        line += f"right-sized on-demand ({_pct(x['saving_vs_fixed_on_demand'])} than the fixed on-demand fleet)"
        if x["right_sized_usd"] is not None:
            line += (
                f"; right-sized too: {x['right_sized_usd']:,.0f} USD, "
                f"{_pct(x['right_sized_saving_vs_right_sized_on_demand'])}"
            )
        out.print(line)
        if x["lost_gpu_hours"] or x["mean_jct_delta_h"]:
            jct = x["mean_jct_delta_h"]
            out.print(
                f"  reclaims cost beyond the price ratio: {x['lost_gpu_hours']:,.1f} GPU-h of work lost "
                f"({x['lost_usd_at_spot_price']:,.0f} USD at the spot price)"
                + (f", mean JCT {_signed(jct, 2)} h" if jct is not None else "")
                + (f", done {x['completion_delta_h']:+.1f} h later" if x["completion_delta_h"] else "")
                + (f", {_n(x['jobs_unfinished'], 'job')} unfinished" if x.get("jobs_unfinished") else "")
            )
    if risk is not None:
        d = risk["delta"]
        a, b = risk["on_time"], risk["drawn"]
        out.print(
            f"spot capacity risk \\[assumption: {100 * risk['probability']:g} % of reclaims find no capacity for "
            f"{risk['unavailable_s'] / 3600:g} h]: drawn per reclaim, {risk['replacements_late']} of "
            f"{risk['reclaims_to_horizon']} replacements came late in this replay; mean JCT "
            f"{a['mean_jct_h'] or 0:.2f} -> {b['mean_jct_h'] or 0:.2f} h ({_signed((b['mean_jct_h'] or 0) - (a['mean_jct_h'] or 0), 3)}), "
            f"done after {a['completion_time_h']:.1f} -> {b['completion_time_h']:.1f} h, "
            f"{_n(b['jobs_unfinished'], 'job')} unfinished, cost {round(d['cost_usd'] or 0):+,} USD"
        )


def _signed(x: float, digits: int) -> str:
    """``x`` with its sign and ``digits`` decimals; a value that rounds to zero prints as +0.00, never -0.00."""
    r = round(x, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{r:+.{digits}f}"
