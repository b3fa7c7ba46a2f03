"""KueueQuota (Filter): GPU quota per team as Kueue's ClusterQueues model it.

Contract. Each pod belongs to the ClusterQueue named by its owner (a pod whose owner has no
queue is not quota-managed and always passes). A queue has a nominal quota of GPUs
(milli-GPU, all models together) and sits in a cohort. A pod passes iff, with U its queue's
usage (GPUs held by its running pods) and R its request:

- the cohort has R of unused nominal quota (sum of its queues' nominal minus their usage), and
- U + R <= nominal (within its own quota), or it borrows U + R - nominal <= its borrowing limit.

This answers "why is this pod pending?" with Kueue's own terms ("insufficient unused quota in
cohort ..."). The check does not depend on the node, so after a release in a cohort the engine
retries that cohort's quota-blocked pods on every node (``retry_anywhere_after``, a cluster-wide queueing hint). Reclaim
(a queue within its nominal quota evicting borrowers of its cohort) is done by the engine's
preemption step with :meth:`post_filter` (kube-scheduler's PostFilter extension point).
Args: ``queues``: list of {name, cohort, nominal_gpus, borrowing_limit_gpus (None: unlimited)};
``reclaim`` (default true).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU, Allocation, ClusterState
from gpuinfra.sim.framework import CycleState, FilterPlugin, FilterResult, PostFilterPlugin, register
from gpuinfra.sim.workload import PodTable


@dataclass
class Queue:
    name: str
    cohort: str
    nominal: int
    """milli-GPU"""
    borrowing_limit: int | None
    usage: int = 0


@register
class KueueQuota(FilterPlugin, PostFilterPlugin):
    evict_reason = "quota reclaimed"
    name = "KueueQuota"

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        self.queues: dict[str, Queue] = {}
        for q in self.args.get("queues", []):
            lim = q.get("borrowing_limit_gpus")
            self.queues[q["name"]] = Queue(
                q["name"],
                q.get("cohort") or q["name"],
                int(round(float(q["nominal_gpus"]) * MILLI_PER_GPU)),
                None if lim is None else int(round(float(lim) * MILLI_PER_GPU)),
            )
        self.reclaim = bool(self.args.get("reclaim", True))
        self.pods = pods
        self.queue_of = [pods.owners[i] if pods.owners[i] in self.queues else None for i in range(len(pods))]
        self.cluster = cluster
        self._all = np.ones(cluster.n_nodes, dtype=bool)
        self._none = np.zeros(cluster.n_nodes, dtype=bool)
        self._seen: list[dict[int, int]] = [{} for _ in range(cluster.n_nodes)]
        self._pos = 0
        for n in range(cluster.n_nodes):
            self._reread(n)
        self._pos = len(cluster.changes)

    # -- usage, derived from the cluster's allocations ------------------------------------
    def _reread(self, n: int) -> None:
        """Replace node ``n``'s contribution to queue usage by what it holds now."""
        for pod, milli in self._seen[n].items():
            self.queues[self.queue_of[pod]].usage -= milli
        now = {
            pod: a.gpu_milli_total
            for pod, a in self.cluster.node_allocs[n].items()
            if pod >= 0 and self.queue_of[pod] is not None
        }
        for pod, milli in now.items():
            self.queues[self.queue_of[pod]].usage += milli
        self._seen[n] = now

    def sync(self) -> None:
        changed, self._pos = self.cluster.nodes_changed_since(self._pos)
        for n in changed:
            self._reread(n)

    # -- admission ------------------------------------------------------------------------
    def cohort_free(self, q: Queue) -> int:
        """Nominal quota of the whole cohort not in use (what can still be admitted in it)."""
        members = [o for o in self.queues.values() if o.cohort == q.cohort]
        return sum(o.nominal for o in members) - sum(o.usage for o in members)

    def admits(self, i: int) -> tuple[bool, str]:
        qn = self.queue_of[i]
        if qn is None:
            return True, ""
        q = self.queues[qn]
        req = int(self.pods.num_gpu[i]) * int(self.pods.gpu_milli[i])
        if req == 0:
            return True, ""
        over = q.usage + req - q.nominal
        if over > 0 and q.borrowing_limit is not None and over > q.borrowing_limit:
            return False, (
                f"ClusterQueue {qn}: borrowing {over / 1000:g} GPUs would exceed its borrowing limit "
                f"of {q.borrowing_limit / 1000:g}"
            )
        free = self.cohort_free(q)
        if req > free:
            lent = " (lent to borrowing queues)" if over <= 0 else ""
            return False, (
                f"ClusterQueue {qn}: insufficient unused quota in cohort {q.cohort}{lent}: "
                f"needs {req / 1000:g} GPUs, {max(free, 0) / 1000:g} unused"
            )
        return True, ""

    def filter(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState) -> FilterResult:
        self.sync()
        ok, why = self.admits(i)
        if ok:
            return FilterResult(self._all)
        return FilterResult(self._none, ((why, self._all),))

    def fits_node(self, pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        self.sync()
        return np.array([self.admits(int(i))[0] for i in idx], dtype=bool)

    # -- cluster-wide queueing hint and PostFilter (declared in sim/framework.py) -----------
    def retry_anywhere_after(self, released_pod: int, pending: np.ndarray) -> np.ndarray:
        """Pending pods whose admission may have changed because ``released_pod`` left (its cohort)."""
        qn = self.queue_of[released_pod]
        if qn is None:
            return np.zeros(len(pending), dtype=bool)
        cohort = self.queues[qn].cohort
        return np.array(
            [(q := self.queue_of[int(i)]) is not None and self.queues[q].cohort == cohort for i in pending], dtype=bool
        )

    def post_filter(
        self, pods: PodTable, i: int, running: dict[int, Allocation], start_s: np.ndarray
    ) -> list[Allocation]:
        """Kueue reclaim: pod ``i`` fits its queue's nominal quota but the cohort has lent that
        quota out; borrowers (queues above nominal) give GPUs back, lowest priority and latest
        started first, until the cohort has room. Empty if reclaim cannot help."""
        self.sync()
        qn = self.queue_of[i]
        if not self.reclaim or qn is None:
            return []
        q = self.queues[qn]
        req = int(self.pods.num_gpu[i]) * int(self.pods.gpu_milli[i])
        free = self.cohort_free(q)
        if req == 0 or q.usage + req > q.nominal or req <= free:
            return []  # not within its own nominal quota, or nothing to reclaim
        usage = {name: o.usage for name, o in self.queues.items()}
        borrowers = [
            a
            for p, a in running.items()
            if (o := self.queue_of[p]) is not None and o != qn and self.queues[o].cohort == q.cohort
        ]
        borrowers.sort(key=lambda a: (int(self.pods.priority[a.pod]), -float(start_s[a.pod]), a.pod))
        victims = []
        for a in borrowers:
            if req <= free:
                break
            o = self.queue_of[a.pod]
            if usage[o] <= self.queues[o].nominal:
                continue  # only queues above their nominal quota are borrowing
            usage[o] -= a.gpu_milli_total
            free += a.gpu_milli_total
            victims.append(a)
        return victims if req <= free else []
