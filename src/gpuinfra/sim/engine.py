"""Time-driven replay: arrival -> queue -> filter/score -> reserve/bind -> run -> finish.

The engine owns the run's state (queue, ledger, event log) and the handlers the kernel calls.
Unschedulable pods wait in per-signature heaps (pods that read the same to every filter share
one); when a node releases capacity, only that node changed, so the framework's queueing hint
asks which pending signatures could now fit *that node*, and only those get a full cycle. This
is kube-scheduler's QueueingHint idea made exact, and it is why a replay costs O(events), not
O(events x pending pods).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gpuinfra.models.fragmentation import typical_pods
from gpuinfra.sim import subsystems as _registered  # noqa: F401  (fills the subsystem registry)
from gpuinfra.sim.cluster import Allocation, ClusterState
from gpuinfra.sim.execution import mark_disruption
from gpuinfra.sim.framework import Code, Profile, Status
from gpuinfra.sim.gang import Gangs
from gpuinfra.sim.invariants import Invariants, check_invariants, require
from gpuinfra.sim.kernel import PRIO_ARRIVAL, PRIO_RELEASE, PRIO_SAMPLE, Event, Kernel, Rngs
from gpuinfra.sim.nodestate import FragmentationTracker
from gpuinfra.sim.ordered import OrderedQueue
from gpuinfra.sim.plugins.fgd import pod_classes
from gpuinfra.sim.preemption import select_victims
from gpuinfra.sim.recorder import Recorder
from gpuinfra.sim.scheduler import Framework
from gpuinfra.sim.subsystem import (
    DONE,
    NOT_ARRIVED,
    PENDING,
    REGISTRY,
    RUNNING,
    WITHDRAWN,
    RunConfig,
    Subsystem,
    View,
    route,
)
from gpuinfra.sim.workload import PodTable

__all__ = ["ReplayEngine", "RunResult", "PENDING", "RUNNING", "DONE", "WITHDRAWN", "NOT_ARRIVED", "OUTCOMES"]
PRIO_POD_ARRIVAL = PRIO_ARRIVAL - 0.5
"""Pod arrivals pop after releases and before other arrival-priority events at the same instant."""
assert PRIO_RELEASE < PRIO_POD_ARRIVAL < PRIO_ARRIVAL
PREEMPTION_SWEEP_S = 300.0
"""How often pending high-priority pods look for victims again: kube-scheduler flushes
unschedulable pods back to the active queue after 5 minutes (podMaxInUnschedulablePodsDuration)."""

OUTCOMES = (
    "completed",  # ran its full duration
    "ended_by_owner",  # deleted by its owner while running (delete_s before start + duration)
    "withdrawn",  # deleted by its owner while still pending
    "running_at_horizon",
    "pending_at_horizon",
    "not_arrived",  # submitted after the horizon
    "gang_timeout",  # a gang not placed within the profile's gang_timeout_s
    "failed",  # evicted and not restarted: its restart policy gave up (restart_at_s = inf)
    "backoff_at_horizon",  # waiting out a restart back-off when the run ended
)


class SigQueue:
    """The pending pods of one signature, popped in (queue key, pod) order: a min-queue.

    Pods mostly join in key order (arrivals in submit order, one priority), so entries that
    extend the sorted run go to a deque (O(1) both ways) and only out-of-order ones (evicted pods,
    higher priorities) to a heap; the minimum is the lesser of the two fronts. Entries are unique
    (they end with the pod index), so the pop order is exactly a single heap's.
    """

    __slots__ = ("run", "heap")

    def __init__(self) -> None:
        self.run: deque[tuple] = deque()
        self.heap: list[tuple] = []

    def __len__(self) -> int:
        return len(self.run) + len(self.heap)

    def push(self, entry: tuple) -> None:
        run = self.run
        if not run or run[-1] < entry:
            run.append(entry)
        else:
            heapq.heappush(self.heap, entry)

    def top(self) -> tuple:
        """The least entry (the queue must not be empty)."""
        run, heap = self.run, self.heap
        if heap and (not run or heap[0] < run[0]):
            return heap[0]
        return run[0]

    def pop(self) -> tuple:
        run, heap = self.run, self.heap
        if heap and (not run or heap[0] < run[0]):
            return heapq.heappop(heap)
        return run.popleft()


@dataclass
class RunResult:
    cluster: ClusterState
    pods: PodTable
    recorder: Recorder
    horizon_s: float
    start_s: np.ndarray
    end_s: np.ndarray
    node: np.ndarray
    devices: list[tuple[int, ...]]
    outcome: list[str]
    reason: list[str]
    """Last 'why pending' message for pods that ever waited (empty otherwise)."""
    events: list[dict]
    events_processed: int
    cycles: int
    pending_reasons_at_end: dict[str, int] = field(default_factory=dict)
    lost_runs: list[tuple[int, int, float]] = field(default_factory=list)
    """(pod, node, milli-GPU-seconds) of each run preemption threw away (GPU work is not preemptible)."""
    lost_run_windows: list[tuple[float, float]] = field(default_factory=list)
    """(start, end) seconds of each entry of ``lost_runs``, same order: the thrown-away attempt's own window."""
    lost_run_by: list[int] = field(default_factory=list)
    """The preemptor (pod index) of each entry of ``lost_runs``, same order; -1 where no pod preempted it (a
    fault, a spot reclaim, a drain, a job's failure policy): what separates preemption's waste from failures'."""
    preempted_times: np.ndarray | None = None
    preemptions: int = 0
    first_start_s: np.ndarray | None = None
    """Each pod's first bind (NaN: never bound). ``start_s`` is its last start, which an eviction moves:
    a pod's scheduling wait (kube-scheduler's scheduling latency) is ``first_start_s - submit_s``."""
    requeued_wait_s: np.ndarray | None = None
    """Seconds each pod spent out of a node after an eviction (preemption, fault, spot reclaim, drain):
    from each eviction to the next bind, back-off included; still open at the horizon, counted up to
    the horizon (a lower bound); a pod that failed for good or was deleted stops counting then. 0 for
    pods never evicted."""
    faults: dict | None = None
    """The ``faults`` subsystem's summary (also in ``subsystems``), or None."""
    subsystems: dict[str, dict] = field(default_factory=dict)
    """Each active subsystem's summary, by name."""
    invariants: Invariants | None = None
    """The cluster invariants checked at the end of the run (sim/invariants.py)."""


class ReplayEngine:
    """The replay: arrivals, the scheduling queue, binds and finishes, and the run's subsystems.

    Args:
        cluster: the cluster state (the only place GPUs are held); mutated by the run.
        pods: the workload, one row per pod (``sim/workload.PodTable``).
        profile: the scheduler profile (plugins per extension point, queue mode, preemption).
        seed: the run's seed; every random draw comes from its named streams (``Rngs``).
        sample_interval_s: width of the recorded metric intervals, seconds (> 0).
        horizon_s: stop time in seconds (None: run until no event is left).
        fault_classes: fault classes for the ``faults`` subsystem (None or empty: off).
        subsystem_options: configuration of further registered subsystems, by name.
        progress: called with the fraction of arrivals processed (0..1).

    ``run()`` returns a :class:`RunResult` whose ``invariants`` hold or the run raises
    ``sim.invariants.InvariantError`` (a gpuinfra bug). Raises ``UserError`` (via the
    framework) for unknown plugin names.

    Every event kind of the run is routed through one table: the engine's own (``arrival``,
    ``finish``, ``delete``, ``preempt_sweep``, ``gang_timeout``) plus each active subsystem's
    (``sim/subsystem.py``). Adding a subsystem is one ``@register`` factory; the engine does
    not change.
    """

    def __init__(
        self,
        cluster: ClusterState,
        pods: PodTable,
        profile: Profile,
        seed: int,
        *,
        sample_interval_s: float = 3600.0,
        horizon_s: float | None = None,
        start_s: float | None = None,
        log_events: bool = True,
        track_fragmentation: bool = True,
        fault_classes: list | None = None,
        subsystem_options: dict | None = None,
        progress: Callable[[float], None] | None = None,
        progress_step: float = 0.005,
    ) -> None:
        self.cluster = cluster
        self.pods = pods
        self.rngs = Rngs(seed)
        self.fw = Framework(profile, cluster, pods, self.rngs["scheduler"])
        n = len(pods)
        t0 = float(pods.submit_s.min()) if n else 0.0
        self.t0 = t0 if start_s is None else float(start_s)
        self.horizon_s = horizon_s
        # FGD's fragmentation measure over time, against the run's own typical pods
        frag = FragmentationTracker(cluster, typical_pods(pod_classes(pods))) if n and track_fragmentation else None
        self.rec = Recorder(cluster, sample_interval_s, start_s=self.t0, frag=frag)
        self.state = np.full(n, NOT_ARRIVED, dtype=np.int8)
        self.start_s = np.full(n, np.nan)
        self.first_start_s = np.full(n, np.nan)
        """Set when a pod's first run is moved or ended early (eviction, in-place restart); the rest is
        ``start_s`` at the end of the run. NOTE: speed only: nothing per start of a never-evicted pod."""
        self.requeued_wait_s = np.zeros(n)
        self._evicted_at: dict[int, float] = {}  # pods evicted and not bound again: eviction time
        self.end_s = np.full(n, np.nan)
        self.node = np.full(n, -1, dtype=np.int32)
        self.allocs: dict[int, Allocation] = {}
        self.devices: list[tuple[int, ...]] = [()] * n
        self.outcome = [""] * n
        self.reason = [""] * n
        interned: dict[tuple, tuple] = {}  # one tuple per distinct signature (memory at 1M pods)
        self.sig_of: list[tuple] = [interned.setdefault(s, s) for s in map(pods.signature, range(n))]
        sig_ids: dict[tuple, int] = {}
        self.fw.sig_of = [sig_ids.setdefault(s, len(sig_ids)) for s in self.sig_of]
        self.pending: dict[tuple, SigQueue] = {}
        self.sig_status: dict[tuple, Status] = {}
        self.n_pending = 0
        self._dirty: list[int] = []
        self.log_events = log_events
        self.events: list[dict] = []
        self.progress = progress
        self._progress_step = progress_step
        self._progress_next = 0.0
        self._span = max(float(pods.submit_s.max()) - self.t0, 1e-9) if n else 1.0
        until = (
            horizon_s
            if horizon_s is not None
            else float((pods.submit_s + np.where(np.isfinite(pods.duration_s), pods.duration_s, 0)).max())
            if n
            else 0.0
        )
        self.gangs = Gangs(self)
        mode = profile.queue_mode
        self.ordered = OrderedQueue(self, mode) if mode in ("strict_fifo", "backfill") else None
        # per-pod run time still needed at the next start, and when an evicted pod may queue again
        # (0: at once; > t: after a back-off; inf: never, it failed): subsystems may set both
        self.remaining_s = pods.duration_s.astype(np.float64, copy=True)
        self._delete_s: list[float] = pods.delete_s.astype(np.float64).tolist()  # fixed per pod
        self.restart_at_s = np.zeros(n)
        # the run's subsystems: each registered factory decides from the configuration
        options = dict(subsystem_options or {})
        if fault_classes:
            options["faults"] = list(fault_classes)
        cfg = RunConfig(profile=profile, horizon_s=horizon_s, until_s=until, options=options)
        self.subsystems: dict[str, Subsystem] = {}
        for name, factory in REGISTRY:
            sub = factory(cfg, self._view)
            if sub is not None:
                self.subsystems[name] = sub
        self.faults = self.subsystems.get("faults")
        self.mig_manager = self.subsystems.get("mig_manager")
        self._start_hooks = [
            s.on_pod_start for s in self.subsystems.values() if type(s).on_pod_start is not Subsystem.on_pod_start
        ]
        self._end_hooks = [
            s.on_pod_end for s in self.subsystems.values() if type(s).on_pod_end is not Subsystem.on_pod_end
        ]
        base = {
            "arrival": self._on_arrival,
            "finish": self._on_finish,
            "delete": self._on_delete,
            "preempt_sweep": self._on_sweep,
            "gang_timeout": self.gangs.on_timeout,
            "requeue": self._on_requeue,
            "finish_group": self._on_finish_group,
        }
        self._groups: dict[int, list[tuple[int, int]]] = {}
        self._group_seq = 0
        self.kernel = Kernel(route(self.subsystems.values(), base))
        self.gen = np.zeros(n, dtype=np.int64)
        self.lost_runs: list[tuple[int, int, float]] = []
        self.lost_run_windows: list[tuple[float, float]] = []
        self.lost_run_by: list[int] = []
        self.preempted_times = np.zeros(n, dtype=np.int64)
        self.preemptions = 0
        self._sweep_at: float | None = None

    # -- the PodRuntime a subsystem sees (sim/subsystem.py) ---------------------------------
    def _view(self, name: str) -> View:
        return View(
            clock=lambda: self.kernel.now_s,
            cluster=self.cluster,
            runtime=self,
            rng=self.rngs.stream(name),
            recorder=self.rec,
            stream=self.rngs.stream,
        )

    def log(self, t: float, kind: str, i: int, **kw) -> None:
        if self.log_events:
            self.events.append({"t_s": t, "event": kind, "pod": self.pods.names[i], **kw})

    def mark_dirty(self, node: int) -> None:
        self._dirty.append(node)

    def touch(self, t: float) -> None:
        """Tell the recorder what changed at ``t``: queue, running count, and the nodes touched."""
        self.rec.queue_len = self.n_pending
        self.rec.running = len(self.allocs)
        self.rec.changed(self._dirty)
        self.rec.record(t)
        self._dirty = []

    def start(self, i: int, alloc: Allocation, t: float) -> list[Event]:
        self.state[i] = RUNNING
        self.allocs[i] = alloc
        self._dirty.append(alloc.node)
        self.start_s[i] = t
        if self._evicted_at:
            ev = self._evicted_at.pop(i, None)
            if ev is not None:  # back on a node after an eviction
                self.requeued_wait_s[i] += t - ev
        self.gen[i] += 1
        self.node[i] = alloc.node
        self.devices[i] = alloc.devices
        self.rec.count("starts", t)
        if self.log_events:  # NOTE: speed only: no arguments built for a log that is off
            self.log(t, "bind", i, node=self.cluster.node_names[alloc.node], devices=list(alloc.devices))
        end = t + float(self.remaining_s[i])
        d = self._delete_s[i]
        if not math.isnan(d) and d < end:
            end = max(d, t)
        out = [Event(end, PRIO_RELEASE, "finish", i, int(self.gen[i]))]
        if self._start_hooks:
            for hook in self._start_hooks:
                out += hook(i, alloc, t, int(self.gen[i]))
        return out

    def restart_in_place(self, pods: list[int], t: float, run: bool = True) -> list[Event]:
        """Restart running pods' processes where they are (same allocations, as the kubelet restarts a
        container): each run starts over at ``t`` and lasts ``remaining_s``; with ``run`` False they
        stop and hold their GPUs without an end until restarted again (ranks waiting for their gang)."""
        idx = np.asarray(pods, dtype=np.int64)
        first = self.first_start_s[idx]
        keep = np.isnan(first)
        self.first_start_s[idx[keep]] = self.start_s[idx[keep]]  # the first bind, before it moves
        self.start_s[idx] = t
        self.gen[idx] += 1
        if not run:
            return []
        ids, gens = idx.tolist(), self.gen[idx].tolist()
        rem = self.remaining_s[idx]
        out: list[Event] = []
        if len(ids) > 1 and bool(np.all(rem == rem[0])) and bool(np.all(np.isnan(self.pods.delete_s[idx]))):
            # pods restarted together that end together: one event for the group (a gang's ranks)
            self._group_seq += 1
            self._groups[self._group_seq] = list(zip(ids, gens))
            out.append(Event(t + float(rem[0]), PRIO_RELEASE, "finish_group", self._group_seq))
        else:
            out += [Event(t + e, PRIO_RELEASE, "finish", i, g) for i, e, g in zip(ids, rem.tolist(), gens)]
        for hook in self._start_hooks:
            for i, g in zip(ids, gens):
                out += hook(i, self.allocs[i], t, g)
        return out

    def _on_finish_group(self, ev: Event) -> list[Event]:
        """The finish of pods restarted together (each still checked against its generation)."""
        out: list[Event] = []
        for i, g in self._groups.pop(ev.ref):
            out += self._on_finish(Event(ev.t_s, PRIO_RELEASE, "finish", i, g))
        return out

    def push_pending(self, i: int, status: Status, t: float) -> None:
        sig = self.sig_of[i]
        q = self.pending.get(sig)
        if q is None:
            q = self.pending[sig] = SigQueue()
        q.push((self.fw.sort_key(i), i))
        self.sig_status[sig] = status
        self.reason[i] = status.message()
        self.state[i] = PENDING
        self.n_pending += 1
        if self.log_events:  # NOTE: speed only: no arguments built for a log that is off
            self.log(t, "unschedulable", i, reason=status.message(), plugin=status.plugin)

    # -- handlers --------------------------------------------------------------------------
    def _next_arrival(self) -> None:
        """Put the next pod arrival (in (submit time, index) order) on the heap.

        Pod arrivals are fed one at a time instead of all up front, so the heap holds the running
        pods, not the whole trace. The pop order is the one of the bulk push: then every pod
        arrival had a lower sequence number than any other event, so at one instant it popped
        after the releases (PRIO_RELEASE) and before every other PRIO_ARRIVAL event (a serving
        request, say); :data:`PRIO_POD_ARRIVAL`, between the two, keeps exactly that order.
        """
        k = self._arrival_k
        if k < len(self._arrival_order):
            self._arrival_k = k + 1
            i = self._arrival_order[k]
            self.kernel.schedule(Event(self._arrival_t[k], PRIO_POD_ARRIVAL, "arrival", i))

    def _on_arrival(self, ev: Event) -> list[Event]:
        i, t = ev.ref, ev.t_s
        self._next_arrival()
        self.rec.count("arrivals", t)
        if self.log_events:  # NOTE: speed only: no arguments built for a log that is off
            self.log(t, "arrival", i)
        out: list[Event] = []
        d = self._delete_s[i]
        if not math.isnan(d):
            out.append(Event(max(d, t), PRIO_RELEASE, "delete", i))
        sig = self.sig_of[i]
        if self.gangs.is_gang(i):
            out += self.gangs.on_arrival(i, t)
        elif self.ordered is not None:
            self.state[i] = PENDING
            self.n_pending += 1
            self.ordered.push(i)
            self.log(t, "queued", i)
            out += self.ordered.run_pass(t)
        elif self._clean_head(sig) is not None:
            # An equal pod is already waiting and no capacity it could use has been freed since
            # it failed (a release would have retried it), so this cycle would fail the same way.
            self.push_pending(i, self.sig_status[sig], t)
        else:
            res = self.fw.schedule(i)
            if res.alloc is not None:
                out += self.start(i, res.alloc, t)
            else:
                self.push_pending(i, res.status, t)
                out += self._preempt_for(i, t)
        self.touch(t)
        if self.progress is not None:
            frac = (t - self.t0) / self._span
            if frac >= self._progress_next:
                self._progress_next = frac + self._progress_step
                self.progress(min(frac, 1.0))
        return out

    def _on_finish(self, ev: Event) -> list[Event]:
        i, t = ev.ref, ev.t_s
        if self.state[i] != RUNNING or ev.gen != self.gen[i]:
            return []  # gone, or a stale finish of a run that was preempted
        alloc = self.allocs.pop(i)
        self.fw.unreserve(alloc)
        self.state[i] = DONE
        self.end_s[i] = t
        # a pod whose owner deleted it (delete_s) ended by the owner's hand, whatever it had left
        self.outcome[i] = "ended_by_owner" if t == self._delete_s[i] else "completed"
        self.rec.count("finishes", t)
        if self.log_events:  # NOTE: speed only: no arguments built for a log that is off
            self.log(t, "finish", i, outcome=self.outcome[i])
        if self._end_hooks:
            for hook in self._end_hooks:
                self.kernel.schedule_many(hook(i, alloc, t, self.outcome[i]))
        # gangs first: they need the most room at once, and singles would otherwise starve them
        out = self.gangs.retry_after_release(alloc.node, t)
        if self.ordered is not None:
            out += self.ordered.run_pass(t)
        else:
            out += self._retry_after_release(alloc.node, t, released=i)
        self._dirty.append(alloc.node)
        self.touch(t)
        return out

    def _on_delete(self, ev: Event) -> list[Event]:
        i, t = ev.ref, ev.t_s
        if self.state[i] != PENDING:
            return []  # running pods end through their finish event; finished ones are gone
        if self.gangs.is_gang(i):
            job = self.pods.jobs[i]
            self.gangs.withdraw(job, t, "withdrawn", f"a pod of gang {job} was deleted")
            self.touch(t)
            return []
        self.state[i] = WITHDRAWN
        self.outcome[i] = "withdrawn"
        self.end_s[i] = t
        self.n_pending -= 1
        self.rec.count("withdrawals", t)
        self.log(t, "withdrawn", i, reason=self.reason[i])
        self.touch(t)
        return []

    # -- preemption ------------------------------------------------------------------------
    def evict(self, victims, by: int | None, t: float, why: str) -> None:
        """Evict running pods: their GPU work so far is lost (not preemptible), and they queue again."""
        for a in victims:
            v = a.pod
            self.allocs.pop(v)
            self.fw.unreserve(a)
            self._dirty.append(a.node)
            self.lost_runs.append((v, a.node, a.gpu_milli_total * (t - float(self.start_s[v]))))
            self.lost_run_windows.append((float(self.start_s[v]), float(t)))
            self.lost_run_by.append(-1 if by is None else int(by))
            for hook in self._end_hooks:
                self.kernel.schedule_many(hook(v, a, t, "evicted"))
            if by is not None:
                self.preempted_times[v] += 1
            if math.isnan(self.first_start_s[v]):
                self.first_start_s[v] = self.start_s[v]  # the first bind, before it is cleared
            self.start_s[v] = np.nan
            self._evicted_at[v] = t
            self.gen[v] += 1  # its finish event is now stale
            who = self.pods.names[by] if by is not None else ""
            status = Status(
                Code.UNSCHEDULABLE, (f"{why} by {who}" if who else why,), "DefaultPreemption" if who else "Fault"
            )
            self.log(t, "preempted" if who else "killed", v, by=who, node=self.cluster.node_names[a.node], why=why)
            again = float(self.restart_at_s[v])
            if again > t:  # a subsystem's restart policy: back off, or give up for good
                self._hold(v, again, t, why)
                continue
            self.push_pending(v, status, t)
            if self.ordered is not None:
                self.ordered.push(v)

    def _hold(self, v: int, again: float, t: float, why: str) -> None:
        """An evicted pod leaves the queue: failed for good (``again`` inf) or until ``again``."""
        self.state[v] = WITHDRAWN
        self.end_s[v] = t
        if math.isinf(again):
            self.outcome[v] = "failed"
            self.log(t, "failed", v, why=why)
            return
        self.outcome[v] = "backoff_at_horizon"
        self.log(t, "backoff", v, until_s=again)
        self.kernel.schedule(Event(again, PRIO_RELEASE, "requeue", v, int(self.gen[v])))

    def _on_requeue(self, ev: Event) -> list[Event]:
        """A back-off ended: the pod queues again and gets a scheduling cycle."""
        i, t = ev.ref, ev.t_s
        if self.state[i] != WITHDRAWN or ev.gen != self.gen[i] or self.outcome[i] != "backoff_at_horizon":
            return []
        self.outcome[i] = ""
        self.end_s[i] = np.nan
        self.push_pending(i, Status(Code.UNSCHEDULABLE, ("restarting after back-off",), "RestartPolicy"), t)
        if self.ordered is not None:
            self.ordered.push(i)
            out = self.ordered.run_pass(t)
        else:
            out = self.retry_pods([i], t)
        self.touch(t)
        return out

    def _preempt_for(self, i: int, t: float) -> list[Event]:
        """PostFilter: the profile's PostFilter plugins (Kueue reclaim of lent quota), then kube's
        DefaultPreemption, then place ``i``."""
        if not self.fw.profile.preemption or self.state[i] != PENDING or not self.allocs:
            return []
        freed_nodes: list[int] = []
        evicted: list[int] = []
        back, why = self.fw.post_filter(i, self.allocs, self.start_s)
        if back:
            self.preemptions += 1
            self.evict(back, i, t, why)
            freed_nodes += [a.node for a in back]
            evicted += [a.pod for a in back]
        res = self.fw.schedule(i)
        if res.alloc is None:
            cand = select_victims(self.fw, i, self.start_s)
            if cand is None:
                return self._arm_sweep(i, t) + self.retry_nodes(freed_nodes, t) + self.retry_pods(evicted, t)
            self.preemptions += 1
            # kube-scheduler's DefaultPreemption gives its victims the DisruptionTarget condition
            # (reason PreemptionByScheduler), which a Job's podFailurePolicy can match; Kueue's
            # reclaim above suspends workloads instead and is not marked.
            mark_disruption(self, [a.pod for a in cand.victims], "PreemptionByScheduler")
            self.evict(cand.victims, i, t, f"preempted (priority {int(self.pods.priority[i])})")
            evicted += [a.pod for a in cand.victims]
            freed_nodes.append(cand.node)
            # the preemptor leaves the queue and runs now (no termination grace period is modelled)
            res = self.fw.schedule(i)
            if res.alloc is None:
                raise RuntimeError(f"preemption freed node {cand.node} but {self.pods.names[i]} still does not fit")
        self.state[i] = RUNNING  # so _clean_head drops it from its heap
        self.n_pending -= 1
        out = self.start(i, res.alloc, t)
        return out + self.retry_nodes(freed_nodes, t) + self.retry_pods(evicted, t)

    def retry_pods(self, pods: list[int], t: float) -> list[Event]:
        """A full cycle for pods just put back in the queue (evicted): unlike pods that failed a
        cycle, they have not been tried against the rest of the cluster, so hints would miss them."""
        out: list[Event] = []
        for v in sorted(dict.fromkeys(pods), key=self.fw.sort_key):
            if self.state[v] == PENDING and self.gangs.is_gang(v):
                out += self.gangs.replace_evicted(self.pods.jobs[v], t)
                continue
            if self.state[v] != PENDING:
                continue
            res = self.fw.schedule(v)
            if res.alloc is not None:
                self.n_pending -= 1
                out += self.start(v, res.alloc, t)
            else:
                self.sig_status[self.sig_of[v]] = res.status
                self.reason[v] = res.status.message()
        return out

    def retry_nodes(self, nodes, t: float) -> list[Event]:
        out: list[Event] = []
        for n in dict.fromkeys(nodes):
            out += self.gangs.retry_after_release(n, t)
            out += self._retry_after_release(n, t)
        return out

    def _arm_sweep(self, i: int, t: float) -> list[Event]:
        """No victims now; like kube's periodic flush of unschedulable pods, look again later."""
        if self._sweep_at is not None or self.pods.priority[i] <= 0:
            return []
        self._sweep_at = t + PREEMPTION_SWEEP_S
        return [Event(self._sweep_at, PRIO_SAMPLE, "preempt_sweep")]

    def _on_sweep(self, ev: Event) -> list[Event]:
        t = ev.t_s
        self._sweep_at = None
        heads = [h for sig in list(self.pending) if (h := self._clean_head(sig)) is not None]
        out: list[Event] = []
        for i in sorted(heads, key=self.fw.sort_key):
            if self.pods.priority[i] > 0 and self.state[i] == PENDING:
                out += self._preempt_for(i, t)
        self.touch(t)
        return out

    def _clean_head(self, sig: tuple) -> int | None:
        q = self.pending.get(sig)
        if q is None:
            return None
        state = self.state
        while q:
            i = q.top()[1]
            if state[i] == PENDING:
                return i
            q.pop()
        del self.pending[sig]
        return None

    def _retry_after_release(self, node: int, t: float, released: int | None = None) -> list[Event]:
        """Queueing hint: after ``node`` freed capacity, retry the pending signatures that may fit it.

        A filter whose answer does not depend on the node (Kueue quota) names the pending pods
        that ``released`` leaving may have unblocked anywhere; those get a full cycle too."""
        if not self.n_pending:
            return []
        fw = self.fw
        # the head of each pending signature: (queue key when it was queued, pod)
        tops: dict[tuple, tuple] = {}
        for sig in list(self.pending):
            h = self._clean_head(sig)
            if h is not None:
                tops[sig] = self.pending[sig].top()
        if not tops:
            return []
        sigs = list(tops)
        idx = [tops[s][1] for s in sigs]
        ok = fw.fits_after_release(idx, node)
        anywhere: set[tuple] = set()
        glob = (
            fw.retry_anywhere_after(released, np.array(idx, dtype=np.int64))
            if released is not None and fw.has_anywhere_hint
            else None
        )
        if glob is not None:
            oka = np.array(ok, dtype=bool)
            anywhere = {sigs[j] for j in np.flatnonzero(glob & ~oka)}
            ok = (oka | glob).tolist()
        out: list[Event] = []
        cand = {sigs[j]: idx[j] for j in range(len(sigs)) if ok[j]}
        sort_key = fw.sort_key
        # a static queue key was computed when the pod was queued: the heap top carries it
        # (keys end with the pod index, so they never tie)
        by_key = (lambda s: self.pending[s].top()[0]) if fw.queue_sort.static_key else (lambda s: sort_key(cand[s]))
        while cand:
            sig = min(cand, key=by_key) if len(cand) > 1 else next(iter(cand))
            i = cand.pop(sig)
            res = fw.schedule(i)
            if res.alloc is None:
                self.sig_status[sig] = res.status
                self.reason[i] = res.status.message()
                continue
            self.pending[sig].pop()
            self.n_pending -= 1
            out += self.start(i, res.alloc, t)
            nxt = self._clean_head(sig)
            if nxt is not None:
                cand[sig] = nxt
            if cand:  # the node has less room now: keep only signatures that still fit it
                keys = list(cand)
                still = fw.fits_after_release([cand[k] for k in keys], node)
                cand = {k: cand[k] for k, s in zip(keys, still) if s or k in anywhere}
        return out

    # -- run -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        order = np.argsort(self.pods.submit_s, kind="stable")
        self._arrival_order: list[int] = order.tolist()
        self._arrival_t: list[float] = self.pods.submit_s[order].astype(np.float64).tolist()
        self._arrival_k = 0
        self._next_arrival()
        for sub in self.subsystems.values():
            self.kernel.schedule_many(sub.first_events(self.t0))
        self.kernel.run(until_s=self.horizon_s)
        # the run window never ends before it starts (pods all submitted after horizon_s: an empty
        # window at t0, not a negative one; scenarios refuse that case when they are built)
        horizon = max(self.horizon_s, self.t0) if self.horizon_s is not None else max(self.kernel.now_s, self.t0)
        self.rec.finalize(horizon)
        # evictions not followed by a bind: counted to the pod's end (failed, deleted) or to the horizon
        for i, ev in sorted(self._evicted_at.items()):
            stop = horizon if math.isnan(self.end_s[i]) or self.outcome[i] == "backoff_at_horizon" else self.end_s[i]
            self.requeued_wait_s[i] += max(float(stop) - float(ev), 0.0)
        unmoved = np.isnan(self.first_start_s)
        self.first_start_s[unmoved] = self.start_s[unmoved]  # never evicted nor restarted: its one start
        pending_reasons: dict[str, int] = {}
        for i in range(len(self.pods)):
            s = self.state[i]
            if s == RUNNING:
                self.outcome[i] = "running_at_horizon"
            elif s == PENDING:
                self.outcome[i] = "pending_at_horizon"
                pending_reasons[self.reason[i]] = pending_reasons.get(self.reason[i], 0) + 1
            elif s == NOT_ARRIVED:
                self.outcome[i] = "not_arrived"
        summaries = {name: sub.summary() for name, sub in self.subsystems.items()}
        summaries = {k: v for k, v in summaries.items() if v is not None}
        invariants = require(check_invariants(self.cluster, self.rec, horizon), "replay")
        return RunResult(
            cluster=self.cluster,
            pods=self.pods,
            recorder=self.rec,
            horizon_s=horizon,
            start_s=self.start_s,
            end_s=self.end_s,
            node=self.node,
            devices=self.devices,
            outcome=self.outcome,
            reason=self.reason,
            events=self.events,
            events_processed=self.kernel.events_processed,
            cycles=self.fw.cycles,
            pending_reasons_at_end=pending_reasons,
            lost_runs=self.lost_runs,
            lost_run_windows=self.lost_run_windows,
            lost_run_by=self.lost_run_by,
            preempted_times=self.preempted_times,
            preemptions=self.preemptions,
            first_start_s=self.first_start_s,
            requeued_wait_s=self.requeued_wait_s,
            faults=summaries.get("faults"),
            subsystems=summaries,
            invariants=invariants,
        )
