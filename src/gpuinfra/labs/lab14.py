"""Lab 14: "Cost as a First-Class Signal" (seed section 14).

Activities, each computed from the runs this lab makes:
1. Why GPU inefficiency is immediately visible in cost: a 30-day run of an H100 pool (inference
   replicas, training, batch) with a spot pool, Llama-3-derived fault rates and a rolling driver
   upgrade; the bill attributed OpenCost-style (analysis/attribution.py), idle in USD per day.
2. Hidden cost drivers: idle, stranded (fragmentation), GPUs out of service, failure waste,
   ranked ("silent burn"), with the check that the lines sum to the bill.
3. Cost of failed or inefficient workloads: failure waste by namespace (drain evictions, spot
   reclaims, fault kills) next to each namespace's useful spend; training checkpoints hourly, so
   a killed training pod's waste is the work since its last checkpoint.
4. Over-provisioned serving: the replicas the service's declared load needs at its SLO (one
   replica's capacity from the request-level serving simulator) against the replicas it held;
   the excess GPU-time is its own line.
5. Redesign to cut silent burn (``--design FILE``, shipped: labs/designs/lab14-burn.yaml):
   the design and the baselines (each single change, and right-size pool + serving together) run
   on the same seed and workload; a design may size its on-demand pool from the same workload's
   allocation (``size_to_peak``); the headline compares the design with the strongest baseline
   (the one with the least silent burn that leaves no more pods pending and no more load unserved
   than the as-is run) and says whether it beats it. 5b: faster fault detection on a paired trial
   over many seeds (the Llama 3 rates expect under one fault per 30-day run of this fleet). Spot economics on the Alibaba spot cluster's real inventory (closed forms of
   models/capacity.py), the same question replayed on that inventory (gpuinfra/spot_whatif.py: the
   one simulator, on-demand vs all-spot vs committed+spot, same seed and jobs) beside the closed
   form, and the committed-use level from the run's own hourly demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.errors import UserError
from gpuinfra.labs import write_lab, write_lab_file
from gpuinfra.labs._lifecycle_demo import scenario_dict, write_trace
from gpuinfra.models.capacity import SpotPolicy, committed_level, mix_cost
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import ceil_num, floor_num, readable_label, usd_signed

TITLE = "Cost as a First-Class Signal"
DEFAULT_DESIGN = Path(__file__).parent / "designs" / "lab14-burn.yaml"
DAYS = 30.0
# Llama 3 (arXiv 2407.21783) Table 5 rates, as the synthetic-small scenario carries them
FAULTS = [
    {
        "name": "gpu-fault",
        "rate_per_day": 2.8e-4,
        "scope": "gpu",
        "action": "reset_gpu",
        "repair_s": 1800,
        "detect_s": 600,
        "source": "Llama 3 (arXiv 2407.21783) Table 5 via catalog/data/failure_mix.csv; detect_s assumed",
    },
    {
        "name": "host-or-network-fault",
        "rate_per_day": 1.6e-3,
        "scope": "node",
        "action": "reboot_node",
        "repair_s": 3600,
        "source": "Llama 3 Table 5 via catalog/data/failure_mix.csv",
    },
]
# AWS Spot Instance Advisor's highest bucket: > 20 % of instances interrupted a month (facts 1.2)
SPOT_RECLAIM_PER_NODE_DAY = 0.20 / 30


class Design(BaseModel):
    """Lab 14's ``--design``: an infra redesign aimed at silent burn."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    gpu_nodes: int = Field(5, ge=1, le=1000, description="on-demand nodes in the H100 pool (right-sizing)")
    spot_nodes: int = Field(2, ge=0, le=1000, description="spot nodes")
    score: Literal["MostAllocated", "LeastAllocated", "FGD"] = "MostAllocated"
    upgrade_order: Literal["name", "least_work_at_risk"] = "name"
    fault_detect_s: float = Field(
        600.0, ge=0, le=86400, description="time to detect a poisoned GPU (DCGM health watch)"
    )
    serving_replicas: int = Field(6, ge=1, le=64, description="inference replicas (one H100 each) run all month")
    size_to_peak: bool = Field(
        False,
        description="reclaim idle capacity: size the on-demand pool to the peak GPUs the same workload allocated "
        "(with this design's replicas) on the as-is pool, plus headroom_gpus; gpu_nodes is then ignored",
    )
    headroom_gpus: int = Field(0, ge=0, le=8000, description="GPUs kept above that peak (size_to_peak only)")
    size_percentile: float = Field(
        100.0,
        gt=0,
        le=100,
        description="percentile of the 10-min mean allocated GPUs taken as the peak (100: the maximum); below 100, "
        "the lowest-priority work queues in the intervals above it",
    )
    label: str = "design"


def load_design(path: Path | None) -> Design:
    if path is None:
        path = DEFAULT_DESIGN
    from gpuinfra.io.scenario_load import load_model_file

    return load_model_file(path, Design, what="a lab 14 design")


QUICK_DAYS = 8.0
"""``--quick``: the same fleet and workload mix over 8 days (three training waves instead of fifteen)."""
DETECT_SEEDS = 24
"""Seeds of the detection trial (6 with --quick): at the Llama 3 rates one 30-day run of 7 nodes
expects under one fault, so the trial pools many runs' node-days to see faults kill pods."""
GPUS_PER_NODE = 8  # aws:p5.48xlarge (8 x H100), the pools' shape in _lifecycle_demo.scenario_dict


def _scenario(out_dir: Path, d: Design, name: str, days: float = DAYS) -> Any:
    trace = f"{name}-jobs.csv"
    write_trace(out_dir / trace, days=days, replicas=d.serving_replicas)
    sc = scenario_dict(trace, nodes=d.gpu_nodes, spare=max(d.spot_nodes, 1), days=days)
    sc["cluster"]["pools"][1]["name"] = "gpu-spot"
    sc["cluster"]["pools"][1]["count"] = max(d.spot_nodes, 1)
    sc["scheduler"]["scores"] = [{"name": d.score, "weight": 1}]
    sc["faults"] = [dict(f, detect_s=d.fault_detect_s) if f["scope"] == "gpu" else f for f in FAULTS]
    sc["spot"] = {
        "pools": ["gpu-spot"],
        "reclaim_rate_per_node_day": SPOT_RECLAIM_PER_NODE_DAY,
        "notice_s": 120,
        "replace_s": 900,
        "source": "AWS Spot Instance Advisor bucket >20 %/month (facts 1.2)",
    }
    sc["upgrade"] = {
        "pool": "gpu",
        "strategy": "in_place",
        "max_unavailable": 1,
        "start_s": round(days / 3 * 86400),  # a third into the run (day 10 of 30)
        "node_upgrade_s": 1200,
        "order": d.upgrade_order,
        # at most one replica down at a time (6 replicas: the same as minAvailable 80 %, rounded up)
        "pdbs": {"serving": {"maxUnavailable": 1}},
        "source": "node_upgrade_s: assumption (reimage + reboot + validation)",
    }
    if d.spot_nodes == 0:
        sc.pop("spot")
    import yaml

    p = write_lab_file(out_dir / f"{name}.yaml", yaml.safe_dump(sc, sort_keys=False))
    return api.scenario(p)


def _evaluate(sc: Any, seed: int) -> dict[str, Any]:
    """One run attributed: bill, silent burn by line, failure waste, over-provisioning, pending/completed."""
    res = api.simulate(sc, seed=seed)
    o = res._output
    svc = at.over_provisioning(o.run)
    table = at.attribute(o.run, o.ledger, o.built.prices, cluster_name=sc.name, services=svc)
    over = table[table.costCategory == "over_provisioned"].groupby("namespace")["totalCost"].sum()
    by_cat = table.groupby("costCategory")[["gpuHours", "totalCost"]].sum()
    burn = float(by_cat.loc[by_cat.index != "workload", "totalCost"].sum())
    fw = table[table.costCategory == "failure_waste"].groupby("namespace")["totalCost"].sum()
    work = table[table.costCategory == "workload"].groupby("namespace")["totalCost"].sum()
    alloc = o.metrics["allocated_gpus"].to_numpy()
    return {
        "bill_usd": float(table["totalCost"].sum()),
        "bill_by_pool": at.bill_by_pool(o.run, o.built.prices),
        "silent_burn_usd": burn,
        "by_category": {k: {"gpu_hours": float(v.gpuHours), "usd": float(v.totalCost)} for k, v in by_cat.iterrows()},
        "failure_waste_by_namespace": {k: float(v) for k, v in fw.items()},
        "over_provisioning": svc,
        "over_provisioned_usd_by_namespace": {k: float(v) for k, v in over.items()},
        "replica_hours_short": float(sum(x.get("replica_hours_short", 0.0) for x in svc)),
        "workload_by_namespace": {k: float(v) for k, v in work.items()},
        "silent_burn": at.silent_burn(table).to_dict(orient="records"),
        "check": at.check(o.run, table),
        "pending_at_end": int(res.outcomes.get("pending_at_horizon", 0)),
        "completed": int(res.outcomes.get("completed", 0)),
        "allocated_gpus_per_interval": alloc.tolist(),
        "peak_allocated_gpus": float(alloc.max()) if len(alloc) else 0.0,
        "gpus": int(o.run.cluster.capacity_milli.sum() // 1000),
        "interval_s": float(sc.sample_interval_s),
        "spot": {k: v for k, v in (o.run.subsystems.get("spot") or {}).items() if k != "log"},
        "upgrade": {k: v for k, v in (o.run.subsystems.get("upgrade") or {}).items() if k != "log"},
        "faults": {k: v for k, v in (o.run.subsystems.get("faults") or {}).items() if k != "log"},
    }


def spot_inventory_whatif(policy_interval_s: float = 3600.0) -> dict[str, Any]:
    """Per GPU model of the Alibaba spot cluster's inventory (packaged): GPUs, catalog on-demand and
    spot price per GPU-hour, the break-even reclaim rate and the effective price at AWS's buckets."""
    rows = read_csv_rows("traces", "alibaba-spot-gpu-v2026", "node_info_df.csv")
    gpus: dict[str, int] = {}
    for r in rows:
        gpus[r["gpu_model"]] = gpus.get(r["gpu_model"], 0) + int(r["gpu_capacity_num"])
    out: dict[str, Any] = {"models": [], "unpriced": []}
    for name, n in sorted(gpus.items(), key=lambda kv: -kv[1]):
        try:
            m = gpu_model(name)
            p = gpu_hour_price(m.name)
        except UserError as e:
            out["unpriced"].append({"gpu_model": name, "gpus": n, "why": e.what})
            continue
        if p.on_demand_usd is None or p.spot_usd is None:
            out["unpriced"].append(
                {"gpu_model": name, "gpus": n, "why": "no on-demand or no spot price in the catalog"}
            )
            continue
        pol = SpotPolicy(0.0, checkpoint_interval_s=policy_interval_s)
        buckets = {f"{int(b * 100)}%/month": b / 30 for b in (0.05, 0.10, 0.15, 0.20)}
        eff = {
            k: SpotPolicy(r, checkpoint_interval_s=policy_interval_s).effective_usd(p.spot_usd)
            for k, r in buckets.items()
        }
        out["models"].append(
            {
                "gpu_model": name,
                "catalog_model": m.name,
                "gpus": n,
                "on_demand_usd": p.on_demand_usd,
                "spot_usd": p.spot_usd,
                "breakeven_reclaims_per_node_day": pol.breakeven_reclaims_per_day(p.spot_usd, p.on_demand_usd),
                "effective_spot_usd": eff,
                "monthly_on_demand_usd": n * 720 * p.on_demand_usd,
                "monthly_spot_usd_at_20pct": n * 720 * eff["20%/month"],
                "source": p.source,
            }
        )
    return out


REPLAY_SCALE = 0.1
"""Share of each inventory pool's nodes the spot replay keeps (0.05 with --quick): 293 nodes, 594
GPUs of the two priced models at 0.1; the replay's jobs scale with it (spot_whatif.workload)."""
REPLAY_RESTART_S = 300.0
"""The closed form's restart time per reclaim (models/capacity.SpotPolicy default): an assumption."""


def spot_replay(seed: int, quick: bool = False) -> dict[str, Any]:
    """The spot what-if replayed on the Alibaba inventory (spot_whatif.whatif, every plan, the seed's
    jobs) and, per plan, the closed form of models/capacity.py on the same inputs:

    - USD per useful GPU-hour with the fleet always busy: the pools' GPU-weighted price, spot at
      ``SpotPolicy.effective_usd`` (reclaim rate, notice, checkpoint interval and stall of the spec);
      and at the replay's own utilisation (divided by it), which is what the replay's figure measures;
    - expected lost GPU-hours: per GPU model, rate x spot nodes x the replay's days (expected
      reclaims) x utilisation (the share that strikes a busy node) x the GPUs of the job struck
      (a gang loses on every rank; GPU-hour-weighted mean of the jobs) x half a checkpoint interval.

    Returns the spec, the inventory part replayed, each plan's replay figures and closed forms."""
    from gpuinfra import spot_whatif as sw

    spec = sw.WhatIfSpec(scale=0.05 if quick else REPLAY_SCALE)
    r = sw.whatif(spec, seed)
    pools, prices, _ = sw.select(spec)
    jobs = sw.workload(pools, spec, seed)
    gh = {m: 0.0 for m in prices}
    gg = {m: 0.0 for m in prices}
    for j in jobs:
        w = j.pods * j.gpus_per_pod * j.work_s
        gh[j.model] += w
        gg[j.model] += w * j.pods * j.gpus_per_pod
    gang_gpus = {m: gg[m] / gh[m] if gh[m] else 0.0 for m in prices}
    pol = SpotPolicy(
        spec.reclaim_per_node_day,
        notice_s=spec.notice_s,
        checkpoint_interval_s=spec.checkpoint_interval_s,
        checkpoint_s=spec.checkpoint_stall_s,
        restart_s=REPLAY_RESTART_S,
    )
    plans: dict[str, Any] = {}
    for plan, res in r["plans"].items():
        parts = sw.plan_pools(pools, plan, spec)
        gpus = sum(p.gpus_per_node * len(p.nodes) for p, _, _ in parts)
        eff = 0.0
        lost_cf = 0.0
        reclaims_cf = 0.0
        days = res["completion_time_h"] / 24.0
        for p, _, kind in parts:
            price = prices[p.model]
            if kind == "spot":
                usd = pol.effective_usd(price.spot_usd)
                n_exp = spec.reclaim_per_node_day * len(p.nodes) * days
                reclaims_cf += n_exp
                lost_cf += n_exp * res["utilisation"] * gang_gpus[p.model] * spec.checkpoint_interval_s / 2 / 3600.0
            else:
                usd = sw.usd_per_gpu_hour(kind, price, spec)
            eff += usd * p.gpus_per_node * len(p.nodes) / gpus
        util = res["utilisation"]
        plans[plan] = {
            "cost_usd": res["cost_usd"],
            "usd_per_useful_gpu_hour": res["usd_per_useful_gpu_hour"],
            "useful_gpu_hours": res["useful_gpu_hours"],
            "lost_gpu_hours": res["lost_gpu_hours"],
            "reclaims": res["reclaims"],
            "pods_killed": res["pods_killed"],
            "jobs": res["jobs"],
            "jobs_unfinished": res["jobs_unfinished"],
            "failures_counted": res["failures_counted"],
            "utilisation": util,
            "goodput": res["goodput"],
            "completion_time_h": res["completion_time_h"],
            "invariants_ok": bool(
                res["invariants"] and all(res["invariants"].get(k) for k in ("no_overcommit", "gpu_time_balance"))
            ),
            "closed_form": {
                "usd_per_useful_gpu_hour_busy": eff,
                "usd_per_useful_gpu_hour_at_utilisation": eff / util if util else None,
                "cost_usd": eff / util * res["useful_gpu_hours"] if util else None,
                "expected_reclaims": reclaims_cf,
                "expected_lost_gpu_hours": lost_cf,
            },
        }
    return {
        "spec": spec.model_dump(),
        "seed": seed,
        "nodes": r["inventory"]["nodes"],
        "gpus": r["inventory"]["gpus"],
        "jobs": r["workload"]["jobs"],
        "workload_gpu_hours": r["workload"]["gpu_hours"],
        "gang_gpus_by_model": gang_gpus,
        "restart_s_assumption": REPLAY_RESTART_S,
        "plans": plans,
    }


def detection_trial(out_dir: Path, detect_s: float, seeds: list[int], days: float) -> dict[str, Any]:
    """The as-is fleet with the as-is (600 s) and the given detection time, paired on each seed (same
    fault strikes, same workload): faults struck, pods killed, crashes on poisoned GPUs and failure
    waste (USD), summed over the seeds, with the paired difference's standard error (USD)."""
    out: dict[str, Any] = {"seeds": seeds, "detect_s": {"as is": 600.0, "faster": detect_s}, "runs": {}}
    for label, ds in (("as is", 600.0), ("faster", detect_s)):
        d = Design(fault_detect_s=ds, label=label)
        sc = _scenario(out_dir, d, f"detect-{label.replace(' ', '-')}", days)
        rows = []
        for sd in seeds:
            r = _evaluate(sc, sd)
            f = r["faults"]
            rows.append(
                {
                    "seed": sd,
                    "strikes": int(sum((f.get("by_class") or {}).values())),
                    "pods_killed": int(f.get("pods_killed", 0)),
                    "crashes_on_poisoned_gpus": int(f.get("crashes_on_poisoned_gpus", 0)),
                    "failure_waste_usd": r["by_category"].get("failure_waste", {"usd": 0.0})["usd"],
                    "unavailable_usd": r["by_category"].get("unavailable", {"usd": 0.0})["usd"],
                }
            )
        out["runs"][label] = rows
    a, f = out["runs"]["as is"], out["runs"]["faster"]
    diffs = np.array([x["failure_waste_usd"] - y["failure_waste_usd"] for x, y in zip(a, f, strict=True)])
    out["node_days"] = len(seeds) * days * 7  # 5 on-demand + 2 spot nodes of the as-is fleet
    out["saved_usd_mean"] = float(diffs.mean()) if len(diffs) else 0.0
    out["saved_usd_se"] = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
    for k in ("strikes", "pods_killed", "crashes_on_poisoned_gpus", "failure_waste_usd"):
        out[f"{k}_total"] = {lab: float(sum(x[k] for x in rows)) for lab, rows in out["runs"].items()}
    return out


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    """Lab 14 (see the module docstring); ``quick``: 8 days instead of 30, a smaller spot replay and
    fewer detection seeds. Returns the report's path."""
    d = load_design(design)  # checked before any run
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = 3
    days = QUICK_DAYS if quick else DAYS
    as_is = Design(label="as is")
    baselines = {
        "as is": as_is,
        "right-size only": as_is.model_copy(update={"gpu_nodes": d.gpu_nodes, "label": "right-size only"}),
        "faster detection only": as_is.model_copy(
            update={"fault_detect_s": d.fault_detect_s, "label": "faster detection only"}
        ),
        "right-size serving only": as_is.model_copy(
            update={"serving_replicas": d.serving_replicas, "label": "right-size serving only"}
        ),
        "right-size pool + serving": as_is.model_copy(
            update={
                "gpu_nodes": d.gpu_nodes,
                "serving_replicas": d.serving_replicas,
                "label": "right-size pool + serving",
            }
        ),
    }
    runs = {
        k: _evaluate(_scenario(out_dir, b, f"baseline-{i}", days), seed) for i, (k, b) in enumerate(baselines.items())
    }
    sizing: dict[str, Any] = {"size_to_peak": d.size_to_peak}
    if d.size_to_peak:
        # the peak the same workload (with the design's replicas) allocated on the as-is pool
        alloc = np.asarray(runs["right-size serving only"]["allocated_gpus_per_interval"], dtype=float)
        peak = float(np.percentile(alloc, d.size_percentile)) if len(alloc) else 0.0
        total = int(np.ceil((peak + d.headroom_gpus) / GPUS_PER_NODE - 1e-9))
        nodes = max(1, total - d.spot_nodes)
        sizing.update(
            peak_allocated_gpus=peak, percentile=d.size_percentile, headroom_gpus=d.headroom_gpus, gpu_nodes=nodes
        )
        d = d.model_copy(update={"gpu_nodes": nodes})
    runs["design"] = _evaluate(_scenario(out_dir, d, "design", days), seed)
    seeds = list(range(100, 100 + (6 if quick else DETECT_SEEDS)))
    detection = detection_trial(out_dir, d.fault_detect_s, seeds, days)
    base = runs["as is"]
    # the on-demand price the as-is run billed its on-demand pool at (the scenario's price book)
    price = next(p["usd_per_gpu_hour"] for p in base["bill_by_pool"] if p["purchase"] == "on_demand")
    commit_usd = price * 0.5  # assumption: a committed-use rate at half of on-demand; state yours
    hourly = np.asarray(base["allocated_gpus_per_interval"])
    per_hour = hourly.reshape(-1, int(3600 / base["interval_s"])).mean(axis=1) if len(hourly) % 6 == 0 else hourly
    lvl = committed_level(per_hour, price, commit_usd)
    s = {
        "schema": "gpuinfra.lab14/1",
        "design": {"label": d.label, "spec": d.model_dump(), "sizing": sizing},
        "days": days,
        "quick": quick,
        "runs": runs,
        "detection": detection,
        "spot_inventory": spot_inventory_whatif(),
        "spot_replay": spot_replay(seed, quick=quick),
        "committed": {
            "usd_per_gpu_hour_on_demand": price,
            "usd_per_gpu_hour_committed": commit_usd,
            "committed_rate_assumption": "half of on-demand (Savings Plans discounts vary; facts 1.3)",
            "level_gpus": lvl,
            "cost_at_level": mix_cost(per_hour, lvl, price, commit_usd),
            "cost_all_on_demand": mix_cost(per_hour, 0, price, commit_usd),
        },
    }
    return write_lab(out_dir, s, render(s))


def _short(r: dict[str, Any]) -> float:
    """Inference replica-hours short of the need, at the 0.1 replica-hour (6 min) the report shows:
    replicas submitted seconds apart leave seconds short that are no finding."""
    return round(r["replica_hours_short"], 1)


def _strongest(runs: dict[str, Any]) -> str:
    base = runs["as is"]
    ok = {
        k: r
        for k, r in runs.items()
        if k != "design" and r["pending_at_end"] <= base["pending_at_end"] and _short(r) <= _short(base)
    }
    return min(ok or {k: r for k, r in runs.items() if k != "design"}, key=lambda k: runs[k]["silent_burn_usd"])


def _pct(a: float, b: float) -> str:
    """a against b in words: 'N % less' / 'N % more' / 'the same'."""
    if not b:
        return "-"
    d = 1 - a / b
    return "the same" if abs(d) < 0.0005 else f"{100 * abs(d):.1f} % {'less' if d > 0 else 'more'}"


def _replay_section(rp: dict[str, Any]) -> tuple[str, str]:
    """Section 7: the replay's plans beside the closed form; the headline against the strongest baseline."""
    plans = rp["plans"]
    names = list(plans)
    cf = {k: v["closed_form"] for k, v in plans.items()}
    fig_usd = bar_figure(
        names,
        {
            "replay (spot_whatif)": [plans[k]["usd_per_useful_gpu_hour"] or 0.0 for k in names],
            "closed form at the replay's utilisation": [
                cf[k]["usd_per_useful_gpu_hour_at_utilisation"] or 0.0 for k in names
            ],
            "closed form, fleet always busy": [cf[k]["usd_per_useful_gpu_hour_busy"] for k in names],
        },
        "USD per useful GPU-hour: replay vs closed form",
        "USD per useful GPU-hour",
        xt="purchase plan (same seed and jobs)",
    )
    fig_usd.update_layout(legend_title="computed by")
    fig_lost = bar_figure(
        names,
        {
            "replay (spot_whatif)": [plans[k]["lost_gpu_hours"] for k in names],
            "closed form (expected)": [cf[k]["expected_lost_gpu_hours"] for k in names],
        },
        "Work lost to reclaims: replay vs closed form",
        "GPU-hours lost (work since the last checkpoint)",
        xt="purchase plan (same seed and jobs)",
    )
    fig_lost.update_layout(legend_title="computed by")
    rows = [
        [
            k,
            f"${v['cost_usd']:,.0f}",
            f"${cf[k]['cost_usd']:,.0f}" if cf[k]["cost_usd"] is not None else "-",
            f"${v['usd_per_useful_gpu_hour']:.3f}" if v["usd_per_useful_gpu_hour"] is not None else "-",
            f"${cf[k]['usd_per_useful_gpu_hour_busy']:.3f}",
            f"{100 * v['utilisation']:.1f} %",
            f"{v['lost_gpu_hours']:,.1f}",
            f"{cf[k]['expected_lost_gpu_hours']:,.1f}",
            f"{v['reclaims']:,}",
            f"{cf[k]['expected_reclaims']:,.1f}",
            f"{v['jobs_unfinished']:,}",
        ]
        for k, v in plans.items()
    ]
    table = table_html(
        [
            "plan",
            "cost (replay)",
            "cost (closed form at replay's utilisation)",
            "$/useful GPU-h (replay)",
            "$/useful GPU-h (closed form, busy)",
            "utilisation",
            "lost GPU-h (replay)",
            "lost GPU-h (closed form)",
            "reclaims (replay)",
            "reclaims (expected)",
            "jobs unfinished",
        ],
        rows,
    )
    done = {k: v for k, v in plans.items() if v["jobs_unfinished"] == 0 and v["usd_per_useful_gpu_hour"] is not None}
    pool = done or {k: v for k, v in plans.items() if v["usd_per_useful_gpu_hour"] is not None}
    ranked = sorted(pool, key=lambda k: plans[k]["usd_per_useful_gpu_hour"])
    best = ranked[0]
    b = plans[best]
    parts = [
        f"Replayed on {rp['nodes']:,} nodes ({rp['gpus']:,} GPUs, scale {rp['spec']['scale']:g}) of the inventory with "
        f"{rp['jobs']:,} jobs ({rp['workload_gpu_hours']:,.0f} GPU-hours of steady work), seed {rp['seed']}: "
        f"{best} does the work for the least, ${b['usd_per_useful_gpu_hour']:.3f} per useful GPU-hour (${b['cost_usd']:,.0f})"
    ]
    if len(ranked) > 1:
        sb = ranked[1]
        v = plans[sb]
        parts[0] += (
            f", {_pct(b['usd_per_useful_gpu_hour'], v['usd_per_useful_gpu_hour'])} than the strongest baseline, {sb} "
            f"(${v['usd_per_useful_gpu_hour']:.3f}, ${v['cost_usd']:,.0f})"
        )
    if len(ranked) > 2:
        w = plans[ranked[-1]]
        parts[0] += f", and {_pct(b['cost_usd'], w['cost_usd'])} than {ranked[-1]} (${w['cost_usd']:,.0f})"
    parts[0] += (
        f"; it lost {b['lost_gpu_hours']:,.1f} GPU-hours to {b['reclaims']:,} reclaims ({b['pods_killed']:,} pods killed, "
        f"{b['failures_counted']:,} failures counted toward a backoffLimit: the podFailurePolicy ignores reclaims)"
    )
    unfinished = [k for k, v in plans.items() if v["jobs_unfinished"]]
    parts.append(
        "every plan finished every job"
        if not unfinished
        else "unfinished jobs in " + ", ".join(f"{k} ({plans[k]['jobs_unfinished']})" for k in unfinished)
    )
    cf_rank = sorted(plans, key=lambda k: cf[k]["usd_per_useful_gpu_hour_busy"])
    rep_rank = sorted(
        (k for k in plans if plans[k]["usd_per_useful_gpu_hour"] is not None),
        key=lambda k: plans[k]["usd_per_useful_gpu_hour"],
    )
    parts.append(
        f"the closed form ranks the plans {' < '.join(cf_rank)} and the replay {' < '.join(rep_rank)}"
        + (" (the same order)" if cf_rank == rep_rank else " (a different order)")
    )
    devs = {
        k: plans[k]["usd_per_useful_gpu_hour"] / cf[k]["usd_per_useful_gpu_hour_at_utilisation"] - 1
        for k in plans
        if plans[k]["usd_per_useful_gpu_hour"] and cf[k]["usd_per_useful_gpu_hour_at_utilisation"]
    }
    if devs:
        k_max = max(devs, key=lambda k: abs(devs[k]))
        util = plans[k_max]["utilisation"]
        parts.append(
            f"the closed form assumes a fleet that is always busy; this one was {100 * util:.0f} % allocated, so its "
            f"busy-fleet price is {1 / util:.2f}x too low, and divided by the utilisation it lands within "
            f"{100 * abs(devs[k_max]):.1f} % of the replay in every plan (largest gap: {k_max}, {100 * devs[k_max]:+.1f} %, "
            f"where the replay's goodput is {100 * plans[k_max]['goodput']:.1f} %: start-up, warm-up and checkpoint "
            "GPU time the closed form does not charge there)"
        )
    few = False
    for k, v in plans.items():
        e = cf[k]["expected_reclaims"]
        if e <= 0:
            continue
        z = (v["reclaims"] - e) / e**0.5
        lost_cf = cf[k]["expected_lost_gpu_hours"]
        ratio = v["lost_gpu_hours"] / lost_cf if lost_cf else float("nan")
        parts.append(
            f"{k}: {v['reclaims']} reclaims against {e:.1f} expected ({z:+.1f} standard deviations of a Poisson count), "
            f"{v['lost_gpu_hours']:,.1f} GPU-hours lost against {lost_cf:,.1f} expected ({ratio:.2f}x)"
        )
        few = few or e < 30
    if few:
        worst_loss = max(max(v["lost_gpu_hours"], cf[k]["expected_lost_gpu_hours"]) for k, v in plans.items())
        usd_loss = worst_loss * max(v["usd_per_useful_gpu_hour"] or 0.0 for v in plans.values())
        gap = plans[ranked[1]]["cost_usd"] - b["cost_usd"] if len(ranked) > 1 else None
        parts.append(
            "with fewer than 30 reclaims expected, which jobs they happen to strike decides the loss, so one seed's "
            "lost GPU-hours scatter widely around the closed form"
            + (
                f"; even the largest loss here ({worst_loss:,.1f} GPU-hours, at most ${ceil_num(usd_loss)}) is "
                + ("far below" if usd_loss < 0.1 * gap else "not small against")
                + f" the ${gap:,.0f} between the two cheapest plans"
                if gap
                else ""
            )
        )
    return "; ".join(parts) + ".", fig_html(fig_usd, "l14replay") + fig_html(fig_lost, "l14lost") + table


def _detection_section(dt: dict[str, Any]) -> tuple[str, str]:
    """The paired detection trial: per seed failure waste at both detection times; the headline in numbers."""
    a, b = dt["runs"]["as is"], dt["runs"]["faster"]
    seeds = [str(x["seed"]) for x in a]
    fig = bar_figure(
        seeds,
        {
            f"detect in {dt['detect_s']['as is']:.0f} s (as is)": [x["failure_waste_usd"] for x in a],
            f"detect in {dt['detect_s']['faster']:.0f} s": [x["failure_waste_usd"] for x in b],
        },
        "Failure waste per run at two fault-detection times (paired seeds)",
        "failure waste (USD per run)",
        xt="seed (same faults and workload in both)",
    )
    fig.update_layout(legend_title="GPU health detection")
    tot = {k: dt[f"{k}_total"] for k in ("strikes", "pods_killed", "crashes_on_poisoned_gpus", "failure_waste_usd")}
    se, mean = dt["saved_usd_se"], dt["saved_usd_mean"]
    verdict = (
        "within two standard errors of zero: at these rates faster detection saves no measurable money on this fleet"
        if abs(mean) <= 2 * se
        else ("a saving" if mean > 0 else "a loss") + " beyond two standard errors"
    )
    c = (
        f"Faults at the Llama 3 rates (3.8 interruptions per 1,000 node-days, 58.7 % of them GPU; facts 3.1) over "
        f"{len(seeds)} paired runs ({dt['node_days']:,.0f} node-days): {tot['strikes']['as is']:.0f} strikes killed "
        f"{tot['pods_killed']['as is']:.0f} pods, and {tot['crashes_on_poisoned_gpus']['as is']:.0f} pods crashed on "
        f"poisoned GPUs detected in {dt['detect_s']['as is']:.0f} s against {tot['crashes_on_poisoned_gpus']['faster']:.0f} "
        f"in {dt['detect_s']['faster']:.0f} s; failure waste ${tot['failure_waste_usd']['as is']:,.0f} vs "
        f"${tot['failure_waste_usd']['faster']:,.0f}, a mean ${mean:,.2f} per run saved (standard error ${se:,.2f}), "
        f"{verdict}."
    )
    return c, fig_html(fig, "l14detect")


def render(s: dict[str, Any]) -> str:
    runs, secs, f = s["runs"], [], []
    base, des = runs["as is"], runs["design"]
    days = s["days"]
    idle = base["by_category"].get("idle", {"usd": 0.0})["usd"]
    pools = "; ".join(
        f"{p['pool']} ({p['purchase'].replace('_', '-')}) {p['billed_gpu_hours']:,.0f} GPU-h x ${p['usd_per_gpu_hour']:.2f} "
        f"= ${p['usd']:,.0f}"
        for p in base["bill_by_pool"]
    )
    c1 = (
        f"The as-is H100 fleet bills ${base['bill_usd']:,.0f} over {days:.0f} days ({pools}); ${idle:,.0f} of it "
        f"({100 * idle / base['bill_usd']:.1f} %) pays for idle GPUs, ${idle / days:,.0f} a day that no dashboard "
        f"of 'healthy' pods shows. Attribution sums to the bill (idle checked against the recorder: "
        f"{'ok' if base['check']['ok'] else 'MISMATCH'})."
    )
    cats = list(at.CATEGORIES)
    names = list(runs)
    fig = bar_figure(
        names,
        {readable_label(c): [runs[n]["by_category"].get(c, {"usd": 0.0})["usd"] for n in names] for c in cats},
        "Where the GPU bill goes, by run",
        "USD over the run",
        stacked=True,
    )
    fig.update_layout(xaxis_title="run (same seed and workload)", legend_title="cost line")
    secs.append(Section("1. GPU inefficiency is visible in the bill", fig_html(fig, "l14bill"), c1))
    f.append(c1)
    rows = [
        [
            readable_label(r["costCategory"]),
            readable_label(r["where"]),
            f"{r['gpuHours']:,.1f}",
            f"${r['totalCost']:,.0f}",
            f"{100 * r['share_of_bill']:.2f} %",
        ]
        for r in base["silent_burn"]
    ]
    top = base["silent_burn"][0] if base["silent_burn"] else None
    c2 = (
        (
            f"Silent burn, ranked: the largest line is {readable_label(top['costCategory'])} ({readable_label(top['where'])}) at ${top['totalCost']:,.0f}; "
            f"all non-workload lines together ${base['silent_burn_usd']:,.0f} "
            f"({100 * base['silent_burn_usd'] / base['bill_usd']:.1f} % of the bill)."
        )
        if top
        else "No silent burn."
    )
    secs.append(Section("2. Hidden cost drivers", table_html(["line", "where", "GPU-hours", "USD", "share"], rows), c2))
    f.append(c2)
    ns = sorted(set(base["workload_by_namespace"]) | set(base["failure_waste_by_namespace"]))
    rows = [
        [n, f"${base['workload_by_namespace'].get(n, 0):,.0f}", f"${base['failure_waste_by_namespace'].get(n, 0):,.0f}"]
        for n in ns
    ]
    worst = max(ns, key=lambda n: base["failure_waste_by_namespace"].get(n, 0.0)) if ns else "-"
    up, sp, fl = base["upgrade"], base["spot"], base["faults"]
    c3 = (
        f"Failure waste lands on {worst} first (${base['failure_waste_by_namespace'].get(worst, 0):,.0f}); its "
        f"sources this run: the rolling upgrade killed {up.get('jobs_killed', 0)} jobs ({up.get('lost_gpu_hours', 0):.1f} GPU-h "
        f"lost since their last checkpoint, {up.get('lost_gpu_hours_since_start', 0):.1f} since their start), "
        f"spot reclaimed {sp.get('reclaims', 0)} nodes ({sp.get('pods_killed', 0)} pods, "
        f"{sp.get('lost_gpu_hours', 0):.1f} GPU-h lost since their last checkpoint by the same rule), faults killed "
        f"{fl.get('pods_killed', 0)} pods and {fl.get('crashes_on_poisoned_gpus', 0)} crashed on poisoned GPUs."
    )
    secs.append(
        Section(
            "3. Cost of failed and inefficient work", table_html(["namespace", "useful", "failure waste"], rows), c3
        )
    )
    f.append(c3)
    rows, lines = [], []
    for sv in base["over_provisioning"]:
        ns = sv["namespace"]
        if sv["status"] != "computed":
            rows.append([ns, "not computed", "-", "-", "-", "-", "-", "-"])
            lines.append(f"{ns}: not computed ({sv['why']})")
            continue
        usd = base["over_provisioned_usd_by_namespace"].get(ns, 0.0)
        share = sv["over_provisioned_gpu_hours"] / sv["held_gpu_hours"] if sv["held_gpu_hours"] else 0.0
        rows.append(
            [
                ns,
                f"{sv['offered_rps']:g}",
                f"{sv['capacity_rps']:.1f}",
                sv["needed_replicas"],
                f"{sv['mean_replicas']:.2f}",
                f"{sv['over_provisioned_gpu_hours']:,.1f}",
                f"${usd:,.0f}",
                f"{sv['replica_hours_short']:,.1f}",
            ]
        )
        lines.append(
            f"{ns} receives {sv['offered_rps']:g} requests/s ({sv['offered_source']}); one replica sustains "
            f"{sv['capacity_rps']:.1f} requests/s at its SLO ({sv['capacity_source']}); aiming at "
            f"{100 * sv['target_utilization']:.0f} % utilisation with at least {sv['min_replicas']} replicas it needs "
            f"{sv['needed_replicas']}, and it ran {sv['mean_replicas']:.2f} on average: "
            f"{sv['over_provisioned_gpu_hours']:,.1f} GPU-hours (${usd:,.0f}, {100 * share:.0f} % of what the service "
            f"held) are over-provisioned, moved out of its usage line"
        )
    dsv = {x["namespace"]: x for x in des["over_provisioning"]}
    for ns, sv in dsv.items():
        if sv["status"] == "computed":
            lines.append(
                f"the design runs {sv['mean_replicas']:.2f} replicas of {ns} on average: "
                f"${des['over_provisioned_usd_by_namespace'].get(ns, 0.0):,.0f} over-provisioned, "
                f"{sv['replica_hours_short']:,.1f} replica-hours short of the need"
            )
    rs = runs.get("right-size serving only")
    if rs is not None:

        def usd(r: dict[str, Any], *cats: str) -> float:
            return sum(r["by_category"].get(k, {"usd": 0.0})["usd"] for k in cats)

        d_over = usd(base, "over_provisioned") - usd(rs, "over_provisioned")
        d_idle = usd(rs, "idle", "stranded") - usd(base, "idle", "stranded")
        lines.append(
            f"cutting only the replicas (same pool) removes ${d_over:,.0f} of over-provisioning and adds "
            f"${d_idle:,.0f} of idle and stranded GPUs; the bill moves by {usd_signed(rs['bill_usd'] - base['bill_usd'])}"
        )
    c_over = ("; ".join(lines) + ".") if lines else "The run has no service (execution kind service) to size."
    secs.append(
        Section(
            "4. Over-provisioned serving",
            table_html(
                [
                    "service",
                    "offered req/s",
                    "req/s per replica at SLO",
                    "replicas needed",
                    "replicas held (mean)",
                    "over-provisioned GPU-h",
                    "USD",
                    "replica-h short",
                ],
                rows,
            ),
            c_over,
        )
    )
    f.append(c_over)
    strong = _strongest(runs)
    sb = runs[strong]
    saved = sb["silent_burn_usd"] - des["silent_burn_usd"]
    sz = s["design"].get("sizing") or {}
    sized = (
        f"The design sizes its on-demand pool to the p{sz['percentile']:g} of the GPUs the same workload allocated "
        f"with its replicas on the as-is pool ({sz['peak_allocated_gpus']:.1f} GPUs, 10-min means) + "
        f"{sz['headroom_gpus']} GPUs of headroom: {sz['gpu_nodes']} "
        f"on-demand nodes + {s['design']['spec']['spot_nodes']} spot ({des['gpus']} GPUs; the peak comes from a run "
        "of the same workload, an oracle a real plan replaces with a forecast). "
        if sz.get("size_to_peak")
        else ""
    )
    c4 = sized + (
        f"The design ({s['design']['label']}) burns ${des['silent_burn_usd']:,.0f} silently against "
        f"${sb['silent_burn_usd']:,.0f} for the strongest baseline ({strong}): "
        + (f"${saved:,.0f} less" if saved >= 0.5 else f"${-saved:,.0f} more" if saved <= -0.5 else "the same")
        + f"; bill ${des['bill_usd']:,.0f} vs ${sb['bill_usd']:,.0f}; pods pending at the end {des['pending_at_end']} vs "
        f"{sb['pending_at_end']}; pods completed {des['completed']} vs {sb['completed']}; inference replica-hours "
        f"short of the need {des['replica_hours_short']:,.1f} vs {sb['replica_hours_short']:,.1f}"
        + (
            " -- the saving is bought with unfinished work or unserved load, so it is not free."
            if saved > 0
            and (
                des["pending_at_end"] > sb["pending_at_end"]
                or des["completed"] < sb["completed"]
                or _short(des) > _short(sb)
            )
            else "."
        )
        + (
            " Silent burn is the bill less useful work: with the same bill and the same useful work, cutting "
            "over-provisioned replicas only turns their GPUs into idle ones; the money comes back only with fewer nodes."
            if abs(saved) < 0.5 and abs(des["bill_usd"] - sb["bill_usd"]) < 0.5
            else ""
        )
    )
    rows = [
        [
            n,
            f"${r['bill_usd']:,.0f}",
            f"${r['silent_burn_usd']:,.0f}",
            r["pending_at_end"],
            r["completed"],
        ]
        for n, r in runs.items()
    ]
    secs.append(
        Section(
            "5. Redesign to cut silent burn",
            table_html(["run", "bill", "silent burn", "pending at end", "completed"], rows),
            c4,
        )
    )
    f.append(c4)
    c_det, html_det = _detection_section(s["detection"])
    secs.append(Section("5b. Faster fault detection, over enough node-days", html_det, c_det))
    f.append(c_det)
    inv = s["spot_inventory"]
    series = {}
    for m in inv["models"]:
        xs = np.linspace(0, max(2 * m["breakeven_reclaims_per_node_day"], 0.5), 30)
        series[f"{m['gpu_model']} spot"] = [(x, SpotPolicy(x).effective_usd(m["spot_usd"])) for x in xs]
        series[f"{m['gpu_model']} on-demand"] = [(x, m["on_demand_usd"]) for x in xs]
    fig2 = line_figure(
        series,
        "Spot vs on-demand per useful GPU-hour (checkpoint hourly, 5 min restart)",
        "reclaims per node-day",
        "USD per useful GPU-hour",
        logx=False,
        mode="lines",
    )
    rows = [
        [
            m["gpu_model"],
            m["gpus"],
            f"${m['on_demand_usd']:.2f}",
            f"${m['spot_usd']:.2f}",
            f"{m['breakeven_reclaims_per_node_day']:.2f}",
            f"${m['monthly_on_demand_usd']:,.0f}",
            f"${m['monthly_spot_usd_at_20pct']:,.0f}",
        ]
        for m in inv["models"]
    ]
    un = ", ".join(f"{u['gpu_model']} ({u['gpus']} GPUs)" for u in inv["unpriced"])
    c5 = (
        "On the spot cluster's real inventory: "
        + "; ".join(
            f"{m['gpu_model']} spot stays cheaper per useful hour up to {floor_num(m['breakeven_reclaims_per_node_day'], 1)} reclaims "
            f"per node-day, far above AWS's worst bucket (0.2/month = {0.2 / 30:.4f}/day)"
            for m in inv["models"]
        )
        + (f". Not priced by the catalog, so left out: {un}." if un else ".")
    )
    secs.append(
        Section(
            "6. Spot on the Alibaba spot cluster's inventory",
            fig_html(fig2, "l14spot")
            + table_html(
                [
                    "GPU",
                    "GPUs",
                    "on-demand $/h",
                    "spot $/h",
                    "break-even reclaims/day",
                    "month on-demand",
                    "month spot (20 %/mo)",
                ],
                rows,
            ),
            c5,
        )
    )
    f.append(c5)
    c_rep, html_rep = _replay_section(s["spot_replay"])
    secs.append(Section("7. The same spot question, replayed on the inventory", html_rep, c_rep))
    f.append(c_rep)
    cm = s["committed"]
    c6 = (
        f"Committed use: at ${cm['usd_per_gpu_hour_committed']:.2f}/h ({cm['committed_rate_assumption']}) the cheapest "
        f"commitment for this run's hourly demand is {cm['level_gpus']} GPUs: ${cm['cost_at_level']['total_usd']:,.0f} vs "
        f"${cm['cost_all_on_demand']['total_usd']:,.0f} all on-demand for the allocated hours."
    )
    secs.append(Section("8. Committed use from the run's own demand", "", c6))
    f.append(c6)
    sub = "Seed section 14; every number computed by this run (inputs written beside this report)."
    return render_page(f"Lab 14: {TITLE}", secs, findings=f, subtitle=sub)
