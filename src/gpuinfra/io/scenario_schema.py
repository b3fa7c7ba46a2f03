"""Scenario schema: the pydantic models a scenario file is validated against.

A scenario says which cluster (the openb node list or node pools of catalog shapes), which
workload (a trace or a generator), which scheduler profile, which seed and horizon, and how GPU
time is priced. ``gpuinfra schema`` prints the JSON Schema of :class:`Scenario`.

Every model refuses unknown keys and non-finite numbers (``.inf``, ``.nan``); every number has a
range; integer fields are strict (``count: true`` or ``count: "2"`` is refused, not read as 1 or
2). The upper bounds below are sanity limits, not claims about hardware: they are far above any
real node (the largest catalog node shapes have 8 GPUs, a few hundred cores and a few TiB) so
that only a typo or a hostile file reaches them. Whether a run fits this machine is a separate,
estimated check (:mod:`gpuinfra.io.budget`). Loading with file:line messages is
:mod:`gpuinfra.io.scenario_load`; turning a scenario into a cluster and pods is
:mod:`gpuinfra.io.scenario_build`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from gpuinfra.sim.autoscaler import AutoscalerSpec
from gpuinfra.sim.cluster import MILLI_PER_GPU
from gpuinfra.sim.execution import ExecutionSpec
from gpuinfra.sim.framework import Profile, ScoreSpec
from gpuinfra.sim.spot import SpotSpec
from gpuinfra.sim.upgrade import UpgradeSpec

MAX_NODES = 1_000_000
"""Sanity bound on nodes in a pool and on ``replicate`` (the largest published GPU clusters have
tens of thousands of nodes)."""
MAX_CPU_MILLI = 100_000_000
"""100,000 cores per node: a sanity bound, about 200x the largest catalog node."""
MAX_MEMORY_MIB = 1 << 30
"""1 PiB per node: a sanity bound, about 100x the largest catalog node."""
MAX_TIME_S = 1e10
"""About 317 years: any time or duration in a scenario."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TaintSpec(_Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class PoolSpec(_Model):
    name: str
    count: int = Field(strict=True, ge=1, le=MAX_NODES, description="number of nodes in the pool")
    shape: str | None = Field(None, description="a catalog node shape (`gpuinfra catalog shapes`)")
    gpu_model: str | None = None
    gpus_per_node: int | None = Field(None, ge=0, le=64, strict=True)
    cpu_milli: int | None = Field(None, ge=1, le=MAX_CPU_MILLI, strict=True)
    memory_mib: int | None = Field(None, ge=1, le=MAX_MEMORY_MIB, strict=True)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSpec] = Field(default_factory=list)
    mig_layout: list[str] | None = Field(
        None,
        description="MIG instances on every GPU (mig-parted devices: all), e.g. [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]",
    )
    timeslice_replicas: int | None = Field(
        None,
        strict=True,
        ge=2,
        le=48,
        description="k8s-device-plugin time-slicing: replicas advertised per GPU (1-GPU pods take one)",
    )

    @model_validator(mode="after")
    def _shape_or_explicit(self) -> PoolSpec:
        explicit = [self.gpus_per_node, self.cpu_milli, self.memory_mib]
        if self.shape is None and any(v is None for v in explicit):
            raise ValueError("give either 'shape' or all of gpus_per_node, cpu_milli and memory_mib")
        if self.shape is None and (self.gpus_per_node or 0) > 0 and not self.gpu_model:
            raise ValueError("a pool with GPUs needs 'gpu_model'")
        return self


class ClusterSpec(_Model):
    openb: Literal["gpu_node", "all_node"] | None = Field(
        None, description="use the Alibaba openb node list (1,213 GPU nodes, or all 1,523 nodes)"
    )
    pools: list[PoolSpec] = Field(default_factory=list)
    replicate: int = Field(1, strict=True, ge=1, le=MAX_NODES, description="copies of every pool (what-if scale-out)")

    @model_validator(mode="after")
    def _one_source(self) -> ClusterSpec:
        if (self.openb is None) == (not self.pools):
            raise ValueError("give exactly one of 'openb' or 'pools'")
        return self


class GeneratorSpec(_Model):
    """A synthetic workload: Poisson arrivals, log-normal durations, categorical GPU counts.

    Every parameter is the user's; nothing here claims to be a real-world figure.
    """

    jobs: int = Field(
        strict=True, ge=1, le=10**12, description="number of jobs (bounded by the run budget, io/budget.py)"
    )
    arrival_rate_per_hour: float = Field(gt=0, le=1e9)
    duration_median_s: float = Field(gt=0, le=MAX_TIME_S)
    duration_sigma: float = Field(1.0, ge=0, le=10, description="sigma of ln(duration)")
    gpus: dict[Annotated[int, Field(ge=0, le=64)], Annotated[float, Field(ge=0, le=1e9)]] = Field(
        default_factory=lambda: {1: 1.0}, description="GPU count -> weight"
    )
    shared_gpu_fraction: float = Field(0.0, ge=0, le=1, description="share of 1-GPU jobs that ask < 1000 milli")
    shared_gpu_milli: list[Annotated[int, Field(ge=1, le=MILLI_PER_GPU - 1, strict=True)]] = Field(
        default_factory=lambda: [250, 500],
        min_length=1,
        description="milli values drawn for shared jobs: a share of one GPU, 1..999",
    )
    cpu_milli_per_gpu: int = Field(8000, strict=True, ge=0, le=MAX_CPU_MILLI)
    memory_mib_per_gpu: int = Field(32768, strict=True, ge=0, le=MAX_MEMORY_MIB)
    owners: dict[str, Annotated[float, Field(ge=0, le=1e9)]] = Field(default_factory=lambda: {"team-a": 1.0})
    gpu_model: str | None = None
    mig_fraction: float = Field(0.0, ge=0, le=1, description="share of 1-GPU jobs that ask a MIG instance")
    mig_profiles: dict[str, Annotated[float, Field(ge=0, le=1e9)]] = Field(
        default_factory=dict, description="MIG profile -> weight (needs gpu_model)"
    )

    @field_validator("gpus", "owners")
    @classmethod
    def _weights(cls, v: dict) -> dict:
        if not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return v


class WorkloadSpec(_Model):
    trace: str | None = Field(None, description="openb:NAME (a packaged pod list) or a path to a generic trace")
    generator: GeneratorSpec | None = None
    pending_pods: Literal["run", "exclude"] = Field(
        "run", description="openb pods that were never scheduled: replay them (withdrawn at deletion) or leave out"
    )
    limit: int | None = Field(
        None, strict=True, ge=1, le=10**12, description="use only the first N pods by submit time"
    )
    scale: int = Field(
        1, strict=True, ge=1, le=100_000, description="resample the pods to this many times their number (what-if load)"
    )
    impossible: Literal["error", "skip"] = Field(
        "error", description="a pod no node could ever hold: stop with an error, or skip it and count it"
    )

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadSpec:
        if (self.trace is None) == (self.generator is None):
            raise ValueError("give exactly one of 'trace' or 'generator'")
        return self


class ScoreEntry(_Model):
    name: str
    weight: float = Field(1.0, ge=0, le=1e6)
    args: dict[str, Any] = Field(default_factory=dict)


class SchedulerSpec(_Model):
    queue_sort: str = "PrioritySort"
    filters: list[str] = Field(
        default_factory=lambda: ["NodeResourcesFit", "GpuModel", "TaintToleration", "NodeAffinity"]
    )
    scores: list[ScoreEntry] = Field(default_factory=lambda: [ScoreEntry(name="FirstFit")])
    reserve: str = "FirstFitDevices"
    tie_break: Literal["first", "random"] = "first"
    preemption: bool = Field(True, description="let unschedulable pods evict lower-priority pods (kube default)")
    queue_mode: Literal["kube", "strict_fifo", "backfill"] = Field(
        "kube", description="kube: any pod that fits runs; strict_fifo: only the head; backfill: EASY backfill"
    )
    gang_timeout_s: float = Field(
        0.0,
        ge=0,
        le=MAX_TIME_S,
        description="withdraw a gang not placed this long after it is complete (0: wait forever)",
    )
    plugin_args: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def profile(self) -> Profile:
        return Profile(
            queue_sort=self.queue_sort,
            filters=tuple(self.filters),
            scores=tuple(ScoreSpec(s.name, s.weight, dict(s.args)) for s in self.scores),
            reserve=self.reserve,
            tie_break=self.tie_break,
            preemption=self.preemption,
            gang_timeout_s=self.gang_timeout_s,
            queue_mode=self.queue_mode,
            plugin_args={k: dict(v) for k, v in self.plugin_args.items()},
        )


class QueueSpec(_Model):
    name: str = Field(description="ClusterQueue name; pods whose owner has this name use it")
    cohort: str | None = Field(None, description="queues of one cohort lend each other unused quota")
    nominal_gpus: float = Field(ge=0, le=1e7, description="GPUs (milli-GPU sum, all models) the queue is guaranteed")
    borrowing_limit_gpus: float | None = Field(None, ge=0, le=1e7, description="most it may borrow (None: unlimited)")


class QuotasSpec(_Model):
    """Kueue-style quotas: ClusterQueues with nominal quota, borrowing within a cohort, reclaim."""

    queues: list[QueueSpec]
    reclaim: bool = Field(True, description="a queue within its nominal quota evicts borrowers of its cohort")

    @field_validator("queues")
    @classmethod
    def _unique(cls, v: list[QueueSpec]) -> list[QueueSpec]:
        names = [q.name for q in v]
        if len(set(names)) != len(names):
            raise ValueError("queue names must be unique")
        return v


class FaultSpec(_Model):
    """A fault class injected into a replay (sim/faults.py)."""

    name: str
    rate_per_day: float = Field(ge=0, description="faults per GPU-day (scope gpu), node-day (node) or rack-day (rack)")
    scope: Literal["gpu", "node", "rack"] = Field(
        "gpu", description="rack: every node of the struck node's rack at once (a switch, a PDU)"
    )
    rack_nodes: int = Field(4, strict=True, ge=1, le=MAX_NODES, description="scope rack: consecutive nodes per rack")
    action: Literal["restart_app", "reset_gpu", "reboot_node", "drain_and_replace"]
    repair_s: float = Field(ge=0, le=MAX_TIME_S, description="how long the action takes the GPU or node out of service")
    detect_s: float = Field(
        0.0,
        ge=0,
        le=MAX_TIME_S,
        description="GPU faults: time until the fault is detected; until then the "
        "poisoned GPU still takes pods, which crash",
    )
    crash_s: float = Field(
        60.0, gt=0, le=MAX_TIME_S, description="how long a pod on a poisoned GPU runs before it fails"
    )
    signal: (
        Literal["process_exit", "xid_log", "dcgm_health", "heartbeat", "nccl_watchdog", "step_progress", "manual"]
        | None
    ) = Field(
        None,
        description="GPU faults: the signal that detects it; its delay is drawn per fault "
        "(catalog/data/detection_signals.csv) instead of detect_s",
    )
    lemon_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of nodes that fail lemon_factor times as often (lemon nodes)"
    )
    lemon_factor: float = Field(10.0, ge=1, le=1e6)
    source: str = Field(description="where the rate comes from (a paper, a fleet's own data); required")


class PriceOverride(_Model):
    on_demand_usd_per_gpu_hour: float | None = Field(None, ge=0, le=1e6)
    spot_usd_per_gpu_hour: float | None = Field(None, ge=0, le=1e6)
    same_as: str | None = Field(None, description="price this model as another catalog model")
    source: str = Field(description="where the number (or the mapping) comes from; required")

    @model_validator(mode="after")
    def _something(self) -> PriceOverride:
        if self.same_as is None and self.on_demand_usd_per_gpu_hour is None:
            raise ValueError("give 'same_as' or 'on_demand_usd_per_gpu_hour'")
        return self


class PricesSpec(_Model):
    cloud: str | None = Field(None, description="restrict catalog rows to one cloud (aws, gcp, azure)")
    region: str | None = None
    basis: Literal["on_demand", "spot"] = "on_demand"
    overrides: dict[str, PriceOverride] = Field(default_factory=dict)


class Scenario(_Model):
    name: str
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1, strict=True)
    horizon_s: float | None = Field(
        None, gt=0, le=MAX_TIME_S, description="stop at this time; default: when the last pod leaves"
    )
    sample_interval_s: float = Field(3600.0, gt=0, le=MAX_TIME_S, description="accounting interval for metrics")
    cluster: ClusterSpec
    workload: WorkloadSpec
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    prices: PricesSpec = Field(default_factory=PricesSpec)
    quotas: QuotasSpec | None = None
    faults: list[FaultSpec] = Field(default_factory=list)
    execution: ExecutionSpec | None = Field(None, description="workload kinds by owner (sim/execution.py)")
    upgrade: UpgradeSpec | None = Field(None, description="a node-pool upgrade during the run (sim/upgrade.py)")
    spot: SpotSpec | None = Field(None, description="spot pools and their reclaims (sim/spot.py)")
    autoscaler: AutoscalerSpec | None = Field(
        None, description="a cluster-autoscaler scaling node pools up and down (sim/autoscaler.py)"
    )
    _label: str = PrivateAttr("scenario")
    _text: str | None = PrivateAttr(None)

    def locate(self, field: str) -> str:
        """'FILE:LINE (field)' for a dotted field path such as cluster.pools[0].gpu_model."""
        line = None
        if self._text is not None:
            from gpuinfra.io.scenario_load import line_in_text

            path: list[Any] = []
            for part in re.findall(r"[^.\[\]]+|\[\d+\]", field.split(" ")[0]):
                path.append(int(part[1:-1]) if part.startswith("[") else part)
            line = line_in_text(self._text, tuple(path))
        return f"{self._label}:{line} ({field})" if line else f"{self._label} ({field})"
