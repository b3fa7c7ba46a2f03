"""Lab 12: "Operating GPU Clusters in the Real World" (seed section 12).

Activities, each computed now:
1. Why GPU clusters are more fragile than CPU clusters: every driver x PyTorch-wheel pair of the
   packaged compatibility tables judged on four GPU generations (models/compat.py): the share a
   rule refuses. A CPU node has none of these layers.
2. Version coupling: requested changes at one layer and what they force at the others
   (models/nodestack.py), with the rule that forces each.
3. A safe upgrade strategy (``--design FILE``, shipped labs/designs/lab12-upgrade.yaml): the
   design, the naive all-at-once drain and every strategy x batch x order candidate simulated on
   the same run (sim/upgrade.py on the one simulator); the headline compares the design with the
   strongest baseline (the safe candidate with the least disruption in USD).
4. Capacity expansion under cloud constraints: expanding with new GPUs under a quota, a lead time
   and partial delivery vs replacing old GPUs, week by week against a demand forecast with a
   launch spike (models/capacity.py); the spike's order schedule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gpuinfra import api
from gpuinfra.catalog import compat as cc
from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.labs import write_lab
from gpuinfra.labs._lifecycle_demo import CHECKPOINT_INTERVAL_S, write_scenario
from gpuinfra.lifecycle import evaluate_candidate, upgrade_plan
from gpuinfra.models import compat
from gpuinfra.models.capacity import GrowthOption, growth_timeline, spike_plan
from gpuinfra.models.nodestack import NodeStack, plan_change
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html

TITLE = "Operating GPU Clusters in the Real World"
DEFAULT_DESIGN = Path(__file__).parent / "designs" / "lab12-upgrade.yaml"
GPUS = ("V100", "A100-80GB", "H100-SXM", "B200")
CURRENT = {"driver": "535.104.05", "cuda": "12.1", "framework": "2.3"}
CHANGES = ("cuda=12.8", "framework=2.7", "driver=580.65.06", "cuda=13.0", "kernel=6.8.0,driver=570.86.15")


class Design(BaseModel):
    """Lab 12's ``--design``: an upgrade strategy for the lab's GPU pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str = "design"
    strategy: Literal["in_place", "surge", "blue_green"] = "surge"
    max_surge: int = Field(1, ge=0, le=5, description="spare nodes in the lab's cluster: 5")
    max_unavailable: int = Field(0, ge=0, le=5)
    order: Literal["name", "least_work_at_risk"] = "name"
    target: str = Field(
        "driver=580.65.06",
        description="the layers to move to (models/nodestack.parse_target); a drain needs a driver change",
    )


def load_design(path: Path | None) -> Design:
    from gpuinfra.io.scenario_load import load_model_file

    return load_model_file(path or DEFAULT_DESIGN, Design, what="a lab 12 design")


def fragility() -> dict[str, Any]:
    """Share of (driver, PyTorch wheel) pairs each GPU's rules refuse or warn about."""
    drivers = sorted({t.linux_driver for t in cc.toolkits() if t.cuda[0] >= 11})
    wheels = cc.torch_wheels()
    out = {}
    for g in GPUS:
        n = refuse = warn = 0
        for d in drivers[:: max(1, len(drivers) // 12)]:
            for w in wheels:
                dv = ".".join(map(str, d))
                rep = compat.check(compat.Stack(g, dv, ".".join(map(str, w.cuda[:2])), f"{w.torch[0]}.{w.torch[1]}"))
                n += 1
                refuse += rep.verdict == "refuse"
                warn += rep.verdict == "warn"
        out[g] = {"pairs": n, "refused": refuse, "warned": warn}
    return out


def coupling() -> list[dict[str, Any]]:
    rows = []
    for ch in CHANGES:
        from gpuinfra.models.nodestack import parse_target

        p = plan_change(NodeStack("H100-SXM", **CURRENT), parse_target(ch))
        rows.append({**p.as_dict(), "requested_text": ch})
    return rows


def capacity() -> dict[str, Any]:
    """Expansion vs replacement for a 12-week forecast with a launch spike at week 8."""
    weeks = 12
    base = 64.0
    demand = np.array([base * 1.03**w for w in range(weeks)])
    demand[8:10] *= 1.6  # launch spike: an illustrative forecast, not data
    h100, a100 = gpu_model("H100-SXM"), gpu_model("A100-80GB")
    speed = h100.fp16_tensor_dense_flops / a100.fp16_tensor_dense_flops  # dense tensor peak ratio (gpus.csv)
    p_h, p_a = gpu_hour_price("H100-SXM").on_demand_usd, gpu_hour_price("A100-80GB").on_demand_usd
    opts = [
        GrowthOption(
            "expand H100 (quota 32, 6-week lead, 75 % delivered)",
            "expand",
            gpus=48,
            speedup=speed,
            lead_weeks=6,
            usd_per_gpu_hour=p_h,
            delivered_share=0.75,
            quota_gpus=32,
        ),
        GrowthOption(
            "replace 32 A100 with H100 (4-week lead, 1-week swap)",
            "replace",
            gpus=32,
            speedup=speed,
            lead_weeks=4,
            usd_per_gpu_hour=p_h,
            swap_weeks=1,
        ),
    ]
    res = [growth_timeline(64, demand, o, p_a) for o in opts]
    spike = spike_plan(demand, capacity=64, lead_weeks=6, burst_gpus=8)
    return {
        "demand": demand.tolist(),
        "speedup_h100_over_a100": speed,
        "speedup_source": "dense FP16 tensor peak ratio, catalog/data/gpus.csv",
        "usd_per_gpu_hour": {"H100-SXM": p_h, "A100-80GB": p_a},
        "options": [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in res],
        "spike": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in spike.items()},
    }


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    d = load_design(design)  # checked before any run
    from gpuinfra.models.nodestack import parse_target

    target = parse_target(d.target)
    out_dir.mkdir(parents=True, exist_ok=True)
    up = {
        "pool": "gpu",
        "strategy": "surge",
        "max_surge": 1,
        "max_unavailable": 0,
        "surge_pool": "gpu-surge",
        "start_s": 3600,
        "node_upgrade_s": 1200,
        "provision_s": 600,
        "stack": CURRENT,
        "pdbs": {"serving": {"minAvailable": "80%"}},
        "source": "node_upgrade_s/provision_s: assumptions (reimage + reboot + GPU Operator validation)",
    }
    sc = api.scenario(write_scenario(out_dir, {"upgrade": up}))
    plan = upgrade_plan(sc, sc._base_dir, target, seed=3)
    drow = evaluate_candidate(
        sc,
        sc._base_dir,
        3,
        f"design: {d.label}",
        plan.naive["bill_usd"],
        strategy=d.strategy,
        max_surge=d.max_surge,
        max_unavailable=d.max_unavailable,
        order=d.order,
    )
    s = {
        "schema": "gpuinfra.lab12/1",
        "design": {"label": d.label, "spec": d.model_dump()},
        "fragility": fragility(),
        "coupling": coupling(),
        "upgrade": {**plan.as_dict(), "design": drow, "checkpoint_interval_s": CHECKPOINT_INTERVAL_S},
        "capacity": capacity(),
    }
    return write_lab(out_dir, s, render(s))


def render(s: dict[str, Any]) -> str:
    secs, f = [], []
    fr = s["fragility"]
    worst = max(fr, key=lambda g: fr[g]["refused"] / fr[g]["pairs"])
    c1 = (
        "Of the driver x PyTorch-wheel pairs in the packaged tables, the compatibility rules refuse "
        + ", ".join(f"{100 * v['refused'] / v['pairs']:.0f} % on {g}" for g, v in fr.items())
        + f" (and warn on more); {worst} is the most constrained. A CPU node has none of these layers to match."
    )
    fig = bar_figure(
        list(fr),
        {
            "refused": [100 * v["refused"] / v["pairs"] for v in fr.values()],
            "warned": [100 * v["warned"] / v["pairs"] for v in fr.values()],
        },
        "Driver x PyTorch wheel pairs a rule refuses or warns about",
        "% of pairs",
    )
    fig.update_layout(xaxis_title="GPU", legend_title="verdict")
    secs.append(Section("1. Why GPU clusters are fragile", fig_html(fig, "l12frag"), c1))
    f.append(c1)
    rows = []
    for r in s["coupling"]:
        forced = "; ".join(f"{x['layer']} -> {x['to']} ({x['rule']})" for x in r["forced"]) or "nothing"
        unchecked = ", ".join(x["layer"] for x in r["unchecked"]) or "-"
        rows.append(
            [
                r["requested_text"],
                forced,
                unchecked,
                r["driver_compat"] or "-",
                r["verdict"],
                "yes" if r["needs_node_drain"] else "no (rolling restart of pods)",
            ]
        )
    co = s["coupling"]
    single = [r for r in co if len(r["requested"]) == 1]
    n_forced = sum(1 for r in co if r["forced"])
    n_forced_single = sum(1 for r in single if r["forced"])
    n_drain = sum(1 for r in co if r["needs_node_drain"])
    n_drain_forced = sum(1 for r in co if any(x["layer"] == "driver" for x in r["forced"]))
    n_minor = sum(1 for r in co if r["driver_compat"] == "minor-version")
    c2 = (
        f"Of {len(co)} requested changes on an H100 node at driver {CURRENT['driver']}, CUDA {CURRENT['cuda']}, "
        f"PyTorch {CURRENT['framework']}, {n_forced} force a change at another layer ({n_forced_single} of the "
        f"{len(single)} single-layer requests); {n_drain} need every node drained, {n_drain_forced} of them because "
        f"a driver change was forced rather than asked for. Each plan is the least disruptive stack the "
        f"compatibility rules accept: {len(co) - n_drain} change only the image (CUDA in the image, PyTorch wheel) "
        f"and roll with the pods, without a drain; {n_minor} "
        f"{'keeps' if n_minor == 1 else 'keep'} the driver by running the wheel's CUDA under minor-version "
        "compatibility (compat check warns: reduced features)."
    )
    secs.append(
        Section(
            "2. Version coupling across layers",
            table_html(["requested", "forced", "no compat data", "driver runs CUDA", "verdict", "drain nodes"], rows),
            c2,
        )
    )
    f.append(c2)
    up = s["upgrade"]
    cands = up["candidates"]
    design = up["design"]
    safe = [c for c in cands[1:] if c["pdb_overridden"] == 0 and c["nodes_done"] == cands[0]["nodes_done"]]
    strong = min(safe, key=lambda c: (c["disruption_usd"], c["service_replica_hours_unready"])) if safe else cands[0]
    naive = cands[0]
    allrows = [design, *cands]
    fig2 = bar_figure(
        [c["candidate"] for c in allrows],
        {"disruption (USD)": [c["disruption_usd"] for c in allrows]},
        "Upgrade disruption per candidate, same run",
        "USD (failure waste + out of service + extra nodes)",
    )
    fig2.update_layout(xaxis_title="upgrade candidate")
    better = design["disruption_usd"] <= strong["disruption_usd"] and design["pdb_overridden"] == 0
    c3 = (
        f"The design ({design['candidate']}) costs ${design['disruption_usd']:,.0f} of disruption, kills "
        f"{design['jobs_killed']} jobs, leaves {design['service_replica_hours_unready']:.2f} inference replica-hours "
        f"unready and overrides {design['pdb_overridden']} PodDisruptionBudget evictions in {design['duration_h'] or 0:.2f} h; "
        f"the strongest baseline ({strong['candidate']}) ${strong['disruption_usd']:,.0f}, {strong['jobs_killed']} jobs, "
        f"{strong['service_replica_hours_unready']:.2f} replica-h; the naive drain ${naive['disruption_usd']:,.0f} with "
        f"{naive['pdb_overridden']} budget overrides and {naive['service_replica_hours_unready']:.2f} replica-h unready. "
        + (
            "The design is at least as good as every safe baseline."
            if better
            else f"The design does not beat {strong['candidate']}; take that one."
        )
        + f" Surge and green nodes are billed from the moment they are requested, while they boot and the GPU "
        f"Operator validates them: ${strong.get('provisioning_usd', 0.0):,.0f} of {strong['candidate']}'s disruption "
        f"and ${design.get('provisioning_usd', 0.0):,.0f} of the design's."
        + f" Training checkpoints every {up['checkpoint_interval_s'] / 60:.0f} min, so a drained training pod loses "
        "only the GPU-hours since its last checkpoint (lost_gpu_hours); a drain that comes before the first "
        "checkpoint loses everything since the pod started."
    )
    keys = [
        "candidate",
        "duration_h",
        "jobs_killed",
        "lost_gpu_hours",
        "service_replica_hours_unready",
        "refused_429",
        "provisioning_usd",
        "pdb_overridden",
        "disruption_usd",
    ]
    trows = [[c[k] if isinstance(c[k], (int, str)) or c[k] is None else f"{c[k]:,.2f}" for k in keys] for c in allrows]
    heads = [
        {"refused_429": "evictions refused (429)", "provisioning_usd": "provisioning billed (USD)"}.get(k, k)
        for k in keys
    ]
    secs.append(Section("3. A safe upgrade strategy", fig_html(fig2, "l12up") + table_html(heads, trows), c3))
    f.append(c3)
    cap = s["capacity"]
    weeks = list(range(len(cap["demand"])))
    series = {"demand (A100-equivalents)": list(zip(weeks, cap["demand"], strict=True))}
    for o in cap["options"]:
        series[o["option"]] = list(zip(weeks, o["capacity"], strict=True))
    fig3 = line_figure(
        series,
        "Capacity vs demand, week by week",
        "week",
        "GPUs (A100-equivalent throughput)",
        logx=False,
        mode="lines+markers",
    )
    o1, o2 = cap["options"]
    sp = cap["spike"]
    c4 = (
        f"With H100 at {cap['speedup_h100_over_a100']:.2f}x an A100 ({cap['speedup_source']}): {o1['option']} leaves "
        f"{o1['unmet_gpu_weeks']:.0f} GPU-weeks unmet over {o1['weeks_short']} weeks; {o2['option']} "
        f"{o2['unmet_gpu_weeks']:.0f} over {o2['weeks_short']} weeks. For the launch spike, orders must be placed at weeks "
        + ", ".join(str(o["order_week"]) for o in sp["orders"])
        + f"; what falls inside the 6-week lead time takes {sp['burst_gpu_weeks']:.0f} GPU-weeks of on-demand burst and "
        f"leaves {sp['unmet_gpu_weeks']:.0f} unmet."
    )
    secs.append(Section("4. Capacity expansion under cloud constraints", fig_html(fig3, "l12cap"), c4))
    f.append(c4)
    sub = "Seed section 12; every number computed by this run (the scenario and trace are written beside this report)."
    return render_page(f"Lab 12: {TITLE}", secs, findings=f, subtitle=sub)
