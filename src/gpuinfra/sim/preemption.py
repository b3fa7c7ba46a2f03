"""Preemption as kube-scheduler's DefaultPreemption (PostFilter) chooses victims.

For an unschedulable pod, every node that runs lower-priority pods is a candidate:
1. remove all lower-priority pods of the node; if the pod still does not pass the filters
   there, the node cannot help;
2. otherwise add them back one at a time, most important first (higher priority, then the one
   that started earlier), keeping each that still leaves room: the rest are the victims;
3. among candidate nodes pick, in order: the lowest highest-victim priority, the smallest sum of
   victim priorities, the fewest victims, the latest-started victims (least work lost), then
   the lowest node index.
The cluster is left exactly as it was (Reserve/Unreserve undo each other); the engine evicts.
GPU work is not preemptible: a victim loses everything since its start (see the engine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuinfra.sim.cluster import Allocation
from gpuinfra.sim.framework import CycleState
from gpuinfra.sim.scheduler import Framework


@dataclass(frozen=True, slots=True)
class Candidate:
    node: int
    victims: tuple[Allocation, ...]
    key: tuple


def select_victims(fw: Framework, i: int, start_s: np.ndarray) -> Candidate | None:
    c, pods = fw.cluster, fw.pods
    prio = int(pods.priority[i])
    if prio <= fw.lowest_priority:
        return None  # no pod of the run has a lower priority: no node can offer victims
    k, m = int(pods.num_gpu[i]), int(pods.gpu_milli[i])
    best: Candidate | None = None
    for n in range(c.n_nodes):
        # gang pods are not victims: evicting one would break its whole gang
        low = [
            a for a in c.node_allocs[n].values() if int(pods.priority[a.pod]) < prio and int(pods.gang_size[a.pod]) <= 1
        ]
        if not low:
            continue
        # cheap bounds before touching state: CPU, memory and per-device milli if all of them left
        if c.cpu_free[n] + sum(a.cpu_milli for a in low) < pods.cpu_milli[i]:
            continue
        if c.mem_free[n] + sum(a.memory_mib for a in low) < pods.memory_mib[i]:
            continue
        if k:
            free = c.dev_free[n].astype(np.int64).copy()
            for a in low:
                for d in a.devices:
                    free[d] += a.milli_per_device
            if np.count_nonzero(free >= m) < k:
                continue
        for a in low:
            c.release(a)
        if not fw.feasible(CycleState(), i)[0][n]:
            for a in low:
                c.allocate(a)
            continue
        victims = []
        for a in sorted(low, key=lambda a: (-int(pods.priority[a.pod]), float(start_s[a.pod]), a.pod)):
            c.allocate(a)
            if not fw.feasible(CycleState(), i)[0][n]:
                c.release(a)
                victims.append(a)
        for a in victims:
            c.allocate(a)
        vp = [int(pods.priority[a.pod]) for a in victims]
        key = (max(vp), sum(vp), len(victims), -max(float(start_s[a.pod]) for a in victims), n)
        if best is None or key < best.key:
            best = Candidate(n, tuple(victims), key)
    return best
