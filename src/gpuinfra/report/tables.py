"""Text tables of results: the rows the CLI prints, built from a run's summary in one place.

Each function takes a result (a summary dict or result objects) and returns header + rows of
strings; nothing here prints. Averages over seeds are computed here, not in the CLI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuinfra.report.wording import count, decimals_to_tell_apart


def pods_breakdown(w: dict[str, Any]) -> str:
    """The pods row: all pods, those asking for GPUs, the subset of those asking for a share of one GPU, and
    the CPU-only rest ("9 (8 ask for GPUs, 3 of them a share of one; 1 CPU only)"). ``w`` is summary.json's
    ``workload`` (``pods``, ``gpu_pods``, ``shared_gpu_pods``; shared pods are counted among the GPU pods)."""
    n, gpu, shared = w["pods"], w["gpu_pods"], w["shared_gpu_pods"]
    if gpu == 1:
        parts = ["1 asks for a share of one GPU" if shared else "1 asks for GPUs"]
    else:
        parts = [f"{gpu:,} ask for GPUs" + (f", {shared:,} of them a share of one" if shared else "")]
    if n - gpu:
        parts.append(f"{n - gpu:,} CPU only")
    return f"{n:,} ({'; '.join(parts)})"


def run_summary_rows(s: dict[str, Any], wall_s: float) -> list[tuple[str, str]]:
    """Key/value rows of one replay's ``summary.json`` (cluster, pods, GPU-hours, waits, outcomes,
    cost, invariants, engine speed over ``wall_s`` seconds of wall time)."""
    g = s["gpu_time"]
    rows = [
        ("cluster", f"{s['cluster']['nodes']:,} nodes, {s['cluster']['gpus']:,} GPUs"),
        ("pods", pods_breakdown(s["workload"])),
        (
            "GPU-hours",
            f"capacity {g['capacity_gpu_hours']:,.0f}, allocated {g['allocated_gpu_hours']:,.0f} "
            f"({100 * g['allocation_ratio']:.1f}%), idle {g['idle_gpu_hours']:,.0f}"
            + (
                f"; billed {g['billed_gpu_hours']:,.0f} (slots not provisioned: {g['unprovisioned_gpu_hours']:,.0f}), "
                f"allocated {100 * g['allocation_ratio_billed']:.1f}% of billed"
                if g.get("unprovisioned_gpu_hours")
                else ""
            ),
        ),
    ]
    w = s["pods"]["wait_s"]
    if s["pods"]["started"]:
        rows.append(
            (
                "wait to first bind, started pods (s)",
                f"p50 {w['p50']:,.0f}, p90 {w['p90']:,.0f}, p99 {w['p99']:,.0f}, max {w['max']:,.0f}",
            )
        )
    pre = s.get("preemption") or {}
    if pre.get("preemptions"):
        # not in the waits above (submit to first bind): what preemption cost the pods it evicted
        rows.append(
            (
                "preemption",
                f"{pre['preemptions']:,} preemptions evicted {pre['pods_preempted']:,} pods "
                f"({pre['victims']:,} evictions), {pre['lost_gpu_hours']:,.1f} GPU-h of work thrown away, "
                f"victims off a node {pre['requeued_wait_s']['total']:,.0f} s in all "
                f"(max {pre['requeued_wait_s']['max']:,.0f} s)",
            )
        )
    rows.append(("outcomes", ", ".join(f"{k} {v:,}" for k, v in s["pods"]["outcomes"].items() if v)))
    c = s["cost"]
    rows.append(("cost (USD)", f"allocated {c['allocated_usd']:,.0f}, idle {c['idle_usd']:,.0f}"))
    ca = s.get("autoscaler")
    if ca:
        waited = ""
        if ca["pods_waited_for_scale_up"]:
            waited = (
                f"; {count(ca['pods_waited_for_scale_up'], 'pod')} waited {ca['mean_scale_up_wait_s']:,.0f} s on average "
                f"({ca['mean_scan_delay_s']:,.0f} s to the scan, {ca['mean_provision_wait_s']:,.0f} s from the "
                "request to the start)"
            )
        rows.append(
            (
                "autoscaler",
                f"{ca['scale_ups']:,} scale-ups (+{ca['nodes_added']:,} nodes), {ca['scale_downs']:,} removed, "
                f"peak {ca['peak_nodes']:,} nodes, {ca['gpu_hours_billed']:,.1f} GPU-h billed on its pools "
                f"(node slots not provisioned: {ca['unprovisioned_gpu_hours']:,.0f} GPU-h, not billed){waited}",
            )
        )
    inv = s["invariants"]
    rows.append(
        (
            "invariants",
            f"GPU-time balance {'ok' if inv['gpu_time_balance']['ok'] else 'VIOLATED'}, "
            f"no over-commit {'ok' if inv['no_overcommit']['ok'] else 'VIOLATED'}",
        )
    )
    ev = s["engine"]["events"]
    rows.append(
        (
            "engine",
            f"{ev:,} events, {s['engine']['scheduling_cycles']:,} cycles in {wall_s:.2f} s "
            f"({ev / max(wall_s, 1e-9):,.0f} events/s)",
        )
    )
    return rows


def invariants_ok(s: dict[str, Any]) -> bool:
    """Whether a replay summary's GPU-time balance and no-over-commit checks both hold."""
    inv = s["invariants"]
    return bool(inv["gpu_time_balance"]["ok"] and inv["no_overcommit"]["ok"])


FILL_HEADER = ("workload", "policy", "seeds", "at arrived %", "unallocated %", "fragmented %", "failed pods")


def fill_rows(summ: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per (workload, policy) of a fill summary, best (least unallocated) first."""
    rows = []
    for w, pols in summ["by_workload"].items():
        for p, v in sorted(pols.items(), key=lambda kv: kv[1]["unalloc_pct_mean"] or 0):
            rows.append(
                (
                    w,
                    p,
                    str(v["seeds"]),
                    str(v["ref_arrived_pct"]),
                    "-"
                    if v["unalloc_pct_mean"] is None
                    else f"{v['unalloc_pct_mean']:.2f} +- {v['unalloc_pct_stdev']:.2f}",
                    "-" if v["frag_amount_pct_mean"] is None else f"{v['frag_amount_pct_mean']:.2f}",
                    f"{v['failed_pods_mean']:.0f}",
                )
            )
    return rows


def compare_fill_lines(summ: dict[str, Any]) -> list[str]:
    """One line per policy of a ``compare --mode fill`` summary."""
    return [
        f"{p:14s} unallocated "
        + ("-" if v["unalloc_pct_mean"] is None else f"{v['unalloc_pct_mean']:.2f}%")
        + f" at {v['ref_arrived_pct']}% arrived, "
        f"{v['failed_pods_mean']:.0f} failed pods"
        for p, v in next(iter(summ["by_workload"].values())).items()
    ]


COMPARE_HEADER = (
    "policy",
    "allocation %",
    "mean unallocated GPUs",
    "mean fragmented GPUs",
    "wait p90 s",
    "pending at end",
    "idle USD",
    "runs",
)


def compare_replay_rows(table: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per policy of ``compare.replay_table``; allocation % to the fewest decimals (1 to 3) that
    still tell the policies apart."""
    nd = decimals_to_tell_apart(100 * (v["allocation_ratio"] or 0) for v in table.values())
    return [
        (
            p,
            f"{100 * (v['allocation_ratio'] or 0):.{nd}f}",
            f"{v['mean_unallocated_gpus']:,.1f}",
            f"{v['mean_fragmented_gpus']:,.1f}",
            f"{v['wait_s']['p90'] or 0:,.0f}",
            str(v["pending_at_end"]),
            f"{v['idle_usd'] or 0:,.0f}",
            v.get("profile", ""),
        )
        for p, v in table.items()
    ]


def reliability_rows(runs: list, price_usd: float) -> list[tuple[str, str, str]]:
    """Mean over seeds (and the per-run values) of ETTR, failures and GPU-hours lost by cause,
    for ``models.reliability.simulate`` results; the total also in USD at ``price_usd`` per GPU-hour."""
    rows = [
        ("ETTR", f"{np.mean([r.ettr for r in runs]):.4f}", ", ".join(f"{r.ettr:.3f}" for r in runs)),
        ("failures", f"{np.mean([r.failures for r in runs]):.1f}", ", ".join(str(r.failures) for r in runs)),
    ]
    for k in runs[0].lost_gpu_hours:
        rows.append((f"GPU-hours lost: {k}", f"{np.mean([r.lost_gpu_hours[k] for r in runs]):,.0f}", ""))
    tot = np.mean([r.total_lost_gpu_hours for r in runs])
    rows.append(("GPU-hours lost, total", f"{tot:,.0f}", f"${tot * price_usd:,.0f} at ${price_usd:.2f}/H100-hour"))
    return rows


def memory_peaks(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Peak allocated, reserved and inactive-split bytes over a memory-trace timeline."""
    return {
        "peak_allocated": max((x["allocated"] for x in rows), default=0),
        "peak_reserved": max((x["reserved"] for x in rows), default=0),
        "peak_inactive_split": max((x["inactive_split"] for x in rows), default=0),
    }
