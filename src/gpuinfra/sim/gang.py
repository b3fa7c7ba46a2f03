"""Gang scheduling: the pods of a job are placed all at once, or none is.

As Volcano's gang plugin and Kueue's all-or-nothing admission do, a gang (the ``gang_size``
pods of one ``job``) waits until all its pods have arrived, then every pod is reserved in queue
order; if one cannot be placed, every reservation is undone (Reserve/Unreserve are exact) and
the gang waits. It is retried when a release frees a node that any of its pods could use (the
same queueing hint as single pods). With ``gang_timeout_s`` > 0, a gang still unplaced that long
after it became complete is withdrawn (outcome ``gang_timeout``). Not modelled: the
coscheduling plugin's Permit stage, where placed members hold their GPUs while waiting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gpuinfra.sim.framework import Code, Status
from gpuinfra.sim.kernel import PRIO_RELEASE, Event

if TYPE_CHECKING:
    from gpuinfra.sim.subsystem import PodRuntime


class Gangs:
    def __init__(self, rt: PodRuntime) -> None:
        self.e = rt
        self.members: dict[str, list[int]] = {}
        self.waiting: dict[str, Status] = {}
        """Complete gangs that did not fit, with their last status."""
        self.timeout_s = float(rt.fw.profile.gang_timeout_s)

    def is_gang(self, i: int) -> bool:
        return int(self.e.pods.gang_size[i]) > 1

    def on_arrival(self, i: int, t: float) -> list[Event]:
        e = self.e
        job = e.pods.jobs[i]
        mem = self.members.setdefault(job, [])
        mem.append(i)
        e.state[i] = 0  # PENDING
        e.n_pending += 1
        size = int(e.pods.gang_size[i])
        e.reason[i] = f"waiting for gang {job}: {len(mem)} of {size} pods arrived"
        e.log(t, "gang_wait", i, job=job, arrived=len(mem), size=size)
        if len(mem) < size:
            return []
        out = self.try_place(job, t)
        if job in self.waiting and self.timeout_s > 0:
            out.append(Event(t + self.timeout_s, PRIO_RELEASE, "gang_timeout", mem[0]))
        return out

    def try_place(self, job: str, t: float) -> list[Event]:
        e = self.e
        mem = sorted(self.members[job], key=e.fw.sort_key)
        allocs = []
        for m in mem:
            r = e.fw.schedule(m)
            if r.alloc is None:
                for a in reversed(allocs):
                    e.fw.unreserve(a)
                st = Status(
                    Code.UNSCHEDULABLE,
                    (
                        f"gang {job}: {len(allocs)} of {len(mem)} pods could be placed; "
                        f"{e.pods.names[m]}: {r.status.message()}",
                    ),
                    "Gang",
                )
                self.waiting[job] = st
                for x in mem:
                    e.reason[x] = st.message()
                return []
            allocs.append(r.alloc)
        self.waiting.pop(job, None)
        out: list[Event] = []
        for m, a in zip(mem, allocs):
            e.n_pending -= 1
            out += e.start(m, a, t)
        return out

    def retry_after_release(self, node: int, t: float) -> list[Event]:
        if not self.waiting:
            return []
        e = self.e
        out: list[Event] = []
        for job in sorted(self.waiting, key=lambda j: e.fw.sort_key(min(self.members[j]))):
            if job not in self.waiting:
                continue
            idx = np.array(self.members[job], dtype=np.int64)
            # only this node changed: a gang can only have become placeable if one of its pods fits it
            if e.fw.may_fit_after_release(idx, node).any():
                out += self.try_place(job, t)
        return out

    def replace_evicted(self, job: str, t: float) -> list[Event]:
        """Evicted gang pods back in the queue: a gang with every pod pending is placed as a whole;
        pods whose peers still run (a rank replaced in a running job) are placed on their own."""
        e = self.e
        mem = self.members.get(job, [])
        if not mem or len(mem) < int(e.pods.gang_size[mem[0]]):
            return []
        st = e.state[np.asarray(mem)]
        is_pending = st == 0  # PENDING
        if is_pending.all():
            return self.try_place(job, t)
        if (st[~is_pending] != 1).any():  # peers not all RUNNING
            return []
        pending = [m for m, p in zip(mem, is_pending.tolist()) if p]
        out: list[Event] = []
        for m in pending:
            r = e.fw.schedule(m)
            if r.alloc is None:
                e.reason[m] = r.status.message()
                continue
            e.n_pending -= 1
            out += e.start(m, r.alloc, t)
        return out

    def withdraw(self, job: str, t: float, outcome: str, why: str) -> None:
        e = self.e
        self.waiting.pop(job, None)
        for m in self.members.get(job, []):
            if e.state[m] == 0:  # PENDING
                e.state[m] = 3  # WITHDRAWN
                e.outcome[m] = outcome
                e.end_s[m] = t
                e.n_pending -= 1
                e.rec.count("withdrawals", t)
                e.log(t, outcome, m, reason=why)

    def on_timeout(self, ev: Event) -> list[Event]:
        job = self.e.pods.jobs[ev.ref]
        if job in self.waiting:
            self.withdraw(job, ev.t_s, "gang_timeout", self.waiting[job].message())
            self.e.touch(ev.t_s)
        return []
