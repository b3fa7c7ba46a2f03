"""Two subsystems of the telemetry run (``sim/telemetry.py``): ``incidents`` injects the ground
truth, ``telemetry`` samples who holds which GPU, as dcgm-exporter's pod mapping sees it.

Both read one :class:`TelemetryPlan` given in the run's options (``{"incidents": plan,
"telemetry": plan}``); ``incidents`` writes the truth into it, ``telemetry`` the samples.

Incidents (their effects on the series are applied by ``sim/telemetry.py``):

| kind | when | what happens in the cluster | truth target, window |
|---|---|---|---|
| xid48 | planned time, on a running training job | nothing (the job's ranks stall) | GPU, 30 min or the job's end |
| xid79 | planned time | the GPU falls off the bus: its job is killed and requeued; the GPU is out |
|  |  | of service until the node reboots 40 min later | GPU, 40 min |
| nccl_hang | planned time | nothing (the collective hangs) | job, 25 min or the job's end |
| thermal | planned time | nothing (the GPU throttles) | GPU, 45 min or the job's end |
| mem_full | planned time | nothing (a leak fills the framebuffer) | job, until the job ends |
| idle_alloc | a notebook pod starts | it holds its GPU and does nothing | job, its whole run |

A planned incident strikes a running job (a training job for a hung collective) that has been
running for at least 15 minutes and has at least 20 more to go (chosen from the ``incidents``
stream); when none qualifies it looks again 5 minutes later. Window lengths are scenario choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpuinfra.sim.kernel import PRIO_RELEASE, PRIO_SAMPLE, Event
from gpuinfra.sim.subsystem import RunConfig, Subsystem, View, register

WINDOW_S = {"xid48": 1800.0, "xid79": 2400.0, "nccl_hang": 1500.0, "thermal": 2700.0}
MIN_RUN_S = 900.0
MIN_LEFT_S = 1200.0
RETRY_S = 300.0
TARGET_PROFILES = ("training", "starved", "decode")
"""Who an incident may strike: any working job (a hung collective needs a training job)."""


@dataclass
class TruthIncident:
    kind: str
    start_s: float
    end_s: float
    node: int | None = None
    gpu: int | None = None
    pod: str | None = None
    namespace: str | None = None


@dataclass
class TelemetryPlan:
    """What the two subsystems share: the plan in, the truth and the samples out."""

    horizon_s: float
    interval_s: float
    gpus_per_node: int
    n_nodes: int
    profiles: list[str]
    """Workload profile per pod index of the run (training, starved, decode, idle)."""
    incidents: list[tuple[str, float]]
    """(kind, planned time s) of each planned incident."""
    truth: list[TruthIncident] = field(default_factory=list)
    truth_pod: list[int] = field(default_factory=list)
    """Pod index of each truth incident."""
    owner: np.ndarray | None = None
    """[GPUs, samples] pod index holding the GPU at each sample (-1: none); GPU = node x gpn + index."""
    present: np.ndarray | None = None
    """[GPUs, samples] the GPU is in service (an Xid 79 GPU is not)."""
    started: np.ndarray | None = None
    """[GPUs, samples] start time of the holding pod's current run (NaN: none)."""

    @property
    def n_samples(self) -> int:
        return int(np.ceil(self.horizon_s / self.interval_s - 1e-9))

    def __post_init__(self) -> None:
        g, t = self.n_nodes * self.gpus_per_node, self.n_samples
        self.owner = np.full((g, t), -1, dtype=np.int64)
        self.present = np.ones((g, t), dtype=bool)
        self.started = np.full((g, t), np.nan)


class Incidents(Subsystem):
    """The ``incidents`` subsystem (event kinds ``incident``, ``incident_repair``)."""

    name = "incidents"

    def __init__(self, view: View, plan: TelemetryPlan) -> None:
        super().__init__(view)
        self.plan = plan
        self.targeted: set[int] = set()

    def handlers(self):
        return {"incident": self._strike, "incident_repair": self._repair}

    def first_events(self, t0: float) -> list[Event]:
        return [Event(max(t, t0), PRIO_RELEASE, "incident", k) for k, (_, t) in enumerate(self.plan.incidents)]

    def _record(self, kind: str, t: float, end: float, i: int, node: int | None, dev: int | None) -> None:
        rt = self.view.runtime
        self.plan.truth.append(TruthIncident(kind, t, end, node, dev, rt.pods.names[i], rt.pods.owners[i]))
        self.plan.truth_pod.append(i)
        self.view.log.append({"t_s": t, "kind": kind, "pod": rt.pods.names[i], "node": node, "gpu": dev})

    def _strike(self, ev: Event) -> list[Event]:
        kind, t = self.plan.incidents[ev.ref][0], ev.t_s
        rt = self.view.runtime
        cand = [
            i
            for i in sorted(rt.allocs)
            if self.plan.profiles[i] in (TARGET_PROFILES if kind != "nccl_hang" else ("training", "starved"))
            and t - float(rt.start_s[i]) >= MIN_RUN_S
            and float(rt.start_s[i]) + float(rt.pods.duration_s[i]) - t >= MIN_LEFT_S
        ]
        fresh = [i for i in cand if i not in self.targeted] or cand
        if not fresh or self.plan.horizon_s - t < MIN_LEFT_S:
            nxt = t + RETRY_S
            return [Event(nxt, PRIO_RELEASE, "incident", ev.ref)] if nxt < self.plan.horizon_s - MIN_LEFT_S else []
        rng = self.view.rng
        i = fresh[int(rng.integers(len(fresh)))]
        self.targeted.add(i)
        alloc = rt.allocs[i]
        dev = int(alloc.devices[int(rng.integers(len(alloc.devices)))])
        node = alloc.node
        if kind in ("xid48", "thermal"):
            self._record(kind, t, t + WINDOW_S[kind], i, node, dev)
        elif kind == "nccl_hang":
            self._record(kind, t, t + WINDOW_S[kind], i, None, None)
        elif kind == "mem_full":
            self._record(kind, t, self.plan.horizon_s, i, None, None)
        elif kind == "xid79":
            # the GPU falls off the bus: the job dies and is requeued; the GPU is out until the node reboots
            end = t + WINDOW_S[kind]
            self._record(kind, t, min(end, self.plan.horizon_s), i, node, dev)
            rt.evict([alloc], None, t, "Xid 79: GPU fell off the bus")
            self.view.cluster.set_device_available(node, dev, False, self.name)
            rt.mark_dirty(node)
            out = rt.retry_pods([i], t)
            rt.touch(t)
            return out + [Event(end, PRIO_RELEASE, "incident_repair", node * self.plan.gpus_per_node + dev)]
        else:
            raise ValueError(f"unknown incident kind {kind!r}")
        return []

    def _repair(self, ev: Event) -> list[Event]:
        node, dev = divmod(ev.ref, self.plan.gpus_per_node)
        self.view.cluster.set_device_available(node, dev, True, self.name)
        rt = self.view.runtime
        rt.mark_dirty(node)
        out = rt.retry_nodes([node], ev.t_s)
        rt.touch(ev.t_s)
        return out

    def on_pod_start(self, i, alloc, t, gen):
        if self.plan.profiles[i] == "idle" and i not in self.targeted:
            self.targeted.add(i)
            self._record("idle_alloc", t, self.plan.horizon_s, i, None, None)
        return []

    def on_pod_end(self, i, alloc, t, outcome):
        # a job-level incident ends when its job does (the GPU of an Xid 79 stays out regardless)
        for k, p in enumerate(self.plan.truth_pod):
            inc = self.plan.truth[k]
            if p == i and inc.kind != "xid79" and inc.start_s <= t < inc.end_s:
                inc.end_s = t
        return []

    def summary(self):
        return {"injected": len(self.plan.truth), "log": self.view.log}


class TelemetrySampler(Subsystem):
    """The ``telemetry`` subsystem: every ``interval_s`` (event ``tel_sample``), which pod holds
    each GPU and whether the GPU is in service, read from the cluster state."""

    name = "telemetry"

    def __init__(self, view: View, plan: TelemetryPlan) -> None:
        super().__init__(view)
        self.plan = plan
        self.k = 0

    def handlers(self):
        return {"tel_sample": self._sample}

    def first_events(self, t0: float) -> list[Event]:
        return [Event(t0, PRIO_SAMPLE, "tel_sample")]

    def _sample(self, ev: Event) -> list[Event]:
        p, c, k = self.plan, self.view.cluster, self.k
        gpn = p.gpus_per_node
        start = self.view.runtime.start_s
        for n in range(c.n_nodes):
            for a in c.node_allocs[n].values():
                for d in a.devices:
                    p.owner[n * gpn + d, k] = a.pod
                    p.started[n * gpn + d, k] = start[a.pod]
        p.present[:, k] = c.dev_available[:, :gpn].reshape(-1)
        self.k += 1
        if self.k >= p.n_samples:
            return []
        return [Event(self.k * p.interval_s, PRIO_SAMPLE, "tel_sample")]

    def summary(self):
        return {"samples": self.k}


@register("incidents")
def _incidents(cfg: RunConfig, make_view) -> Subsystem | None:
    plan = cfg.options.get("incidents")
    return Incidents(make_view("incidents"), plan) if plan is not None else None


@register("telemetry")
def _telemetry(cfg: RunConfig, make_view) -> Subsystem | None:
    plan = cfg.options.get("telemetry")
    return TelemetrySampler(make_view("telemetry"), plan) if plan is not None else None
