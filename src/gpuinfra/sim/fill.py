"""The fill experiment of the FGD paper (ATC '23, Sec. 6): place pods one at a time, no departures.

Workload construction (facts/scheduling.md 2.1 and 2.6):
1. the pod list is sorted by name, then pods are drawn with replacement until the requested
   GPUs reach ``load`` x capacity (1.3 by default); the original pods are all kept;
2. the whole list is shuffled with the seed (and, when ``load`` is below the workload's own
   demand, cut where arrived demand reaches the target);
3. pods are scheduled one by one; a pod that fails is recorded by type and skipped (never
   retried, never departed);
4. at every 1% of *arrived* GPU demand (requested GPUs of pods that have arrived, as % of
   capacity) the allocation ratio, unallocated share, fragmentation amount and fragmentation
   ratio are recorded.

Fragmentation is measured with FGD's definition against the typical pods of the *original*
workload (models/fragmentation.py), whatever policy places the pods, so all policies are judged
by one ruler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuinfra.models.fragmentation import typical_pods
from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState, NodePool
from gpuinfra.sim.framework import Profile, ScoreSpec
from gpuinfra.sim.kernel import Rngs
from gpuinfra.sim.nodestate import FragmentationTracker
from gpuinfra.sim.plugins.fgd import pod_classes
from gpuinfra.sim.scheduler import Framework
from gpuinfra.sim.workload import Pod, PodTable, tune_to_load, tune_to_load_table

POLICIES: dict[str, str] = {
    "random": "Random",
    "dotprod": "DotProd",
    "clustering": "GpuClustering",
    "packing": "GpuPacking",
    "bestfit": "BestFit",
    "fgd": "FGD",
    "clustering-milli": "GpuClusteringByMilli",
    "packing-tightest": "GpuPackingTightest",
    "firstfit": "FirstFit",
    "spread": "LeastAllocated",
    "mostallocated": "MostAllocated",
}
"""Policy name (``--policy``) -> score plugin. Every policy runs with PolicyDevices and the seeded
node-permutation tie-break, as the FGD artifact does."""
PAPER_POLICIES = ("random", "dotprod", "clustering", "packing", "bestfit", "fgd")
"""The six policies of the FGD paper (ATC '23), each as its artifact computes it (plugins' docstrings)."""
BEYOND_PAPER_POLICIES = ("clustering-milli", "packing-tightest")
"""gpuinfra's own variants of the paper's clustering and packing ideas (not the paper's baselines)."""
FAIL_TYPES = ("cpu_only", "shared_gpu", "one_gpu", "multi_gpu")


def policy_profile(policy: str) -> Profile:
    return Profile(
        queue_sort="FIFO",
        filters=("NodeResourcesFit", "GpuModel"),
        scores=(ScoreSpec(POLICIES[policy]),),
        reserve="PolicyDevices",
        tie_break="random",
    )


def pod_type(num_gpu: int, gpu_milli: int) -> str:
    if num_gpu == 0:
        return "cpu_only"
    if gpu_milli < MILLI_PER_GPU:
        return "shared_gpu"
    return "one_gpu" if num_gpu == 1 else "multi_gpu"


@dataclass
class FillResult:
    workload: str
    policy: str
    seed: int
    rows: list[dict] = field(default_factory=list)
    pods: int = 0
    placed: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    failed_gpu_milli: int = 0
    typical_classes: int = 0
    typical_coverage: float = 0.0
    cycles: int = 0
    max_frag_check_error: float = 0.0
    snapshot: dict | None = None
    """Per-node pods and allocated GPUs when arrived load first reached ``snapshot_pct``."""


def run_fill(
    pools: list[NodePool],
    base: list[Pod],
    policy: str,
    seed: int,
    *,
    load: float = 1.3,
    workload: str = "",
    check_every: int = 0,
    snapshot_pct: int | None = None,
) -> FillResult:
    """One fill run. ``check_every`` > 0 recomputes fragmentation from scratch that often (tests)."""
    cluster = ClusterState.from_pools(pools)
    rngs = Rngs(seed)
    pods = tune_to_load_table(base, cluster.n_gpus, load, rngs["workload"])
    typical = typical_pods(pod_classes(PodTable(base)))
    fw = Framework(policy_profile(policy), cluster, pods, rngs["scheduler"])
    tracker = FragmentationTracker(cluster, typical)
    cap = float(cluster.capacity_milli.sum() - cluster.unavail_milli.sum())
    res = FillResult(
        workload,
        policy,
        seed,
        pods=len(pods),
        typical_classes=len(typical.classes),
        typical_coverage=typical.coverage,
        failed={t: 0 for t in FAIL_TYPES},
    )
    arrived = 0.0
    next_pct = 1
    for i in range(len(pods)):
        r = fw.schedule(i, explain=False)  # a fill counts failures; it never reads the FitError
        k, m = int(pods.num_gpu[i]), int(pods.gpu_milli[i])
        if r.alloc is None:
            res.failed[pod_type(k, m)] += 1
            res.failed_gpu_milli += k * m
        else:
            res.placed += 1
        arrived += k * m
        if 100.0 * arrived / cap >= next_pct:
            frag = tracker.sync()
            if check_every and i % check_every == 0:
                res.max_frag_check_error = max(res.max_frag_check_error, abs(frag - tracker.recompute()))
            alloc = float(cluster.alloc_milli.sum())
            idle = cap - alloc
            row = {
                "alloc_pct": 100.0 * alloc / cap,
                "unalloc_pct": 100.0 * idle / cap,
                "frag_amount_pct": 100.0 * frag / cap,
                "frag_ratio_pct": 100.0 * frag / idle if idle > 0 else 0.0,
            }
            while 100.0 * arrived / cap >= next_pct:
                res.rows.append({"arrived_pct": next_pct, **row})
                if snapshot_pct is not None and next_pct == snapshot_pct:
                    res.snapshot = {
                        "pods_per_node": [len(a) for a in cluster.node_allocs],
                        "gpus_per_node": [
                            sum(x.gpu_milli_total for x in a.values()) / MILLI_PER_GPU for a in cluster.node_allocs
                        ],
                        "node_gpus": cluster.gpu_count.tolist(),
                    }
                next_pct += 1
    res.cycles = fw.cycles
    return res


tune_pods = tune_to_load  # the name before the workload generators moved to sim/workload
