"""The Kubernetes cluster-autoscaler (CA) in a replay: scale node groups up for unschedulable pods,
down when nodes stay unneeded.

Modelled on kubernetes/autoscaler's ``cluster-autoscaler`` (its FAQ, "How does scale-up work?",
"How does scale-down work?", "What are Expanders?", "What are the parameters to CA?"; the
``least-waste`` expander as in ``expander/waste/waste.go``). Every ``scan_interval_s`` (CA's
``--scan-interval``, default 10 s) one *scan* runs, as CA's main loop does:

1. **Scale-up.** The pending pods (the scheduler failed them: CA's "unschedulable" pods), minus
   those below ``expendable_pods_priority_cutoff`` (CA's ``--expendable-pods-priority-cutoff``,
   default -10: such pods never trigger a scale-up), are first placed on the nodes already requested
   and still booting (CA's "upcoming" nodes), then, per node group with room below its max, on
   *template nodes*: copies of the group's pool in a scratch cluster, through the run's own
   scheduler filters and reserve plugin (CA runs the scheduler's predicates on a template
   NodeInfo). Pods go to the first template node they fit on, in queue order (CA's binpacking
   estimator, ``--estimator=binpacking``); the template nodes used are the group's scale-up size,
   capped at ``max_nodes`` and ``max_nodes_total``. The *expander* chooses one group per scan
   (``--expander``, a list as since CA 1.23: each narrows the options, the last tie is broken at
   random): ``random`` (CA's default), ``most-pods``, ``least-waste`` (least idle CPU + memory
   fraction of the new nodes, exactly CA's score, which does not look at GPUs) and ``priority``
   (highest ``priority`` of the group). Random draws come from the run's ``autoscaler`` stream.
   The requested nodes are billed at once and join ``provision_s`` later; the pods they were
   requested for then get a scheduling cycle (the engine's ``retry_nodes``).
2. **Scale-down**, in a scan without a scale-up (CA checks unneeded nodes "if no scale-up is
   needed"). A provisioned node is *unneeded* while its utilization -- requested GPUs / GPUs for a
   GPU node (``--scale-down-gpu-utilization-threshold``: "only cares about gpu resource for
   accelerator node"), max(CPU, memory) requested / allocatable otherwise
   (``--scale-down-utilization-threshold``), both default 0.5 -- is below the threshold *and* all
   its pods can move. **Simplification:** every pod blocks its node's removal, as pods annotated
   ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`` do (common for GPU training Jobs,
   whose restart loses work); so in practice only *empty* nodes are removed, and pods are never
   moved by a scale-down. A node unneeded for ``scale_down_unneeded_time_s``
   (``--scale-down-unneeded-time``, 10 min) is deleted -- never below ``min_nodes``, none within
   ``scale_down_delay_after_add_s`` of the last scale-up (``--scale-down-delay-after-add``, 10 min;
   unneeded time still accrues then, as CA's "calculate unneeded only" does), at most
   ``max_empty_bulk_delete`` per scan (``--max-empty-bulk-delete``, 10).

Node slots: a node group is a pool of the cluster whose ``count`` is the number of node slots;
slots beyond ``max_nodes`` and slots not provisioned are *unprovisioned* (down, not billed:
sim/provisioning.py), so the GPU-time balance of the run holds unchanged and cost attribution
bills only provisioned time. ``provision_s`` (request to schedulable) is an assumption, default
300 s: CA's FAQ ("How fast is HPA when combined with CA?") reports 3-4 minutes on GCE from the CA
request until pods can be scheduled on the new node; a GPU node also installs its driver and is
validated by the GPU Operator, which can take longer -- set it from your own fleet.
``max_node_provision_time_s`` (``--max-node-provision-time``, 15 min) is kept for the check that
``provision_s`` does not exceed it: provisioning here is deterministic, so a slower one would time
out on every scale-up.

Not modelled: scale-down of non-empty nodes (pod moves), ``--balance-similar-node-groups``,
unready nodes, the ``price`` and ``grpc`` expanders, cloud quota errors and back-off, CA's own
latency. Kueue-held pods look pending to this autoscaler and can trigger scale-ups (real Kueue
keeps a Job suspended, so CA does not see its pods).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gpuinfra.errors import UserError
from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.kernel import PRIO_ARRIVAL, Event
from gpuinfra.sim.provisioning import ProvisionLedger
from gpuinfra.sim.subsystem import PENDING, RunConfig, Subsystem, View, register

if TYPE_CHECKING:
    from gpuinfra.sim.scheduler import Framework
    from gpuinfra.sim.subsystem import PodRuntime

PRIO_SCAN = PRIO_ARRIVAL + 1
"""A scan sees every release and arrival of its instant (it pops after them), and runs before samples."""
MAX_S = 1e10
"""Upper bound of every time in the block (the scenario's MAX_TIME_S)."""
_T = {"allow_inf_nan": False, "le": MAX_S}
EXPANDERS = ("random", "most-pods", "least-waste", "priority")
"""CA's expanders modelled here (CA also has ``price`` and ``grpc``)."""


class NodeGroupSpec(BaseModel):
    """One autoscaled node group: a pool of the cluster (its ``count`` = node slots) and its size limits,
    as CA's ``--nodes=MIN:MAX:NAME``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pool: str = Field(min_length=1, description="the cluster pool this node group scales")
    min_nodes: int = Field(0, strict=True, ge=0, le=1_000_000, description="never scale below (CA --nodes MIN)")
    max_nodes: int | None = Field(
        None,
        strict=True,
        ge=0,
        le=1_000_000,
        description="never scale above (CA --nodes MAX); default: the pool's count",
    )
    initial_nodes: int | None = Field(
        None, strict=True, ge=0, le=1_000_000, description="nodes provisioned at the start; default: min_nodes"
    )
    priority: int = Field(0, strict=True, ge=-1_000_000, le=1_000_000, description="priority expander: higher wins")

    @model_validator(mode="after")
    def _order(self) -> NodeGroupSpec:
        if self.max_nodes is not None and self.min_nodes > self.max_nodes:
            raise PydanticCustomError(
                "ca_min_max",
                "min_nodes {lo} is above max_nodes {hi}; expected min_nodes <= max_nodes",
                {"lo": self.min_nodes, "hi": self.max_nodes},
            )
        if self.initial_nodes is not None:
            hi = self.max_nodes if self.max_nodes is not None else self.initial_nodes
            if not self.min_nodes <= self.initial_nodes <= hi:
                raise PydanticCustomError(
                    "ca_initial",
                    "initial_nodes {n} is outside [min_nodes, max_nodes] = [{lo}, {hi}]",
                    {"n": self.initial_nodes, "lo": self.min_nodes, "hi": hi},
                )
        return self


class AutoscalerSpec(BaseModel):
    """Scenario block ``autoscaler:``: CA's flags (defaults are CA's, sourced in the module docstring)
    and the node groups it scales."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node_groups: list[NodeGroupSpec] = Field(min_length=1, description="the pools CA scales")
    scan_interval_s: float = Field(10.0, ge=1.0, **_T, description="--scan-interval (CA default 10 s)")
    expander: list[Literal["random", "most-pods", "least-waste", "priority"]] = Field(
        default_factory=lambda: ["random"], min_length=1, description="--expander, a chain (CA default random)"
    )
    provision_s: float = Field(
        300.0, ge=0, **_T, description="request to schedulable node; assumption (CA FAQ: 3-4 min on GCE)"
    )
    max_node_provision_time_s: float = Field(900.0, gt=0, **_T, description="--max-node-provision-time (15 min)")
    scale_down_enabled: bool = Field(True, description="--scale-down-enabled (true)")
    scale_down_unneeded_time_s: float = Field(600.0, ge=0, **_T, description="--scale-down-unneeded-time (10 min)")
    scale_down_delay_after_add_s: float = Field(600.0, ge=0, **_T, description="--scale-down-delay-after-add (10 min)")
    scale_down_utilization_threshold: float = Field(
        0.5, ge=0, le=1, description="--scale-down-utilization-threshold, CPU/memory nodes (0.5)"
    )
    scale_down_gpu_utilization_threshold: float = Field(
        0.5, ge=0, le=1, description="--scale-down-gpu-utilization-threshold, GPU nodes (0.5)"
    )
    max_empty_bulk_delete: int = Field(10, strict=True, ge=1, le=1_000_000, description="--max-empty-bulk-delete (10)")
    max_nodes_total: int = Field(
        0, strict=True, ge=0, le=1_000_000, description="--max-nodes-total over the groups (0: none)"
    )
    expendable_pods_priority_cutoff: int = Field(
        -10,
        strict=True,
        description="--expendable-pods-priority-cutoff (-10): lower-priority pods never trigger scale-up",
    )
    source: str = Field("", description="where provision_s (and any non-default flag) comes from")

    @field_validator("expander", mode="before")
    @classmethod
    def _chain(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [x.strip() for x in v.split(",")]  # CA's flag form: --expander=priority,least-waste
        if isinstance(v, list) and len(set(map(str, v))) != len(v):
            raise PydanticCustomError("ca_expander_twice", "an expander appears twice; CA refuses that")
        return v

    @model_validator(mode="after")
    def _provision(self) -> AutoscalerSpec:
        if self.provision_s > self.max_node_provision_time_s:
            raise PydanticCustomError(
                "ca_provision_timeout",
                "provision_s {p} s exceeds max_node_provision_time_s {m} s: every scale-up would time out "
                "(provisioning is deterministic here); lower provision_s or raise max_node_provision_time_s",
                {"p": f"{self.provision_s:g}", "m": f"{self.max_node_provision_time_s:g}"},
            )
        pools = [g.pool for g in self.node_groups]
        dup = next((p for p in pools if pools.count(p) > 1), None)
        if dup is not None:
            raise PydanticCustomError("ca_pool_twice", "pool '{p}' is listed in two node groups", {"p": dup})
        return self


def check_autoscaler(
    spec: AutoscalerSpec,
    pools: dict[str, int],
    taken: dict[str, str],
    locate=lambda field: None,
) -> None:
    """Refuse an ``autoscaler:`` block that cannot run on this cluster.

    ``pools``: pool name -> node count (slots); ``taken``: pool -> the other block that already
    creates/deletes its nodes (``upgrade.pool``, ``spot.pools[0]``...); ``locate``: field path ->
    ``FILE:LINE`` or None. Raises :class:`~gpuinfra.errors.UserErrors` listing each problem: a pool
    the cluster lacks, ``max_nodes`` above the pool's count, a pool another subsystem also manages.
    """
    from gpuinfra.errors import UserErrors

    probs: list[UserError] = []
    known = ", ".join(pools) or "none"
    for k, g in enumerate(spec.node_groups):
        f = f"autoscaler.node_groups[{k}]"
        if g.pool not in pools:
            probs.append(
                UserError(
                    f"{f}.pool: '{g.pool}' is not a pool of the cluster",
                    where=locate(f"{f}.pool"),
                    expected=f"one of {known}",
                )
            )
            continue
        n = pools[g.pool]
        for name, v in (("max_nodes", g.max_nodes), ("min_nodes", g.min_nodes), ("initial_nodes", g.initial_nodes)):
            if v is not None and v > n:
                probs.append(
                    UserError(
                        f"{f}.{name}: {v} is above the pool's count {n} (its node slots)",
                        where=locate(f"{f}.{name}"),
                        expected=f"at most {n}",
                        fix=f"raise cluster pool '{g.pool}' count to {v} (slots not provisioned are not billed)",
                    )
                )
        if g.pool in taken:
            probs.append(
                UserError(
                    f"{f}.pool: pool '{g.pool}' is also managed by {taken[g.pool]}; two subsystems would create and "
                    "delete the same nodes",
                    where=locate(f"{f}.pool"),
                    expected="a pool no upgrade or spot block names",
                )
            )
    if probs:
        raise UserErrors(probs, where=locate("autoscaler") or "autoscaler")


@dataclass
class _Group:
    k: int
    spec: NodeGroupSpec
    pool: int
    slots: list[int]
    """Node indices of the slots CA may provision (the first ``max_nodes`` of the pool)."""
    max_nodes: int
    fw: Framework
    """The run's filters and reserve over a scratch cluster of this group's template nodes."""
    limit: int = -1
    peak: int = 0
    scale_ups: int = 0
    nodes_added: int = 0
    nodes_removed: int = 0


@dataclass
class _Option:
    g: _Group
    nodes: int
    pods: list[int]


class ClusterAutoscaler(Subsystem):
    """The ``autoscaler`` subsystem. Event kinds: ``ca_scan`` (ref: scan index k, at t0 + k x
    ``scan_interval_s``), ``ca_node_ready`` (ref: node). Summary: scale-ups, nodes added and removed,
    peak nodes, node-hours and GPU-hours billed, waits of the pods that triggered scale-ups,
    unprovisioned/provisioning GPU-hours by model (for cost attribution), per group."""

    name = "autoscaler"

    def __init__(self, view: View, spec: AutoscalerSpec, profile: Any, horizon_s: float | None, until_s: float):
        super().__init__(view)
        from gpuinfra.sim.framework import ScoreSpec
        from gpuinfra.sim.scheduler import Framework

        self.spec = spec
        self.e: PodRuntime = view.runtime
        self.horizon_s, self.until_s = horizon_s, until_s
        c = view.cluster
        self.ledger = ProvisionLedger(c, view.runtime, self.name)
        # the estimator: the run's filters, first fit over template nodes (CA's binpacking), plain devices
        est = replace(
            profile,
            scores=(ScoreSpec("FirstFit"),),
            tie_break="first",
            preemption=False,
            reserve="MigDevices" if profile.reserve == "MigDevices" else "FirstFitDevices",
        )
        self.groups: list[_Group] = []
        for k, g in enumerate(spec.node_groups):
            p = next(i for i, pl in enumerate(c.pools) if pl.name == g.pool)
            nodes = [n for n in range(c.n_nodes) if c.node_pool[n] == p]
            mx = len(nodes) if g.max_nodes is None else g.max_nodes
            scratch = ClusterState.from_pools([replace(c.pools[p], count=max(mx, 1), node_names=None)])
            fw = Framework(est, scratch, view.runtime.pods, view.rng)  # FirstFit, first tie: draws nothing
            fw.sig_of = view.runtime.fw.sig_of  # the engine's signature ids: cached answers per signature
            self.groups.append(_Group(k, g, p, nodes[:mx], mx, fw))
        self.peak_total = 0
        self.state: dict[int, str] = {}
        """node -> 'off' (unprovisioned), 'booting' (requested), 'up'."""
        self.billed_since: dict[int, float] = {}
        self.billed_node_s: dict[int, float] = {}
        self.unneeded_since: dict[int, int] = {}
        """node -> the scan (index) that first saw it unneeded."""
        self.last_scale_up = -(10**18)
        """The scan (index) of the last scale-up. Scans run at t0 + k x scan_interval_s; durations between
        scans are counted in scans (exact), not by subtracting accumulated float times."""
        self._t0 = 0.0
        self.triggered: dict[int, float] = {}
        """pod -> when a scale-up was first requested for it (cleared at its start)."""
        self.waits: list[tuple[float, float]] = []
        """(scan delay, provisioning wait) of each triggered pod at its start: trigger - submit, start - trigger."""
        self.no_fit: dict[tuple[int, object], bool] = {}
        self._skip_key: tuple | None = None
        self._epoch = 0
        """Bumped on every node state change (request, join, removal): part of the scans' no-change keys."""
        self._down_key: tuple | None = None
        self._down_wake = 10**18
        """After a scale-down evaluation: no removal is possible before this time while nothing changes."""

    # -- node states -----------------------------------------------------------------------------
    def _active(self, g: _Group) -> int:
        return sum(1 for n in g.slots if self.state[n] != "off")

    def _booting(self, g: _Group) -> list[int]:
        return [n for n in g.slots if self.state[n] == "booting"]

    def _peak(self, g: _Group) -> None:
        g.peak = max(g.peak, self._active(g))
        self.peak_total = max(self.peak_total, sum(self._active(h) for h in self.groups))

    def first_events(self, t0: float) -> list[Event]:
        for g in self.groups:
            init = g.spec.initial_nodes if g.spec.initial_nodes is not None else g.spec.min_nodes
            for j, n in enumerate(c_pool_nodes(self.view.cluster, g.pool)):
                if j < init:
                    self.state[n] = "up"
                    self.billed_since[n] = t0
                else:
                    self.ledger.unprovision(n, t0)  # slots beyond max stay unprovisioned for the whole run
                    self.state[n] = "off"
        for g in self.groups:
            self._peak(g)
        self.e.touch(t0)
        self._t0 = t0
        return [Event(t0, PRIO_SCAN, "ca_scan", 0)]

    def handlers(self) -> dict:
        return {"ca_scan": self.on_scan, "ca_node_ready": self.on_ready}

    # -- scale-up --------------------------------------------------------------------------------
    def _set_limit(self, g: _Group, limit: int) -> None:
        """Scratch nodes [0, limit) are up, the rest down (the scratch cluster has no allocations here)."""
        if limit == g.limit:
            return
        sc = g.fw.cluster
        for n in range(sc.n_nodes):
            if bool(sc.node_up[n]) != (n < limit):
                sc.set_node_up(n, n < limit, self.name)
        g.limit = limit

    def _place(self, g: _Group, pods: list[int], limit: int) -> tuple[list[int], set[int], list[int]]:
        """First-fit ``pods`` onto ``limit`` empty template nodes of ``g``: (placed pods, nodes used, left over)."""
        self._set_limit(g, limit)
        fw, sig_of = g.fw, self.e.fw.sig_of
        placed: list[int] = []
        used: set[int] = set()
        left: list[int] = []
        allocs = []
        full: set[object] = set()
        """Signatures refused in this pass: the template nodes only fill up, so they stay refused."""
        for i in pods:
            sig = sig_of[i] if sig_of is not None else self.e.pods.signature(i)
            if sig in full or self.no_fit.get((g.k, sig)):
                left.append(i)
                continue
            res = fw.schedule(i)
            if res.alloc is None:
                if not allocs:
                    self.no_fit[(g.k, sig)] = True  # refused by empty template nodes: never fits this group
                full.add(sig)
                left.append(i)
                continue
            allocs.append(res.alloc)
            placed.append(i)
            used.add(res.alloc.node)
        for a in allocs:
            fw.unreserve(a)
        return placed, used, left

    def _options(self, pods: list[int]) -> list[_Option]:
        # pods the booting nodes will take do not trigger more nodes (CA's upcoming nodes)
        for g in self.groups:
            up = len(self._booting(g))
            if up and pods:
                _, _, pods = self._place(g, pods, up)
        if not pods:
            return []
        total = sum(self._active(g) for g in self.groups)
        room_total = (self.spec.max_nodes_total - total) if self.spec.max_nodes_total else None
        out = []
        for g in self.groups:
            room = g.max_nodes - self._active(g)
            if room_total is not None:
                room = min(room, room_total)
            if room <= 0:
                continue
            placed, used, _ = self._place(g, pods, room)
            if used:
                out.append(_Option(g, len(used), placed))
        return out

    def _expand(self, opts: list[_Option]) -> _Option:
        c = self.view.cluster
        for name in self.spec.expander:
            if len(opts) == 1:
                break
            if name == "most-pods":
                best = max(len(o.pods) for o in opts)
                opts = [o for o in opts if len(o.pods) == best]
            elif name == "priority":
                best = max(o.g.spec.priority for o in opts)
                opts = [o for o in opts if o.g.spec.priority == best]
            elif name == "least-waste":
                pods = self.e.pods
                scores = []
                for o in opts:
                    pl = c.pools[o.g.pool]
                    cpu = pl.cpu_milli * o.nodes
                    mem = pl.memory_mib * o.nodes
                    req_cpu = float(pods.cpu_milli[o.pods].sum()) if o.pods else 0.0
                    req_mem = float(pods.memory_mib[o.pods].sum()) if o.pods else 0.0
                    scores.append((cpu - req_cpu) / cpu + (mem - req_mem) / mem)  # CA's wastedScore
                best = min(scores)
                opts = [o for o, s in zip(opts, scores) if s == best]
        if len(opts) == 1:
            return opts[0]
        return opts[int(self.view.rng.integers(len(opts)))]  # CA: the last tie goes to a random choice

    def _scale_up(self, t: float, k: int) -> list[Event]:
        e = self.e
        if not e.n_pending:
            return []
        pending = np.flatnonzero(e.state == PENDING)
        pri = e.pods.priority[pending]
        pending = pending[pri >= self.spec.expendable_pods_priority_cutoff]
        key = (self.view.cluster.version, self._epoch, pending.tobytes())
        if key == self._skip_key or not len(pending):
            return []
        pods = sorted(pending.tolist(), key=e.fw.sort_key)
        opts = self._options(pods)
        if not opts:
            self._skip_key = key  # nothing changed since: the same answer
            return []
        o = self._expand(opts)
        g = o.g
        free = [n for n in g.slots if self.state[n] == "off"][: o.nodes]
        out = []
        self._epoch += 1
        for n in free:
            self.ledger.request(n, t)  # billed from the request (sim/provisioning.py)
            self.state[n] = "booting"
            self.billed_since[n] = t
            out.append(Event(t + self.spec.provision_s, PRIO_SCAN, "ca_node_ready", n))
        for i in o.pods:
            self.triggered.setdefault(i, t)
        g.scale_ups += 1
        g.nodes_added += len(free)
        self._peak(g)
        self.last_scale_up = k
        self.view.log.append(
            {"t_s": t, "action": "scale_up", "pool": self.view.cluster.pools[g.pool].name, "nodes": len(free)}
        )
        return out

    # -- scale-down ------------------------------------------------------------------------------
    def _unneeded(self, n: int) -> bool:
        c = self.view.cluster
        if c.node_allocs[n]:
            return False  # every pod blocks removal (safe-to-evict: false; module docstring)
        if not (c.node_up[n] and c.dev_available[n, : c.gpu_count[n]].all()):
            return False  # another subsystem has it out of service
        if c.gpu_count[n] > 0:
            util = 1.0 - float(c.node_gpu_free[n]) / (int(c.gpu_count[n]) * MILLI_PER_GPU)
            return util < self.spec.scale_down_gpu_utilization_threshold
        util = max(1.0 - c.cpu_free[n] / max(c.cpu_cap[n], 1), 1.0 - c.mem_free[n] / max(c.mem_cap[n], 1))
        return util < self.spec.scale_down_utilization_threshold

    def _scans(self, seconds: float) -> int:
        """The fewest scans that span at least ``seconds``."""
        step = self.spec.scan_interval_s
        m = int(np.ceil(seconds / step))
        while m > 0 and (m - 1) * step >= seconds:
            m -= 1
        while m * step < seconds:
            m += 1
        return m

    def _scale_down(self, t: float, k: int) -> bool:
        """Track unneeded nodes and delete those unneeded long enough (scan ``k`` at ``t``); True if a
        node was deleted.

        The unneeded set depends only on the cluster and the node states, so while neither changed
        (``_down_key``) and no removal can be due yet (``_down_wake``, a scan index) the scan skips the
        walk: the same decisions, fewer node visits on long idle stretches."""
        s = self.spec
        key = (self.view.cluster.version, self._epoch, self.last_scale_up)
        if key == self._down_key and k < self._down_wake:
            return False
        cooldown_end = self.last_scale_up + self._scans(s.scale_down_delay_after_add_s)
        unneeded_scans = self._scans(s.scale_down_unneeded_time_s)
        budget = s.max_empty_bulk_delete
        wake = 10**18
        removed = False
        for g in self.groups:
            active = self._active(g)
            for n in g.slots:
                if self.state[n] != "up" or not self._unneeded(n):
                    self.unneeded_since.pop(n, None)
                    continue
                since = self.unneeded_since.setdefault(n, k)
                due = max(since + unneeded_scans, cooldown_end)
                if active <= g.spec.min_nodes:
                    continue  # not removable while the group is at its minimum (changes only with the key)
                if budget <= 0 or k < due:
                    wake = min(wake, due)
                    continue
                self.ledger.unprovision(n, t)
                self.state[n] = "off"
                self.billed_node_s[n] = self.billed_node_s.get(n, 0.0) + (t - self.billed_since.pop(n))
                self.unneeded_since.pop(n)
                g.nodes_removed += 1
                active -= 1
                budget -= 1
                removed = True
                self.view.log.append(
                    {
                        "t_s": t,
                        "action": "scale_down",
                        "node": self.view.cluster.node_names[n],
                        "unneeded_s": (k - since) * s.scan_interval_s,
                    }
                )
        if removed:
            self._epoch += 1
        self._down_key = (self.view.cluster.version, self._epoch, self.last_scale_up)
        self._down_wake = wake
        return removed

    # -- events ----------------------------------------------------------------------------------
    def on_scan(self, ev: Event) -> list[Event]:
        t, k = ev.t_s, ev.ref
        out = self._scale_up(t, k)
        if not out and self.spec.scale_down_enabled and self._scale_down(t, k):
            self.e.touch(t)  # a request changes no device (billing only); a removal takes devices out
        nxt = self._t0 + (k + 1) * self.spec.scan_interval_s  # no accumulated rounding over long runs
        if self._more(t, nxt) or out:
            out.append(Event(nxt, PRIO_SCAN, "ca_scan", k + 1))
        return out

    def _more(self, t: float, nxt: float) -> bool:
        """Whether another scan can matter. With a horizon the kernel stops there. Without one the run
        ends when nothing is left: past the last expected pod end, with no pod running or node booting."""
        if self.horizon_s is not None:
            return nxt <= self.horizon_s
        if t < self.until_s or self.e.allocs:
            return True
        return any(s == "booting" for s in self.state.values())

    def on_ready(self, ev: Event) -> list[Event]:
        t, n = ev.t_s, ev.ref
        self.ledger.provision(n, t)
        self.state[n] = "up"
        self._epoch += 1
        out = self.e.retry_nodes([n], t)
        self.e.touch(t)
        return out

    def on_pod_start(self, i: int, alloc, t: float, gen: int) -> list[Event]:
        t_req = self.triggered.pop(i, None)
        if t_req is not None:
            self.waits.append((t_req - float(self.e.pods.submit_s[i]), t - t_req))
        return []

    def summary(self) -> dict[str, Any]:
        now = self.view.clock()
        c = self.view.cluster
        unprov = self.ledger.unprovisioned_by_model(now)
        groups = {}
        for g in self.groups:
            node_s = sum(self.billed_node_s.get(n, 0.0) for n in g.slots) + sum(
                now - self.billed_since[n] for n in g.slots if n in self.billed_since
            )
            gpus = int(c.pools[g.pool].gpus_per_node)
            groups[c.pools[g.pool].name] = {
                "min_nodes": g.spec.min_nodes,
                "max_nodes": g.max_nodes,
                "scale_ups": g.scale_ups,
                "nodes_added": g.nodes_added,
                "scale_downs": g.nodes_removed,
                "peak_nodes": g.peak,
                "nodes_at_end": self._active(g),
                "node_hours_provisioned": node_s / 3600.0,
                "gpu_hours_billed": node_s * gpus / 3600.0,
            }
        w = np.array(self.waits, dtype=float).reshape(-1, 2)
        return {
            "expander": list(self.spec.expander),
            "scale_ups": sum(x["scale_ups"] for x in groups.values()),
            "nodes_added": sum(x["nodes_added"] for x in groups.values()),
            "scale_downs": sum(x["scale_downs"] for x in groups.values()),
            "peak_nodes": self.peak_total,
            "node_hours_provisioned": sum(x["node_hours_provisioned"] for x in groups.values()),
            "gpu_hours_billed": sum(x["gpu_hours_billed"] for x in groups.values()),
            "pods_waited_for_scale_up": len(w),
            "mean_scale_up_wait_s": float(w.sum(axis=1).mean()) if len(w) else None,
            "mean_scan_delay_s": float(w[:, 0].mean()) if len(w) else None,
            "mean_provision_wait_s": float(w[:, 1].mean()) if len(w) else None,
            "still_waiting_for_scale_up": len(self.triggered),
            "unprovisioned_gpu_hours": sum(unprov.values()),
            "unprovisioned_gpu_hours_by_model": unprov,
            "unprovisioned_gpu_hours_by_pool": self.ledger.unprovisioned_by_model(now, by="pool"),
            "provisioning_gpu_hours_by_model": self.ledger.provisioning_by_model(now),
            "provisioning_gpu_hours_by_pool": self.ledger.provisioning_by_model(now, by="pool"),
            "groups": groups,
            "log": self.view.log,
        }


def c_pool_nodes(c: ClusterState, pool: int) -> list[int]:
    """The node indices of pool ``pool`` (index into ``c.pools``), in order."""
    return np.flatnonzero(c.node_pool == pool).tolist()


@register("autoscaler")
def _build_autoscaler(cfg: RunConfig, make_view) -> ClusterAutoscaler | None:
    """Active when the run's options carry an :class:`AutoscalerSpec` (scenario ``autoscaler:``); checks it
    against the cluster first (field paths, no file: the scenario loader checks with FILE:LINE)."""
    spec = cfg.options.get("autoscaler")
    if spec is None:
        return None
    view = make_view("autoscaler")
    c = view.cluster
    pools: dict[str, int] = {}
    for n in range(c.n_nodes):
        pools[c.pools[c.node_pool[n]].name] = pools.get(c.pools[c.node_pool[n]].name, 0) + 1
    check_autoscaler(spec, pools, taken_pools(cfg.options.get("upgrade"), cfg.options.get("spot")))
    return ClusterAutoscaler(view, spec, cfg.profile, cfg.horizon_s, cfg.until_s)


def taken_pools(upgrade: Any, spot: Any) -> dict[str, str]:
    """Pools whose nodes the upgrade or spot block creates or deletes -> the field that names them."""
    out: dict[str, str] = {}
    if upgrade is not None:
        out[upgrade.pool] = "upgrade.pool"
        if upgrade.surge_pool:
            out[upgrade.surge_pool] = "upgrade.surge_pool"
    if spot is not None:
        for k, p in enumerate(spot.pools):
            out[p] = f"spot.pools[{k}]"
    return out
