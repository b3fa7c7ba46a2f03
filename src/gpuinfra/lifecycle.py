"""Lifecycle compositions: plan a node-pool upgrade, attribute a run's cost, spot what-ifs.

Each function runs the one simulator (``run.simulate``) on the same scenario and seed for every
candidate, so differences come from the candidate alone.

- :func:`upgrade_plan`: the node stack change (models/nodestack.py) decides whether nodes must
  be drained; the candidates (strategy x batch size x node order) are simulated against the
  naive upgrade (every node of the pool at once, in place, drained with ``--disable-eviction``:
  PodDisruptionBudgets bypassed); the proposal is the candidate that overrides no budget, upgrades
  every node and costs the least disruption in USD (failure waste: work thrown away; GPUs out of
  service while reimaging; extra surge/green node-hours paid), ties to fewer service
  replica-hours unready, then the shorter upgrade. Beside the naive row (which bypasses every
  budget) it is compared with the strongest other candidate: the best safe one of a different
  strategy or batch size (``runner_up``); ``spare_node_usd`` shows the surge/green term alone.
- :func:`cost_report`: OpenCost-style attribution (analysis/attribution.py) of one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gpuinfra.analysis import attribution as at
from gpuinfra.errors import UserError
from gpuinfra.io.scenario import Scenario, build
from gpuinfra.io.scenario_load import upgrade_locator
from gpuinfra.models import compat
from gpuinfra.models.nodestack import ChangePlan, NodeStack, plan_change
from gpuinfra.run import SimulationOutput, simulate
from gpuinfra.sim.upgrade import check_upgrade


@dataclass
class UpgradePlan:
    """The change, every simulated candidate (one row each), the naive row and the proposal."""

    change: ChangePlan
    candidates: pd.DataFrame
    naive: dict[str, Any]
    proposed: dict[str, Any] | None
    pool_nodes: int = 0
    """Nodes of the upgraded pool (a candidate is safe only when it upgrades all of them)."""
    runner_up: dict[str, Any] | None = None
    """The strongest other candidate: the best safe candidate whose strategy or batch size (maxSurge,
    maxUnavailable) differs from the proposal's, ranked as the proposal is; None when there is none."""
    current_findings: list[dict[str, str]] = field(default_factory=list)
    """What compat check says against the stack the pool runs *now* (its warn and refuse findings:
    rule, verdict, message, source, fix). An upgrade may start from a stack the tables refuse (that
    is often why it is done), so these are reported, not refused."""

    def as_dict(self) -> dict:
        return {
            "current_stack_findings": self.current_findings,
            "change": self.change.as_dict(),
            "naive": self.naive,
            "proposed": self.proposed,
            "runner_up": self.runner_up,
            "candidates": self.candidates.to_dict(orient="records"),
        }


def _with_upgrade(sc: Scenario, **changes: Any) -> Scenario:
    up = sc.upgrade.model_copy(update=changes)  # type: ignore[union-attr]
    new = sc.model_copy(update={"upgrade": up})
    new._label, new._text = sc._label, sc._text
    return new


def _row(label: str, out: SimulationOutput) -> dict[str, Any]:
    u = out.run.subsystems["upgrade"]
    up = out.built.scenario.upgrade
    table = at.attribute(out.run, out.ledger, out.built.prices)
    cost = table.groupby("costCategory")["totalCost"].sum()
    price = at.pool_prices(out.run, out.built.prices)
    return {
        "candidate": label,
        "strategy": up.strategy,
        "max_surge": up.max_surge if up.strategy == "surge" else 0,
        "max_unavailable": up.max_unavailable,
        "order": up.order,
        "duration_h": (u["duration_s"] / 3600.0) if u["duration_s"] is not None else None,
        "nodes_done": u["nodes_done"],
        "jobs_killed": u["jobs_killed"],
        "lost_gpu_hours": u["lost_gpu_hours"],
        "service_evictions": u["service_evictions"],
        "service_replica_hours_unready": u["service_replica_hours_unready"],
        "refused_429": u["refused_429"],
        "pdb_overridden": u["pdb_overridden"],
        "failure_waste_usd": float(cost.get("failure_waste", 0.0)),
        "preemption_waste_usd": float(cost.get("preemption_waste", 0.0)),
        "unavailable_usd": float(cost.get("unavailable", 0.0)),
        # surge/green nodes billed while provisioning: inside unavailable_usd and inside the bill
        "provisioning_usd": sum(h * price[q][2] for q, h in u.get("provisioning_gpu_hours_by_pool", {}).items()),
        "bill_usd": float(table["totalCost"].sum()),
        "wait_p99_s": out.summary["pods"]["wait_s"]["p99"],
    }


def upgrade_plan(
    sc: Scenario, base_dir: Path | None, to: dict[str, str], *, seed: int | None = None, stack: dict | None = None
) -> UpgradePlan:
    """Check the stack change, then simulate the naive upgrade and every candidate on the same run.

    ``to``: layer -> version (models/nodestack.parse_target). ``stack`` overrides the
    scenario's ``upgrade.stack`` (the pool's current layers). Raises UserError when the scenario
    has no ``upgrade:`` block, the current stack is not given, the compat data forbids the path,
    or a PodDisruptionBudget refuses every drain.
    """
    if sc.upgrade is None:
        raise UserError(
            "the scenario has no 'upgrade:' block",
            where=upgrade_locator(sc)("upgrade") or sc._label,
            expected="upgrade: {pool: NAME, stack: {driver: ..., cuda: ..., framework: ...}, ...}",
            fix="add an upgrade: block (see examples/upgrade.yaml)",
        )
    built = build(sc, base_dir, seed=seed)  # validates the scenario; the pool's GPU model and size
    c = built.cluster
    pools: dict[str, int] = {}
    for n in range(c.n_nodes):
        pools[c.pools[c.node_pool[n]].name] = pools.get(c.pools[c.node_pool[n]].name, 0) + 1
    owners: dict[str, int] = {}
    for o in built.pods.owners:
        owners[o] = owners.get(o, 0) + 1
    check_upgrade(sc.upgrade, pools, owners, sc.horizon_s, upgrade_locator(sc))
    nodes = [n for n in range(c.n_nodes) if c.pools[c.node_pool[n]].name == sc.upgrade.pool]
    if c.node_model[nodes[0]] < 0:
        raise UserError(
            f"upgrade.pool: pool '{sc.upgrade.pool}' has no GPU nodes",
            where=upgrade_locator(sc)("upgrade.pool"),
            expected="a GPU pool",
        )
    hw = c.models[c.node_model[nodes[0]]]
    cur = dict(sc.upgrade.stack) | dict(stack or {})
    if "driver" not in cur:
        ex = example_stack(hw)
        raise UserError(
            f"upgrade.stack: the pool's current driver is not known ({hw} nodes)",
            where=upgrade_locator(sc)("upgrade.stack" if sc.upgrade.stack else "upgrade"),
            expected="upgrade.stack with the driver (and cuda, framework) the nodes run now, e.g. "
            + "{"
            + ", ".join(f"{k}: '{v}'" for k, v in ex.items())
            + "}",
            fix="add upgrade.stack to the scenario, or pass --from " + ",".join(f"{k}={v}" for k, v in ex.items()),
        )
    try:  # the current stack alone first, so a bad version is blamed on where it was written
        now = compat.check(compat.Stack(hw, cur["driver"], cur.get("cuda"), cur.get("framework")))
    except UserError as e:
        src = "--from" if stack else upgrade_locator(sc)("upgrade.stack")
        raise UserError(
            f"upgrade.stack: {e.what}" if not stack else e.what,
            where=src,
            expected=e.expected,
            fix=e.fix or "give the versions the pool's nodes run now",
        ) from None
    try:
        change = plan_change(NodeStack(hardware=hw, **cur), to)
    except UserError as e:  # a target version the compat tables lack: named after --to, not compat's flags
        raise on_flag(e, "--to") from None
    if not change.layers_changed:
        raise UserError(
            "the target is the pool's current stack: nothing to upgrade",
            where="--to",
            expected="a layer version different from the current " + ", ".join(f"{k}={v}" for k, v in cur.items() if v),
        )
    n_nodes = len(nodes)
    spare = 0
    if sc.upgrade.surge_pool:
        spare = pools.get(sc.upgrade.surge_pool, 0)
    naive_sc = _with_upgrade(sc, strategy="in_place", max_unavailable=n_nodes, respect_pdbs=False, order="name")
    naive = _row(
        "naive: all nodes at once, no PDB",
        simulate(naive_sc, base_dir, seed=seed, log_events=False),
    )
    rows = [naive]
    if change.needs_reboot:
        batches = sorted({1, 2, max(1, n_nodes // 4)})
        for order in ("name", "least_work_at_risk"):
            for b in batches:
                rows.append(
                    _run(
                        sc,
                        base_dir,
                        seed,
                        f"in_place u={b} {order}",
                        strategy="in_place",
                        max_unavailable=b,
                        order=order,
                    )
                )
                if spare >= b:
                    rows.append(
                        _run(
                            sc,
                            base_dir,
                            seed,
                            f"surge s={b} u=0 {order}",
                            strategy="surge",
                            max_surge=b,
                            max_unavailable=0,
                            order=order,
                        )
                    )
            if spare >= n_nodes:
                rows.append(
                    _run(
                        sc,
                        base_dir,
                        seed,
                        f"blue_green b=1 {order}",
                        strategy="blue_green",
                        max_unavailable=1,
                        order=order,
                    )
                )
    df = pd.DataFrame(rows)
    # disruption in one unit: work thrown away + GPUs out of service + extra nodes paid for (surge/green)
    df["disruption_usd"] = _disruption(df, naive["bill_usd"])
    # the spare (surge/green) node-time paid beyond the naive bill: one of the disruption's three terms
    df["spare_node_usd"] = df["bill_usd"] - naive["bill_usd"]
    naive = df.iloc[0].to_dict()
    cand = df.iloc[1:]
    safe = cand[(cand["pdb_overridden"] == 0) & (cand["nodes_done"] == n_nodes)]
    pick = runner_up = None
    if len(safe):
        ranked = safe.sort_values(["disruption_usd", "service_replica_hours_unready", "duration_h", "candidate"])
        pick = ranked.iloc[0].to_dict()
        shape = ["strategy", "max_surge", "max_unavailable"]
        other = ranked[(ranked[shape] != pd.Series({k: pick[k] for k in shape})).any(axis=1)]
        runner_up = other.iloc[0].to_dict() if len(other) else None
    current = [
        {"rule": f.rule, "verdict": f.verdict, "message": f.message, "source": f.source, "fix": f.fix}
        for f in now.findings
        if f.verdict != "ok"
    ]
    return UpgradePlan(change, df, naive, pick, n_nodes, runner_up, current)


def on_flag(e: UserError, flag: str) -> UserError:
    """``e`` from the compat tables (named after `compat check`'s --driver/--cuda/--torch) renamed
    after the upgrade flag the version came from (``--from cuda``, ``--to framework``); other errors
    unchanged."""
    layer = {"--driver": "driver", "--cuda": "cuda", "--torch": "framework"}.get(e.where or "")
    if layer is None:
        return e
    return UserError(e.what, where=f"{flag} {layer}", expected=e.expected, fix=e.fix)


def example_stack(hardware: str) -> dict[str, str]:
    """A current stack the compatibility data accepts on ``hardware`` (for messages): the newest
    stable PyTorch wheel whose CUDA the GPU supports, on the driver that CUDA toolkit shipped with
    (compat.check verdict ok, else warn). Empty when no wheel fits."""
    from gpuinfra.catalog import compat as cc
    from gpuinfra.models import compat

    best: dict[str, str] = {}
    for verdict in ("ok", "warn"):
        for w in sorted(cc.torch_wheels(), key=lambda w: (w.torch, w.cuda), reverse=True):
            if w.status != "stable":
                continue
            cuda = ".".join(str(x) for x in w.cuda[:2])
            tk = compat._toolkit(w.cuda[:2])
            drv = ".".join([str(tk.linux_driver[0]), *(f"{x:02d}" for x in tk.linux_driver[1:])])
            fw = f"{w.torch[0]}.{w.torch[1]}"
            try:
                rep = compat.check(compat.Stack(hardware, drv, cuda, fw))
            except UserError:
                continue
            if rep.verdict == verdict:
                return {"driver": drv, "cuda": cuda, "framework": fw}
    return best


def _disruption(r: Any, naive_bill_usd: float) -> Any:
    """USD: work thrown away + the pool's GPUs out of service + extra node-time paid against the naive
    bill (which includes surge/green nodes billed while provisioning: counted there once, so the
    provisioning part of ``unavailable_usd`` is taken out of the out-of-service term)."""
    return (
        r["failure_waste_usd"]
        + r["preemption_waste_usd"]
        + (r["unavailable_usd"] - r["provisioning_usd"])
        + (r["bill_usd"] - naive_bill_usd)
    )


def _run(sc: Scenario, base_dir: Path | None, seed: int | None, label: str, **kw: Any) -> dict[str, Any]:
    return _row(label, simulate(_with_upgrade(sc, **kw), base_dir, seed=seed, log_events=False))


def evaluate_candidate(
    sc: Scenario, base_dir: Path | None, seed: int | None, label: str, naive_bill_usd: float, **upgrade: Any
) -> dict[str, Any]:
    """One more candidate (e.g. a lab's design) on the same run as a plan: ``upgrade`` overrides
    fields of the scenario's ``upgrade:`` block; ``disruption_usd`` against the plan's naive bill."""
    row = _run(sc, base_dir, seed, label, **upgrade)
    row["disruption_usd"] = _disruption(row, naive_bill_usd)
    return row


def cost_report(out: SimulationOutput, epoch: str = at.DEFAULT_EPOCH) -> dict[str, Any]:
    """Attribution of one run: the OpenCost table, totals by category and namespace, silent burn, bill,
    and per service the over-provisioning figures (or why they are not computed). ``epoch``: the RFC 3339
    instant the run's t = 0 stands for (the table's start/end timestamps)."""
    svc = at.over_provisioning(out.run)
    table = at.attribute(
        out.run, out.ledger, out.built.prices, cluster_name=out.built.scenario.name, services=svc, epoch=epoch
    )
    return {
        "over_provisioning": svc,
        "table": table,
        "by_category": table.groupby("costCategory")[["gpuHours", "totalCost"]].sum().reset_index(),
        "by_namespace": at.aggregate(table, "namespace"),
        "silent_burn": at.silent_burn(table),
        "bill": at.bill(out.run, out.built.prices),
        "bill_by_pool": at.bill_by_pool(out.run, out.built.prices),
        "check": at.check(out.run, table),
    }
