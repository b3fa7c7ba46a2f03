"""`gpuinfra upgrade` (layers, plan) and `gpuinfra cost` (attribute): parse, call the library, print.
Exit codes: 0 fine, 2 bad input (an upgrade path the compatibility data forbids, a budget no
drain satisfies, a GPU model without a price)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpuinfra.cli._common import _console
from gpuinfra.errors import UserError
from gpuinfra.io.atomic import check_output_file, write_with
from gpuinfra.units import check_seed

out = _console(highlight=False, soft_wrap=True)
upgrade_app = typer.Typer(
    help="Node stacks as layers, and node-pool upgrades planned on the simulator.", no_args_is_help=True
)
cost_app = typer.Typer(help="Cost attribution as OpenCost defines it, extended for GPUs.", no_args_is_help=True)


def _stack(text: str | None, flag: str) -> dict[str, str]:
    """``--to``/``--from`` parsed (None: not given); an empty value or a repeated layer is refused."""
    from gpuinfra.models.nodestack import parse_target

    if text is None:
        return {}
    got = parse_target(text, flag=flag)
    if flag == "--from" and "hardware" in got:
        raise UserError(
            "the hardware layer is not a version",
            where="--from",
            expected="driver=...,cuda=...,framework=... (the GPU model comes from --gpu or the pool)",
        )
    return got


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return escape(str(v))


@upgrade_app.command("layers")
def layers_cmd(
    gpu: Annotated[str, typer.Option("--gpu", help="GPU model (hardware layer), e.g. H100-SXM.")],
    from_: Annotated[str, typer.Option("--from", help="Current layers: driver=535.104.05,cuda=12.1,framework=2.3.")],
    to: Annotated[str, typer.Option("--to", help=r"Wanted layers: DRIVER/CUDA\[/TORCH] or layer=version,...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What a change at one layer forces at the others (compat rules), and whether nodes must drain."""
    from gpuinfra.models.nodestack import NodeStack, plan_change

    cur = _stack(from_, "--from")
    if "driver" not in cur:
        raise UserError("--from names no driver", where="--from", expected="driver=VERSION[,cuda=..,framework=..]")
    target = _stack(to, "--to")
    from gpuinfra.lifecycle import on_flag
    from gpuinfra.models import compat

    try:  # the current stack alone first, so a version compat does not know is blamed on its flag
        compat.check(compat.Stack(gpu, cur["driver"], cur.get("cuda"), cur.get("framework")))
    except UserError as e:
        raise on_flag(e, "--from") from None
    try:
        p = plan_change(NodeStack(hardware=gpu, **cur), target)
    except UserError as e:
        raise on_flag(e, "--to") from None
    if as_json:
        print(json.dumps(p.as_dict(), indent=1))
        return
    t = Table("layer", "before", "after", "why")
    why = {f["layer"]: f"forced (rule {f['rule']})" for f in p.forced}
    why.update({f["layer"]: "requested (no compat data: validated on the node)" for f in p.unchecked})
    for ly in p.layers_changed:
        t.add_row(ly, _fmt(getattr(p.before, ly)), _fmt(getattr(p.after, ly)), escape(why.get(ly, "requested")))
    out.print(t)
    mode = {
        "native": "natively (driver >= the toolkit's driver)",
        "minor-version": "under CUDA minor-version compatibility (reduced features; compat check warns)",
        "forward-compat": "only with the cuda-compat package",
    }
    if p.driver_compat:
        out.print(f"driver {escape(p.after.driver)} runs CUDA {escape(str(p.after.cuda))} {mode[p.driver_compat]}")
    out.print(f"verdict: {p.report.verdict if p.report else '-'}; nodes must be drained: {p.needs_reboot}")
    out.print(f"rollout: {p.rollout}")


@upgrade_app.command("plan")
def plan_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML with an upgrade: block (or a built-in name).")],
    to: Annotated[str, typer.Option("--to", help=r"Target layers: DRIVER/CUDA\[/TORCH] or driver=...,cuda=...")],
    from_: Annotated[
        str | None, typer.Option("--from", help="Current layers (else the scenario's upgrade.stack).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the scenario's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Propose a safe upgrade order and batch size, simulated against the naive upgrade on the same run."""
    from gpuinfra import api
    from gpuinfra.lifecycle import upgrade_plan

    check_seed(seed)
    sc = api.scenario(scenario)
    p = upgrade_plan(sc, sc._base_dir, _stack(to, "--to"), seed=seed, stack=_stack(from_, "--from") or None)
    if as_json:
        print(json.dumps(p.as_dict(), indent=1, default=str))
        return
    ch = p.change
    # the stack the pool runs now, judged like any target: what it refuses matters (often the reason
    # for the upgrade); its warnings are counted here and listed by --json or compat check
    for f in p.current_findings:
        if f["verdict"] == "refuse":
            out.print(f"[red]current stack: compat check refuses it ({escape(f['rule'])}): {escape(f['message'])}[/]")
    warns = [f["rule"] for f in p.current_findings if f["verdict"] == "warn"]
    if warns:
        out.print(
            f"[yellow]current stack: {len(warns)} compat warning{'s' if len(warns) > 1 else ''} "
            f"({escape(', '.join(warns))}); --json lists them[/]"
        )
    out.print(
        "[bold]change[/]: "
        + escape(
            ", ".join(f"{ly} {getattr(ch.before, ly) or '-'} -> {getattr(ch.after, ly)}" for ly in ch.layers_changed)
        )
    )
    for f in ch.forced:
        out.print(f"  forced: {escape(f['layer'])} -> {escape(f['to'])} (rule {escape(f['rule'])})")
    out.print(f"  rollout: {ch.rollout}")
    if not ch.needs_reboot:
        out.print(
            "[yellow]no node drain is needed: roll the new image out as a rolling restart of the pods. "
            "The row below is what draining every node at once would cost instead.[/]"
        )
    cols = [
        ("candidate", "candidate"),
        ("duration_h", "duration (h)"),
        ("jobs_killed", "jobs killed"),
        ("lost_gpu_hours", "GPU-h lost"),
        ("service_replica_hours_unready", "replica-h unready"),
        ("refused_429", "evictions refused (429)"),
        ("pdb_overridden", "PDB overridden"),
        ("spare_node_usd", "spare-node cost (USD)"),
        ("disruption_usd", "disruption (USD)"),
    ]
    t = Table(*[h for _, h in cols])
    t.columns[0].no_wrap = True
    for r in p.candidates.to_dict(orient="records"):
        style = "bold green" if p.proposed and r["candidate"] == p.proposed["candidate"] else None
        t.add_row(*[_fmt(r[k]) for k, _ in cols], style=style)
    out.print(t)
    out.print(
        "candidates: in_place u=N drains and reimages N nodes at a time (maxUnavailable); surge s=N u=0 first "
        "provisions N extra nodes (maxSurge) and drains one old node per free slot, none unavailable beyond "
        "them; blue_green b=N provisions a green node for every node, then drains the old ones N at a time "
        "(batch); name / least_work_at_risk is the node order. spare-node cost: the surge/green node-time "
        "paid beyond the naive bill; disruption = work thrown away + GPUs out of service + spare-node cost."
    )
    if not ch.needs_reboot:
        return
    if p.proposed is None:
        cand = p.candidates.iloc[1:]
        overrode = int((cand["pdb_overridden"] > 0).sum())
        unfinished = int((cand["nodes_done"] < p.pool_nodes).sum())
        why = [f"{overrode} of {len(cand)} candidates overrode a PodDisruptionBudget"] if overrode else []
        if unfinished:
            why.append(
                f"{unfinished} of {len(cand)} did not upgrade all {p.pool_nodes} nodes before the run ended "
                "(start earlier, raise horizon_s, or shorten node_upgrade_s)"
            )
        out.print(f"[yellow]no candidate is safe: {escape('; '.join(why) or 'none finished')}[/]")
    else:
        n, q = p.naive, p.proposed
        out.print(
            f"proposed: [bold]{escape(q['candidate'])}[/] -- vs naive: disruption {q['disruption_usd']:,.0f} vs "
            f"{n['disruption_usd']:,.0f} USD, jobs killed {q['jobs_killed']} vs {n['jobs_killed']}, "
            f"replica-h unready {q['service_replica_hours_unready']:.2f} vs {n['service_replica_hours_unready']:.2f}, "
            f"PDB overridden {q['pdb_overridden']} vs {n['pdb_overridden']}, "
            f"duration {q['duration_h']:.2f} h vs {n['duration_h']:.2f} h"
        )
        b = p.runner_up
        if b is None:
            out.print("no other safe candidate of a different strategy or batch size to compare with")
        else:
            out.print(
                f"  vs the strongest other safe candidate, [bold]{escape(b['candidate'])}[/]: disruption "
                f"{q['disruption_usd']:,.0f} vs {b['disruption_usd']:,.0f} USD "
                f"({b['disruption_usd'] - q['disruption_usd']:,.0f} USD less; spare nodes {q['spare_node_usd']:,.0f} "
                f"vs {b['spare_node_usd']:,.0f} USD), jobs killed {q['jobs_killed']} vs {b['jobs_killed']}, "
                f"replica-h unready {q['service_replica_hours_unready']:.2f} vs "
                f"{b['service_replica_hours_unready']:.2f}, duration {q['duration_h']:.2f} h vs {b['duration_h']:.2f} h"
            )


@cost_app.command("attribute")
def attribute_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario YAML or built-in name.")],
    seed: Annotated[int | None, typer.Option(help="Seed (default: the scenario's).")] = None,
    by: Annotated[
        str, typer.Option(help="Aggregate by namespace, pod, costCategory, gpuModel, nodePool or purchase.")
    ] = "namespace",
    csv: Annotated[Path | None, typer.Option(help="Write the OpenCost-style allocation table (CSV) here.")] = None,
    epoch: Annotated[
        str,
        typer.Option(
            help="RFC 3339 instant the scenario's start (t = 0 s) stands for; the CSV's start/end are "
            "timestamps after it (default 1970-01-01T00:00:00Z: time since the scenario start)."
        ),
    ] = "1970-01-01T00:00:00Z",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --csv file.")] = False,
) -> None:
    """Every billed GPU-second attributed once: workload, failure waste, preemption waste, unavailable, stranded, idle;
    silent burn ranked."""
    from gpuinfra import api
    from gpuinfra.analysis.attribution import aggregate
    from gpuinfra.lifecycle import cost_report
    from gpuinfra.report.wording import readable_label

    check_seed(seed)
    if csv is not None:  # before the simulation: a path that cannot take the file costs nothing
        check_output_file(csv, force=force, where="--csv")
    if by not in ("namespace", "pod", "costCategory", "gpuModel", "nodePool", "purchase"):
        raise UserError(
            f"--by {by}", where="--by", expected="namespace, pod, costCategory, gpuModel, nodePool or purchase"
        )
    from gpuinfra.analysis.attribution import rfc3339

    rfc3339([0.0], epoch)  # a bad --epoch is refused before the run
    res = api.simulate(api.scenario(scenario), seed=seed)
    rep = cost_report(res._output, epoch=epoch)
    if csv is not None:
        write_with(csv, lambda tmp: rep["table"].to_csv(tmp, index=False), "--csv")
    if as_json:
        print(
            json.dumps(
                {
                    k: (v.to_dict(orient="records") if hasattr(v, "to_dict") else v)
                    for k, v in rep.items()
                    if k != "table"
                },
                indent=1,
                default=str,
            )
        )
        return
    agg = aggregate(rep["table"], by) if by != "namespace" else rep["by_namespace"]
    t = Table(by, "category", "GPU-hours", "USD")
    for r in agg.sort_values("totalCost", ascending=False).to_dict(orient="records"):
        t.add_row(
            _fmt(readable_label(r[by])), readable_label(r["costCategory"]), _fmt(r["gpuHours"]), _fmt(r["totalCost"])
        )
    out.print(t)
    b = rep["bill"]
    out.print(
        f"bill: {b['total']:,.2f} USD; attributed: {rep['table']['totalCost'].sum():,.2f} USD "
        f"(idle check against the recorder: {'ok' if rep['check']['ok'] else 'MISMATCH'})"
    )
    out.print(
        "by node pool: "
        + "; ".join(
            f"{escape(r['pool'])} ({r['purchase'].replace('_', '-')}, {escape(r['gpu_model'])}) "
            f"{r['billed_gpu_hours']:,.1f} GPU-h x {r['usd_per_gpu_hour']:.2f} = {r['usd']:,.2f} USD"
            for r in rep["bill_by_pool"]
        )
    )
    s = Table("silent burn (ranked)", "where", "GPU-hours", "USD", "share of bill")
    for r in rep["silent_burn"].head(10).to_dict(orient="records"):
        s.add_row(
            readable_label(r["costCategory"]),
            _fmt(readable_label(r["where"])),
            _fmt(r["gpuHours"]),
            _fmt(r["totalCost"]),
            f"{100 * r['share_of_bill']:.1f} %",
        )
    out.print(s)
    for sv in rep["over_provisioning"]:
        if sv["status"] != "computed":
            out.print(f"over-provisioned serving, {escape(sv['namespace'])}: not computed ({escape(sv['why'])})")
            continue
        out.print(
            f"over-provisioned serving, {escape(sv['namespace'])}: {sv['offered_rps']:g} req/s offered, "
            f"{sv['capacity_rps']:.1f} req/s per replica at the SLO ({escape(sv['capacity_source'])}), "
            f"{sv['needed_replicas']} replicas needed at {100 * sv['target_utilization']:.0f} % utilisation, "
            f"{sv['mean_replicas']:.2f} held on average: {sv['over_provisioned_gpu_hours']:,.1f} GPU-hours over, "
            f"{sv['replica_hours_short']:,.1f} replica-hours short"
        )
    if csv is not None:
        out.print(f"wrote {escape(str(csv))}")
