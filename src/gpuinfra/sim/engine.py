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
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gpuinfra.models.fragmentation import typical_pods
from gpuinfra.sim.cluster import Allocation, ClusterState
from gpuinfra.sim.faults import FaultInjector
from gpuinfra.sim.framework import Code, Framework, Profile, Status
from gpuinfra.sim.gang import Gangs
from gpuinfra.sim.kernel import PRIO_ARRIVAL, PRIO_RELEASE, PRIO_SAMPLE, Event, Kernel, Rngs
from gpuinfra.sim.nodestate import FragmentationTracker
from gpuinfra.sim.ordered import OrderedQueue
from gpuinfra.sim.plugins.fgd import pod_classes
from gpuinfra.sim.preemption import select_victims
from gpuinfra.sim.recorder import Recorder
from gpuinfra.sim.workload import PodTable

PENDING, RUNNING, DONE, WITHDRAWN, NOT_ARRIVED = 0, 1, 2, 3, 4
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
)


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
    preempted_times: np.ndarray | None = None
    preemptions: int = 0
    faults: dict | None = None


class ReplayEngine:
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
        self.end_s = np.full(n, np.nan)
        self.node = np.full(n, -1, dtype=np.int32)
        self.allocs: dict[int, Allocation] = {}
        self.devices: list[tuple[int, ...]] = [()] * n
        self.outcome = [""] * n
        self.reason = [""] * n
        self.sig_of: list[tuple] = [pods.signature(i) for i in range(n)]
        self.pending: dict[tuple, list[tuple[tuple, int]]] = {}
        self.sig_status: dict[tuple, Status] = {}
        self.n_pending = 0
        self._dirty: list[int] = []
        self.log_events = log_events
        self.events: list[dict] = []
        self.progress = progress
        self._progress_step = progress_step
        self._progress_next = 0.0
        self._span = max(float(pods.submit_s.max()) - self.t0, 1e-9) if n else 1.0
        self.fault_log: list[dict] = []
        self.faults = None
        if fault_classes:
            until = (
                horizon_s
                if horizon_s is not None
                else float((pods.submit_s + np.where(np.isfinite(pods.duration_s), pods.duration_s, 0)).max())
                if n
                else 0.0
            )
            self.faults = FaultInjector(self, list(fault_classes), until)
        self.gangs = Gangs(self)
        mode = profile.queue_mode
        self.ordered = OrderedQueue(self, mode) if mode in ("strict_fifo", "backfill") else None
        self._quota = next((f for f in self.fw.filters if f.name == "KueueQuota"), None)
        self.kernel = Kernel(
            {
                "arrival": self._on_arrival,
                "finish": self._on_finish,
                "delete": self._on_delete,
                "preempt_sweep": self._on_sweep,
                "gang_timeout": self.gangs.on_timeout,
                **(
                    {
                        "fault": self.faults.on_fault,
                        "repair": self.faults.on_repair,
                        "crash": self.faults.on_crash,
                        "detect": self.faults.on_detect,
                    }
                    if self.faults
                    else {}
                ),
            }
        )
        self.mig_manager = None
        mig = next((f for f in self.fw.filters if f.name == "MigFit"), None)
        if mig is not None and mig.args.get("reconfigure"):
            from gpuinfra.sim.mig_manager import MigManager

            self.mig_manager = MigManager(
                self, float(mig.args.get("interval_s", 300.0)), float(mig.args.get("reconfigure_s", 60.0))
            )
            self.kernel.handlers["mig_manage"] = self.mig_manager.on_manage
            self.kernel.handlers["mig_ready"] = self.mig_manager.on_ready
        self.gen = np.zeros(n, dtype=np.int64)
        self.lost_runs: list[tuple[int, int, float]] = []
        self.preempted_times = np.zeros(n, dtype=np.int64)
        self.preemptions = 0
        self._sweep_at: float | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _log(self, t: float, kind: str, i: int, **kw) -> None:
        if self.log_events:
            self.events.append({"t_s": t, "event": kind, "pod": self.pods.names[i], **kw})

    def _touch(self, t: float) -> None:
        """Tell the recorder what changed at ``t``: queue, running count, and the nodes touched."""
        self.rec.queue_len = self.n_pending
        self.rec.running = len(self.allocs)
        self.rec.changed(self._dirty)
        self.rec.record(t)
        self._dirty = []

    def _start(self, i: int, alloc: Allocation, t: float) -> list[Event]:
        self.state[i] = RUNNING
        self.allocs[i] = alloc
        self._dirty.append(alloc.node)
        self.start_s[i] = t
        self.gen[i] += 1
        self.node[i] = alloc.node
        self.devices[i] = alloc.devices
        self.rec.count("starts", t)
        self._log(t, "bind", i, node=self.cluster.node_names[alloc.node], devices=list(alloc.devices))
        end = t + float(self.pods.duration_s[i])
        d = float(self.pods.delete_s[i])
        if not math.isnan(d) and d < end:
            end = max(d, t)
        out = [Event(end, PRIO_RELEASE, "finish", i, int(self.gen[i]))]
        if self.faults is not None:
            out += self.faults.on_start(i, alloc, t, int(self.gen[i]))
        return out

    def _push_pending(self, i: int, status: Status, t: float) -> None:
        sig = self.sig_of[i]
        heapq.heappush(self.pending.setdefault(sig, []), (self.fw.sort_key(i), i))
        self.sig_status[sig] = status
        self.reason[i] = status.message()
        self.state[i] = PENDING
        self.n_pending += 1
        self._log(t, "unschedulable", i, reason=status.message(), plugin=status.plugin)

    # -- handlers --------------------------------------------------------------------------
    def _on_arrival(self, ev: Event) -> list[Event]:
        i, t = ev.ref, ev.t_s
        self.rec.count("arrivals", t)
        self._log(t, "arrival", i)
        out: list[Event] = []
        d = float(self.pods.delete_s[i])
        if not math.isnan(d):
            out.append(Event(max(d, t), PRIO_RELEASE, "delete", i))
        sig = self.sig_of[i]
        if self.gangs.is_gang(i):
            out += self.gangs.on_arrival(i, t)
        elif self.ordered is not None:
            self.state[i] = PENDING
            self.n_pending += 1
            self.ordered.push(i)
            self._log(t, "queued", i)
            out += self.ordered.run_pass(t)
        elif self._clean_head(sig) is not None:
            # An equal pod is already waiting and no capacity it could use has been freed since
            # it failed (a release would have retried it), so this cycle would fail the same way.
            self._push_pending(i, self.sig_status[sig], t)
        else:
            res = self.fw.schedule(i)
            if res.alloc is not None:
                out += self._start(i, res.alloc, t)
            else:
                self._push_pending(i, res.status, t)
                out += self._preempt_for(i, t)
        self._touch(t)
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
        self.outcome[i] = "ended_by_owner" if t == float(self.pods.delete_s[i]) else "completed"
        self.rec.count("finishes", t)
        self._log(t, "finish", i, outcome=self.outcome[i])
        # gangs first: they need the most room at once, and singles would otherwise starve them
        out = self.gangs.retry_after_release(alloc.node, t)
        if self.ordered is not None:
            out += self.ordered.run_pass(t)
        else:
            out += self._retry_after_release(alloc.node, t, released=i)
        self._dirty.append(alloc.node)
        self._touch(t)
        return out

    def _on_delete(self, ev: Event) -> list[Event]:
        i, t = ev.ref, ev.t_s
        if self.state[i] != PENDING:
            return []  # running pods end through their finish event; finished ones are gone
        if self.gangs.is_gang(i):
            job = self.pods.jobs[i]
            self.gangs.withdraw(job, t, "withdrawn", f"a pod of gang {job} was deleted")
            self._touch(t)
            return []
        self.state[i] = WITHDRAWN
        self.outcome[i] = "withdrawn"
        self.end_s[i] = t
        self.n_pending -= 1
        self.rec.count("withdrawals", t)
        self._log(t, "withdrawn", i, reason=self.reason[i])
        self._touch(t)
        return []

    # -- preemption ------------------------------------------------------------------------
    def _evict(self, victims: list[Allocation] | tuple[Allocation, ...], by: int | None, t: float, why: str) -> None:
        """Evict running pods: their GPU work so far is lost (not preemptible), and they queue again."""
        for a in victims:
            v = a.pod
            self.allocs.pop(v)
            self.fw.unreserve(a)
            self._dirty.append(a.node)
            self.lost_runs.append((v, a.node, a.gpu_milli_total * (t - float(self.start_s[v]))))
            if by is not None:
                self.preempted_times[v] += 1
            self.start_s[v] = np.nan
            self.gen[v] += 1  # its finish event is now stale
            who = self.pods.names[by] if by is not None else ""
            status = Status(
                Code.UNSCHEDULABLE, (f"{why} by {who}" if who else why,), "DefaultPreemption" if who else "Fault"
            )
            self._log(t, "preempted" if who else "killed", v, by=who, node=self.cluster.node_names[a.node], why=why)
            self._push_pending(v, status, t)
            if self.ordered is not None:
                self.ordered.push(v)

    def _preempt_for(self, i: int, t: float) -> list[Event]:
        """PostFilter: Kueue reclaim of lent quota, then kube's DefaultPreemption, then place ``i``."""
        if not self.fw.profile.preemption or self.state[i] != PENDING or not self.allocs:
            return []
        freed_nodes: list[int] = []
        evicted: list[int] = []
        if self._quota is not None:
            back = self._quota.reclaim_victims(i, self.allocs, self.start_s)
            if back:
                self.preemptions += 1
                self._evict(back, i, t, "quota reclaimed")
                freed_nodes += [a.node for a in back]
                evicted += [a.pod for a in back]
        res = self.fw.schedule(i)
        if res.alloc is None:
            cand = select_victims(self.fw, i, self.start_s)
            if cand is None:
                return self._arm_sweep(i, t) + self._retry_many(freed_nodes, t) + self.retry_pods(evicted, t)
            self.preemptions += 1
            self._evict(cand.victims, i, t, f"preempted (priority {int(self.pods.priority[i])})")
            evicted += [a.pod for a in cand.victims]
            freed_nodes.append(cand.node)
            # the preemptor leaves the queue and runs now (no termination grace period is modelled)
            res = self.fw.schedule(i)
            if res.alloc is None:
                raise RuntimeError(f"preemption freed node {cand.node} but {self.pods.names[i]} still does not fit")
        self.state[i] = RUNNING  # so _clean_head drops it from its heap
        self.n_pending -= 1
        out = self._start(i, res.alloc, t)
        return out + self._retry_many(freed_nodes, t) + self.retry_pods(evicted, t)

    def retry_pods(self, pods: list[int], t: float) -> list[Event]:
        """A full cycle for pods just put back in the queue (evicted): unlike pods that failed a
        cycle, they have not been tried against the rest of the cluster, so hints would miss them."""
        out: list[Event] = []
        for v in sorted(dict.fromkeys(pods), key=self.fw.sort_key):
            if self.state[v] != PENDING or self.gangs.is_gang(v):
                continue
            res = self.fw.schedule(v)
            if res.alloc is not None:
                self.n_pending -= 1
                out += self._start(v, res.alloc, t)
            else:
                self.sig_status[self.sig_of[v]] = res.status
                self.reason[v] = res.status.message()
        return out

    def _retry_many(self, nodes: list[int], t: float) -> list[Event]:
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
        self._touch(t)
        return out

    def _clean_head(self, sig: tuple) -> int | None:
        h = self.pending.get(sig)
        while h and self.state[h[0][1]] != PENDING:
            heapq.heappop(h)
        if not h:
            self.pending.pop(sig, None)
            return None
        return h[0][1]

    def _retry_after_release(self, node: int, t: float, released: int | None = None) -> list[Event]:
        """Queueing hint: after ``node`` freed capacity, retry the pending signatures that may fit it.

        A filter whose answer does not depend on the node (Kueue quota) names the pending pods
        that ``released`` leaving may have unblocked anywhere; those get a full cycle too."""
        if not self.n_pending:
            return []
        heads: dict[tuple, int] = {}
        for sig in list(self.pending):
            h = self._clean_head(sig)
            if h is not None:
                heads[sig] = h
        if not heads:
            return []
        sigs = list(heads)
        idx = np.array([heads[s] for s in sigs], dtype=np.int64)
        ok = self.fw.may_fit_after_release(idx, node)
        anywhere: set[tuple] = set()
        if released is not None and self._quota is not None:
            glob = self._quota.retry_everywhere_after(released, idx)
            anywhere = {sigs[j] for j in np.flatnonzero(glob & ~ok)}
            ok |= glob
        out: list[Event] = []
        cand = {sigs[j]: int(idx[j]) for j in np.flatnonzero(ok)}
        while cand:
            sig = min(cand, key=lambda s: self.fw.sort_key(cand[s]))
            i = cand.pop(sig)
            res = self.fw.schedule(i)
            if res.alloc is None:
                self.sig_status[sig] = res.status
                self.reason[i] = res.status.message()
                continue
            heapq.heappop(self.pending[sig])
            self.n_pending -= 1
            out += self._start(i, res.alloc, t)
            nxt = self._clean_head(sig)
            if nxt is not None:
                cand[sig] = nxt
            if cand:  # the node has less room now: keep only signatures that still fit it
                keys = list(cand)
                still = self.fw.may_fit_after_release(np.array([cand[k] for k in keys], dtype=np.int64), node)
                cand = {k: cand[k] for k, s in zip(keys, still) if s or k in anywhere}
        return out

    # -- run -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        for i in range(len(self.pods)):
            self.kernel.schedule(Event(float(self.pods.submit_s[i]), PRIO_ARRIVAL, "arrival", i))
        if self.faults is not None:
            self.kernel.schedule_many(self.faults.first_events(self.t0))
        if self.mig_manager is not None:
            self.kernel.schedule_many(self.mig_manager.first_events(self.t0))
        self.kernel.run(until_s=self.horizon_s)
        horizon = self.horizon_s if self.horizon_s is not None else max(self.kernel.now_s, self.t0)
        self.rec.finalize(horizon)
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
            preempted_times=self.preempted_times,
            preemptions=self.preemptions,
            faults=(
                {
                    "by_class": dict(self.faults.counts),
                    "pods_killed": self.faults.pods_killed,
                    "crashes_on_poisoned_gpus": self.faults.crashes,
                    "burned_gpu_hours": self.faults.burned_milli_s / 3.6e6,
                    "gpu_transitions": sum(len(h.history) for h in self.faults.health.values()),
                    "log": self.fault_log,
                }
                if self.faults
                else None
            ),
        )
