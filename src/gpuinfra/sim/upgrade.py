"""Node-pool upgrades in a replay: cordon, drain through the eviction API, reimage, uncordon.

The ``upgrade`` subsystem upgrades every node of one GPU pool, as GKE/EKS/AKS and the GPU
Operator's driver upgrade controller do (facts: cost-lifecycle-security.md section 4):

- **in_place**: ``max_unavailable`` nodes at a time are cordoned, drained and reimaged
  (``node_upgrade_s``: the new driver/CUDA image, reboot and validation), then uncordoned.
- **surge** (GKE ``maxSurge``/``maxUnavailable``): ``max_surge`` extra nodes of the pool's
  ``surge_pool`` are provisioned (``provision_s``) and take pods; parallelism is
  maxSurge + maxUnavailable (GKE). Old nodes are drained one per free slot; the first
  N - maxSurge are reimaged (a stand-in for delete + create, same capacity), the last maxSurge are
  deleted, so the pool ends at its size with the surge nodes as its new members.
- **blue_green**: every green node (``surge_pool``, as many as the pool) is provisioned first;
  blue nodes are then drained in batches of ``max_unavailable`` with ``batch_soak_s`` between
  batches, and deleted.

Cordon is ``ClusterState.set_node_up(False)``: the node takes no new pods, running pods keep
running. Drain evicts each pod through the eviction API: a pod whose owner has a
PodDisruptionBudget (models/pdb.py) is evicted only when the budget allows (else 429, retried
every ``eviction_retry_s``: kubectl drain's retry interval is 5 s); after ``force_after_s`` the
rest is deleted regardless (GKE respects PDBs for up to one hour, then force-drains -- facts file,
marked there as not re-read). An evicted pod goes back to the queue (runtime.evict): its GPU work
since its start -- or since its last checkpoint when the execution subsystem keeps checkpoints --
is lost. Nodes not yet requested or already deleted are *unprovisioned*: their devices are
unavailable and their time is not billed (reported so cost attribution leaves it out of the bill).
A surge/green node is billed from the moment it is requested: clouds bill an instance while it
boots and the GPU Operator validates it (AWS EC2 bills On-Demand Linux instances per second from
the moment the instance enters the ``running`` state, which precedes OS boot and the node joining
the cluster; Compute Engine bills VMs per second once they start, and ``provision_s`` here covers
boot, kubelet join, driver install and GPU Operator validation). During ``provision_s`` its devices
are *unavailable* (billed, attributed as unavailable), not unprovisioned; the time from the API
call to ``running`` (seconds to a few minutes) is inside ``provision_s`` and billed too -- a small
over-count, stated as an assumption.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gpuinfra.errors import UserError
from gpuinfra.models.pdb import PodDisruptionBudget
from gpuinfra.sim.execution import kill_loss_s, mark_disruption
from gpuinfra.sim.kernel import PRIO_RELEASE, Event
from gpuinfra.sim.provisioning import ProvisionLedger
from gpuinfra.sim.subsystem import PENDING, RUNNING, RunConfig, Subsystem, View, register

if TYPE_CHECKING:
    from gpuinfra.sim.subsystem import PodRuntime


MAX_S = 1e10
"""Upper bound of every time in the ``upgrade:`` block (about 317 years; the scenario's MAX_TIME_S)."""

_T = {"allow_inf_nan": False, "le": MAX_S}
"""Every time is finite and bounded: an infinite reimage would leave the upgrade unfinished and its
duration NaN."""


def _budget_value(v: Any, field: str) -> Any:
    """An IntOrString budget value checked as models/pdb.scaled does, as a pydantic error."""
    if v is None:
        return v
    from gpuinfra.models.pdb import scaled

    if isinstance(v, bool) or not isinstance(v, int | str):
        raise PydanticCustomError(
            "pdb_value", "{v} is not an integer or a percentage; expected 3 or '50%'", {"v": repr(v)[:40]}
        )
    try:
        scaled(v, 1, where=field)
    except UserError as e:
        raise PydanticCustomError(
            "pdb_value", "{what}; expected {expected}", {"what": e.what, "expected": e.expected or "3 or '50%'"}
        ) from None
    return v


class PdbSpec(BaseModel):
    """A PodDisruptionBudget over one owner's pods, spelled as in policy/v1: exactly one of
    ``minAvailable``/``maxUnavailable``, each an integer >= 0 or a percentage 0-100 %."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    minAvailable: int | str | None = None  # noqa: N815 (Kubernetes' field name)
    maxUnavailable: int | str | None = None  # noqa: N815
    unhealthyPodEvictionPolicy: Literal["IfHealthyBudget", "AlwaysAllow"] = "IfHealthyBudget"  # noqa: N815

    @field_validator("minAvailable", "maxUnavailable", mode="before")
    @classmethod
    def _form(cls, v: Any, info: Any) -> Any:
        return _budget_value(v, info.field_name)

    @model_validator(mode="after")
    def _exactly_one(self) -> PdbSpec:
        if (self.minAvailable is None) == (self.maxUnavailable is None):
            raise PydanticCustomError(
                "pdb_one_of",
                "give exactly one of minAvailable and maxUnavailable (mutually exclusive in policy/v1), "
                "e.g. minAvailable: '80%'",
            )
        return self


_STACK_LAYERS = ("firmware", "kernel", "driver", "cuda", "container_toolkit", "device_plugin", "framework")
"""Layers ``upgrade.stack`` may name (models/nodestack.LAYERS without the hardware: that is the pool's GPU)."""


class UpgradeSpec(BaseModel):
    """Scenario block ``upgrade:``: one pool's upgrade (strategy, batch, drain rules, budgets).

    Checked here (each a FILE:LINE error through the scenario loader): every time finite and at most
    :data:`MAX_S`; PodDisruptionBudget values; surge with maxSurge = maxUnavailable = 0; ``stack``
    layer names and versions. Checks that need the cluster or the trace (the pool exists, enough
    surge nodes, ``start_s`` before ``horizon_s``, every budget's owner has pods) are in
    :func:`check_upgrade`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    pool: str = Field(description="the node pool to upgrade")
    strategy: Literal["in_place", "surge", "blue_green"] = "surge"
    max_surge: int = Field(1, strict=True, ge=0, le=100_000, description="GKE maxSurge (surge); GKE's default is 1")
    max_unavailable: int = Field(
        1, strict=True, ge=0, le=100_000, description="nodes drained at once (GKE default 0 with surge)"
    )
    surge_pool: str | None = Field(None, description="pool holding the surge/green nodes (down until provisioned)")
    start_s: float = Field(0.0, ge=0, **_T, description="when the upgrade starts (simulated seconds)")
    node_upgrade_s: float = Field(
        1200.0, gt=0, **_T, description="reimage + reboot + validation per node; assumption, state its source"
    )
    provision_s: float = Field(600.0, ge=0, **_T, description="time to provision a surge/green node; assumption")
    eviction_retry_s: float = Field(
        5.0,
        ge=1.0,
        **_T,
        description="retry interval after a 429 (kubectl drain: 5 s); at least 1 s, so a refused drain cannot "
        "flood the event queue",
    )
    force_after_s: float | None = Field(
        3600.0, gt=0, **_T, description="force-drain after this long (GKE: 1 h); null: never"
    )
    batch_soak_s: float = Field(0.0, ge=0, **_T, description="blue/green: soak between drain batches")
    order: Literal["name", "least_work_at_risk"] = "name"
    ready_after_s: float = Field(
        60.0, ge=0, **_T, description="a started pod turns Ready after this long (readiness probe)"
    )
    pdbs: dict[str, PdbSpec] = Field(default_factory=dict, description="owner -> PodDisruptionBudget")
    respect_pdbs: bool = Field(True, description="false: drain with kubectl drain --disable-eviction (plain DELETE)")
    stack: dict[str, str] = Field(
        default_factory=dict, description="the pool's current layers (driver, cuda, framework, ...): models/nodestack"
    )
    source: str = Field("", description="where node_upgrade_s / provision_s come from")

    @field_validator("stack", mode="before")
    @classmethod
    def _stack(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        from gpuinfra.catalog.compat import version_tuple

        for k, x in v.items():
            if k not in _STACK_LAYERS:
                raise PydanticCustomError(
                    "stack_layer",
                    "unknown layer '{k}'; expected one of {known} (the hardware is the pool's GPU model)",
                    {"k": str(k)[:40], "known": ", ".join(_STACK_LAYERS)},
                )
            if not isinstance(x, str):
                raise PydanticCustomError(
                    "stack_version",
                    "{k}: {x} is not a string; write the version in quotes, e.g. {k}: '12.1' "
                    "(YAML reads 12.10 as the number 12.1)",
                    {"k": k, "x": repr(x)[:40]},
                )
            if k in ("driver", "cuda", "framework"):
                try:
                    version_tuple(x, where=k)
                except UserError as e:
                    raise PydanticCustomError("stack_version", "{k}: {what}", {"k": k, "what": e.what}) from None
        return v

    @model_validator(mode="after")
    def _parallelism(self) -> UpgradeSpec:
        if self.strategy == "surge" and self.max_surge + self.max_unavailable == 0:
            raise PydanticCustomError(
                "upgrade_parallelism",
                "max_surge and max_unavailable are both 0: no node can ever be upgraded; set max_surge >= 1 "
                "(GKE's default) or max_unavailable >= 1",
            )
        return self


class UpgradeController(Subsystem):
    """The ``upgrade`` subsystem. Event kinds: ``upg_step``, ``upg_drain`` (ref: node),
    ``upg_done`` (ref: node), ``upg_provisioned`` (ref: node). Summary: duration, nodes
    upgraded, evictions (allowed, refused with 429, forced), jobs killed, GPU-hours lost (since the
    last durable checkpoint where the execution subsystem checkpoints the pod, since its start
    otherwise: ``lost_gpu_hours``; the since-start figure for every pod: ``lost_gpu_hours_since_start``),
    service replica-hours unavailable, unprovisioned GPU-hours (not billed), provisioning GPU-hours
    by model (surge/green nodes billed while they boot and are validated: unavailable, billed)."""

    name = "upgrade"

    def __init__(self, view: View, spec: UpgradeSpec) -> None:
        super().__init__(view)
        self.spec = spec
        self.e: PodRuntime = view.runtime
        c = view.cluster
        names = [p.name for p in c.pools]
        self.pool_nodes = [n for n in range(c.n_nodes) if c.pools[c.node_pool[n]].name == spec.pool]
        self.surge_nodes = (
            [n for n in range(c.n_nodes) if c.pools[c.node_pool[n]].name == spec.surge_pool]
            if spec.surge_pool in names
            else []
        )
        self.pdbs = {
            k: PodDisruptionBudget(k, v.minAvailable, v.maxUnavailable, v.unhealthyPodEvictionPolicy)
            for k, v in spec.pdbs.items()
        }
        owners = view.runtime.pods.owners
        self.owner_pods: dict[str, list[int]] = {}
        for i, o in enumerate(owners):
            if o in self.pdbs:
                self.owner_pods.setdefault(o, []).append(i)
        self.owner_idx = {k: np.asarray(v, dtype=np.int64) for k, v in self.owner_pods.items()}
        self.queue: list[int] = []
        self.draining: dict[int, float] = {}
        """node -> drain start time."""
        self.reimaging: set[int] = set()
        self.surge_up = 0
        self.ledger = ProvisionLedger(c, view.runtime, self.name)
        """Unprovisioned (not billed) and provisioning (billed, unavailable) GPU-seconds per node."""
        self.deleted: set[int] = set()
        self.to_delete = 0
        self.t_start: float | None = None
        self.t_end: float | None = None
        self.next_batch_at = 0.0
        self.stats = {
            "evicted": 0,
            "refused_429": 0,
            "forced": 0,
            "jobs_killed": 0,
            "service_evictions": 0,
            "pdb_overridden": 0,
        }
        self.lost_gpu_s = 0.0
        self.lost_since_start_gpu_s = 0.0
        self.evicted_at: dict[int, float] = {}
        self.service_unready_s = 0.0
        self.done_nodes: list[dict[str, Any]] = []
        self.step_pending = False

    # -- helpers ---------------------------------------------------------------------------------
    def _work_at_risk(self, n: int, t: float) -> float:
        e = self.e
        return sum(a.gpu_milli_total * (t - float(e.start_s[a.pod])) for a in e.cluster.node_allocs[n].values())

    def _healthy(self, owner: str, t: float) -> tuple[int, int]:
        """(expected, healthy) for an owner's budget: pods arrived and not finished; Ready ones."""
        e, idx = self.e, self.owner_idx.get(owner)
        if idx is None or not len(idx):
            return 0, 0
        st = e.state[idx]
        run = st == RUNNING
        ready = run & (t - e.start_s[idx] >= self.spec.ready_after_s)
        return int(run.sum() + (st == PENDING).sum()), int(ready.sum())

    def _slots(self) -> int:
        s = self.spec
        if s.strategy == "in_place":
            return max(s.max_unavailable, 1)
        if s.strategy == "surge":
            return s.max_unavailable + self.surge_up
        return max(s.max_unavailable, 1) if self.surge_up >= len(self.pool_nodes) else 0

    # -- events ----------------------------------------------------------------------------------
    def first_events(self, t0: float) -> list[Event]:
        for n in self.surge_nodes:
            self.ledger.unprovision(n, t0)
        self.e.touch(t0)
        return [Event(max(t0, self.spec.start_s), PRIO_RELEASE, "upg_step", -1, 0)]

    def handlers(self) -> dict:
        return {
            "upg_step": self.on_step,
            "upg_drain": self.on_drain,
            "upg_done": self.on_done,
            "upg_provisioned": self.on_provisioned,
        }

    def on_step(self, ev: Event) -> list[Event]:
        t, s = ev.t_s, self.spec
        out: list[Event] = []
        self.step_pending = False
        if self.t_start is None:
            self.t_start = t
            self.queue = list(self.pool_nodes)
            want = {"in_place": 0, "surge": s.max_surge, "blue_green": len(self.pool_nodes)}[s.strategy]
            surge = self.surge_nodes[:want]
            self.to_delete = len(surge)
            for n in surge:
                self.ledger.request(n, t)  # billed while it boots and is validated (module docstring)
                out.append(Event(t + s.provision_s, PRIO_RELEASE, "upg_provisioned", n))
        if s.order == "least_work_at_risk":
            self.queue.sort(key=lambda n: (self._work_at_risk(n, t), n))
        if t < self.next_batch_at:
            return out + [Event(self.next_batch_at, PRIO_RELEASE, "upg_step", -1)]
        started = 0
        c = self.view.cluster
        while self.queue and len(self.draining) + len(self.reimaging) < self._slots():
            # a node another subsystem has down (fault repair, spot reclaim) waits for its return
            up = [n for n in self.queue if c.node_up[n] and c.dev_available[n, : c.gpu_count[n]].all()]
            if not up:
                out.append(Event(t + 60.0, PRIO_RELEASE, "upg_step", -1))
                break
            n = up[0]
            self.queue.remove(n)
            self.view.cluster.set_node_up(n, False, self.name)  # cordon
            self.e.mark_dirty(n)
            self.draining[n] = t
            out.append(Event(t, PRIO_RELEASE, "upg_drain", n))
            started += 1
        if started and s.strategy == "blue_green" and s.batch_soak_s > 0:
            self.next_batch_at = t + s.batch_soak_s
        self.e.touch(t)
        return out

    def on_drain(self, ev: Event) -> list[Event]:
        e, t, n, s = self.e, ev.t_s, ev.ref, self.spec
        if n not in self.draining:
            return []
        force = not s.respect_pdbs or (s.force_after_s is not None and t - self.draining[n] >= s.force_after_s)
        evict = []
        refused = False
        for a in sorted(e.cluster.node_allocs[n].values(), key=lambda a: a.pod):
            if a.pod < 0:
                continue
            owner = e.pods.owners[a.pod]
            pdb = self.pdbs.get(owner)
            if pdb is not None and not force:
                exp, hl = self._healthy(owner, t)
                ready = t - float(e.start_s[a.pod]) >= s.ready_after_s
                if (
                    pdb.eviction(
                        expected=exp,
                        healthy=hl - sum(1 for v in evict if e.pods.owners[v.pod] == owner),
                        pod_ready=ready,
                    )
                    != 200
                ):
                    self.stats["refused_429"] += 1
                    refused = True
                    continue
            evict.append(a)
        for a in evict:
            # lost work: since the last durable checkpoint when execution checkpoints the pod, else since start
            self.lost_gpu_s += a.gpu_milli_total * kill_loss_s(e, a.pod, t) / 1000.0
            self.lost_since_start_gpu_s += a.gpu_milli_total * (t - float(e.start_s[a.pod])) / 1000.0
            if e.pods.owners[a.pod] in self.pdbs:
                self.stats["service_evictions"] += 1
                self.stats["pdb_overridden"] += int(force)
                self.evicted_at[a.pod] = t
            else:
                self.stats["jobs_killed"] += 1
            self.stats["forced" if force else "evicted"] += 1
        if evict:
            if not force:  # through the eviction API: DisruptionTarget (a forced drain's plain DELETE sets none)
                mark_disruption(e, [a.pod for a in evict], "EvictionByEvictionAPI")
            e.evict(evict, None, t, "evicted by node upgrade drain" + (" (forced)" if force else ""))
        out = e.retry_pods([a.pod for a in evict], t) if evict else []
        if refused or e.cluster.node_allocs[n]:
            out.append(Event(t + s.eviction_retry_s, PRIO_RELEASE, "upg_drain", n))
            e.touch(t)
            return out
        # drained: reimage (or delete the last ones when surge/green nodes replace them)
        del self.draining[n]
        remaining_old = len(self.queue) + len(self.draining)
        if s.strategy == "blue_green" or (s.strategy == "surge" and remaining_old < self.to_delete):
            self.ledger.unprovision(n, t)
            self.deleted.add(n)
            self.done_nodes.append({"node": e.cluster.node_names[n], "t_s": t, "action": "deleted"})
            out += self._maybe_finish(t)
            out.append(Event(t, PRIO_RELEASE, "upg_step", -1))
        else:
            c = e.cluster
            for d in range(int(c.gpu_count[n])):
                c.set_device_available(n, d, False, self.name)
            e.mark_dirty(n)
            self.reimaging.add(n)
            out.append(Event(t + s.node_upgrade_s, PRIO_RELEASE, "upg_done", n))
        e.touch(t)
        return out

    def on_done(self, ev: Event) -> list[Event]:
        e, t, n = self.e, ev.t_s, ev.ref
        c = e.cluster
        self.reimaging.discard(n)
        for d in range(int(c.gpu_count[n])):
            c.set_device_available(n, d, True, self.name)
        c.set_node_up(n, True, self.name)
        e.mark_dirty(n)
        self.done_nodes.append({"node": c.node_names[n], "t_s": t, "action": "upgraded"})
        out = e.retry_nodes([n], t) + self._maybe_finish(t)
        out.append(Event(t, PRIO_RELEASE, "upg_step", -1))
        e.touch(t)
        return out

    def on_provisioned(self, ev: Event) -> list[Event]:
        t, n = ev.t_s, ev.ref
        self.ledger.provision(n, t)
        self.surge_up += 1
        out = self.e.retry_nodes([n], t)
        out.append(Event(t, PRIO_RELEASE, "upg_step", -1))
        self.e.touch(t)
        return out

    def _maybe_finish(self, t: float) -> list[Event]:
        if not self.queue and not self.draining and not self.reimaging and self.t_end is None:
            self.t_end = t
        return []

    def on_pod_start(self, i: int, alloc, t: float, gen: int) -> list[Event]:
        t_e = self.evicted_at.pop(i, None)
        if t_e is not None:
            self.service_unready_s += (t - t_e) + self.spec.ready_after_s
        return []

    def summary(self) -> dict[str, Any]:
        now = self.view.clock()
        unprov = self.ledger.unprovisioned_by_model(now)
        unprov_pool = self.ledger.unprovisioned_by_model(now, by="pool")
        # surge/green nodes requested and still booting at the end are billed up to now
        prov = self.ledger.provisioning_by_model(now)
        prov_pool = self.ledger.provisioning_by_model(now, by="pool")
        # pods evicted and never started again stay unready until the end of the run
        unready = self.service_unready_s + sum(now - t0 for t0 in self.evicted_at.values())
        return {
            "strategy": self.spec.strategy,
            "pool": self.spec.pool,
            "nodes": len(self.pool_nodes),
            "started_s": self.t_start,
            "finished_s": self.t_end,
            "duration_s": (self.t_end - self.t_start) if self.t_end is not None and self.t_start is not None else None,
            "nodes_done": len(self.done_nodes),
            **self.stats,
            "lost_gpu_hours": self.lost_gpu_s / 3600.0,
            "lost_gpu_hours_since_start": self.lost_since_start_gpu_s / 3600.0,
            "service_replica_hours_unready": unready / 3600.0,
            "unprovisioned_gpu_hours": sum(unprov.values()),
            "unprovisioned_gpu_hours_by_model": unprov,
            "unprovisioned_gpu_hours_by_pool": unprov_pool,
            "provisioning_gpu_hours_by_model": prov,
            "provisioning_gpu_hours_by_pool": prov_pool,
            "log": self.done_nodes,
        }


@register("upgrade")
def _build_upgrade(cfg: RunConfig, make_view) -> UpgradeController | None:
    """Active when the run's options carry an :class:`UpgradeSpec` (scenario ``upgrade:``)."""
    spec = cfg.options.get("upgrade")
    if spec is None:
        return None
    ctl = UpgradeController(make_view("upgrade"), spec)
    _validate(ctl, cfg.horizon_s)
    return ctl


def check_upgrade(
    spec: UpgradeSpec,
    pools: dict[str, int],
    owners: dict[str, int],
    horizon_s: float | None,
    locate: Callable[[str], str | None] = lambda field: None,
) -> None:
    """Refuse an ``upgrade:`` block that cannot run on this cluster and trace.

    ``pools``: pool name -> node count; ``owners``: owner -> pods in the trace; ``locate``: a field
    path (``upgrade.pdbs.serving``) -> ``FILE:LINE`` or None. Refused, every problem at once (a
    :class:`~gpuinfra.errors.UserErrors`, each ``FILE:LINE: field: what``): an unknown pool or
    surge pool, too few surge/green nodes, ``start_s`` at or after ``horizon_s`` (no node would
    ever be upgraded), a budget whose owner has no pods (Kubernetes would select nothing: a typo
    would silently leave the service unprotected), a budget no drain can satisfy.
    """
    from gpuinfra.errors import UserErrors

    probs: list[UserError] = []

    def add(field: str, what: str, expected: str | None = None, fix: str | None = None) -> None:
        probs.append(UserError(f"{field}: {what}", where=locate(field), expected=expected, fix=fix))

    known = ", ".join(p for p in pools) or "none"
    if spec.pool not in pools:
        add("upgrade.pool", f"'{spec.pool}' is not a pool of the cluster", f"one of {known}")
    if spec.surge_pool is not None and spec.surge_pool not in pools:
        add("upgrade.surge_pool", f"'{spec.surge_pool}' is not a pool of the cluster", f"one of {known}")
    n = pools.get(spec.pool, 0)
    need = {"in_place": 0, "surge": spec.max_surge, "blue_green": n}[spec.strategy]
    have = pools.get(spec.surge_pool or "", 0)
    if need and have < need and spec.pool in pools and (spec.surge_pool is None or spec.surge_pool in pools):
        add(
            "upgrade.surge_pool",
            f"strategy {spec.strategy} needs {need} surge/green nodes; surge_pool '{spec.surge_pool}' has {have}",
            f"a pool of the cluster with at least {need} nodes of the same shape",
            "name such a pool in surge_pool, or lower max_surge / use strategy in_place",
        )
    if horizon_s is not None and spec.start_s >= horizon_s:
        add(
            "upgrade.start_s",
            f"the upgrade starts at {spec.start_s:g} s, at or after the run's horizon_s ({horizon_s:g} s"
            + (f", {locate('horizon_s')}" if locate("horizon_s") else "")
            + "): no node would ever be upgraded",
            "upgrade.start_s < horizon_s",
            "start the upgrade earlier or raise horizon_s",
        )
    exist = ", ".join(o for o in sorted(owners)) or "none"
    for owner, b in spec.pdbs.items():
        field = f"upgrade.pdbs.{owner}"
        if owner not in owners:
            add(
                field,
                f"no pod of the trace has owner '{owner}': the budget would select nothing",
                f"an owner of the trace: {exist}",
                "name an existing owner, or remove the budget",
            )
            continue
        if spec.respect_pdbs:
            try:
                PodDisruptionBudget(
                    owner, b.minAvailable, b.maxUnavailable, b.unhealthyPodEvictionPolicy
                ).check_drainable(owners[owner])
            except UserError as e:
                key = "minAvailable" if b.minAvailable is not None else "maxUnavailable"
                add(f"{field}.{key}", e.what, e.expected, e.fix)
    if probs:
        raise UserErrors(probs, where=locate("upgrade") or "upgrade")


def _validate(ctl: UpgradeController, horizon_s: float | None) -> None:
    """:func:`check_upgrade` on the run's cluster and pods (field paths, no file: a run built in code)."""
    c = ctl.view.cluster
    pools: dict[str, int] = {}
    for n in range(c.n_nodes):
        name = c.pools[c.node_pool[n]].name
        pools[name] = pools.get(name, 0) + 1
    owners: dict[str, int] = {}
    for o in ctl.view.runtime.pods.owners:
        owners[o] = owners.get(o, 0) + 1
    check_upgrade(ctl.spec, pools, owners, horizon_s)
