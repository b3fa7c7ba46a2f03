"""Fault injection in a replay: GPU and node faults at configured rates, with their effects.

Each fault class has a rate (per GPU-day, or per node-day for node-scoped classes), a
decision-tree action (models/faults.py vocabulary) and a repair time. Fault times are a Poisson
process per class over the whole cluster (exponential gaps drawn from the run's ``faults``
generator; the struck GPU or node is drawn uniformly), so the expected count is rate x size x
time and the tests check that it is reproduced.

Effects, as on a real node:
- every pod using the struck GPU dies (a multi-GPU pod dies when any of its GPUs does; pods
  sharing the GPU die together); its work since it started is lost (GPU work is not
  preemptible) and it goes back to the queue to be retried elsewhere;
- ``restart_app``: only the pods die; ``reset_gpu``: the GPU is out of service for the repair
  time; ``reboot_node``: every pod on the node dies and the node is down for the repair time;
  ``drain_and_replace``: the GPU is out until replaced;
- each GPU's health follows the sticky state machine of models/health.py, with history.
- with ``detect_s`` > 0 a struck GPU stays schedulable until the fault is detected; pods placed
  on it crash after ``crash_s`` and are retried, so a naive retry loop burns GPU time on the
  poisoned device (counted as ``burned_gpu_hours``) until it is cordoned.
- ``signal``: detection delay drawn per fault from the signal's latency (models/reliability.py);
- ``scope: rack``: a correlated fault takes every node of the struck node's rack (``rack_nodes``
  consecutive nodes) down at once, as a failed switch or PDU does;
- ``lemon_fraction``: a share of nodes fails ``lemon_factor`` times as often (drawn per run).
Remediation policies beyond "retry elsewhere after detection" are compared at job level in
models/reliability.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gpuinfra.models.health import GpuHealth
from gpuinfra.sim.kernel import PRIO_RELEASE, Event
from gpuinfra.sim.subsystem import RunConfig, Subsystem, View, register

if TYPE_CHECKING:
    from gpuinfra.sim.subsystem import PodRuntime

DAY_S = 86400.0


@dataclass(frozen=True)
class FaultClass:
    name: str
    rate_per_day: float
    """Per GPU-day (scope gpu) or per node-day (scope node)."""
    action: str
    repair_s: float
    scope: str = "gpu"
    detect_s: float = 0.0
    """GPU faults only: until detected (health check, DCGM watch, Xid scrape), the poisoned GPU
    still looks free and takes pods, which crash; then it is cordoned and repaired."""
    crash_s: float = 60.0
    """How long a pod placed on a poisoned GPU runs before it fails (CUDA init or its first
    kernels): an assumption, not a measurement."""
    signal: str | None = None
    """The signal that detects it (models/reliability.signals()): its delay is drawn per fault."""
    rack_nodes: int = 4
    """Scope rack: the struck node's rack is ``rack_nodes`` consecutive nodes, all hit at once."""
    lemon_fraction: float = 0.0
    lemon_factor: float = 10.0


class FaultInjector(Subsystem):
    """The ``faults`` subsystem: strikes, detection, crashes on poisoned GPUs, repairs.

    Event kinds: ``fault`` (ref: class index), ``detect`` (ref: packed node/device/class),
    ``crash`` (ref: pod), ``repair`` (ref: packed node/device). Its random stream is the run's
    ``faults`` stream. Summary: strikes by class, pods killed, crashes on poisoned GPUs, burned
    GPU-hours, health transitions and the fault log.
    """

    name = "faults"

    def __init__(self, view: View, classes: list[FaultClass], until_s: float) -> None:
        super().__init__(view)
        self.e: PodRuntime = view.runtime
        self.classes = classes
        self.until_s = until_s
        self.rng = view.rng
        c = view.cluster
        self.gpu_slots = [(n, d) for n in range(c.n_nodes) for d in range(int(c.gpu_count[n]))]
        self.health = {(n, d): GpuHealth(f"{c.node_names[n]}/{d}") for n, d in self.gpu_slots}
        self.counts = {fc.name: 0 for fc in classes}
        self.pods_killed = 0
        self.poisoned: dict[tuple[int, int], int] = {}
        """Undetected poisoned GPUs -> fault class index."""
        self.crashes = 0
        self.burned_milli_s = 0.0
        self.node_down_until: dict[int, float] = {}
        # lemon nodes: drawn once per run; they fail lemon_factor times as often
        self.node_weight: list[np.ndarray] = []
        for fc in classes:
            w = np.ones(c.n_nodes)
            if fc.lemon_fraction > 0:
                w[self.rng.random(c.n_nodes) < fc.lemon_fraction] = fc.lemon_factor
            self.node_weight.append(w)
        self.lemons = {int(n) for w in self.node_weight for n in np.flatnonzero(w > 1)}

    def _size(self, fc: FaultClass) -> float:
        """Expected struck units per unit rate: GPUs or nodes, lemons counted lemon_factor times."""
        w = self.node_weight[self.classes.index(fc)]
        if fc.scope == "gpu":
            return float(sum(w[n] for n, _ in self.gpu_slots))
        if fc.scope == "rack":
            return float(w.sum()) / fc.rack_nodes  # rate_per_day is per rack-day
        return float(w.sum())

    def _detect_delay(self, fc: FaultClass) -> float:
        if fc.signal:
            from gpuinfra.models.reliability import signals

            return signals()[fc.signal].delay(self.rng)
        return fc.detect_s

    def _pick_node(self, k: int) -> int:
        w = self.node_weight[k]
        if np.all(w == 1.0):
            return int(self.rng.integers(self.e.cluster.n_nodes))
        return int(self.rng.choice(len(w), p=w / w.sum()))

    def first_events(self, t0: float) -> list[Event]:
        return [ev for k in range(len(self.classes)) if (ev := self._next(k, t0)) is not None]

    def _next(self, k: int, t: float) -> Event | None:
        fc = self.classes[k]
        rate_s = fc.rate_per_day * self._size(fc) / DAY_S
        if rate_s <= 0:
            return None
        t_next = t + float(self.rng.exponential(1.0 / rate_s))
        return Event(t_next, PRIO_RELEASE, "fault", k) if t_next <= self.until_s else None

    def on_fault(self, ev: Event) -> list[Event]:
        e, t, k = self.e, ev.t_s, ev.ref
        fc = self.classes[k]
        out: list[Event] = []
        if (nxt := self._next(k, t)) is not None:
            out.append(nxt)
        if fc.scope == "rack":
            first = self._pick_node(k) // fc.rack_nodes * fc.rack_nodes
            for n in range(first, min(first + fc.rack_nodes, e.cluster.n_nodes)):
                out += self._strike_node(fc, k, n, t)
            return out
        if fc.scope == "gpu":
            w = self.node_weight[k]
            if np.all(w == 1.0):
                node, dev = self.gpu_slots[int(self.rng.integers(len(self.gpu_slots)))]
            else:  # a GPU of a lemon node is lemon_factor times as likely
                p = np.array([w[n] for n, _ in self.gpu_slots])
                node, dev = self.gpu_slots[int(self.rng.choice(len(p), p=p / p.sum()))]
            devices = [dev]
        else:
            node = self._pick_node(k)
            devices = list(range(int(e.cluster.gpu_count[node])))
        return out + self._strike(fc, k, node, devices, t)

    def _strike_node(self, fc: FaultClass, k: int, node: int, t: float) -> list[Event]:
        return self._strike(fc, k, node, list(range(int(self.e.cluster.gpu_count[node]))), t, whole=True)

    def _strike(
        self, fc: FaultClass, k: int, node: int, devices: list[int], t: float, whole: bool = False
    ) -> list[Event]:
        e = self.e
        out: list[Event] = []
        if node in self.node_down_until:
            return out  # already down: the fault is absorbed
        c = e.cluster
        if not c.node_up[node] and not c.dev_available[node, : c.gpu_count[node]].any():
            return out  # out of service for another subsystem (reimage, deleted, spot-reclaimed): nothing to strike
        self.counts[fc.name] += 1
        whole_node = whole or fc.action == "reboot_node"
        victims = [
            a
            for a in e.cluster.node_allocs[node].values()
            if a.pod >= 0 and (whole_node or set(a.devices) & set(devices))
        ]
        self.pods_killed += len(victims)
        self.view.log.append(
            {
                "t_s": t,
                "fault": fc.name,
                "node": e.cluster.node_names[node],
                "devices": devices,
                "action": fc.action,
                "pods_killed": len(victims),
            }
        )
        e.evict(victims, None, t, f"killed by fault {fc.name} ({fc.action})")
        killed = [a.pod for a in victims]
        if fc.action == "restart_app":
            out += e.retry_nodes([node], t) + e.retry_pods(killed, t)
            e.touch(t)
            return out
        detect = self._detect_delay(fc)
        if not whole_node and detect > 0:
            # not yet detected: the GPU is poisoned but still looks free to the scheduler
            for d in devices:
                self.poisoned[(node, d)] = k
                self.health[(node, d)].on_fault(fc.action, t)
                out.append(Event(t + detect, PRIO_RELEASE, "detect", (node * 1024 + d) * 64 + k))
            e.mark_dirty(node)
            out += e.retry_pods(killed, t)
            e.touch(t)
            return out
        if whole_node:
            devices = list(range(int(e.cluster.gpu_count[node])))
            self.node_down_until[node] = t + fc.repair_s
            e.cluster.set_node_up(node, False, self.name)
        for d in devices:
            e.cluster.set_device_available(node, d, False, self.name)  # counted: paired with the repair
            self.health[(node, d)].on_fault(fc.action, t)
        e.mark_dirty(node)
        out += e.retry_pods(killed, t)  # retried elsewhere
        e.touch(t)
        out.append(Event(t + fc.repair_s, PRIO_RELEASE, "repair", node * 1024 + (1023 if whole_node else devices[0])))
        return out

    def handlers(self) -> dict:
        return {"fault": self.on_fault, "repair": self.on_repair, "crash": self.on_crash, "detect": self.on_detect}

    def summary(self) -> dict:
        return {
            "by_class": dict(self.counts),
            "pods_killed": self.pods_killed,
            "crashes_on_poisoned_gpus": self.crashes,
            "burned_gpu_hours": self.burned_milli_s / 3.6e6,
            "gpu_transitions": sum(len(h.history) for h in self.health.values()),
            "log": self.view.log,
        }

    def on_pod_start(self, i: int, alloc, t: float, gen: int) -> list[Event]:
        """A pod placed on an undetected poisoned GPU fails ``crash_s`` later (stickiness)."""
        if not self.poisoned:
            return []
        hits = [self.poisoned[(alloc.node, d)] for d in alloc.devices if (alloc.node, d) in self.poisoned]
        if not hits:
            return []
        return [Event(t + self.classes[hits[0]].crash_s, PRIO_RELEASE, "crash", i, gen)]

    def on_crash(self, ev: Event) -> list[Event]:
        e, t, i = self.e, ev.t_s, ev.ref
        if e.state[i] != 1 or ev.gen != e.gen[i]:  # RUNNING, same run
            return []
        a = e.allocs[i]
        self.crashes += 1
        self.burned_milli_s += a.gpu_milli_total * (t - float(e.start_s[i]))
        e.evict([a], None, t, "crashed on a poisoned GPU")
        out = e.retry_pods([i], t)
        e.touch(t)
        return out

    def on_detect(self, ev: Event) -> list[Event]:
        e, t = self.e, ev.t_s
        slot, k = divmod(ev.ref, 64)
        node, d = divmod(slot, 1024)
        fc = self.classes[k]
        self.poisoned.pop((node, d), None)
        victims = [a for a in e.cluster.node_allocs[node].values() if a.pod >= 0 and d in a.devices]
        # pods running on the poisoned GPU at detection were doomed too: their time is burned
        self.burned_milli_s += sum(a.gpu_milli_total * (t - float(e.start_s[a.pod])) for a in victims)
        e.evict(victims, None, t, f"cordoned: fault {fc.name} detected")
        e.cluster.set_device_available(node, d, False, self.name)  # counted: paired with the repair
        e.mark_dirty(node)
        out = e.retry_pods([a.pod for a in victims], t)
        e.touch(t)
        out.append(Event(t + fc.repair_s, PRIO_RELEASE, "repair", node * 1024 + d))
        return out

    def on_repair(self, ev: Event) -> list[Event]:
        e, t = self.e, ev.t_s
        node, slot = divmod(ev.ref, 1024)
        devices = list(range(int(e.cluster.gpu_count[node]))) if slot == 1023 else [slot]
        if slot == 1023:
            self.node_down_until.pop(node, None)
            e.cluster.set_node_up(node, True, self.name)
        for d in devices:
            h = self.health[(node, d)]
            if h.state == "needs_reset":
                h.apply("reboot_done" if slot == 1023 else "reset_done", t)
            elif h.state == "needs_reboot":
                h.apply("reboot_done", t)
            elif h.state == "drained":
                h.apply("replace", t)
            e.cluster.set_device_available(node, d, True, self.name)
        e.mark_dirty(node)
        out = e.retry_nodes([node], t)
        e.touch(t)
        return out


@register("faults")
def _build_faults(cfg: RunConfig, make_view) -> FaultInjector | None:
    """Active when the run's options carry fault classes (scenario ``faults:``)."""
    classes = list(cfg.options.get("faults") or [])
    return FaultInjector(make_view("faults"), classes, cfg.until_s) if classes else None
