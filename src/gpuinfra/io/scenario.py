"""Scenario files: YAML validated with pydantic; errors name the file, line and field path.

A scenario says which cluster (the openb node list or node pools of catalog shapes), which
workload (a trace or a generator), which scheduler profile, which seed and horizon, and how GPU
time is priced. ``gpuinfra schema`` prints the JSON Schema of :class:`Scenario`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from gpuinfra.analysis.accounting import RunMeta
from gpuinfra.catalog import gpu_hour_price, gpu_model, node_shape
from gpuinfra.errors import UserError
from gpuinfra.models.cost import PriceBook
from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState, NodePool, Taint
from gpuinfra.sim.framework import Profile, ScoreSpec
from gpuinfra.sim.kernel import Rngs
from gpuinfra.sim.workload import Pod, PodTable


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaintSpec(_Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class PoolSpec(_Model):
    name: str
    count: int = Field(ge=1, description="number of nodes in the pool")
    shape: str | None = Field(None, description="a catalog node shape (`gpuinfra catalog shapes`)")
    gpu_model: str | None = None
    gpus_per_node: int | None = Field(None, ge=0, le=64)
    cpu_milli: int | None = Field(None, ge=1)
    memory_mib: int | None = Field(None, ge=1)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSpec] = Field(default_factory=list)
    mig_layout: list[str] | None = Field(
        None,
        description="MIG instances on every GPU (mig-parted devices: all), e.g. [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]",
    )
    timeslice_replicas: int | None = Field(
        None,
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
    replicate: int = Field(1, ge=1, description="copies of every pool (what-if scale-out)")

    @model_validator(mode="after")
    def _one_source(self) -> ClusterSpec:
        if (self.openb is None) == (not self.pools):
            raise ValueError("give exactly one of 'openb' or 'pools'")
        return self


class GeneratorSpec(_Model):
    """A synthetic workload: Poisson arrivals, log-normal durations, categorical GPU counts.

    Every parameter is the user's; nothing here claims to be a real-world figure.
    """

    jobs: int = Field(ge=1)
    arrival_rate_per_hour: float = Field(gt=0)
    duration_median_s: float = Field(gt=0)
    duration_sigma: float = Field(1.0, ge=0, description="sigma of ln(duration)")
    gpus: dict[int, float] = Field(default_factory=lambda: {1: 1.0}, description="GPU count -> weight")
    shared_gpu_fraction: float = Field(0.0, ge=0, le=1, description="share of 1-GPU jobs that ask < 1000 milli")
    shared_gpu_milli: list[int] = Field(
        default_factory=lambda: [250, 500], description="milli values drawn for shared jobs"
    )
    cpu_milli_per_gpu: int = Field(8000, ge=0)
    memory_mib_per_gpu: int = Field(32768, ge=0)
    owners: dict[str, float] = Field(default_factory=lambda: {"team-a": 1.0})
    gpu_model: str | None = None
    mig_fraction: float = Field(0.0, ge=0, le=1, description="share of 1-GPU jobs that ask a MIG instance")
    mig_profiles: dict[str, float] = Field(default_factory=dict, description="MIG profile -> weight (needs gpu_model)")

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
    limit: int | None = Field(None, ge=1, description="use only the first N pods by submit time")
    scale: int = Field(1, ge=1, description="resample the pods to this many times their number (what-if load)")
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
    weight: float = Field(1.0, ge=0)
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
        0.0, ge=0, description="withdraw a gang not placed this long after it is complete (0: wait forever)"
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
    nominal_gpus: float = Field(ge=0, description="GPUs (milli-GPU sum, all models) the queue is guaranteed")
    borrowing_limit_gpus: float | None = Field(None, ge=0, description="most it may borrow (None: unlimited)")


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
    rack_nodes: int = Field(4, ge=1, description="scope rack: consecutive nodes per rack")
    action: Literal["restart_app", "reset_gpu", "reboot_node", "drain_and_replace"]
    repair_s: float = Field(ge=0, description="how long the action takes the GPU or node out of service")
    detect_s: float = Field(
        0.0,
        ge=0,
        description="GPU faults: time until the fault is detected; until then the "
        "poisoned GPU still takes pods, which crash",
    )
    crash_s: float = Field(60.0, gt=0, description="how long a pod on a poisoned GPU runs before it fails")
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
    lemon_factor: float = Field(10.0, ge=1)
    source: str = Field(description="where the rate comes from (a paper, a fleet's own data); required")


class PriceOverride(_Model):
    on_demand_usd_per_gpu_hour: float | None = Field(None, ge=0)
    spot_usd_per_gpu_hour: float | None = Field(None, ge=0)
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
    seed: int = Field(0, ge=0)
    horizon_s: float | None = Field(None, gt=0, description="stop at this time; default: when the last pod leaves")
    sample_interval_s: float = Field(3600.0, gt=0, description="accounting interval for metrics")
    cluster: ClusterSpec
    workload: WorkloadSpec
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    prices: PricesSpec = Field(default_factory=PricesSpec)
    quotas: QuotasSpec | None = None
    faults: list[FaultSpec] = Field(default_factory=list)
    _label: str = PrivateAttr("scenario")
    _text: str | None = PrivateAttr(None)

    def locate(self, field: str) -> str:
        """'FILE:LINE (field)' for a dotted field path such as cluster.pools[0].gpu_model."""
        line = None
        if self._text is not None:
            path: list[Any] = []
            for part in re.findall(r"[^.\[\]]+|\[\d+\]", field.split(" ")[0]):
                path.append(int(part[1:-1]) if part.startswith("[") else part)
            try:
                line = _line_of(yaml.compose(self._text), tuple(path))
            except yaml.YAMLError:
                line = None
        return f"{self._label}:{line} ({field})" if line else f"{self._label} ({field})"


# -- loading ---------------------------------------------------------------------------------


def _line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    for key in path:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(key):
                    nxt = v if key != path[-1] else k
                    break
            if nxt is None:
                return node.start_mark.line + 1
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None


def load_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario file; returns it and the directory paths are relative to."""
    p = Path(path)
    label = str(path)
    if not p.exists():
        raise UserError(
            "scenario file not found",
            where=label,
            fix="check the path, or run `gpuinfra simulate` with no argument for the default scenario",
        )
    text = p.read_text()
    return parse_scenario(text, label), p.resolve().parent


def parse_scenario(text: str, label: str) -> Scenario:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        raise UserError(f"YAML syntax error: {getattr(e, 'problem', e)}", where=where, expected="valid YAML") from None
    if not isinstance(data, dict):
        raise UserError("a scenario must be a YAML mapping", where=label, expected="keys name, cluster, workload, ...")
    try:
        sc = Scenario.model_validate(data)
        sc._label, sc._text = label, text
        return sc
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(x for x in err["loc"])
        field = ".".join(str(x) if not isinstance(x, int) else f"[{x}]" for x in loc).replace(".[", "[")
        line = _line_of(root, loc)
        where = f"{label}:{line}" if line else label
        more = f" (and {len(e.errors()) - 1} more problem(s))" if len(e.errors()) > 1 else ""
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise UserError(
            f"{field or '(top level)'}: {msg}{more}",
            where=where,
            fix="see `gpuinfra schema` for every field and its type",
        ) from None


def default_scenario_text() -> str:
    return resources.files("gpuinfra").joinpath("scenarios", "openb-default.yaml").read_text()


def builtin_scenarios() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("gpuinfra").joinpath("scenarios").iterdir() if p.name.endswith(".yaml")
    )


def builtin_scenario_text(name: str) -> str:
    if name not in builtin_scenarios():
        raise UserError(f"unknown built-in scenario '{name}'", expected="one of " + ", ".join(builtin_scenarios()))
    return resources.files("gpuinfra").joinpath("scenarios", f"{name}.yaml").read_text()


# -- building a run --------------------------------------------------------------------------


@dataclass
class Built:
    scenario: Scenario
    cluster: ClusterState
    pods: PodTable
    profile: Profile
    prices: PriceBook
    skipped_impossible: list[tuple[str, str]]
    trace_label: str
    seed: int

    def meta(self) -> RunMeta:
        return RunMeta(self.scenario.name, self.seed, self.trace_label, tuple(self.skipped_impossible))


def _pools(spec: ClusterSpec) -> list[NodePool]:
    if spec.openb:
        from gpuinfra.io.traces import openb_node_list, read_openb_nodes

        pools = read_openb_nodes(openb_node_list(spec.openb))
    else:
        pools = []
        for k, ps in enumerate(spec.pools):
            where = f"cluster.pools[{k}]"
            if ps.shape:
                sh = node_shape(ps.shape, where=f"{where}.shape")
                model, gpus, cpu, mem = sh.gpu_model, sh.gpus, sh.cpu_milli, sh.memory_mib
            else:
                model = gpu_model(ps.gpu_model, where=f"{where}.gpu_model").name if ps.gpu_model else None
                gpus, cpu, mem = ps.gpus_per_node or 0, ps.cpu_milli or 0, ps.memory_mib or 0
            if ps.gpu_model and ps.shape:
                model = gpu_model(ps.gpu_model, where=f"{where}.gpu_model").name
            labels = dict(ps.labels)
            if model and gpus:
                labels.setdefault("nvidia.com/gpu.product", model)
                labels.setdefault("nvidia.com/gpu.count", str(gpus))
            layout: tuple[str, ...] = ()
            if ps.mig_layout:
                from gpuinfra.io.sharing_export import check_layout

                if not model or not gpu_model(model).mig:
                    raise UserError(
                        f"pool '{ps.name}' has no MIG-capable GPU",
                        where=f"{where}.mig_layout",
                        expected="A100, H100, H200 or B200",
                    )
                try:
                    check_layout(model, list(ps.mig_layout))
                except UserError as e:
                    raise UserError(e.what, where=f"{where}.mig_layout", expected=e.expected) from None
                layout = tuple(ps.mig_layout)
                labels.setdefault("nvidia.com/mig.strategy", "mixed")
                labels.setdefault("nvidia.com/mig.config", "gpuinfra-" + "-".join(sorted(layout)))
            replicas = ps.timeslice_replicas or 0
            if replicas:
                if layout:
                    raise UserError(
                        "a pool cannot run MIG and time-slicing here",
                        where=f"{where}.timeslice_replicas",
                        expected="one of mig_layout or timeslice_replicas",
                    )
                labels.setdefault("nvidia.com/gpu.replicas", str(replicas))
                labels["nvidia.com/gpu.product"] = labels.get("nvidia.com/gpu.product", model or "") + "-SHARED"
            pools.append(
                NodePool(
                    name=ps.name,
                    gpu_model=model,
                    gpus_per_node=gpus,
                    cpu_milli=cpu,
                    memory_mib=mem,
                    count=ps.count,
                    labels=tuple(sorted(labels.items())),
                    taints=tuple(Taint(t.key, t.value, t.effect) for t in ps.taints),
                    shape=ps.shape,
                    mig_layout=layout,
                    timeslice_replicas=replicas,
                )
            )
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise UserError("two pools share a name", where="cluster.pools", expected="unique pool names")
    if spec.replicate > 1:
        out = []
        for r in range(spec.replicate):
            for p in pools:
                nn = tuple(f"{n}-r{r}" for n in p.node_names) if p.node_names else None
                out.append(
                    NodePool(
                        f"{p.name}-r{r}",
                        p.gpu_model,
                        p.gpus_per_node,
                        p.cpu_milli,
                        p.memory_mib,
                        p.count,
                        p.labels,
                        p.taints,
                        p.shape,
                        nn,
                        p.mig_layout,
                        p.timeslice_replicas,
                    )
                )
        pools = out
    return pools


def _generate(g: GeneratorSpec, rng: np.random.Generator) -> list[Pod]:
    gaps = rng.exponential(3600.0 / g.arrival_rate_per_hour, size=g.jobs)
    t = np.cumsum(gaps)
    dur = g.duration_median_s * np.exp(g.duration_sigma * rng.standard_normal(g.jobs))
    counts = np.array(list(g.gpus.keys()))
    w = np.array(list(g.gpus.values()), dtype=float)
    k = rng.choice(counts, size=g.jobs, p=w / w.sum())
    shared = rng.random(g.jobs) < g.shared_gpu_fraction
    milli_choice = rng.choice(np.array(g.shared_gpu_milli), size=g.jobs)
    owners = list(g.owners.keys())
    ow = np.array(list(g.owners.values()), dtype=float)
    o = rng.choice(len(owners), size=g.jobs, p=ow / ow.sum())
    models = (gpu_model(g.gpu_model, where="workload.generator.gpu_model").name,) if g.gpu_model else ()
    mig_names = list(g.mig_profiles)
    mig_pick = None
    if g.mig_fraction > 0:
        if not models or not mig_names:
            raise UserError("mig_fraction needs gpu_model and mig_profiles", where="workload.generator.mig_fraction")
        from gpuinfra.sim.plugins.mig import mig_milli

        mw = np.array(list(g.mig_profiles.values()), dtype=float)
        mig_pick = rng.choice(len(mig_names), size=g.jobs, p=mw / mw.sum())
        is_mig = rng.random(g.jobs) < g.mig_fraction
        milli_of = {}
        for n in mig_names:
            try:
                milli_of[n] = mig_milli(models[0], n)
            except UserError as e:
                raise UserError(e.what, where="workload.generator.mig_profiles", expected=e.expected) from None
    pods = []
    for j in range(g.jobs):
        ng = int(k[j])
        milli = int(milli_choice[j]) if (shared[j] and ng == 1) else MILLI_PER_GPU
        pods.append(
            Pod(
                name=f"job-{j:06d}",
                submit_s=float(round(t[j], 3)),
                duration_s=float(round(dur[j], 3)),
                cpu_milli=g.cpu_milli_per_gpu * max(ng, 1),
                memory_mib=g.memory_mib_per_gpu * max(ng, 1),
                num_gpu=ng,
                gpu_milli=milli if ng else 0,
                gpu_models=models if ng else (),
                owner=owners[o[j]],
            )
        )
        if mig_pick is not None and is_mig[j] and ng == 1:
            from dataclasses import replace

            prof = mig_names[int(mig_pick[j])]
            pods[-1] = replace(pods[-1], gpu_milli=milli_of[prof], mig_profile=prof)
    return pods


def _resample(pods: list[Pod], scale: int, rng: np.random.Generator) -> list[Pod]:
    """``scale`` x as many pods, drawn with replacement; each keeps its own times and shape."""
    from dataclasses import replace

    pick = rng.integers(0, len(pods), size=len(pods) * scale)
    return [
        replace(pods[int(i)], name=f"{pods[int(i)].name}~{j}", job=f"{pods[int(i)].job}~{j}")
        for j, i in enumerate(pick)
    ]


def _impossible(cluster: ClusterState, pods: list[Pod]) -> list[tuple[int, str]]:
    """Pods that no node of the empty cluster could hold, with the reason."""
    bad = []
    cache: dict[tuple, str | None] = {}
    for i, p in enumerate(pods):
        key = (p.cpu_milli, p.memory_mib, p.num_gpu, p.gpu_models)
        if key not in cache:
            ok = (cluster.cpu_cap >= p.cpu_milli) & (cluster.mem_cap >= p.memory_mib)
            why = None
            if not ok.any():
                why = (
                    f"asks for {p.cpu_milli} mCPU and {p.memory_mib} MiB; the largest node has "
                    f"{int(cluster.cpu_cap.max())} mCPU and {int(cluster.mem_cap.max())} MiB"
                )
            if p.num_gpu:
                gok = ok & (cluster.gpu_count >= p.num_gpu)
                if p.gpu_models:
                    allowed = np.array(
                        [cluster.models[m] in p.gpu_models if m >= 0 else False for m in cluster.node_model]
                    )
                    gok &= allowed
                if why is None and not gok.any():
                    models = "|".join(p.gpu_models) or "any model"
                    why = f"asks for {p.num_gpu} GPU(s) of {models}; no node with enough CPU and memory has that"
            cache[key] = why
        if cache[key]:
            bad.append((i, cache[key]))
    # a gang needs all its pods at once: more GPUs than the cluster has of its models can never fit
    gangs: dict[str, list[int]] = {}
    for i, p in enumerate(pods):
        if p.gang_size > 1:
            gangs.setdefault(p.job, []).append(i)
    flagged = {i for i, _ in bad}
    for job, idx in gangs.items():
        need = sum(pods[i].gpu_milli_total for i in idx) / MILLI_PER_GPU
        models = pods[idx[0]].gpu_models
        have = sum(
            int(cluster.gpu_count[n])
            for n in range(cluster.n_nodes)
            if cluster.node_model[n] >= 0 and (not models or cluster.models[cluster.node_model[n]] in models)
        )
        if need > have:
            why = f"gang {job} needs {need:g} GPUs at once; the cluster has {have} of its models"
            bad += [(i, why) for i in idx if i not in flagged]
    return bad


def _price_book(spec: PricesSpec, models: tuple[str, ...]) -> PriceBook:
    usd: dict[str, float | None] = {}
    src: dict[str, str] = {}
    overrides = {gpu_model(k, where=f"prices.overrides.{k}").name: v for k, v in spec.overrides.items()}
    for m in models:
        ov = overrides.get(m)
        if ov and ov.same_as is None:
            val = ov.on_demand_usd_per_gpu_hour if spec.basis == "on_demand" else ov.spot_usd_per_gpu_hour
            usd[m], src[m] = val, f"override: {ov.source}"
            continue
        target = gpu_model(ov.same_as, where=f"prices.overrides.{m}.same_as").name if ov and ov.same_as else m
        gm = gpu_model(target)
        if gm.opaque or gm.price_name is None:
            usd[m], src[m] = None, "no catalog price (opaque or unlisted model) and no override"
            continue
        p = gpu_hour_price(target, cloud=spec.cloud, region=spec.region)
        usd[m] = p.on_demand_usd if spec.basis == "on_demand" else p.spot_usd
        src[m] = p.source + (f"; priced as {target}: {ov.source}" if ov else "")
    return PriceBook(usd, src, spec.basis)


FIELD_ROOTS = ("cluster", "workload", "scheduler", "prices", "quotas", "faults")


def with_quotas(profile: Profile, quotas: QuotasSpec | None) -> Profile:
    """The profile with the KueueQuota filter configured from a ``quotas:`` block (if any)."""
    if quotas is None:
        return profile
    from dataclasses import replace as dc_replace

    filters = profile.filters if "KueueQuota" in profile.filters else (*profile.filters, "KueueQuota")
    args = dict(profile.plugin_args)
    args["KueueQuota"] = {"queues": [q.model_dump() for q in quotas.queues], "reclaim": quotas.reclaim}
    return dc_replace(profile, filters=filters, plugin_args=args)


def build(sc: Scenario, base_dir: Path | None, *, seed: int | None = None) -> Built:
    """Turn a validated scenario into a cluster, pods, profile and price book.

    Errors found here (an unknown GPU model, a plugin name, an impossible pod) name the
    scenario file and the line of the field they concern.
    """
    try:
        return _build(sc, base_dir, seed=seed)
    except UserError as e:
        if e.where and e.where.startswith(FIELD_ROOTS):
            e.where = sc.locate(e.where)
            e.args = (e.render(),)
        raise


def _build(sc: Scenario, base_dir: Path | None, *, seed: int | None = None) -> Built:
    from gpuinfra.io.traces import openb_pod_list, read_generic, read_openb_pods

    seed = sc.seed if seed is None else seed
    rngs = Rngs(seed)
    cluster = ClusterState.from_pools(_pools(sc.cluster))
    w = sc.workload
    if w.generator is not None:
        pods = _generate(w.generator, rngs["workload"])
        label = "generator"
    else:
        assert w.trace is not None
        if w.trace.startswith("openb:"):
            src = openb_pod_list(w.trace.split(":", 1)[1])
            pods = read_openb_pods(src, pending=w.pending_pods)
            label = src.label
        else:
            path = Path(w.trace)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            pods = read_generic(path, label=w.trace)
            label = w.trace
    pods.sort(key=lambda p: p.submit_s)
    if w.limit:
        pods = pods[: w.limit]
    if w.scale > 1:
        pods = _resample(pods, w.scale, rngs["workload"])
    bad = _impossible(cluster, pods)
    skipped: list[tuple[str, str]] = []
    if bad:
        if w.impossible == "error":
            i, why = bad[0]
            raise UserError(
                f"pod '{pods[i].name}' can never be scheduled: {why}"
                + (f" ({len(bad) - 1} more such pod(s))" if len(bad) > 1 else ""),
                where=label,
                fix="add a node pool that can hold it, fix the request, or set workload.impossible: skip "
                "to count and skip such pods",
            )
        drop = {i for i, _ in bad}
        skipped = [(pods[i].name, why) for i, why in bad]
        pods = [p for k, p in enumerate(pods) if k not in drop]
    if not pods:
        raise UserError("no pods left to simulate", where=label)
    profile = with_quotas(sc.scheduler.profile(), sc.quotas)
    if any(p.mig_layout for p in cluster.pools):
        # MIG pools: whole GPUs are not advertised there, and MIG requests need a free instance
        from dataclasses import replace

        filters = profile.filters if "MigFit" in profile.filters else (*profile.filters, "MigFit")
        reserve = "MigDevices" if profile.reserve == "FirstFitDevices" else profile.reserve
        profile = replace(profile, filters=filters, reserve=reserve)
    return Built(
        sc,
        cluster,
        PodTable(pods),
        profile,
        _price_book(sc.prices, cluster.models),
        skipped,
        label,
        seed,
    )
