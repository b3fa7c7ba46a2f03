"""The scheduler: runs one kube-scheduler cycle at a time over a :class:`ClusterState`.

PreFilter/Filter over all nodes at once (boolean masks), Score with weights and min-max
normalisation, the tie-break, Reserve of devices, and the PostFilter and queueing-hint entry
points the engine uses. The extension points themselves are declared in ``sim/framework.py``;
importing this module loads every plugin (``sim/plugins``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from gpuinfra.sim import plugins as _plugins  # noqa: F401  (fills the plugin registry)
from gpuinfra.sim.cluster import Allocation, ClusterState
from gpuinfra.sim.equivalence import NodeClasses
from gpuinfra.sim.framework import (
    REGISTRY,
    SUCCESS,
    Code,
    CycleState,
    FilterPlugin,
    FilterResult,
    Plugin,
    PostFilterPlugin,
    Profile,
    QueueSortPlugin,
    ReservePlugin,
    ScorePlugin,
    Status,
)
from gpuinfra.sim.workload import PodTable

EQUIVALENCE = True
"""Default of ``Framework.equivalence`` (tests switch it off to compare with the full path)."""
EQ_RETRY_CYCLES = 2_000
"""Cycles the per-class path stays suspended after the classes outnumbered its limit."""
EQ_CACHE_ENTRIES = 1_000_000
"""Cached (signature, class) answers kept before the cache starts over (bounds its memory)."""


class ScheduleResult(NamedTuple):
    """One cycle's outcome: its status, the allocation it reserved (None if it failed) and how
    many nodes passed the filters. (A NamedTuple: one is built per cycle.)"""

    status: Status
    alloc: Allocation | None = None
    feasible_nodes: int = 0


def _build(name: str, kind: type[Plugin], args: dict[str, Any] | None) -> Any:
    from gpuinfra.errors import UserError, did_you_mean

    cls = REGISTRY.get(name)
    if cls is None or not issubclass(cls, kind):
        choices = sorted(n for n, c in REGISTRY.items() if issubclass(c, kind))
        hint = did_you_mean(name, choices)
        raise UserError(
            f"unknown {kind.__name__} '{name}'",
            where=f"scheduler ({kind.__name__})",
            expected="one of " + ", ".join(choices),
            fix=hint if hint else "list plugins with `gpuinfra plugins`",
        )
    return cls(args)


class Framework:
    """Runs one scheduling cycle at a time over a :class:`ClusterState`."""

    def __init__(self, profile: Profile, cluster: ClusterState, pods: PodTable, rng: np.random.Generator):
        self.profile = profile
        self.cluster = cluster
        self.pods = pods
        self.rng = rng
        pa = profile.plugin_args
        self.queue_sort: QueueSortPlugin = _build(profile.queue_sort, QueueSortPlugin, pa.get(profile.queue_sort))
        self.filters: list[FilterPlugin] = [_build(n, FilterPlugin, pa.get(n)) for n in profile.filters]
        self.scores: list[tuple[ScorePlugin, float]] = [
            (_build(s.name, ScorePlugin, s.args or pa.get(s.name)), float(s.weight)) for s in profile.scores
        ]
        self.reserve_plugin: ReservePlugin = _build(profile.reserve, ReservePlugin, pa.get(profile.reserve))
        # Ties go to the lowest node index, or (tie_break: random) to the best-ranked node in one
        # seeded permutation per run: the FGD artifact prefixes node names with a seeded
        # rand.Perm index and breaks ties by name, which is the same rule.
        self.rank = rng.permutation(cluster.n_nodes) if profile.tie_break == "random" else None
        self.post_filters: list[PostFilterPlugin] = [f for f in self.filters if isinstance(f, PostFilterPlugin)]
        self._anywhere = [
            f for f in self.filters if type(f).retry_anywhere_after is not FilterPlugin.retry_anywhere_after
        ]
        for p in [self.queue_sort, *self.filters, *(s for s, _ in self.scores), self.reserve_plugin]:
            p.setup(cluster, pods, rng)
        self.cycles = 0
        self.lowest_priority = int(pods.priority.min()) if len(pods) else 0
        """The lowest pod priority of the run (priorities never change during a run)."""
        # Equivalence classes of nodes (sim/equivalence.py): when every filter and score is
        # class-pure, a cycle evaluates one node per class, cached per (pod signature, class).
        self.equivalence = EQUIVALENCE
        """Use the per-class path where the profile allows it (False: every cycle over all nodes)."""
        self.sig_of: list | None = None
        """Per pod, a hashable id of its ``PodTable.signature`` (equal ids for equal signatures), if the
        caller has it; else the signature is computed per cycle."""
        self._eq_mode = self._class_mode()
        self._eq: NodeClasses | None = None
        self._eq_cache: dict[object, dict[int, tuple | None]] = {}
        self._fit_cache: dict[object, dict[int, bool]] = {}
        self._eq_entries = 0
        self._eq_limit = max(64, cluster.n_nodes // 8)
        self._eq_retry_at = 0

    def _class_mode(self) -> str | None:
        """How a cycle may run over node classes: 'index' (the lowest-index feasible node wins),
        'single' (one positive-weight score, raw order), 'multi' (normalised weighted sum), or
        None (some plugin is not class-pure: every cycle runs over all nodes)."""
        if self.cluster.n_nodes == 0 or not all(f.class_pure for f in self.filters):
            return None
        if not self.scores or (len(self.scores) == 1 and self.scores[0][0].lowest_index and self.scores[0][1] > 0):
            return "index"
        if not all(p.class_pure for p, _ in self.scores):
            return None
        return "single" if len(self.scores) == 1 and self.scores[0][1] > 0 else "multi"

    def sort_key(self, i: int) -> tuple:
        return self.queue_sort.key(self.pods, i)

    def feasible(self, state: CycleState, i: int) -> tuple[np.ndarray, list[tuple[str, FilterResult]]]:
        mask: np.ndarray | None = None
        results: list[tuple[str, FilterResult]] = []
        for f in self.filters:
            r = f.filter(state, self.pods, i, self.cluster)
            results.append((f.name, r))
            mask = r.ok.copy() if mask is None else (mask & r.ok)
        if mask is None:
            mask = np.ones(self.cluster.n_nodes, dtype=bool)
        return mask, results

    def diagnose(self, results: list[tuple[str, FilterResult]]) -> Status:
        """kube-scheduler's FitError message: each node is charged to the first filter that rejected it."""
        n = self.cluster.n_nodes
        still = np.ones(n, dtype=bool)
        counts: dict[str, int] = {}
        for name, r in results:
            rejected = still & ~r.ok
            if rejected.any():
                named = np.zeros(n, dtype=bool)
                for reason, m in r.reason_masks():
                    c = int(np.count_nonzero(rejected & m))
                    if c:
                        counts[f"{reason} ({name})"] = counts.get(f"{reason} ({name})", 0) + c
                        named |= m
                other = int(np.count_nonzero(rejected & ~named))
                if other:
                    counts[f"rejected ({name})"] = counts.get(f"rejected ({name})", 0) + other
            still &= r.ok
        parts = [f"{c} {reason}" for reason, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        msg = f"0/{n} nodes are available: " + ", ".join(parts) + "."
        first = next((name for name, r in results if not r.ok.all()), "")
        return Status(Code.UNSCHEDULABLE, (msg,), first)

    def select(self, state: CycleState, i: int, nodes: np.ndarray) -> int:
        if not self.scores:
            return int(nodes[0])
        # NOTE: scores run even for a single feasible node: some (FGD, GpuPacking) also choose the
        # GPU on the node, which the reserve plugin uses.
        if len(self.scores) == 1 and self.scores[0][1] > 0:
            # NOTE: fast path. A positive weight and min-max normalisation (the framework's, or the
            # plugin's own: ScorePlugin.raw_score) keep the top set, so the best raw scores are the
            # best total scores.
            total = np.asarray(self.scores[0][0].raw_score(state, self.pods, i, self.cluster, nodes))
        else:
            total = np.zeros(len(nodes), dtype=np.float64)
            for plugin, weight in self.scores:
                raw = np.asarray(plugin.score(state, self.pods, i, self.cluster, nodes), dtype=np.float64)
                if plugin.normalize:
                    lo, hi = raw.min(), raw.max()
                    raw = (raw - lo) * (100.0 / (hi - lo)) if hi > lo else np.zeros_like(raw)
                total += weight * raw
        if self.rank is None:
            return int(nodes[int(np.argmax(total))])
        best = nodes[total == total.max()]
        return int(best[np.argmin(self.rank[best])])

    def schedule(self, i: int, explain: bool = True) -> ScheduleResult:
        """One cycle: filter all nodes, score the feasible ones, pick one, reserve devices.

        Where the profile allows (every plugin class-pure), the cycle runs over node classes
        instead (:meth:`_schedule_by_class`); a cycle with no feasible node always runs the full
        path, for kube-scheduler's diagnosis. With ``explain`` False a failed cycle skips that
        diagnosis (the FitError message, a count per filter and reason over every node): its
        status carries only the code and the first rejecting filter, for callers that read
        nothing but whether the pod was placed (the FGD fill)."""
        self.cycles += 1
        if self._eq_mode is not None and self.equivalence:
            res = self._schedule_by_class(i)
            if res is not None:
                return res
        state = CycleState()
        mask, results = self.feasible(state, i)
        nodes = np.flatnonzero(mask)
        if len(nodes) == 0:
            if not explain:
                first = next((name for name, r in results if not r.ok.all()), "")
                return ScheduleResult(Status(Code.UNSCHEDULABLE, (), first))
            return ScheduleResult(self.diagnose(results))
        node = self.select(state, i, nodes)
        got = self.reserve_plugin.reserve(state, self.pods, i, self.cluster, node)
        if isinstance(got, Status):
            return ScheduleResult(got, feasible_nodes=len(nodes))
        return ScheduleResult(SUCCESS, got, len(nodes))

    # -- the per-class path -------------------------------------------------------------------
    def _schedule_by_class(self, i: int) -> ScheduleResult | None:
        """The cycle over node classes; None where the full path must run (too many classes to
        gain, or no feasible node). Picks exactly the node the full path picks: the best total
        score, ties to the lowest node index (or lowest rank), as :meth:`select` does."""
        eq = self._classes()
        if eq is None:
            return None
        alive = eq.alive
        sig = self.sig_of[i] if self.sig_of is not None else self.pods.signature(i)
        cache = self._eq_cache.get(sig)
        if cache is None:
            cache = self._eq_cache[sig] = {}
        try:
            entries = [(c, cache[c]) for c in alive]
        except KeyError:
            self._fill_class_cache(i, cache, [c for c in alive if c not in cache])
            entries = [(c, cache[c]) for c in alive]
        count, first, mode = eq.count, eq.first, self._eq_mode
        feasible = 0
        if mode == "multi":
            feas = [c for c, e in entries if e is not None]
            if not feas:
                return None
            feasible = sum(count[c] for c in feas)
            total = np.zeros(len(feas), dtype=np.float64)
            for j, (plugin, weight) in enumerate(self.scores):
                raw = np.asarray(plugin.normalize_raw(np.array([cache[c][j] for c in feas])), dtype=np.float64)
                if plugin.normalize:  # the same expression as select's, over the same values
                    lo, hi = raw.min(), raw.max()
                    raw = (raw - lo) * (100.0 / (hi - lo)) if hi > lo else np.zeros_like(raw)
                total += weight * raw
            tied = [feas[j] for j in np.flatnonzero(total == total.max()).tolist()]
        else:
            # index: every feasible class ties (the lowest index wins); single: the best raw score
            best = None
            tied = []
            for c, e in entries:
                if e is None:
                    continue
                feasible += count[c]
                if mode == "index":
                    tied.append(c)
                    continue
                v = e[0]
                if best is None or v > best:
                    best = v
                    tied = [c]
                elif v == best:
                    tied.append(c)
            if not tied:
                return None
        if len(tied) == 1:
            node = first(tied[0])
        elif mode == "index":
            node = min(map(first, tied))
        else:
            order = eq.order
            node = min((order[n], n) for n in map(first, tied))[1]
        got = self.reserve_plugin.reserve(CycleState(), self.pods, i, self.cluster, node)
        if isinstance(got, Status):
            return ScheduleResult(got, feasible_nodes=feasible)
        return ScheduleResult(SUCCESS, got, feasible)

    def _classes(self) -> NodeClasses | None:
        """The node classes, in step with the cluster (built on first use); None while there are
        too many classes for the per-class path to gain (then it is suspended for a while, and
        the classes are rebuilt from scratch when it is tried again)."""
        eq = self._eq
        if eq is None:
            if self.cycles < self._eq_retry_at:
                return None
            order = self.rank if (self.rank is not None and self._eq_mode != "index") else None
            eq = self._eq = NodeClasses(self.cluster, order)
            self._eq_cache.clear()  # class ids are the new index's own
            self._fit_cache.clear()
            self._eq_entries = 0
        eq.sync()
        if len(eq.alive) > self._eq_limit:
            self._eq = None
            self._eq_retry_at = self.cycles + EQ_RETRY_CYCLES
            return None
        if self._eq_entries > EQ_CACHE_ENTRIES:
            self._eq_cache.clear()
            self._fit_cache.clear()
            self._eq_entries = 0
        return eq

    def _fill_class_cache(self, i: int, cache: dict[int, tuple | None], miss: list[int]) -> None:
        """Evaluate pod ``i``'s filters (all nodes) and scores (one node per missing class)."""
        state = CycleState()
        mask, _ = self.feasible(state, i)
        first = self._eq.first
        reps = [first(c) for c in miss]
        ok = mask[reps].tolist()
        feas = []
        for c, r, o in zip(miss, reps, ok):
            if o:
                feas.append((c, r))
            else:
                cache[c] = None
        self._eq_entries += len(miss)
        if not feas:
            return
        if self._eq_mode == "index":
            for c, _ in feas:
                cache[c] = ()
            return
        nodes = np.array([r for _, r in feas], dtype=np.int64)
        cols = [np.asarray(p.raw_score(state, self.pods, i, self.cluster, nodes)).tolist() for p, _ in self.scores]
        for (c, _), v in zip(feas, zip(*cols)):
            cache[c] = v

    def unreserve(self, alloc: Allocation) -> None:
        self.reserve_plugin.unreserve(CycleState(), alloc, self.cluster)

    def post_filter(self, i: int, running: dict[int, Allocation], start_s: np.ndarray) -> tuple[list[Allocation], str]:
        """The first PostFilter plugin that names victims for pod ``i`` wins: (victims, reason);
        ([], "") if none does."""
        for p in self.post_filters:
            victims = p.post_filter(self.pods, i, running, start_s)
            if victims:
                return victims, p.evict_reason
        return [], ""

    def retry_anywhere_after(self, released_pod: int, idx: np.ndarray) -> np.ndarray | None:
        """OR of the filters' cluster-wide queueing hints for pending pods ``idx``; None if no
        filter declares one (then only the released node is asked about)."""
        out = None
        for f in self._anywhere:
            m = f.retry_anywhere_after(released_pod, idx)
            if m is not None:
                out = m if out is None else (out | m)
        return out

    @property
    def has_anywhere_hint(self) -> bool:
        """True if some filter declares a cluster-wide queueing hint (:meth:`retry_anywhere_after`)."""
        return bool(self._anywhere)

    def fits_after_release(self, idx: list[int], node: int) -> list[bool]:
        """:meth:`may_fit_after_release` for a list of pods, as a list; with class-pure filters the
        answer is cached per (pod signature, class of ``node``), which is all it depends on."""
        if self._eq_mode is None or not self.equivalence or not idx:
            return self.may_fit_after_release(np.asarray(idx, dtype=np.int64), node).tolist()
        eq = self._classes()
        if eq is None:
            return self.may_fit_after_release(np.asarray(idx, dtype=np.int64), node).tolist()
        cid = eq.node_cid[node]
        sig_of, fit_cache = self.sig_of, self._fit_cache
        out = []
        for i in idx:
            sig = sig_of[i] if sig_of is not None else self.pods.signature(i)
            per = fit_cache.get(sig)
            if per is None:
                per = fit_cache[sig] = {}
            v = per.get(cid)
            if v is None:
                v = per[cid] = bool(self.may_fit_after_release(np.array([i], dtype=np.int64), node)[0])
                self._eq_entries += 1
            out.append(v)
        return out

    def may_fit_after_release(self, idx: np.ndarray, node: int) -> np.ndarray:
        """Queueing hint over pending pods ``idx`` after ``node`` released capacity."""
        ok: np.ndarray | None = None  # None: every pod still fits (skips the subset bookkeeping)
        for f in self.filters:
            if ok is None:
                ok = np.array(f.fits_node(self.pods, idx, self.cluster, node), dtype=bool)
                if ok.all():
                    ok = None
                continue
            if not ok.any():
                break
            sub = np.flatnonzero(ok)
            ok[sub] = f.fits_node(self.pods, idx[sub], self.cluster, node)
        return np.ones(len(idx), dtype=bool) if ok is None else ok


PluginFactory = Callable[[dict[str, Any] | None], Plugin]
