"""A scheduler framework in the shape of kube-scheduler's (queue sort, filter, score with
normalisation, reserve/unreserve, bind), vectorised over nodes.

Each hook of a plugin sees the whole cluster as arrays and answers for all nodes at once (a
boolean mask for a filter, a score vector for a score plugin), which is what makes a cycle cost
microseconds per node instead of a Python call per node. Every unsuccessful cycle produces a
:class:`Status` with a code, reasons and the plugin that rejected each node, which is how the
simulator answers "why is this pod pending?" the way kube-scheduler does
("0/1213 nodes are available: 549 Insufficient nvidia.com/gpu, ...").

A plugin is one file in ``gpuinfra/sim/plugins/`` with a ``@register`` decorator and one entry
in ``plugins/__init__.py``; a scenario's scheduler profile names and weights plugins. This module
holds the extension points (the interfaces plugins implement) and the profile; the scheduler that
runs them is ``sim/scheduler.py``, which loads the plugins (plugins import this module, never the
scheduler, so the two never import each other).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np

from gpuinfra.sim.cluster import Allocation, ClusterState
from gpuinfra.sim.workload import PodTable


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    SKIP = 4


@dataclass(frozen=True, slots=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code == Code.SUCCESS

    def message(self) -> str:
        return "; ".join(self.reasons) if self.reasons else self.code.name


SUCCESS = Status(Code.SUCCESS)


@dataclass
class CycleState:
    """Per-cycle scratch space shared by a pod's plugins; cloned for what-ifs."""

    data: dict[str, Any] = field(default_factory=dict)

    def clone(self) -> CycleState:
        return CycleState(dict(self.data))


@dataclass(frozen=True, slots=True)
class FilterResult:
    ok: np.ndarray
    """bool[n_nodes]: nodes this plugin accepts."""
    reasons: tuple[tuple[str, np.ndarray], ...] | Callable[[], tuple[tuple[str, np.ndarray], ...]] = ()
    """(reason, bool[n_nodes]) pairs naming why rejected nodes were rejected; a node may have several.
    May be a function returning them, called only when a cycle fails (the diagnosis needs them;
    a successful cycle does not), so a filter need not build the masks every cycle."""

    def reason_masks(self) -> tuple[tuple[str, np.ndarray], ...]:
        """The (reason, mask) pairs, computed now if they were given as a function."""
        r = self.reasons
        return r() if callable(r) else r


class Plugin:
    """Base of every plugin. ``args`` come from the scenario's scheduler profile."""

    name: ClassVar[str] = ""
    class_pure: ClassVar[bool] = False
    """True if, for every node, this plugin's Filter answer (and Score, for a score plugin) is a
    function of the pod's ``PodTable.signature`` and the node's equivalence-class key alone
    (``sim/equivalence.py``: pool, free CPU, free memory, up, sorted free milli per device), a
    score is computed node by node (no normalisation over the nodes passed in), and nothing is
    written to the CycleState. When every filter and score of a profile is class-pure, the
    scheduler evaluates one node per class and caches the answers (same results, fewer calls)."""

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        self.args = dict(args or {})

    def setup(self, cluster: ClusterState, pods: PodTable, rng: np.random.Generator) -> None:
        """Called once per run before the first cycle (precompute per-pod or per-node data)."""


class QueueSortPlugin(Plugin):
    static_key: ClassVar[bool] = False
    """True if a pod's key never changes during a run (it reads only the pod's own fields), so a
    key computed when the pod was queued may be compared later instead of computing it again."""

    def key(self, pods: PodTable, i: int) -> tuple:
        raise NotImplementedError


class FilterPlugin(Plugin):
    def filter(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState) -> FilterResult:
        raise NotImplementedError

    def fits_node(self, pods: PodTable, idx: np.ndarray, cluster: ClusterState, node: int) -> np.ndarray:
        """Queueing hint: for pending pods ``idx``, may each now pass this filter on ``node``?

        Used after ``node`` released capacity (only that node changed). The default asks
        :meth:`filter` pod by pod; plugins override it with a vectorised check.
        """
        out = np.empty(len(idx), dtype=bool)
        for j, i in enumerate(idx):
            out[j] = bool(self.filter(CycleState(), pods, int(i), cluster).ok[node])
        return out

    def retry_anywhere_after(self, released_pod: int, pending: np.ndarray) -> np.ndarray | None:
        """Cluster-wide queueing hint: after ``released_pod`` left, which ``pending`` pods may now
        pass this filter on *any* node? None (the default) means "only the released node
        matters", which is true of every filter whose answer depends on the node alone. A filter
        over shared state (a quota) answers with a bool mask, as kube-scheduler's QueueingHintFn
        does for cluster-wide events."""
        return None


class PostFilterPlugin(Plugin):
    """kube-scheduler's PostFilter extension point: runs when no node passed Filter for pod ``i``.

    It may name running allocations to evict so that ``i`` can fit (Kueue's quota reclaim;
    DefaultPreemption is built in, sim/preemption.py). The engine evicts them and retries.
    """

    evict_reason: ClassVar[str] = "evicted by PostFilter"
    """What the evicted pods' events say."""

    def post_filter(
        self, pods: PodTable, i: int, running: dict[int, Allocation], start_s: np.ndarray
    ) -> list[Allocation]:
        raise NotImplementedError


class ScorePlugin(Plugin):
    normalize: ClassVar[bool] = True
    """Min-max normalise raw scores to [0, 100] (kube-scheduler's NormalizeScore)."""
    lowest_index: ClassVar[bool] = False
    """True if, alone in a profile with a positive weight, this score always picks the
    lowest-index feasible node (FirstFit): the scheduler may then skip calling it."""

    def score(self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raw_score(
        self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, nodes: np.ndarray
    ) -> np.ndarray:
        """The scores of ``nodes`` before any normalisation the plugin does inside :meth:`score`
        (most plugins have none: then the same values). ``score`` must equal
        ``normalize_raw(raw_score(...))`` over the same nodes, and ``normalize_raw`` must keep the
        top set: the nodes with the greatest raw value are exactly those with the greatest score
        (a min-max normalisation does). The scheduler relies on both: one positive-weight score
        picks among the best raw values, and the per-class path caches raw values per node class
        and normalises them over the feasible classes (the same minimum and maximum as over the
        feasible nodes)."""
        return self.score(state, pods, i, cluster, nodes)

    def normalize_raw(self, raw: np.ndarray) -> np.ndarray:
        """The plugin's own normalisation of :meth:`raw_score` values over the feasible nodes
        (identity unless ``score`` normalises internally)."""
        return raw


class ReservePlugin(Plugin):
    """Chooses the devices on the chosen node and reserves them (allocate); unreserve undoes it."""

    def reserve(
        self, state: CycleState, pods: PodTable, i: int, cluster: ClusterState, node: int
    ) -> Allocation | Status:
        raise NotImplementedError

    def unreserve(self, state: CycleState, alloc: Allocation, cluster: ClusterState) -> None:
        cluster.release(alloc)


REGISTRY: dict[str, type[Plugin]] = {}


def register(cls: type[Plugin]) -> type[Plugin]:
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    if cls.name in REGISTRY:
        raise TypeError(f"plugin name {cls.name} registered twice")
    REGISTRY[cls.name] = cls
    return cls


@dataclass(frozen=True, slots=True)
class ScoreSpec:
    name: str
    weight: float = 1.0
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    """A scheduler profile: which plugins run at each extension point, with weights and args."""

    queue_sort: str = "PrioritySort"
    filters: tuple[str, ...] = ("NodeResourcesFit", "GpuModel", "TaintToleration", "NodeAffinity")
    scores: tuple[ScoreSpec, ...] = (ScoreSpec("FirstFit"),)
    reserve: str = "FirstFitDevices"
    tie_break: str = "first"
    preemption: bool = True
    gang_timeout_s: float = 0.0
    queue_mode: str = "kube"
    """kube (any pod that fits runs), strict_fifo, or backfill (EASY); see sim/ordered.py."""
    """A complete gang not placed within this time is withdrawn (0: wait forever)."""
    """DefaultPreemption: an unschedulable pod may evict lower-priority pods (sim/preemption.py)."""
    """'first' (lowest node index among the best) or 'random' (seeded, like kube's selectHost)."""
    plugin_args: dict[str, dict[str, Any]] = field(default_factory=dict)
