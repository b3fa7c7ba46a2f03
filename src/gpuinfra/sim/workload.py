"""Pods (the unit a scheduler places) as a struct of arrays, with a frozen per-pod view.

A pod asks for CPU millicores, memory MiB, ``num_gpu`` devices and ``gpu_milli`` of each (1000 =
whole GPU; less means a shared GPU, as in the Alibaba trace), optionally restricted to some GPU
models. It arrives at ``submit_s`` and, once started, runs ``duration_s`` seconds. If its owner
deletes it at ``delete_s`` (absolute time) it leaves then, whether it was pending (withdrawn) or
running (ended early).

The workload generators live here too, one module for every way a run gets its pods: the
scenario generator (:func:`generate`), trace resampling (:func:`resample`), the fill
experiment's tuning to a load (:func:`tune_to_load`), the mixed training + inference workload of
lab 6 (:func:`mixed_training_inference`) and the telemetry run's jobs (:func:`telemetry_mix`).
Every draw comes from a generator the caller takes from the run's seeded streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gpuinfra.errors import UserError
from gpuinfra.sim.cluster import MILLI_PER_GPU


@dataclass(frozen=True, slots=True)
class Toleration:
    """A Kubernetes toleration. ``operator`` Exists ignores ``value``; an empty ``effect`` matches all."""

    key: str
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if self.operator == "Exists":
            return self.key in ("", key)
        return self.key == key and self.value == value


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    submit_s: float
    duration_s: float
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_models: tuple[str, ...] = ()
    priority: int = 0
    qos: str = ""
    owner: str = "unknown"
    delete_s: float = math.nan
    job: str = ""
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    gang_size: int = 0
    mig_profile: str = ""
    """A MIG instance request (``nvidia.com/mig-<profile>``, mixed strategy); then num_gpu is 1 and
    gpu_milli the instance's compute share (see sim/plugins/mig.py)."""
    """Pods of ``job`` that must start together (all or none); 0 or 1 means no gang."""

    @property
    def gpu_milli_total(self) -> int:
        return self.num_gpu * self.gpu_milli


class PodTable:
    """All pods of a run, columnar. Index = pod id. Sorted by (submit_s, input order).

    Build it from a list of :class:`Pod` (``PodTable(pods)``) or, without a Python object per pod,
    from columns (:meth:`from_columns`, what the workload generator does for a million jobs).
    """

    _LISTS = ("names", "owners", "qos", "jobs", "gpu_models", "node_selector", "tolerations", "mig_profile")
    _ARRAYS = (
        "submit_s",
        "duration_s",
        "delete_s",
        "cpu_milli",
        "memory_mib",
        "num_gpu",
        "gpu_milli",
        "priority",
        "gang_size",
    )
    _DTYPES = {
        "submit_s": np.float64,
        "duration_s": np.float64,
        "delete_s": np.float64,
        "cpu_milli": np.int64,
        "memory_mib": np.int64,
        "num_gpu": np.int32,
        "gpu_milli": np.int32,
        "priority": np.int64,
        "gang_size": np.int32,
    }

    names: list[str]
    owners: list[str]
    qos: list[str]
    jobs: list[str]
    """The pod's job, or its own name when it belongs to none."""
    gpu_models: list[tuple[str, ...]]
    node_selector: list[tuple[tuple[str, str], ...]]
    tolerations: list[tuple[Toleration, ...]]
    mig_profile: list[str]
    submit_s: np.ndarray
    duration_s: np.ndarray
    delete_s: np.ndarray
    cpu_milli: np.ndarray
    memory_mib: np.ndarray
    num_gpu: np.ndarray
    gpu_milli: np.ndarray
    """Milli of each GPU; 0 for a pod without GPUs."""
    priority: np.ndarray
    gang_size: np.ndarray

    def __init__(self, pods: list[Pod]) -> None:
        t = PodTable.from_pods(pods, sort=True)
        self.__dict__.update(t.__dict__)

    @classmethod
    def from_pods(cls, pods: list[Pod], *, sort: bool = True) -> PodTable:
        """The pods' columns; in the given order when ``sort`` is False (row i = ``pods[i]``), else
        stably sorted by submit time (the run's order)."""
        t = cls.__new__(cls)
        t.names = [p.name for p in pods]
        t.owners = [p.owner for p in pods]
        t.qos = [p.qos for p in pods]
        t.jobs = [p.job or p.name for p in pods]
        t.gpu_models = [p.gpu_models for p in pods]
        t.node_selector = [p.node_selector for p in pods]
        t.tolerations = [p.tolerations for p in pods]
        t.mig_profile = [p.mig_profile for p in pods]
        t.submit_s = np.array([p.submit_s for p in pods], dtype=np.float64)
        t.duration_s = np.array([p.duration_s for p in pods], dtype=np.float64)
        t.delete_s = np.array([p.delete_s for p in pods], dtype=np.float64)
        t.cpu_milli = np.array([p.cpu_milli for p in pods], dtype=np.int64)
        t.memory_mib = np.array([p.memory_mib for p in pods], dtype=np.int64)
        t.num_gpu = np.array([p.num_gpu for p in pods], dtype=np.int32)
        t.gpu_milli = np.array([p.gpu_milli if p.num_gpu else 0 for p in pods], dtype=np.int32)
        t.priority = np.array([p.priority for p in pods], dtype=np.int64)
        t.gang_size = np.array([p.gang_size for p in pods], dtype=np.int32)
        return t.sorted_by_submit() if sort else t

    @classmethod
    def from_columns(cls, **cols: Any) -> PodTable:
        """A table from whole columns, rows in the given order (not sorted). Required: ``names``,
        ``submit_s``, ``duration_s``, ``cpu_milli``, ``memory_mib``, ``num_gpu``, ``gpu_milli``;
        the others default as in :class:`Pod` (``jobs`` defaults to the names). ``gpu_milli`` is
        zeroed where ``num_gpu`` is 0. Raises ValueError for an unknown column or a length mismatch."""
        unknown = set(cols) - set(cls._LISTS) - set(cls._ARRAYS)
        if unknown:
            raise ValueError(f"unknown PodTable columns: {sorted(unknown)}")
        n = len(cols["names"])
        t = cls.__new__(cls)
        defaults: dict[str, Any] = {
            "owners": "unknown",
            "qos": "",
            "gpu_models": (),
            "node_selector": (),
            "tolerations": (),
            "mig_profile": "",
        }
        for k in cls._LISTS:
            v = cols.get(k)
            if v is None:
                v = list(cols["names"]) if k == "jobs" else [defaults[k]] * n
            setattr(t, k, list(v))
        for k in cls._ARRAYS:
            v = cols.get(k)
            if v is None:
                v = np.full(n, math.nan if k == "delete_s" else 0)
            setattr(t, k, np.asarray(v, dtype=cls._DTYPES[k]).copy())
        t.gpu_milli[t.num_gpu == 0] = 0
        bad = [k for k in (*cls._LISTS, *cls._ARRAYS) if len(getattr(t, k)) != n]
        if bad:
            raise ValueError(f"PodTable columns of another length than names ({n}): {bad}")
        return t

    def take(self, idx: Any) -> PodTable:
        """Rows ``idx`` (indices, a boolean mask or a slice), in that order, as a new table."""
        if isinstance(idx, slice):
            rows = range(len(self))[idx]
            idx = np.arange(rows.start, rows.stop, rows.step, dtype=np.int64)
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx_list = idx.tolist()
        t = PodTable.__new__(PodTable)
        for k in self._LISTS:
            col = getattr(self, k)
            setattr(t, k, [col[i] for i in idx_list])
        for k in self._ARRAYS:
            setattr(t, k, getattr(self, k)[idx])
        return t

    def group(self, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Rows grouped by equal values of ``columns`` (attribute names): (group id per row, first
        row of each group), groups numbered in order of their first row. Hashes whole columns
        (pandas), no tuple per row."""
        import pandas as pd

        n = len(self)
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        frame = {}
        for c in columns:
            col = getattr(self, c)
            if isinstance(col, list):  # hashable objects (tuples, strings): their codes
                codes = {x: k for k, x in enumerate(dict.fromkeys(col))}
                col = np.fromiter(map(codes.__getitem__, col), dtype=np.int64, count=n)
            frame[c] = col
        ids = pd.DataFrame(frame).groupby(list(columns), sort=False).ngroup().to_numpy().astype(np.int64)
        _, first = np.unique(ids, return_index=True)
        return ids, first

    def sorted_by_submit(self) -> PodTable:
        """This table stably sorted by submit time (itself when it already is)."""
        if len(self) < 2 or bool((np.diff(self.submit_s) >= 0).all()):
            return self
        return self.take(np.argsort(self.submit_s, kind="stable"))

    def __len__(self) -> int:
        return len(self.names)

    def pod(self, i: int) -> Pod:
        return Pod(
            name=self.names[i],
            submit_s=float(self.submit_s[i]),
            duration_s=float(self.duration_s[i]),
            cpu_milli=int(self.cpu_milli[i]),
            memory_mib=int(self.memory_mib[i]),
            num_gpu=int(self.num_gpu[i]),
            gpu_milli=int(self.gpu_milli[i]),
            gpu_models=self.gpu_models[i],
            priority=int(self.priority[i]),
            qos=self.qos[i],
            owner=self.owners[i],
            delete_s=float(self.delete_s[i]),
            job=self.jobs[i],
            node_selector=self.node_selector[i],
            tolerations=self.tolerations[i],
            gang_size=int(self.gang_size[i]),
            mig_profile=self.mig_profile[i],
        )

    def signature(self, i: int) -> tuple:
        """What the filters read of a pod: pods with one signature are interchangeable to them."""
        return (
            int(self.cpu_milli[i]),
            int(self.memory_mib[i]),
            int(self.num_gpu[i]),
            int(self.gpu_milli[i]),
            self.gpu_models[i],
            self.node_selector[i],
            self.tolerations[i],
            self.owners[i],  # quota (KueueQuota) reads the pod's queue, named by its owner
            self.mig_profile[i],
        )

    def total_gpu_request(self) -> float:
        """Sum of requested GPUs (milli / 1000)."""
        return float((self.num_gpu.astype(np.int64) * self.gpu_milli).sum()) / MILLI_PER_GPU


# -- generators -----------------------------------------------------------------------------
def generate_table(g: Any, rng: np.random.Generator) -> PodTable:
    """Poisson arrivals at ``g.arrival_rate_per_hour``, log-normal durations (median
    ``g.duration_median_s``, sigma ``g.duration_sigma``), GPU counts, GPU shares, owners and MIG
    profiles drawn by the given weights: a scenario's ``workload.generator`` block
    (``io.scenario_schema.GeneratorSpec``), as a :class:`PodTable` in submit order, built from
    whole columns (no Python object per pod). Pod j is named ``job-{j:06d}``, belongs to no job
    (its ``jobs`` entry is its name), and has times rounded to the millisecond. Raises UserError
    for an unknown GPU model or MIG profile."""
    from gpuinfra.catalog import gpu_model

    n = g.jobs
    # the draws, in this order, from the caller's stream (the order fixes the bytes of every run)
    gaps = rng.exponential(3600.0 / g.arrival_rate_per_hour, size=n)
    t = np.cumsum(gaps)
    dur = g.duration_median_s * np.exp(g.duration_sigma * rng.standard_normal(n))
    counts = np.array(list(g.gpus.keys()))
    w = np.array(list(g.gpus.values()), dtype=float)
    k = rng.choice(counts, size=n, p=w / w.sum())
    shared = rng.random(n) < g.shared_gpu_fraction
    milli_choice = rng.choice(np.array(g.shared_gpu_milli), size=n)
    owners = list(g.owners.keys())
    ow = np.array(list(g.owners.values()), dtype=float)
    o = rng.choice(len(owners), size=n, p=ow / ow.sum())
    models = (gpu_model(g.gpu_model, where="workload.generator.gpu_model").name,) if g.gpu_model else ()
    mig_names = list(g.mig_profiles)
    mig_pick = is_mig = None
    milli_of: dict[str, int] = {}
    if g.mig_fraction > 0:
        if not models or not mig_names:
            raise UserError("mig_fraction needs gpu_model and mig_profiles", where="workload.generator.mig_fraction")
        from gpuinfra.models.mig import mig_milli

        mw = np.array(list(g.mig_profiles.values()), dtype=float)
        mig_pick = rng.choice(len(mig_names), size=n, p=mw / mw.sum())
        is_mig = rng.random(n) < g.mig_fraction
        for name in mig_names:
            try:
                milli_of[name] = mig_milli(models[0], name)
            except UserError as e:
                raise UserError(e.what, where="workload.generator.mig_profiles", expected=e.expected) from None
    ng = k.astype(np.int64)
    per = np.maximum(ng, 1)
    gpu_milli = np.where(shared & (ng == 1), milli_choice, MILLI_PER_GPU).astype(np.int64)
    mig_profile: list[str] | None = None
    if mig_pick is not None and is_mig is not None:
        as_mig = is_mig & (ng == 1)
        gpu_milli = np.where(as_mig, np.array([milli_of[x] for x in mig_names], dtype=np.int64)[mig_pick], gpu_milli)
        prof = np.array(mig_names + [""], dtype=object)
        mig_profile = prof[np.where(as_mig, mig_pick, len(mig_names))].tolist()
    names = [f"job-{j:06d}" for j in range(n)]
    # np.round is what round(np.float64, 3) computes, element by element
    return PodTable.from_columns(
        names=names,
        jobs=names,
        owners=np.array(owners, dtype=object)[o].tolist(),
        submit_s=np.round(t, 3),
        duration_s=np.round(dur, 3),
        cpu_milli=g.cpu_milli_per_gpu * per,
        memory_mib=g.memory_mib_per_gpu * per,
        num_gpu=ng,
        gpu_milli=np.where(ng > 0, gpu_milli, 0),
        gpu_models=[models if x else () for x in (ng > 0).tolist()] if models else None,
        mig_profile=mig_profile,
    )


def generate(g: Any, rng: np.random.Generator) -> list[Pod]:
    """:func:`generate_table` as a list of :class:`Pod` (``job`` empty, as a generated pod
    belongs to no job). Raises UserError as it does."""
    t = generate_table(g, rng)
    return [
        Pod(
            name=t.names[i],
            submit_s=sub,
            duration_s=dur,
            cpu_milli=cpu,
            memory_mib=mem,
            num_gpu=ng,
            gpu_milli=milli,
            gpu_models=t.gpu_models[i],
            owner=t.owners[i],
            mig_profile=t.mig_profile[i],
        )
        for i, (sub, dur, cpu, mem, ng, milli) in enumerate(
            zip(
                t.submit_s.tolist(),
                t.duration_s.tolist(),
                t.cpu_milli.tolist(),
                t.memory_mib.tolist(),
                t.num_gpu.tolist(),
                t.gpu_milli.tolist(),
                strict=True,
            )
        )
    ]


def resample(pods: list[Pod], scale: int, rng: np.random.Generator) -> list[Pod]:
    """``scale`` x as many pods, drawn with replacement; each keeps its own times and shape."""
    from dataclasses import replace

    pick = rng.integers(0, len(pods), size=len(pods) * scale)
    return [
        replace(pods[int(i)], name=f"{pods[int(i)].name}~{j}", job=f"{pods[int(i)].job}~{j}")
        for j, i in enumerate(pick)
    ]


def tune_to_load(base: list[Pod], capacity_gpus: int, load: float, rng: np.random.Generator) -> list[Pod]:
    """The fill experiment's workload (Weng et al., ATC'23, the artifact's tuneUpPods): resample
    ``base`` until requested GPUs reach ``load`` x ``capacity_gpus``, then shuffle; pod j arrives
    at t = j and never leaves. Raises ValueError when ``base`` requests no GPUs."""
    ordered = sorted(base, key=lambda p: p.name)
    target = load * capacity_gpus * MILLI_PER_GPU
    total = sum(p.gpu_milli_total for p in ordered)
    pods = list(ordered)
    if total <= 0:
        raise ValueError("the workload requests no GPUs")
    k = 0
    while total < target:
        p = ordered[int(rng.integers(len(ordered)))]
        pods.append(
            Pod(
                f"{p.name}~{k}",
                0.0,
                math.inf,
                p.cpu_milli,
                p.memory_mib,
                p.num_gpu,
                p.gpu_milli,
                p.gpu_models,
                p.priority,
                p.qos,
                p.owner,
                math.nan,
                f"{p.job}~{k}",
            )
        )
        total += p.gpu_milli_total
        k += 1
    perm = rng.permutation(len(pods))
    # arrival order is the submit time: pod j of the shuffled list arrives at t = j. A workload that
    # already asks for more than the target (load below its own demand) is cut where arrived
    # demand reaches the target.
    out: list[Pod] = []
    arrived = 0
    for j, q in enumerate(pods[i] for i in perm):
        if arrived >= target:
            break
        out.append(replace(q, submit_s=float(j), duration_s=math.inf, delete_s=math.nan))
        arrived += q.gpu_milli_total
    return out


def tune_to_load_table(base: list[Pod], capacity_gpus: int, load: float, rng: np.random.Generator) -> PodTable:
    """:func:`tune_to_load` as a :class:`PodTable`, built from columns: the same draws from
    ``rng``, the same pods in the same order (``PodTable(tune_to_load(...))``), without a
    ``Pod`` object per resampled pod. Raises ValueError when ``base`` requests no GPUs."""
    ordered = sorted(base, key=lambda p: p.name)
    src = PodTable.from_pods(ordered, sort=False)
    gmt = src.num_gpu.astype(np.int64) * np.array([p.gpu_milli for p in ordered], dtype=np.int64)
    gmt_list = gmt.tolist()
    target = load * capacity_gpus * MILLI_PER_GPU
    total = sum(gmt_list)
    if total <= 0:
        raise ValueError("the workload requests no GPUs")
    n = len(ordered)
    picks: list[int] = []
    while total < target:  # one draw per added pod, as tune_to_load draws them
        i = int(rng.integers(n))
        picks.append(i)
        total += gmt_list[i]
    row_src = np.concatenate([np.arange(n, dtype=np.int64), np.array(picks, dtype=np.int64)])
    perm = rng.permutation(len(row_src))
    # cut where arrived demand (before the pod) reaches the target
    arrived_before = np.concatenate([[0], np.cumsum(gmt[row_src[perm]])[:-1]])
    over = np.flatnonzero(arrived_before >= target)
    perm = perm[: int(over[0])] if len(over) else perm
    rows = perm.tolist()
    srcs = row_src[perm]
    t = src.take(srcs)
    copy_k = [r - n for r in rows]  # >= 0: the k-th resampled copy
    names, jobs = [], []
    for k, s_ in zip(copy_k, srcs.tolist(), strict=True):
        p = ordered[s_]
        if k < 0:
            names.append(p.name)
            jobs.append(p.job or p.name)
        else:
            names.append(f"{p.name}~{k}")
            jobs.append(f"{p.job}~{k}")
    t.names, t.jobs = names, jobs
    copies = np.array(copy_k, dtype=np.int64) >= 0
    if copies.any():  # a copy keeps the request, not the selector, tolerations, gang or MIG profile
        for k_ in np.flatnonzero(copies).tolist():
            t.node_selector[k_], t.tolerations[k_], t.mig_profile[k_] = (), (), ""
        t.gang_size[copies] = 0
    t.submit_s = np.arange(len(rows), dtype=np.float64)
    t.duration_s = np.full(len(rows), math.inf)
    t.delete_s = np.full(len(rows), math.nan)
    return t


def mixed_training_inference(n: int, rng: np.random.Generator) -> list[Pod]:
    """Competing demand: long multi-GPU training (priority 0) and short shared-GPU inference (priority 100).

    Illustrative parameters (not measurements): 12 jobs an hour, training 40% of them, 2/4/8 GPUs,
    log-normal duration with median 3 h; inference 60%, 250 or 500 milli of one GPU, median 20 min.
    On 96 GPUs that offers a load near saturation (the lab computes and reports it), where the
    policy has to choose who waits.
    """
    t = np.cumsum(rng.exponential(3600.0 / 12.0, size=n))
    pods = []
    for j in range(n):
        if rng.random() < 0.4:
            g = int(rng.choice([2, 4, 8], p=[0.4, 0.35, 0.25]))
            pods.append(
                Pod(
                    f"train-{j:05d}",
                    float(t[j]),
                    float(3 * 3600 * np.exp(0.8 * rng.standard_normal())),
                    8000 * g,
                    65536 * g,
                    g,
                    1000,
                    (),
                    0,
                    "BE",
                    "training",
                )
            )
        else:
            m = int(rng.choice([250, 500]))
            pods.append(
                Pod(
                    f"infer-{j:05d}",
                    float(t[j]),
                    float(1200 * np.exp(0.6 * rng.standard_normal())),
                    4000,
                    16384,
                    1,
                    m,
                    (),
                    100,
                    "LS",
                    "inference",
                )
            )
    return pods


@dataclass(frozen=True)
class TelemetryMix:
    """The telemetry run's job mix (obs/simulate.py states where each number comes from)."""

    widths: tuple[int, ...]
    width_p: tuple[float, ...]
    profiles: tuple[str, ...]
    offered_load: float
    cpu_milli_per_gpu: int
    mem_mib_per_gpu: int


def telemetry_mix(
    rng: np.random.Generator, n_gpus: int, gpn: int, horizon: float, rounds: int, mix: TelemetryMix
) -> tuple[list[Pod], list[str], list[float]]:
    """Jobs of the telemetry run: an initial fill of the cluster at t = 0, then Poisson arrivals at
    ``mix.offered_load``; one forgotten notebook per round of incidents. Returns (pods, profiles,
    memory fractions) in submit order."""
    widths = [w for w in mix.widths if w <= gpn]
    p = np.array([mix.width_p[mix.widths.index(w)] for w in widths])
    p = p / p.sum()
    mean_gpu_s = float(np.dot(widths, p)) * 2.0 * 3600  # durations U(1, 3) h: mean 2 h
    rate = mix.offered_load * n_gpus / mean_gpu_s
    rows: list[tuple[float, int, float, str, float]] = []
    held, t = 0, 0.0
    while True:
        w = int(rng.choice(widths, p=p))
        if held + w > n_gpus:
            break
        held += w
        rows.append(
            (
                0.0,
                w,
                float(rng.uniform(1.0, 3.0) * 3600),
                str(rng.choice(mix.profiles)),
                float(rng.uniform(0.5, 0.85)),
            )
        )
    while True:
        t += float(rng.exponential(1.0 / rate))
        if t >= horizon * 0.9:
            break
        w = int(rng.choice(widths, p=p))
        rows.append(
            (t, w, float(rng.uniform(1.0, 3.0) * 3600), str(rng.choice(mix.profiles)), float(rng.uniform(0.5, 0.85)))
        )
    pods, profiles, mem = [], [], []
    for k, (sub, w, dur, prof, mf) in enumerate(rows):
        team = "inference" if prof == "decode" else "research"
        pods.append(
            Pod(
                f"{team}-job-{k:03d}",
                sub,
                dur,
                mix.cpu_milli_per_gpu * w,
                mix.mem_mib_per_gpu * w,
                w,
                1000,
                owner=team,
            )
        )
        profiles.append(prof)
        mem.append(mf)
    for r in range(rounds):
        sub = float(rng.uniform(0.3, 0.5) * horizon)
        pods.append(
            Pod(
                f"notebooks-nb-{r:03d}",
                sub,
                3 * 3600.0,
                mix.cpu_milli_per_gpu,
                mix.mem_mib_per_gpu,
                1,
                1000,
                priority=1,
                owner="notebooks",
            )
        )
        profiles.append("idle")
        mem.append(0.3)
    return pods, profiles, mem
