"""Spot reclaims in a replay: notice, cordon, reclaim, replacement.

The ``spot`` subsystem reclaims nodes of the pools listed as spot. Reclaims are a Poisson
process per pool at ``reclaim_rate_per_node_day`` x (nodes in service) (exponential gaps from
the run's ``spot`` stream; the node drawn uniformly among the pool's nodes in service), so the
expected count is rate x nodes x days, which the tests check; ``notices`` adds interruption
notices at given times on given nodes (a recorded interruption history, or a hand-computed
case). Each reclaim, as the clouds do it (facts: cost-lifecycle-security.md section 1.2):

1. ``spot_notice``: the interruption notice (AWS: 2 minutes; GCP: 30 s guest shutdown window);
   the node is cordoned (takes no new pods).
2. ``spot_reclaim`` (``notice_s`` later): every pod on the node is killed and queues again; the
   node's GPUs are unavailable (not billed: a reclaimed VM is not charged). The kill is a
   *disruption*: the pods carry Kubernetes' ``DisruptionTarget`` condition
   (sim/execution.mark_disruption), so a Job whose ``podFailurePolicy`` ignores it does not count
   the reclaim toward its ``backoffLimit``.
3. ``spot_replace`` (``replace_s`` later, or never when ``replace_s`` is null): a replacement
   node of the same shape joins the pool. With ``replace_unavailable_prob`` p > 0, each reclaim
   draws once (Bernoulli p, the run's ``spot.replacement`` stream, apart from the reclaim stream so
   that these draws shift no reclaim time) whether spot capacity is unavailable; a reclaim that
   draws it gets its replacement ``replace_unavailable_s`` later instead. p = 0 is the replay with
   every replacement on time, p = 1 the replay with every one late (``replace_s`` =
   ``replace_unavailable_s``), both exactly.

Work lost per killed pod follows the one rule of sim/execution.kill_loss_s, the same as an
upgrade drain's: its GPU time since its last durable checkpoint when the run's ``execution``
block checkpoints it, nothing for a Ready service replica, else all of it since its start (a pod
without checkpoints restarts from zero, which is what the replay does). Checkpoints belong to the
workload (``execution.kinds[].checkpoint_interval_s``), not to the spot block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gpuinfra.errors import UserError
from gpuinfra.sim.execution import kill_loss_s, mark_disruption
from gpuinfra.sim.kernel import PRIO_RELEASE, Event
from gpuinfra.sim.provisioning import ProvisionLedger
from gpuinfra.sim.subsystem import RunConfig, Subsystem, View, register

if TYPE_CHECKING:
    from gpuinfra.sim.subsystem import PodRuntime

DAY_S = 86400.0
DISRUPTION_REASON = "TerminationByKubelet"
"""The DisruptionTarget reason a reclaimed pod carries: GKE handles a spot preemption with the
kubelet's graceful node shutdown (reason TerminationByKubelet); on AWS the Node Termination Handler
drains through the eviction API (EvictionByEvictionAPI). Either is a DisruptionTarget condition
(kubernetes.io/docs/concepts/workloads/pods/disruptions, "Pod disruption conditions")."""

_MOVED = ("checkpoint_interval_s", "checkpoint_s", "checkpoint_on_notice")


class SpotNotice(BaseModel):
    """One interruption notice at a given time on a given node (scenario ``spot.notices[]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    node: str = Field(min_length=1, description="node name (a node of a spot pool)")
    t_s: float = Field(
        ge=0,
        le=1e10,
        description="when the notice arrives (simulated seconds, before horizon_s); the reclaim is notice_s later",
    )


class SpotSpec(BaseModel):
    """Scenario block ``spot:``: which pools are spot and how they are reclaimed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pools: list[str] = Field(min_length=1, description="pools bought as spot/preemptible")
    reclaim_rate_per_node_day: float = Field(
        ge=0, le=1000, description="reclaims per node-day (AWS Spot Advisor buckets: <5 % .. >20 % a month)"
    )
    notice_s: float = Field(120.0, ge=0, le=3600, description="interruption notice (AWS 120 s, GCP 30 s)")
    replace_s: float | None = Field(900.0, ge=0, description="until a replacement node joins; null: none")
    notices: list[SpotNotice] = Field(
        default_factory=list, description="notices at given times on given nodes, besides the Poisson ones"
    )
    source: str = Field(description="where the reclaim rate comes from; required")
    replace_unavailable_prob: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of reclaims after which no spot capacity comes back for replace_unavailable_s "
        "(a Bernoulli draw per reclaim); 0: every replacement after replace_s",
    )
    replace_unavailable_s: float | None = Field(
        None, ge=0, le=1e7, description="until a replacement joins when capacity is unavailable (seconds)"
    )
    replace_unavailable_source: str | None = Field(
        None, min_length=1, description="where replace_unavailable_prob and _s come from (or 'assumption: ...')"
    )

    @model_validator(mode="before")
    @classmethod
    def _checkpoints_are_the_workloads(cls, data: Any) -> Any:
        if isinstance(data, dict):
            moved = [k for k in _MOVED if k in data]
            if moved:
                raise ValueError(
                    f"spot.{moved[0]} is no longer read: checkpoints are the workload's, and a reclaim's lost "
                    "work follows them (sim/execution.kill_loss_s). Remove it and set "
                    "execution.kinds[].checkpoint_interval_s (and checkpoint_stall_s) for the owners that checkpoint"
                )
        return data

    @model_validator(mode="after")
    def _unavailable_needs_its_delay_and_source(self) -> SpotSpec:
        if self.replace_unavailable_prob > 0:
            if self.replace_unavailable_s is None:
                raise ValueError(
                    "spot.replace_unavailable_prob > 0 needs spot.replace_unavailable_s: how long a replacement "
                    "takes when spot capacity is unavailable (seconds)"
                )
            if self.replace_unavailable_source is None:
                raise ValueError(
                    "spot.replace_unavailable_prob > 0 needs spot.replace_unavailable_source: where the share and "
                    "the delay come from (write 'assumption: ...' when no published figure exists)"
                )
        return self


class SpotReclaimer(Subsystem):
    """The ``spot`` subsystem. Event kinds: ``spot_notice`` (ref: pool index, a Poisson draw),
    ``spot_notice_at`` (ref: node, a listed notice), ``spot_reclaim`` and ``spot_replace`` (ref:
    node). Summary: reclaims, pods killed, lost GPU-hours (``lost_gpu_hours``: the rule of
    sim/execution.kill_loss_s; ``lost_gpu_hours_since_start``: every killed pod's whole run),
    reclaimed (unbilled) GPU-hours."""

    name = "spot"

    def __init__(self, view: View, spec: SpotSpec, until_s: float) -> None:
        super().__init__(view)
        self.spec = spec
        self.e: PodRuntime = view.runtime
        self.until_s = until_s
        c = view.cluster
        pools = [p.name for p in c.pools]
        for p in spec.pools:
            if p not in pools:
                raise UserError(
                    f"'{p}' is not a pool of the cluster",
                    where="spot.pools",
                    expected="one of " + ", ".join(pools),
                )
        self.pool_nodes = [[n for n in range(c.n_nodes) if c.pools[c.node_pool[n]].name == p] for p in spec.pools]
        spot_nodes = {c.node_names[n]: n for nodes in self.pool_nodes for n in nodes}
        self.listed: list[tuple[float, int]] = []
        for k, nt in enumerate(spec.notices):
            if nt.node not in spot_nodes:
                raise UserError(
                    f"node '{nt.node}' is not a node of a spot pool",
                    where=f"spot.notices[{k}].node",
                    expected="a node of " + ", ".join(spec.pools),
                    fix="name a node of a spot pool (node names: POOL-0000, POOL-0001, ...)",
                )
            self.listed.append((nt.t_s, spot_nodes[nt.node]))
        self.out: set[int] = set()
        """Nodes noticed or reclaimed and not yet replaced."""
        self.ledger = ProvisionLedger(c, view.runtime, self.name)
        """Reclaimed nodes: unprovisioned (not billed) from the reclaim to the replacement."""
        self.intervals: list[tuple[int, float, float]] = []
        """(node, reclaimed at, replaced at) of every reclaim whose replacement joined."""
        self.reclaims = 0
        self.pods_killed = 0
        self.notices_skipped = 0
        self.lost_since_start_gpu_s = 0.0
        self.lost_gpu_s = 0.0
        self.replacements_late = 0
        # the replacement-availability draws come from a stream of their own, so they shift no reclaim draw
        self.avail_rng = view.stream("spot.replacement") if view.stream is not None else None
        if spec.replace_unavailable_prob > 0 and self.avail_rng is None:
            raise RuntimeError("spot.replace_unavailable_prob needs the run's named streams (View.stream)")

    def _next(self, k: int, t: float) -> Event | None:
        up = sum(1 for n in self.pool_nodes[k] if n not in self.out)
        rate = self.spec.reclaim_rate_per_node_day * max(up, 1) / DAY_S
        if rate <= 0:
            return None
        t_next = t + float(self.view.rng.exponential(1.0 / rate))
        return Event(t_next, PRIO_RELEASE, "spot_notice", k) if t_next <= self.until_s else None

    def first_events(self, t0: float) -> list[Event]:
        out = [ev for k in range(len(self.pool_nodes)) if (ev := self._next(k, t0)) is not None]
        return out + [Event(max(t, t0), PRIO_RELEASE, "spot_notice_at", n) for t, n in self.listed]

    def handlers(self) -> dict:
        return {
            "spot_notice": self.on_notice,
            "spot_notice_at": self.on_notice_at,
            "spot_reclaim": self.on_reclaim,
            "spot_replace": self.on_replace,
        }

    def _in_service(self, n: int) -> bool:
        # only nodes in service: one another subsystem has down (upgrade, fault) is not running a VM to reclaim
        c = self.view.cluster
        return n not in self.out and bool(c.node_up[n]) and bool(c.dev_available[n, : c.gpu_count[n]].all())

    def _notice(self, n: int, t: float) -> Event:
        self.out.add(n)
        self.view.cluster.set_node_up(n, False, self.name)  # cordon on notice
        self.e.mark_dirty(n)
        self.e.touch(t)
        return Event(t + self.spec.notice_s, PRIO_RELEASE, "spot_reclaim", n)

    def on_notice(self, ev: Event) -> list[Event]:
        t, k = ev.t_s, ev.ref
        out = [nx] if (nx := self._next(k, t)) is not None else []
        cand = [n for n in self.pool_nodes[k] if self._in_service(n)]
        if not cand:
            return out
        n = cand[int(self.view.rng.integers(len(cand)))]
        out.append(self._notice(n, t))
        return out

    def on_notice_at(self, ev: Event) -> list[Event]:
        """A listed notice: skipped (and counted) when its node is not in service at that time."""
        if not self._in_service(ev.ref):
            self.notices_skipped += 1
            return []
        return [self._notice(ev.ref, ev.t_s)]

    def on_reclaim(self, ev: Event) -> list[Event]:
        e, t, n, s = self.e, ev.t_s, ev.ref, self.spec
        c = e.cluster
        victims = [a for a in c.node_allocs[n].values() if a.pod >= 0]
        for a in victims:
            g = a.gpu_milli_total / 1000.0
            self.lost_since_start_gpu_s += g * (t - float(e.start_s[a.pod]))
            self.lost_gpu_s += g * kill_loss_s(e, a.pod, t)  # the one rule, before the eviction
        self.reclaims += 1
        self.pods_killed += len(victims)
        self.view.log.append({"t_s": t, "node": c.node_names[n], "pods_killed": len(victims)})
        if victims:
            mark_disruption(e, [a.pod for a in victims], DISRUPTION_REASON)
            e.evict(victims, None, t, "spot instance reclaimed")
        self.ledger.unprovision(n, t, hold_node=False)  # cordoned at the notice; its devices leave service
        out = e.retry_pods([a.pod for a in victims], t)
        if s.replace_s is not None:
            out.append(Event(t + self._replace_after(), PRIO_RELEASE, "spot_replace", n))
        e.touch(t)
        return out

    def _replace_after(self) -> float:
        """Seconds until this reclaim's replacement joins: ``replace_s``, or ``replace_unavailable_s`` when
        this reclaim's Bernoulli(``replace_unavailable_prob``) draw says spot capacity is unavailable (one
        uniform draw per reclaim when p > 0, none when p = 0)."""
        s = self.spec
        if s.replace_unavailable_prob > 0 and float(self.avail_rng.random()) < s.replace_unavailable_prob:
            self.replacements_late += 1
            return float(s.replace_unavailable_s)
        return float(s.replace_s)

    def on_replace(self, ev: Event) -> list[Event]:
        e, t, n = self.e, ev.t_s, ev.ref
        self.intervals.append((n, self.ledger.unprov_since[n], t))
        self.ledger.provision(n, t)
        self.out.discard(n)
        out = e.retry_nodes([n], t)
        e.touch(t)
        return out

    def unprovisioned_by_pool(self, until_s: float) -> dict[str, float]:
        """GPU-hours each spot pool's reclaimed nodes were out of service (not billed) before ``until_s``,
        from each reclaim to its replacement (or to ``until_s`` while none has joined)."""
        c = self.view.cluster
        out = {p: 0.0 for p in self.spec.pools}
        spans = [*self.intervals, *((n, t, until_s) for n, t in self.ledger.unprov_since.items())]
        for n, a, b in spans:
            pool = c.pools[c.node_pool[n]].name
            out[pool] += max(0.0, min(b, until_s) - a) * int(c.gpu_count[n]) / 3600.0
        return out

    def summary(self) -> dict[str, Any]:
        now = self.view.clock()
        rec = self.ledger.unprovisioned_by_model(now)
        return {
            "reclaims": self.reclaims,
            "pods_killed": self.pods_killed,
            "lost_gpu_hours": self.lost_gpu_s / 3600.0,
            "lost_gpu_hours_since_start": self.lost_since_start_gpu_s / 3600.0,
            "notices_skipped": self.notices_skipped,
            "replacements_late": self.replacements_late,
            "unprovisioned_gpu_hours": sum(rec.values()),
            "unprovisioned_gpu_hours_by_model": rec,
            "unprovisioned_gpu_hours_by_pool": self.unprovisioned_by_pool(now),
            "log": self.view.log,
        }


@register("spot")
def _build_spot(cfg: RunConfig, make_view) -> SpotReclaimer | None:
    """Active when the run's options carry a :class:`SpotSpec` (scenario ``spot:``)."""
    spec = cfg.options.get("spot")
    return SpotReclaimer(make_view("spot"), spec, cfg.until_s) if spec is not None else None
