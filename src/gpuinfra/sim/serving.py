"""Request-level simulation of LLM serving replicas on the kernel, with batching policies and autoscalers.

A run builds a cluster of 8-GPU nodes of one GPU model (``ClusterState``), a
:class:`~gpuinfra.sim.kernel.Kernel` and a :class:`~gpuinfra.sim.recorder.Recorder`; every replica
holds its ``tp`` GPUs through ``ClusterState.allocate`` from the moment it starts loading until it
is drained and released, so the run's GPU-time (and its cost) is what the replicas held, and the
cluster invariants are checked at the end (``require(check_invariants(...))``) with the serving
invariants of this module: every request that arrived is served exactly once and no replica's KV
cache ever holds more blocks than it has.

Batching policies (``Batching.kind``), as the runtimes implement them:

- ``single``: one request at a time (a plain model server).
- ``dynamic``: Triton's dynamic batcher (``max_batch_size``, ``preferred_batch_sizes``,
  ``max_queue_delay_s``; docs/user_guide/batcher.md): a batch is sent when it reaches the maximum
  or a preferred size, or when its oldest request has waited the delay; the batch then runs to
  its longest output (request-level batching, padded), and each request reserves KV for its
  prompt + output at admission (no paging).
- ``continuous``: vLLM (iteration-level scheduling, PagedAttention): waiting requests join at
  the next step if ``max_num_seqs``, ``max_num_batched_tokens`` and the free KV blocks above the
  watermark allow; a prefill step runs only prompts (decodes wait); blocks are allocated as
  sequences grow, ``block_size`` tokens each; when a decode step finds no free block the most
  recently admitted sequence is preempted by recompute (its blocks freed, its prompt and the
  tokens generated so far prefilled again later) or by swap (its KV copied to host memory over
  PCIe, back when blocks allow) (vLLM's and Vidur's ``vllm`` scheduler).
- ``chunked``: Sarathi-Serve: every step carries all decodes plus prefill chunks up to
  ``chunk_size`` tokens in all (stall-free), so decodes never pause behind a long prompt.

Steps cost what :class:`gpuinfra.models.serving.StepModel` says. Runs of identical decode-only
steps are one event (their total time is a closed form, since each step adds n tokens to the
KV read), cut short at the next step boundary when a request arrives that could join.

Arrivals (one stream, ``Rngs(seed).stream("serving.arrivals")``): Poisson, Gamma (bursty, with a
coefficient of variation), diurnal (non-homogeneous Poisson by thinning), or a replayed trace.
A router sends each request to the ready replica with the fewest outstanding requests (Vidur's
``lor``); with no ready replica requests wait in front (Knative's activator buffers them). With
model versions configured (:class:`Version`, ``ServingConfig.versions``) replicas carry a version
and the router first picks a version by the traffic weights (a per-request draw of the
``serving.versions`` stream), then the least-outstanding ready replica of it; a version's wrong
answers change the request's output length, error and NLL (a rollout controller drives the
weights: :class:`gpuinfra.sim.rollout.ServingRollout`). Without versions none of this runs.

Autoscalers are subsystems on the same kernel (``sv_hpa`` / ``sv_kpa`` events): Kubernetes HPA and
Knative KPA as documented (facts/serving.md 2.1, 2.3). A replica's start is cold-start time:
node provisioning + image pull + weights load + engine warm-up (:class:`ColdStart`).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.errors import UserError
from gpuinfra.models.serving import (
    ServingSetup,
    StepModel,
    host_link_bytes_per_s,
    memory_breakdown,
    require_fits,
)
from gpuinfra.sim.cluster import Allocation, ClusterState, NodePool
from gpuinfra.sim.invariants import InvariantError, check_invariants, require
from gpuinfra.sim.kernel import PRIO_ARRIVAL, PRIO_RELEASE, PRIO_SAMPLE, Event, Kernel, Rngs
from gpuinfra.sim.recorder import Recorder
from gpuinfra.sim.subsystem import RunConfig, Subsystem, View, register

POLICIES = ("single", "dynamic", "continuous", "chunked")
GPUS_PER_NODE = 8

# ------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Batching:
    """A runtime's batching policy and its knobs (defaults: vLLM's and Triton's documented ones)."""

    kind: str = "continuous"
    max_num_seqs: int = 256
    """vLLM's default cap on sequences in a batch."""
    max_num_batched_tokens: int = 8192
    """Token budget of a (non-chunked) prefill step; raised to the longest prompt when shorter."""
    chunk_size: int = 512
    """Sarathi's / vLLM chunked prefill's token budget per step (512: "best ITL on A100", PR #4580)."""
    block_size: int = 16
    watermark: float = 0.01
    """Fraction of KV blocks kept free when admitting a new prompt (Vidur / vLLM default 0.01)."""
    gpu_memory_utilization: float = 0.9
    max_batch_size: int = 8
    """Triton dynamic batcher: the largest batch (the PyTriton default is 4; 8 here)."""
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_s: float = 0.0
    """Triton's ``max_queue_delay_microseconds`` in seconds (default 0: no waiting)."""
    preemption: str = "recompute"
    """vLLM's preemption mode: ``recompute`` (free the blocks, prefill again) or ``swap`` (copy the
    blocks to host memory over PCIe and back; swapped sequences resume before new ones start)."""

    def check(self) -> None:
        if self.kind not in POLICIES:
            raise UserError(f"unknown batching policy '{self.kind}'", where="--batching", expected=", ".join(POLICIES))
        for k in ("max_num_seqs", "max_num_batched_tokens", "chunk_size", "block_size", "max_batch_size"):
            if getattr(self, k) < 1:
                raise UserError(f"{k} must be at least 1", where=k)
        if self.preemption not in ("recompute", "swap"):
            raise UserError(
                f"unknown preemption mode '{self.preemption}'", where="preemption", expected="recompute or swap"
            )
        if not 0 <= self.watermark < 1 or self.max_queue_delay_s < 0:
            raise UserError("watermark must be in [0, 1) and max_queue_delay_s >= 0", where="batching")


STORAGE_BW = {
    "s3": (16 * 87.5e6, "S3: one connection per 85-90 MB/s (AWS S3 performance guide), 16 concurrent ranged GETs"),
    "ebs-gp3": (1.0e9, "EBS gp3 maximum 1,000 MB/s per volume (AWS EBS docs)"),
    "local-nvme": (6.0e9, "local NVMe SSD ~6 GB/s sequential read (PCIe Gen4 x4 drive) [assumption]"),
    "host-dram": (25.0e9, "weights already in host page cache: bound by PCIe Gen4 x16 host-to-device ~25 GB/s"),
}
"""Effective read bandwidth of each storage tier (bytes/s) and its source."""


@dataclass(frozen=True)
class ColdStart:
    """Time from "start a replica" to "ready" (seconds), as a pipeline [assumptions, stated]:
    node provisioning (0 when a node with free GPUs is up; cloud VM boot + join ~2-5 min, Anyscale's
    "up to 10 min" cold start includes it), image pull (image bytes / registry bandwidth), weights
    load (model bytes / storage tier bandwidth, facts/serving.md 2.4), engine warm-up (CUDA context,
    memory profiling, CUDA-graph capture)."""

    provision_s: float = 0.0
    image_gb: float = 10.0
    """A vLLM/TensorRT-LLM serving image is ~10 GB [assumption]."""
    registry_gbps: float = 0.5
    """Image pull at 500 MB/s [assumption]; 0 image_gb when the image is cached on the node."""
    storage: str = "s3"
    warmup_s: float = 20.0
    """Engine init + CUDA-graph capture [assumption, order of vLLM start-up logs]."""

    def check(self) -> None:
        if self.storage not in STORAGE_BW:
            raise UserError(f"unknown storage tier '{self.storage}'", where="storage", expected=", ".join(STORAGE_BW))
        if min(self.provision_s, self.image_gb, self.warmup_s) < 0 or self.registry_gbps <= 0:
            raise UserError("cold-start times and sizes must be >= 0 (registry bandwidth > 0)", where="cold_start")

    def phases(self, weight_bytes: float) -> dict[str, float]:
        return {
            "provision_s": self.provision_s,
            "image_pull_s": self.image_gb / self.registry_gbps,
            "weights_load_s": weight_bytes / STORAGE_BW[self.storage][0],
            "warmup_s": self.warmup_s,
        }

    def total_s(self, weight_bytes: float) -> float:
        return sum(self.phases(weight_bytes).values())


WARM_START = ColdStart(provision_s=0.0, image_gb=0.0, storage="host-dram", warmup_s=20.0)
"""A warm start: image cached on the node, weights in host memory (still loaded and warmed up)."""


@dataclass(frozen=True)
class Autoscaler:
    """``kind`` none | hpa | kpa. HPA: metric rps | concurrency | queue | kv, ``target`` per
    replica, 15 s sync, 10 % tolerance, 300 s scale-down stabilisation, scale-up at most
    max(2x, +4) per sync (Kubernetes defaults). KPA: concurrency per replica, target =
    ``container_concurrency`` x 70 %, 2 s tick, 60 s stable / 6 s panic windows, panic at 200 %,
    scale to zero after a stable window of no traffic + 30 s grace (Knative defaults).
    Predictive: request rate forecast one cold start ahead (:class:`Predictive`), ``target`` req/s
    per replica."""

    kind: str = "none"
    metric: str = "rps"
    target: float = 1.0
    min_replicas: int = 1
    max_replicas: int = 16
    sync_s: float = 15.0
    tolerance: float = 0.1
    scale_down_window_s: float = 300.0
    rate_window_s: float = 60.0
    """The window a request rate is measured over (Prometheus ``rate(...[1m])``)."""
    container_concurrency: float = 16.0
    target_percentage: float = 0.70
    tick_s: float = 2.0
    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    panic_threshold: float = 2.0
    max_scale_down_rate: float = 2.0
    scale_to_zero_grace_s: float = 30.0

    def check(self) -> None:
        if self.kind not in ("none", "hpa", "kpa", "predictive"):
            raise UserError(
                f"unknown autoscaler '{self.kind}'", where="autoscaler", expected="none, hpa, kpa or predictive"
            )
        if self.kind == "hpa" and self.metric not in ("rps", "concurrency", "queue", "kv"):
            raise UserError(
                f"unknown HPA metric '{self.metric}'", where="autoscaler.metric", expected="rps, concurrency, queue, kv"
            )
        if self.target <= 0 or self.container_concurrency <= 0:
            raise UserError("autoscaler targets must be > 0", where="autoscaler.target")
        if self.min_replicas < 0 or self.max_replicas < max(self.min_replicas, 1):
            raise UserError("need 0 <= min_replicas <= max_replicas, max_replicas >= 1", where="autoscaler")
        if self.kind in ("hpa", "predictive") and self.min_replicas < 1:
            raise UserError("HPA cannot scale to zero (minReplicas >= 1)", where="autoscaler.min_replicas")


@dataclass
class Requests:
    """Requests of a run: arrival (s), prompt and output lengths (tokens), sorted by arrival."""

    arrival_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)


@dataclass(frozen=True)
class Slo:
    ttft_s: float = 2.0
    """Vidur-Search's SLO: TTFT p90 < 2 s (facts/serving.md 1.1)."""
    tpot_s: float = 0.2
    """Vidur-Search's SLO: TBT p99 < 200 ms."""


@dataclass(frozen=True)
class Version:
    """A model version served by some replicas, with its behaviour on the requests routed to it.

    ``bad_fraction`` of its answers are wrong (a silent failure as :class:`gpuinfra.sim.rollout.Failure`
    defines one); a wrong answer's output is ``length_factor`` x the request's drawn output length
    (rounded, >= 1 token), surfaces as an error with probability ``error_fraction``, and its standardised
    per-request negative log-likelihood is N(``nll_shift``, 1) against N(0, 1) for a right answer. A right
    answer errors with probability ``base_error_ratio``. Which requests are wrong is drawn per request
    from the run's ``serving.versions`` stream, so it does not depend on the order events happen in."""

    name: str
    bad_fraction: float = 0.0
    error_fraction: float = 0.0
    length_factor: float = 1.0
    nll_shift: float = 0.0
    base_error_ratio: float = 0.0

    def check(self) -> None:
        if not self.name:
            raise UserError("a version needs a name", where="versions")
        fr = (self.bad_fraction, self.error_fraction, self.base_error_ratio)
        if not all(0 <= x <= 1 for x in fr) or self.length_factor <= 0:
            raise UserError(
                "version fractions must be in [0, 1] and length_factor > 0",
                where=f"version {self.name}",
                expected="bad_fraction, error_fraction, base_error_ratio in [0, 1]; length_factor > 0",
            )


@dataclass
class ServingConfig:
    model: str = "llama-3-8b"
    gpu: str = "H100-SXM"
    precision: str = "bf16"
    tp: int = 1
    replicas: int = 1
    batching: Batching = field(default_factory=Batching)
    autoscaler: Autoscaler = field(default_factory=Autoscaler)
    cold_start: ColdStart = field(default_factory=ColdStart)
    initial_ready: bool = True
    """Initial replicas are ready at t=0 (warm); False: they start cold at t=0."""
    slo: Slo = field(default_factory=Slo)
    fail_at: tuple[tuple[float, int], ...] = ()
    """(time s, replica index): that replica is lost; its requests are retried from scratch."""
    price_usd_per_gpu_hour: float | None = None
    kv_dtype: str | None = None
    mig_profile: str | None = None
    """Run each replica on a MIG instance of this profile (tp 1); replicas pack max_count per GPU."""
    versions: tuple[Version, ...] = ()
    """Model versions (empty: one unnamed version, the plain router). With versions, the initial
    replicas run ``versions[0]`` and the router first picks a version by :attr:`ServingRun.weights`
    (initially all on ``versions[0]``), then the least-outstanding ready replica of that version."""
    initial_versions: tuple[str, ...] = ()
    """Versions of the initial replicas, in order (missing ones: ``versions[0]``)."""
    capacity_replicas: int | None = None
    """GPUs for this many replicas (default: ``replicas``, or the autoscaler's maximum); a rollout
    that surges or runs a second fleet needs more than ``replicas``."""


# ------------------------------------------------------------------------------------------------
# Arrivals and lengths


def poisson_arrivals(rng: np.random.Generator, rate: float, horizon_s: float) -> np.ndarray:
    """Arrival times of a Poisson process of ``rate``/s over [0, horizon)."""
    n = int(rng.poisson(rate * horizon_s))
    return np.sort(rng.uniform(0.0, horizon_s, n))


def gamma_arrivals(rng: np.random.Generator, rate: float, cv: float, horizon_s: float) -> np.ndarray:
    """Renewal process with Gamma inter-arrival times of mean 1/rate and coefficient of variation ``cv``
    (cv > 1: bursty; cv = 1: Poisson), as Vidur's gamma generator."""
    shape = 1.0 / (cv * cv)
    n0 = int(rate * horizon_s * 1.2 + 100)
    out: list[np.ndarray] = []
    t = 0.0
    while t < horizon_s:
        gaps = rng.gamma(shape, 1.0 / (rate * shape), n0)
        ts = t + np.cumsum(gaps)
        out.append(ts)
        t = float(ts[-1])
    a = np.concatenate(out)
    return a[a < horizon_s]


def diurnal_arrivals(
    rng: np.random.Generator, mean_rate: float, horizon_s: float, peak_to_trough: float = 3.0, period_s: float = 86400
) -> np.ndarray:
    """Non-homogeneous Poisson with rate mean x (1 + A sin(2 pi t / period - pi/2)), A set by the
    peak-to-trough ratio (trough at t=0), sampled by thinning (Lewis and Shedler)."""
    amp = (peak_to_trough - 1.0) / (peak_to_trough + 1.0)
    lam_max = mean_rate * (1 + amp)
    cand = poisson_arrivals(rng, lam_max, horizon_s)
    lam = mean_rate * (1 + amp * np.sin(2 * np.pi * cand / period_s - np.pi / 2))
    keep = rng.uniform(0, lam_max, len(cand)) < lam
    return cand[keep]


def lengths(rng: np.random.Generator, n: int, spec: str | int, where: str) -> np.ndarray:
    """Token lengths: an integer (fixed), ``uniform:A:B``, or ``lognormal:MEAN:CV`` (rounded, >= 1)."""
    s = str(spec).strip()
    try:
        if s.isdigit():
            v = int(s)
            if v < 1:
                raise ValueError
            return np.full(n, v, dtype=np.int64)
        kind, a, b = s.split(":")
        if kind == "uniform":
            lo, hi = int(a), int(b)
            if not 1 <= lo <= hi:
                raise ValueError
            return rng.integers(lo, hi + 1, n).astype(np.int64)
        if kind == "lognormal":
            mean, cv = float(a), float(b)
            if mean < 1 or cv <= 0:
                raise ValueError
            sig2 = math.log(1 + cv * cv)
            mu = math.log(mean) - sig2 / 2
            return np.maximum(1, np.rint(rng.lognormal(mu, math.sqrt(sig2), n))).astype(np.int64)
    except ValueError:
        pass
    raise UserError(
        f"bad length '{spec}'", where=where, expected="a positive integer, uniform:A:B or lognormal:MEAN:CV"
    )


def make_requests(
    seed: int,
    rate: float,
    horizon_s: float,
    input_tokens: str | int = 1000,
    output_tokens: str | int = 1000,
    arrival: str = "poisson",
    cv: float = 2.0,
    n_saturated: int = 1000,
    peak_to_trough: float = 3.0,
) -> Requests:
    """Generated requests from the run's seeded stream. ``rate`` = inf: ``n_saturated`` requests at t=0."""
    rng = Rngs(seed).stream("serving.arrivals")
    if math.isinf(rate):
        arr = np.zeros(n_saturated)
    elif rate <= 0 or horizon_s <= 0:
        raise UserError("rate and duration must be > 0", where="--rate/--duration")
    elif arrival == "poisson":
        arr = poisson_arrivals(rng, rate, horizon_s)
    elif arrival == "gamma":
        if cv <= 0:
            raise UserError("cv must be > 0", where="--cv")
        arr = gamma_arrivals(rng, rate, cv, horizon_s)
    elif arrival == "diurnal":
        arr = diurnal_arrivals(rng, rate, horizon_s, peak_to_trough, period_s=horizon_s)
    else:
        raise UserError(f"unknown arrival process '{arrival}'", where="--arrival", expected="poisson, gamma, diurnal")
    n = len(arr)
    return Requests(
        arr, lengths(rng, n, input_tokens, "--input-tokens"), lengths(rng, n, output_tokens, "--output-tokens")
    )


# ------------------------------------------------------------------------------------------------
# Replicas

STARTING, READY, DRAINING, STOPPED = "starting", "ready", "draining", "stopped"


class Replica:
    __slots__ = (
        "id", "alloc", "status", "started_at", "ready_at", "waiting", "prefilling", "ndec", "fin", "D", "A",
        "res", "blocks_used", "blocks_total", "busy", "gen", "seg", "out", "busy_s", "peak_blocks",
        "batch", "timer_gen", "ended_at", "swapped", "penalty", "version",
    )  # fmt: skip

    def __init__(self, rid: int, blocks_total: int, bs: int) -> None:
        self.id = rid
        self.alloc: Allocation | None = None
        self.status = STARTING
        self.started_at = 0.0
        self.ready_at = 0.0
        self.waiting: deque[int] = deque()
        self.prefilling: list[int] = []  # chunked: admitted, prompt partly computed
        self.ndec = 0  # decoding sequences
        self.fin: list[tuple[int, int]] = []  # heap of (decode counter at which it finishes, request)
        self.D = 0  # decode steps done by this replica
        self.A = 0  # sum over decoding sequences of (ctx0 - d0): KV tokens = A + ndec * D
        self.res = [0] * bs  # decoding sequences by (ctx0 - d0) mod block_size
        self.blocks_used = 0
        self.blocks_total = blocks_total
        self.busy = False
        self.gen = 0  # generation of this replica's pending step event
        self.seg: tuple | None = None  # current step: (kind, t0, ...)
        self.out = 0  # outstanding requests (waiting + running)
        self.busy_s = 0.0
        self.peak_blocks = 0
        self.batch: list[int] = []
        self.timer_gen = 0
        self.ended_at = math.nan
        self.swapped: deque[int] = deque()  # swap mode: preempted sequences whose KV is in host memory
        self.penalty = 0.0  # swap transfers (s) to add to the next step
        self.version = ""  # the model version it serves ("" without versions)


@dataclass
class ServingResult:
    """Metrics of one run (seconds, tokens, USD) and its invariant checks."""

    config: dict
    memory: dict
    cold_start_s: dict
    requests: int
    completed: int
    ttft_s: dict
    tpot_s: dict
    e2e_s: dict
    throughput_tok_s: float
    output_tokens: int
    duration_s: float
    slo_attainment: float
    goodput_rps: float
    gpu_hours: float
    cost_usd: float
    usd_per_million_tokens: float
    preemptions: int
    retried: int
    replicas_timeline: list[tuple[float, int]]
    max_replicas: int
    mean_batch: float
    peak_kv_utilization: float
    invariants: dict
    serving_invariants: dict
    events: int
    subsystems: dict = field(default_factory=dict)
    per_request: dict | None = None
    swaps: int = 0
    """Preemptions by swap (a subset of ``preemptions``)."""

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("per_request")
        return d


def _pct(x: np.ndarray) -> dict:
    if len(x) == 0:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    p = np.percentile(x, [50, 90, 99])
    return {"p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2]), "mean": float(x.mean())}


class ServingRun:
    """One simulation. Build with a config and requests, then :meth:`run`."""

    def __init__(self, cfg: ServingConfig, reqs: Requests, seed: int = 0, embedded: bool = False) -> None:
        """``embedded``: the replicas are pods of a replay (:class:`ServingReplay`), which owns the
        kernel, the cluster and the recorder; no autoscaler, no replicas of its own."""
        self.embedded = embedded
        cfg.batching.check()
        cfg.autoscaler.check()
        cfg.cold_start.check()
        if cfg.replicas < 0 or (cfg.replicas == 0 and cfg.autoscaler.kind != "kpa"):
            raise UserError("replicas must be >= 1 (0 only with the KPA autoscaler)", where="--replicas")
        self.cfg = cfg
        self.reqs = reqs
        self.seed = seed
        self.setup = ServingSetup.make(
            cfg.model, cfg.gpu, cfg.precision, cfg.tp, cfg.kv_dtype, mig_profile=cfg.mig_profile
        )
        self.milli = self.setup.device_milli
        per_gpu = 1000 // self.milli
        self.sm = StepModel(self.setup)
        b = cfg.batching
        for v in cfg.versions:
            v.check()
        if len({v.name for v in cfg.versions}) != len(cfg.versions):
            raise UserError("version names must be unique", where="versions")
        if any(n not in {v.name for v in cfg.versions} for n in cfg.initial_versions):
            raise UserError(
                f"initial_versions {cfg.initial_versions} name a version not in versions", where="initial_versions"
            )
        omax = int(reqs.output.max()) if len(reqs) else 0
        if cfg.versions:  # a wrong answer of a longer-generating version needs KV for its length
            omax = max(max(1, int(np.rint(omax * v.length_factor))) for v in cfg.versions)
        longest = int(reqs.prompt.max()) + omax if len(reqs) else 1
        self.budget = max(b.max_num_batched_tokens, longest if len(reqs) else 1)
        self.mem = memory_breakdown(
            self.setup,
            gpu_memory_utilization=b.gpu_memory_utilization,
            max_num_batched_tokens=self.budget if b.kind != "chunked" else b.chunk_size,
            max_num_seqs=b.max_num_seqs,
            block_size=b.block_size,
            min_kv_tokens=longest,
        )
        require_fits(self.setup, self.mem, longest)
        self.bs = b.block_size
        self.wm_blocks = int(b.watermark * self.mem.kv_blocks)
        a = cfg.autoscaler
        self.max_rep = max(cfg.replicas, a.max_replicas if a.kind != "none" else cfg.replicas, 1)
        if cfg.capacity_replicas is not None:
            self.max_rep = max(self.max_rep, cfg.capacity_replicas)
        gpus_needed = -(-self.max_rep * cfg.tp // per_gpu)
        n_nodes = -(-gpus_needed // GPUS_PER_NODE)
        per_node = min(GPUS_PER_NODE, gpus_needed) if n_nodes == 1 else GPUS_PER_NODE
        per_node = max(per_node - per_node % cfg.tp, cfg.tp)
        n_nodes = -(-gpus_needed // per_node)
        if not embedded:
            pool = NodePool("serving", self.setup.gpu.name, per_node, 10**9, 10**9, n_nodes)
            self.cluster = ClusterState.from_pools([pool])
            self.rec = Recorder(self.cluster, interval_s=60.0)
        self.rngs = Rngs(seed)
        self.weight_bytes = self.setup.model.weight_bytes(cfg.precision)
        self.cold_s = cfg.cold_start.total_s(self.weight_bytes)
        n = len(reqs)
        self.arr = reqs.arrival_s.tolist()
        self.P = reqs.prompt.tolist()
        self.O = reqs.output.tolist()
        self.ttft = [math.nan] * n
        self.done = [math.nan] * n
        self.served = [0] * n
        self.genk = [0] * n  # tokens generated so far
        self.pdone = [0] * n  # prefill tokens computed (this attempt)
        self.ptarget = list(self.P)  # tokens to prefill (prompt + generated on recompute)
        self.ctx0 = [0] * n
        self.d0 = [0] * n
        self.rep_of = [-1] * n
        self.attempt = [0] * n
        self.preemptions = 0
        self.retried = 0
        self.pending: deque[int] = deque()  # no ready replica: buffered in front (activator)
        self.replicas: list[Replica] = []
        self.timeline: list[tuple[float, int]] = []
        self.batch_sizes = 0
        self.steps = 0
        self.arrivals_log: deque[float] = deque()
        self.inflight = 0
        self._coef: dict[int, tuple[float, float]] = {}
        self.swap_ctx: dict[int, int] = {}
        self.swaps = 0
        self.host_bw = host_link_bytes_per_s(self.setup.gpu)
        self.kv_tok_gpu = self.sm.kv_tok_layer * self.sm.L  # KV bytes per token on one rank
        self.kernel = Kernel({})
        handlers = {
            "sv_arrival": self._on_arrival,
            "sv_step": self._on_step,
            "sv_ready": self._on_ready,
            "sv_timer": self._on_timer,
            "sv_fail": self._on_fail,
        }
        self.handler_table = handlers
        self._end_req = float(self.arr[-1]) if self.arr else 0.0
        self._init_versions()
        self.subsystems: list[Subsystem] = []
        if embedded:
            return
        if a.kind == "hpa":
            self.subsystems.append(Hpa(self._view("hpa"), self))
        elif a.kind == "kpa":
            self.subsystems.append(Kpa(self._view("kpa"), self))
        elif a.kind == "predictive":
            self.subsystems.append(Predictive(self._view("predictive"), self))
        for s in self.subsystems:
            for k, h in s.handlers().items():
                if k in handlers:
                    raise TypeError(f"event kind {k!r} handled twice")
                handlers[k] = h
        self.kernel.handlers = handlers

    def _init_versions(self) -> None:
        """Per-request draws of the versioned router (none without versions: the plain run is unchanged)."""
        vs = self.cfg.versions
        self.versions = {v.name: v for v in vs}
        self.weights: dict[str, float] = {vs[0].name: 1.0} if vs else {}
        self.finished: list[int] = []
        self.ver_of: list[str] = []
        self.routed_to = {v.name: 0 for v in vs}
        self.fallbacks = 0
        if not vs:
            return
        n = len(self.arr)
        rng = self.rngs.stream("serving.versions")
        self.O0 = list(self.O)  # drawn output lengths; a wrong answer's is scaled at routing
        self.u_route = rng.random(n).tolist()
        self.u_bad = rng.random(n).tolist()
        self.u_err = rng.random(n).tolist()
        self.z_nll = rng.standard_normal(n).tolist()
        self.ver_of = [""] * n

    def set_weights(self, weights: dict[str, float]) -> None:
        """Traffic weights by version name (>= 0, not all 0; normalised here). Raises UserError for an
        unknown version or bad weights."""
        tot = sum(weights.values())
        if any(k not in self.versions for k in weights) or min(weights.values(), default=-1) < 0 or tot <= 0:
            raise UserError(
                f"bad traffic weights {weights}", where="weights", expected=f"weights >= 0 over {list(self.versions)}"
            )
        self.weights = {k: w / tot for k, w in weights.items()}

    def wrong(self, i: int) -> bool:
        """Request i's answer is wrong (by the version it was last routed to)."""
        v = self.versions.get(self.ver_of[i]) if self.ver_of else None
        return v is not None and self.u_bad[i] < v.bad_fraction

    def errored(self, i: int) -> bool:
        """Request i's answer surfaced as an error (by the version it was last routed to)."""
        v = self.versions.get(self.ver_of[i]) if self.ver_of else None
        if v is None:
            return False
        return self.u_err[i] < (v.error_fraction if self.u_bad[i] < v.bad_fraction else v.base_error_ratio)

    def nll(self, i: int) -> float:
        """Request i's standardised mean token negative log-likelihood (see :class:`Version`)."""
        v = self.versions[self.ver_of[i]]
        return self.z_nll[i] + (v.nll_shift if self.u_bad[i] < v.bad_fraction else 0.0)

    def version_stats(self, ids: list[int] | None = None) -> dict[str, dict[str, Any]]:
        """Per version, over the served requests ``ids`` (default: all served): requests, wrong answers,
        errors, mean output tokens, TTFT/TPOT/e2e percentiles (s) and SLO attainment, from this run."""
        if ids is None:
            ids = [i for i, s in enumerate(self.served) if s == 1]
        out: dict[str, dict[str, Any]] = {}
        slo = self.cfg.slo
        for name in self.versions:
            sel = np.asarray([i for i in ids if self.ver_of[i] == name], dtype=np.int64)
            arr = np.asarray(self.arr)[sel]
            first = np.asarray(self.ttft)[sel]
            done = np.asarray(self.done)[sel]
            n_out = np.asarray(self.O)[sel]
            ttft = first - arr
            tpot = np.where(n_out > 1, (done - first) / np.maximum(n_out - 1, 1), 0.0)
            out[name] = {
                "requests": len(sel),
                "routed": self.routed_to[name],
                "wrong": sum(self.wrong(int(i)) for i in sel),
                "errors": sum(self.errored(int(i)) for i in sel),
                "mean_output_tokens": float(n_out.mean()) if len(sel) else None,
                "ttft_s": _pct(ttft),
                "tpot_s": _pct(tpot),
                "e2e_s": _pct(done - arr),
                "slo_attainment": float(((ttft <= slo.ttft_s) & (tpot <= slo.tpot_s)).mean()) if len(sel) else None,
            }
        return out

    def _versions_summary(self) -> dict[str, Any]:
        if not self.versions:
            return {}
        return {"versions": {"by_version": self.version_stats(), "fallbacks": self.fallbacks}}

    def add_subsystem(self, s: Subsystem) -> None:
        """Attach a subsystem (e.g. a rollout controller) before :meth:`run`; its event kinds must be new."""
        for k, h in s.handlers().items():
            if k in self.kernel.handlers or k in self.handler_table:
                raise TypeError(f"event kind {k!r} handled twice")
            self.kernel.handlers[k] = h
        self.subsystems.append(s)

    def _view(self, name: str) -> View:
        return View(lambda: self.kernel.now_s, self.cluster, self, self.rngs.stream(f"serving.{name}"), self.rec)

    # -- replicas and GPUs ------------------------------------------------------------------
    def active(self) -> list[Replica]:
        return [r for r in self.replicas if r.status in (STARTING, READY)]

    def ready(self) -> list[Replica]:
        return [r for r in self.replicas if r.status == READY]

    def _place(self, rid: int) -> Allocation | None:
        c, tp, milli = self.cluster, self.cfg.tp, self.milli
        for node in range(c.n_nodes):
            free = [d for d in range(int(c.gpu_count[node])) if c.dev_free[node, d] >= milli]
            if len(free) >= tp:
                return Allocation(rid, node, tuple(free[:tp]), milli, 0, 0)
        return None

    def start_replica(self, t: float, warm: bool = False, version: str | None = None) -> Replica | None:
        """Start a replica at ``t`` (cold start unless ``warm``) serving ``version`` (default: the first
        configured version); None when no GPU is free."""
        rid = len(self.replicas)
        alloc = self._place(rid)
        if alloc is None:
            return None
        r = Replica(rid, self.mem.kv_blocks, self.bs)
        if self.cfg.versions:
            r.version = self.cfg.versions[0].name if version is None else version
        r.alloc = alloc
        self.cluster.allocate(alloc)
        self.rec.changed([alloc.node])
        self.rec.record(t)
        r.started_at = t
        self.replicas.append(r)
        delay = 0.0 if warm else self.cold_s
        r.ready_at = t + delay
        self._mark(t)
        return r

    def _mark(self, t: float) -> None:
        n = len(self.active())
        if not self.timeline or self.timeline[-1][1] != n:
            self.timeline.append((t, n))

    def release(self, r: Replica, t: float, mark: bool = True) -> None:
        r.ended_at = t
        if r.alloc is not None and not self.embedded:
            self.cluster.release(r.alloc)
            self.rec.changed([r.alloc.node])
            self.rec.record(t)
        r.alloc = None
        r.status = STOPPED
        if mark:
            self._mark(t)

    def scale_to(self, desired: int, t: float) -> list[Event]:
        """Start or drain replicas so that ``desired`` are starting or ready."""
        out: list[Event] = []
        act = self.active()
        if desired > len(act):
            for _ in range(desired - len(act)):
                r = self.start_replica(t)
                if r is None:
                    break
                out.append(Event(r.ready_at, PRIO_RELEASE, "sv_ready", r.id))
        elif desired < len(act):
            excess = len(act) - desired
            for r in [r for r in act if r.status == STARTING][::-1][:excess]:
                self.release(r, t)
                excess -= 1
            for r in sorted(self.ready(), key=lambda r: (r.out, -r.id))[:excess]:
                r.status = DRAINING
                self._mark(t)
                if r.out == 0:
                    self.release(r, t)
        return out

    # -- routing ----------------------------------------------------------------------------
    def _route(self, i: int, t: float) -> list[Event]:
        if self.versions:
            return self._route_versioned(i, t)
        best = None
        for r in self.replicas:
            if r.status == READY and (best is None or r.out < best.out):
                best = r
        if best is None:
            self.pending.append(i)
            return []
        best.waiting.append(i)
        best.out += 1
        self.rep_of[i] = best.id
        return self._kick(best, t)

    def _route_versioned(self, i: int, t: float) -> list[Event]:
        """Pick a version by the traffic weights (request i's own uniform draw against the cumulative
        weights, in the order of ``cfg.versions``), then its least-outstanding ready replica; when that
        version has no ready replica, the least-outstanding ready replica of any version (counted in
        ``fallbacks``); with none ready, the request waits in front."""
        u, acc, want = self.u_route[i], 0.0, None
        for v in self.cfg.versions:
            w = self.weights.get(v.name, 0.0)
            acc += w
            if w > 0 and u < acc:
                want = v.name
                break
        if want is None:  # rounding: the last weighted version
            want = next(v.name for v in reversed(self.cfg.versions) if self.weights.get(v.name, 0.0) > 0)
        best = any_best = None
        for r in self.replicas:
            if r.status != READY:
                continue
            if any_best is None or r.out < any_best.out:
                any_best = r
            if r.version == want and (best is None or r.out < best.out):
                best = r
        if best is None:
            if any_best is None:
                self.pending.append(i)
                return []
            best = any_best
            self.fallbacks += 1
        self.ver_of[i] = best.version
        self.routed_to[best.version] += 1
        v = self.versions[best.version]
        o = self.O0[i]
        self.O[i] = max(1, int(np.rint(o * v.length_factor))) if self.u_bad[i] < v.bad_fraction else o
        best.waiting.append(i)
        best.out += 1
        self.rep_of[i] = best.id
        return self._kick(best, t)

    def _on_arrival(self, ev: Event) -> list[Event]:
        i, t = ev.ref, ev.t_s
        self.arrivals_log.append(t)
        self.inflight += 1
        out = self._route(i, t)
        if i + 1 < len(self.arr):
            out.append(Event(self.arr[i + 1], PRIO_ARRIVAL, "sv_arrival", i + 1))
        return out

    def _on_ready(self, ev: Event) -> list[Event]:
        r = self.replicas[ev.ref]
        if r.status != STARTING:
            return []
        r.status = READY
        out: list[Event] = []
        while self.pending:
            out += self._route(self.pending.popleft(), ev.t_s)
        return out

    def _on_fail(self, ev: Event) -> list[Event]:
        """Replica ``ref`` (index among live replicas) is lost; a replacement starts cold."""
        t = ev.t_s
        live = [r for r in self.replicas if r.status in (READY, DRAINING, STARTING)]
        if ev.ref >= len(live):
            return []
        out = self.lose(live[ev.ref], t)
        nr = self.start_replica(t)
        if nr is not None:
            out.append(Event(nr.ready_at, PRIO_RELEASE, "sv_ready", nr.id))
        return out

    def lose(self, r: Replica, t: float) -> list[Event]:
        """Replica r is gone (failure, eviction, end): its requests start over from scratch elsewhere."""
        lost = list(r.waiting) + list(r.prefilling) + [i for _, i in r.fin] + list(r.batch) + list(r.swapped)
        r.swapped.clear()
        if r.seg is not None and r.seg[0] == "decode":
            for i in r.seg[9]:  # their last token came with a prefill that ended at seg[8]
                if r.seg[8] <= t:
                    self._finish(r, i, r.seg[8])
                else:
                    lost.append(i)
        r.gen += 1
        r.timer_gen += 1
        r.waiting.clear()
        r.prefilling.clear()
        r.fin.clear()
        r.batch = []
        r.seg = None
        r.ndec = r.out = 0
        r.busy = False
        self.release(r, t)
        out: list[Event] = []
        for i in sorted(set(lost)):
            if self.served[i]:
                continue
            self.retried += 1
            self.attempt[i] += 1
            self.genk[i] = 0
            self.pdone[i] = 0
            self.ptarget[i] = self.P[i]
            self.ttft[i] = math.nan
            out += self._route(i, t)
        return out

    # -- finishing ---------------------------------------------------------------------------
    def _finish(self, r: Replica, i: int, t: float) -> None:
        self.done[i] = t
        self.served[i] += 1
        r.out -= 1
        self.inflight -= 1
        if self.versions:
            self.finished.append(i)

    def _after_idle(self, r: Replica, t: float) -> None:
        if r.status == DRAINING and r.out == 0:
            self.release(r, t)

    # -- the step scheduler -----------------------------------------------------------------
    def _kick(self, r: Replica, t: float) -> list[Event]:
        """Something arrived at replica r: start a step if idle, or cut a decode run short."""
        if not r.busy:
            return self._schedule(r, t)
        seg = r.seg
        if seg is not None and seg[0] == "decode" and self._can_admit(r, r.waiting[0] if r.waiting else -1):
            _, t0, k, n, S0, a, b, _end, tp, done_now = seg
            if k == 0:
                return []
            tau = t - tp
            kk = 0 if tau < 0 else max(1, min(k, self._steps_by(tau, n, S0, a, b)))
            if kk < k:
                r.gen += 1
                tend = tp + kk * a + b * (kk * S0 + n * kk * (kk + 1) / 2.0)
                r.seg = ("decode", t0, kk, n, S0, a, b, tend, tp, done_now)
                return [Event(max(tend, t), PRIO_RELEASE, "sv_step", r.id, r.gen)]
        return []

    @staticmethod
    def _steps_by(tau: float, n: int, S0: float, a: float, b: float) -> int:
        """Smallest k >= 1 whose cumulative time reaches tau (the step running at tau ends then)."""
        qa = b * n / 2.0
        qb = a + b * S0 + b * n / 2.0
        if qa <= 0:
            return max(1, math.ceil(tau / qb - 1e-12))
        k = (-qb + math.sqrt(qb * qb + 4 * qa * tau)) / (2 * qa)
        return max(1, math.ceil(k - 1e-9))

    def _can_admit(self, r: Replica, i: int) -> bool:
        if i < 0:
            return False
        kind = self.cfg.batching.kind
        if kind not in ("continuous", "chunked"):
            return False
        if r.ndec + len(r.prefilling) >= self.cfg.batching.max_num_seqs:
            return False
        need = -(-self.ptarget[i] // self.bs)
        return r.blocks_total - r.blocks_used - need >= self.wm_blocks

    def _alloc_blocks(self, r: Replica, k: int) -> None:
        r.blocks_used += k
        if r.blocks_used > r.blocks_total:
            raise InvariantError(f"replica {r.id}: KV over-committed ({r.blocks_used} > {r.blocks_total} blocks)")
        if r.blocks_used > r.peak_blocks:
            r.peak_blocks = r.blocks_used

    def _decode_blocks(self, r: Replica, k: int) -> int:
        """Blocks the decoding sequences allocate over their next k steps."""
        if r.ndec == 0 or k <= 0:
            return 0
        bs = self.bs
        full, rem = divmod(k, bs)
        tot = full * r.ndec
        D = r.D + full * bs
        res = r.res
        for j in range(rem):
            tot += res[(-(D + j)) % bs]
        return tot

    def _decode_kmax(self, r: Replica, cap: int) -> int:
        """Most decode steps (<= cap) the free blocks allow."""
        free = r.blocks_total - r.blocks_used
        if r.ndec == 0:
            return cap
        bs = self.bs
        full = min(free // r.ndec, cap // bs + 1)
        k = full * bs
        if k >= cap:
            return cap
        free -= full * r.ndec
        D = r.D + k
        while k < cap:
            need = r.res[(-D) % bs]
            if need > free:
                break
            free -= need
            k += 1
            D += 1
        return k

    def _join_decode(self, r: Replica, i: int) -> None:
        c = self.ptarget[i]  # tokens now in KV
        self.ctx0[i] = c
        self.d0[i] = r.D
        r.A += c - r.D
        r.res[(c - r.D) % self.bs] += 1
        r.ndec += 1
        heapq.heappush(r.fin, (r.D + self.O[i] - self.genk[i], i))

    def _leave_decode(self, r: Replica, i: int) -> int:
        """Remove a decoding sequence; returns the blocks it held."""
        c0, d0 = self.ctx0[i], self.d0[i]
        r.A -= c0 - d0
        r.res[(c0 - d0) % self.bs] -= 1
        r.ndec -= 1
        ctx = c0 + r.D - d0
        return -(-ctx // self.bs)

    def _coeffs(self, n: int) -> tuple[float, float]:
        c = self._coef.get(n)
        if c is None:
            c = self._coef[n] = self.sm.decode_coeffs(n)
        return c

    def _preempt(self, r: Replica, t: float) -> None:
        """Free the most recently admitted decoding sequence: recompute (prefilled again later) or
        swap (its KV copied to host memory now, back when blocks allow: PCIe time added to steps)."""
        victim = max((i for _, i in r.fin), key=lambda i: (self.d0[i], i))
        r.fin = [(d, i) for d, i in r.fin if i != victim]
        heapq.heapify(r.fin)
        ctx = self.ctx0[victim] + r.D - self.d0[victim]
        r.blocks_used -= self._leave_decode(r, victim)
        self.preemptions += 1
        if self.cfg.batching.preemption == "swap":
            self.swap_ctx[victim] = ctx
            r.swapped.append(victim)
            r.penalty += ctx * self.kv_tok_gpu / self.host_bw
            self.swaps += 1
            return
        self.ptarget[victim] = self.P[victim] + self.genk[victim]
        self.pdone[victim] = 0
        r.waiting.appendleft(victim)

    def _swap_in(self, r: Replica) -> bool:
        """Bring swapped sequences back while blocks allow; True if any is still swapped out."""
        b = self.cfg.batching
        while r.swapped:
            i = r.swapped[0]
            ctx = self.swap_ctx[i]
            need = -(-ctx // self.bs)
            if r.blocks_total - r.blocks_used - need < self.wm_blocks or r.ndec + len(r.prefilling) >= b.max_num_seqs:
                return True
            r.swapped.popleft()
            self._alloc_blocks(r, need)
            self.ptarget[i] = ctx
            self._join_decode(r, i)
            r.penalty += ctx * self.kv_tok_gpu / self.host_bw
        return False

    def _schedule(self, r: Replica, t: float, admit: bool = True) -> list[Event]:
        """Pick the next step of an idle replica and schedule its end. ``admit`` False right after
        a preemption: nothing new starts in the pass that had to free blocks (as vLLM's scheduler
        skips swap-ins and prefills in a step that preempted), so the running batch advances."""
        if r.status not in (READY, DRAINING):
            return []
        kind = self.cfg.batching.kind
        if kind in ("single", "dynamic"):
            return self._schedule_static(r, t)
        b = self.cfg.batching
        if admit and r.swapped and self._swap_in(r):
            admit = False  # swapped sequences go first: no new prompt while one waits in host memory
        # admit new sequences
        admitted: list[int] = []
        if kind == "continuous":
            tokens = 0
            while admit and r.waiting:
                i = r.waiting[0]
                q = self.ptarget[i]
                if tokens + q > self.budget or not self._can_admit(r, i) or len(admitted) + r.ndec >= b.max_num_seqs:
                    break
                r.waiting.popleft()
                self._alloc_blocks(r, -(-q // self.bs))
                admitted.append(i)
                tokens += q
            if admitted:
                # a prefill-only step, then (one event) the decode run that follows it: the
                # prefill's results are applied now and valid from its end tp
                pq = float(tokens)
                patt = sum(self.ptarget[i] * (self.ptarget[i] + 1) / 2.0 for i in admitted)
                tp = t + r.penalty + self.sm.time(tokens, len(admitted), pq, patt, pq, 0, 0.0)
                r.penalty = 0.0
                self.steps += 1
                self.batch_sizes += len(admitted)
                done_now = []
                for i in admitted:
                    if self._prefill_done(r, i, tp, defer=True):
                        done_now.append(i)
                return self._decode_run(r, t, tp, done_now, admit)
        else:  # chunked: decodes + prefill chunks within chunk_size tokens
            budget = b.chunk_size - r.ndec
            left = sum(self.ptarget[i] - self.pdone[i] for i in r.prefilling)
            while admit and r.waiting and left < budget and self._can_admit(r, r.waiting[0]):
                i = r.waiting.popleft()
                self._alloc_blocks(r, -(-self.ptarget[i] // self.bs))
                r.prefilling.append(i)
                left += self.ptarget[i]
            if r.prefilling and budget > 0:
                if r.ndec and self._decode_kmax(r, 1) < 1:
                    self._preempt(r, t)
                    return self._schedule(r, t, admit=False)
                chunks = []
                pq = patt = pkv = 0.0
                for i in r.prefilling:
                    if budget <= 0:
                        break
                    c = self.pdone[i]
                    q = min(self.ptarget[i] - c, budget)
                    budget -= q
                    chunks.append((i, q))
                    pq += q
                    patt += q * (c + (q + 1) / 2.0)
                    pkv += c + q
                n = r.ndec
                S = r.A + n * r.D
                fin_now = sum(1 for i, q in chunks if self.pdone[i] + q >= self.ptarget[i])
                dt = r.penalty + self.sm.time(int(pq) + n, n + fin_now, pq, patt, pkv, n, float(S + n))
                r.penalty = 0.0
                return self._begin(r, t, ("mixed", t, chunks), dt)
        # decode run
        if r.ndec == 0:
            r.busy = False
            r.seg = None
            self._after_idle(r, t)
            return []
        if self._decode_kmax(r, 1) < 1:
            self._preempt(r, t)
            return self._schedule(r, t, admit=False)
        pen, r.penalty = r.penalty, 0.0
        return self._decode_run(r, t, t + pen, [], admit)

    def _decode_run(self, r: Replica, t0: float, tp: float, done_now: list[int], admit: bool = True) -> list[Event]:
        """Decode steps from ``tp`` until the next sequence finishes or the KV blocks run out; none
        when a waiting request could be admitted at ``tp`` (the token budget held it back)."""
        n = r.ndec
        if n == 0 or (admit and r.waiting and self._can_admit(r, r.waiting[0])):
            return self._begin(r, t0, ("decode", t0, 0, 0, 0.0, 0.0, 0.0, tp, tp, done_now), tp - t0)
        k = self._decode_kmax(r, r.fin[0][0] - r.D)
        S0 = float(r.A + n * r.D)
        a, bb = self._coeffs(n)
        tend = tp + k * a + bb * (k * S0 + n * k * (k + 1) / 2.0)
        return self._begin(r, t0, ("decode", t0, k, n, S0, a, bb, tend, tp, done_now), tend - t0)

    def _begin(self, r: Replica, t: float, seg: tuple, dt: float) -> list[Event]:
        r.busy = True
        r.seg = seg
        r.gen += 1
        return [Event(t + dt, PRIO_RELEASE, "sv_step", r.id, r.gen)]

    def _on_step(self, ev: Event) -> list[Event]:
        r = self.replicas[ev.ref]
        if ev.gen != r.gen or r.seg is None:
            return []
        t = ev.t_s
        seg = r.seg
        kind = seg[0]
        r.busy_s += t - seg[1]
        if kind == "decode":
            _, _, k, n, _, _, _, _, tp, done_now = seg
            for i in done_now:
                self._finish(r, i, tp)
            if k:
                self.batch_sizes += n * k
                self.steps += k
                self._advance(r, k, t)
        elif kind == "mixed":
            self.steps += 1
            self.batch_sizes += r.ndec + len(seg[2])
            if r.ndec:
                self._advance(r, 1, t)
            for i, q in seg[2]:
                self.pdone[i] += q
                if self.pdone[i] >= self.ptarget[i]:
                    r.prefilling.remove(i)
                    self._prefill_done(r, i, t)
        elif kind == "static":
            self._static_done(r, seg, t)
        r.seg = None
        r.busy = False
        return self._schedule(r, t)

    def _prefill_done(self, r: Replica, i: int, t: float, defer: bool = False) -> bool:
        """Request i's prompt is in the cache at ``t`` and its next token sampled; True if that was
        its last token (finished now, or by the caller at ``t`` when ``defer``)."""
        if math.isnan(self.ttft[i]):
            self.ttft[i] = t
        self.genk[i] += 1
        if self.genk[i] >= self.O[i]:
            r.blocks_used -= -(-self.ptarget[i] // self.bs)
            if not defer:
                self._finish(r, i, t)
            return True
        self._join_decode(r, i)
        return False

    def _advance(self, r: Replica, k: int, t: float) -> None:
        self._alloc_blocks(r, self._decode_blocks(r, k))
        r.D += k
        while r.fin and r.fin[0][0] <= r.D:
            _, i = heapq.heappop(r.fin)
            r.blocks_used -= self._leave_decode(r, i)
            self.genk[i] = self.O[i]
            self._finish(r, i, t)

    # -- request-level batching (single / dynamic) -------------------------------------------
    def _schedule_static(self, r: Replica, t: float) -> list[Event]:
        b = self.cfg.batching
        if not r.waiting:
            r.busy = False
            r.seg = None
            self._after_idle(r, t)
            return []
        cap = 1 if b.kind == "single" else b.max_batch_size
        nw = len(r.waiting)
        oldest = self.arr[r.waiting[0]]
        if b.kind == "dynamic" and nw < cap and t < oldest + b.max_queue_delay_s:
            pref = [p for p in b.preferred_batch_sizes if p <= nw]
            if not pref:
                r.timer_gen += 1
                return [Event(oldest + b.max_queue_delay_s, PRIO_SAMPLE, "sv_timer", r.id, r.timer_gen)]
            cap = max(pref)
        # KV reserved for prompt + output of each request (no paging)
        batch: list[int] = []
        tokens = 0
        while r.waiting and len(batch) < cap:
            i = r.waiting[0]
            need = self.P[i] + self.O[i]
            if batch and tokens + need > self.mem.kv_tokens:
                break
            r.waiting.popleft()
            batch.append(i)
            tokens += need
        blocks = -(-tokens // self.bs)
        self._alloc_blocks(r, blocks)
        B = len(batch)
        maxp = max(self.P[i] for i in batch)
        maxo = max(self.O[i] for i in batch)
        # padded: every sequence runs to the longest prompt and the longest output
        tp = self.sm.time(B * maxp, B, float(B * maxp), B * maxp * (maxp + 1) / 2.0, float(B * maxp), 0, 0.0)
        a, bb = self._coeffs(B)
        S0 = float(B * maxp)

        def cum(k: int) -> float:
            return k * a + bb * (k * S0 + B * k * (k + 1) / 2.0)

        t1 = t + tp
        times = [(i, t1, t1 + cum(self.O[i] - 1)) for i in batch]
        r.batch = batch
        self.batch_sizes += B * maxo
        self.steps += maxo
        return self._begin(r, t, ("static", t, times, blocks), tp + cum(maxo - 1))

    def _static_done(self, r: Replica, seg: tuple, t: float) -> None:
        for i, t_first, t_done in seg[2]:
            self.ttft[i] = t_first
            self.genk[i] = self.O[i]
            self._finish(r, i, t_done)
        r.blocks_used -= seg[3]
        r.batch = []

    def _on_timer(self, ev: Event) -> list[Event]:
        r = self.replicas[ev.ref]
        if ev.gen != r.timer_gen or r.busy:
            return []
        return self._schedule(r, ev.t_s)

    # -- run --------------------------------------------------------------------------------
    def run(self, horizon_s: float | None = None, keep_requests: bool = False) -> ServingResult:
        """Simulate until every request is served (and the autoscaler is quiet), or ``horizon_s``."""
        k = self.kernel
        first: list[Event] = []
        iv = self.cfg.initial_versions
        for j in range(self.cfg.replicas):
            r = self.start_replica(0.0, warm=self.cfg.initial_ready, version=iv[j] if j < len(iv) else None)
            if r is None:
                raise UserError("the cluster cannot hold the replicas", where="--replicas")
            first.append(Event(r.ready_at, PRIO_RELEASE, "sv_ready", r.id))
        if len(self.arr):
            first.append(Event(self.arr[0], PRIO_ARRIVAL, "sv_arrival", 0))
        for t_f, idx in self.cfg.fail_at:
            first.append(Event(float(t_f), PRIO_RELEASE, "sv_fail", int(idx)))
        for s in self.subsystems:
            first += s.first_events(0.0)
        # ready events at t=0 must precede arrivals at t=0
        k.schedule_many(first)
        end_req = float(self.arr[-1]) if self.arr else 0.0
        self._end_req = end_req
        k.run(until_s=horizon_s)
        t_end = k.now_s
        # drain: GPUs are released at the end of the run
        for r in self.replicas:
            if r.alloc is not None:
                self.release(r, t_end, mark=False)
        inv = require(check_invariants(self.cluster, self.rec, t_end), "serving run")
        return self._result(t_end, inv.as_dict(), keep_requests)

    def _result(self, t_end: float, inv: dict, keep: bool) -> ServingResult:
        n = len(self.arr)
        served = np.asarray(self.served)
        arrived = np.asarray(self.arr) <= t_end
        twice = int((served > 1).sum())
        lost = int(((served == 0) & arrived).sum())
        s_inv = {
            "served_exactly_once": twice == 0 and lost == 0,
            "served_twice": twice,
            "not_served": lost,
            "kv_never_overcommitted": all(r.peak_blocks <= r.blocks_total for r in self.replicas),
        }
        if twice:
            raise InvariantError(f"serving run: {twice} requests served twice")
        ok = served == 1
        arr = np.asarray(self.arr)
        ttft = np.asarray(self.ttft)[ok] - arr[ok]
        done = np.asarray(self.done)[ok]
        e2e = done - arr[ok]
        n_out = np.asarray(self.O)[ok]
        first_abs = np.asarray(self.ttft)[ok]
        tpot = np.where(n_out > 1, (done - first_abs) / np.maximum(n_out - 1, 1), 0.0)
        out_tok = int(n_out.sum())
        t0 = float(arr.min()) if n else 0.0
        dur = max(float(done.max()) - t0, 1e-9) if len(done) else max(t_end, 1e-9)
        slo = self.cfg.slo
        good = (ttft <= slo.ttft_s) & (tpot <= slo.tpot_s)
        gpu_h = self.rec.totals()["allocated"] / 1000.0 / 3600.0
        price = self.cfg.price_usd_per_gpu_hour
        if price is None:
            price = gpu_hour_price(self.setup.gpu.name).on_demand_usd or 0.0
        cost = gpu_h * price
        peak_kv = max((r.peak_blocks / r.blocks_total for r in self.replicas), default=0.0)
        per = None
        if keep:
            per = {
                "arrival_s": arr,
                "ttft_s": np.asarray(self.ttft) - arr,
                "done_s": np.asarray(self.done),
                "attempts": np.asarray(self.attempt) + 1,
            }
        c = self.cfg
        return ServingResult(
            config={
                "model": self.setup.model.name,
                "gpu": self.setup.gpu.name,
                "precision": c.precision,
                "tp": c.tp,
                "mig_profile": c.mig_profile,
                "replicas": c.replicas,
                "batching": asdict(c.batching),
                "autoscaler": asdict(c.autoscaler),
                "price_usd_per_gpu_hour": price,
                "seed": self.seed,
            },
            memory=self.mem.as_dict(),
            cold_start_s=self.cfg.cold_start.phases(self.weight_bytes) | {"total_s": self.cold_s},
            requests=n,
            completed=int(ok.sum()),
            ttft_s=_pct(ttft),
            tpot_s=_pct(tpot),
            e2e_s=_pct(e2e),
            throughput_tok_s=out_tok / dur,
            output_tokens=out_tok,
            duration_s=dur,
            slo_attainment=float(good.mean()) if len(good) else 0.0,
            goodput_rps=float(good.sum()) / dur,
            gpu_hours=gpu_h,
            cost_usd=cost,
            usd_per_million_tokens=cost / out_tok * 1e6 if out_tok else math.inf,
            preemptions=self.preemptions,
            retried=self.retried,
            replicas_timeline=self.timeline,
            max_replicas=max((m for _, m in self.timeline), default=0),
            mean_batch=self.batch_sizes / self.steps if self.steps else 0.0,
            peak_kv_utilization=peak_kv,
            invariants=inv,
            serving_invariants=s_inv,
            events=self.kernel.events_processed,
            subsystems={s.name: s.summary() for s in self.subsystems} | self._versions_summary(),
            per_request=per,
            swaps=self.swaps,
        )


# ------------------------------------------------------------------------------------------------
# Autoscalers (subsystems on the same kernel)


class Hpa(Subsystem):
    """Kubernetes HorizontalPodAutoscaler (autoscaling/v2 defaults), every ``sync_s``:
    desired = ceil(current x metric / target), skipped within the tolerance; a metric averaged
    over ready pods, not-ready pods counting 0 when scaling up; scale-up at most max(2 x current,
    current + 4) per period; scale-down to the highest recommendation of the last 300 s."""

    name = "hpa"

    def __init__(self, view: View, run: ServingRun) -> None:
        super().__init__(view)
        self.run = run
        self.a = run.cfg.autoscaler
        self.recs: deque[tuple[float, int]] = deque()
        self.decisions: list[dict] = []

    def handlers(self) -> dict:
        return {"sv_hpa": self.tick}

    def first_events(self, t0: float) -> list[Event]:
        return [Event(t0 + self.a.sync_s, PRIO_SAMPLE, "sv_hpa")]

    def metric_sum(self, t: float) -> float:
        run, a = self.run, self.a
        ready = run.ready()
        if a.metric == "rps":
            log = run.arrivals_log
            while log and log[0] < t - a.rate_window_s:
                log.popleft()
            return len(log) / min(a.rate_window_s, max(t, 1e-9))
        if a.metric == "concurrency":
            return float(sum(r.out for r in ready))
        if a.metric == "queue":
            return float(sum(len(r.waiting) for r in ready) + len(run.pending))
        return float(sum(r.blocks_used / r.blocks_total for r in ready))

    @staticmethod
    def desired(current: int, usage_sum: float, target: float, tolerance: float) -> int:
        """The documented formula: ratio = (usage / current) / target; within tolerance keep current;
        else ceil(current x ratio) = ceil(usage / target)."""
        if current == 0:
            return 0
        ratio = usage_sum / current / target
        if abs(ratio - 1.0) <= tolerance:
            return current
        return math.ceil(usage_sum / target - 1e-12)

    def tick(self, ev: Event) -> list[Event]:
        t, a, run = ev.t_s, self.a, self.run
        current = len(run.active())
        usage = self.metric_sum(t)
        want = self.desired(current, usage, a.target, a.tolerance)
        want = min(max(want, a.min_replicas), a.max_replicas)
        self.recs.append((t, want))
        while self.recs and self.recs[0][0] < t - a.scale_down_window_s:
            self.recs.popleft()
        if want < current:
            want = min(current, max(w for _, w in self.recs))
        else:
            want = min(want, max(2 * current, current + 4))
        out: list[Event] = []
        if want != current:
            out = run.scale_to(want, t)
            self.decisions.append({"t_s": t, "from": current, "to": want, "metric": usage})
        if t < run._end_req or run.inflight > 0:
            out.append(Event(t + a.sync_s, PRIO_SAMPLE, "sv_hpa"))
        return out

    def summary(self) -> dict:
        return {"decisions": len(self.decisions), "log": self.decisions[:200]}


class Kpa(Subsystem):
    """Knative Pod Autoscaler: every ``tick_s`` the average concurrency (in-flight requests,
    buffered ones included) over the stable and the panic windows gives desired = ceil(avg /
    (cc x target %)); panic when the panic desired is >= 2 x ready (then no scale-down) until a
    stable window passes calmly; scale-down at most by ``max_scale_down_rate`` per tick; to zero
    only after a stable window with no traffic plus the grace period."""

    name = "kpa"

    def __init__(self, view: View, run: ServingRun) -> None:
        super().__init__(view)
        self.run = run
        self.a = run.cfg.autoscaler
        self.samples: deque[tuple[float, float]] = deque()
        self.panic_since: float | None = None
        self.last_traffic = 0.0
        self.decisions: list[dict] = []

    def handlers(self) -> dict:
        return {"sv_kpa": self.tick}

    def first_events(self, t0: float) -> list[Event]:
        return [Event(t0 + self.a.tick_s, PRIO_SAMPLE, "sv_kpa")]

    @staticmethod
    def desired_from(avg_concurrency: float, cc: float, pct: float) -> int:
        """pods = concurrency / (containerConcurrency x target utilisation), rounded up."""
        return math.ceil(avg_concurrency / (cc * pct) - 1e-12)

    def tick(self, ev: Event) -> list[Event]:
        t, a, run = ev.t_s, self.a, self.run
        conc = float(run.inflight)
        self.samples.append((t, conc))
        while self.samples and self.samples[0][0] <= t - a.stable_window_s:
            self.samples.popleft()
        if conc > 0:
            self.last_traffic = t
        stable = [c for s, c in self.samples]
        panic = [c for s, c in self.samples if s > t - a.panic_window_s]
        d_stable = self.desired_from(sum(stable) / len(stable), a.container_concurrency, a.target_percentage)
        d_panic = self.desired_from(sum(panic) / len(panic), a.container_concurrency, a.target_percentage)
        ready = len(run.ready())
        current = len(run.active())
        if ready and d_panic / ready >= a.panic_threshold:
            if self.panic_since is None:
                self.panic_since = t
        elif self.panic_since is not None and t - self.panic_since >= a.stable_window_s:
            self.panic_since = None
        if self.panic_since is not None:
            want = max(d_panic, current)
        else:
            want = d_stable
            if ready:
                want = max(want, math.floor(ready / a.max_scale_down_rate))
        if want == 0 and (t - self.last_traffic < a.stable_window_s + a.scale_to_zero_grace_s):
            want = min(current, 1)
        if conc > 0 and want == 0:
            want = 1
        want = min(max(want, a.min_replicas), a.max_replicas)
        out: list[Event] = []
        if want != current:
            out = run.scale_to(want, t)
            self.decisions.append({"t_s": t, "from": current, "to": want, "panic": self.panic_since is not None})
        if t < run._end_req or run.inflight > 0 or len(run.active()) > a.min_replicas:
            out.append(Event(t + a.tick_s, PRIO_SAMPLE, "sv_kpa"))
        return out

    def summary(self) -> dict:
        return {"decisions": len(self.decisions), "log": self.decisions[:200]}


class Predictive(Hpa):
    """A predictive request-rate scaler: every ``sync_s`` it fits the arrival rate's trend over the
    last two ``rate_window_s`` windows and sizes the fleet for the rate forecast one cold start
    ahead, desired = ceil(max(now, forecast) / target), so replicas are ready when the load
    arrives; scale-down keeps the HPA's stabilisation window. (Production predictive scalers
    forecast from days of history; a linear trend over the start-up lead is the minimal form.)"""

    name = "predictive"

    def handlers(self) -> dict:
        return {"sv_predict": self.tick}

    def first_events(self, t0: float) -> list[Event]:
        return [Event(t0 + self.a.sync_s, PRIO_SAMPLE, "sv_predict")]

    @staticmethod
    def forecast(n_now: int, n_prev: int, window_s: float, lead_s: float) -> float:
        """Rate at ``lead_s`` past now from counts in the last two windows (requests/s)."""
        r_now, r_prev = n_now / window_s, n_prev / window_s
        return r_now + (r_now - r_prev) / window_s * lead_s

    def tick(self, ev: Event) -> list[Event]:
        t, a, run = ev.t_s, self.a, self.run
        log = run.arrivals_log
        w = min(a.rate_window_s, max(t / 2, 1e-9))
        while log and log[0] <= t - 2 * w:
            log.popleft()
        n_now = sum(1 for x in log if x > t - w)
        n_prev = len(log) - n_now
        r_now = n_now / w
        f = self.forecast(n_now, n_prev, w, run.cold_s + a.sync_s)
        current = len(run.active())
        want = math.ceil(max(r_now, f) / a.target - 1e-12)
        want = min(max(want, a.min_replicas), a.max_replicas)
        self.recs.append((t, want))
        while self.recs and self.recs[0][0] < t - a.scale_down_window_s:
            self.recs.popleft()
        if want < current:
            want = min(current, max(w_ for _, w_ in self.recs))
        out: list[Event] = []
        if want != current:
            out = run.scale_to(want, t)
            self.decisions.append({"t_s": t, "from": current, "to": want, "forecast_rps": f})
        if t < run._end_req or run.inflight > 0:
            out.append(Event(t + a.sync_s, PRIO_SAMPLE, "sv_predict"))
        return out


@dataclass(frozen=True)
class ServingSpec:
    """Serving inside a replay (``subsystem_options={"serving": ServingSpec(...)}``): the pods whose
    name starts with ``pod_prefix`` are replicas of ``config``'s model (each must ask for ``tp``
    whole GPUs of ``config.gpu``); ``requests`` arrive from ``start_s`` on."""

    config: ServingConfig
    requests: Requests
    pod_prefix: str = "serve-"
    start_s: float = 0.0


class ServingReplay(Subsystem):
    """Serving replicas as pods of the one simulator: the scheduler places them, faults and
    preemption evict them (their in-flight requests start over on the others), and training
    shares the cluster. A replica is ready one cold start after its pod starts. The replay's
    invariants are the engine's; the serving ones (served at most once, KV never over-committed)
    land in this subsystem's summary. Replica counts follow the pods (no autoscaler here: the
    runtime has no way to create pods)."""

    name = "serving"

    def __init__(self, view: View, spec: ServingSpec) -> None:
        super().__init__(view)
        rq = spec.requests
        shifted = Requests(rq.arrival_s + spec.start_s, rq.prompt, rq.output)
        self.spec = spec
        self.run = ServingRun(spec.config, shifted, 0, embedded=True)
        self.by_pod: dict[int, int] = {}

    def handlers(self) -> dict:
        return dict(self.run.handler_table)

    def first_events(self, t0: float) -> list[Event]:
        a = self.run.arr
        return [Event(max(a[0], t0), PRIO_ARRIVAL, "sv_arrival", 0)] if a else []

    def on_pod_start(self, i: int, alloc: Allocation, t: float, gen: int) -> list[Event]:
        rt = self.view.runtime
        name = rt.pods.names[i]
        if not name.startswith(self.spec.pod_prefix):
            return []
        run, c = self.run, self.view.cluster
        node_model = c.models[c.node_model[alloc.node]] if c.node_model[alloc.node] >= 0 else ""
        from gpuinfra.catalog.gpus import gpu_model

        if not node_model or gpu_model(node_model).name != run.setup.gpu.name or len(alloc.devices) != run.cfg.tp:
            raise UserError(
                f"serving pod {name} got {len(alloc.devices)} x {node_model or 'no GPU'}",
                where="serving",
                expected=f"{run.cfg.tp} whole {run.setup.gpu.name} GPU(s), as the serving config says",
                fix=f"give pods named {self.spec.pod_prefix}* num_gpu {run.cfg.tp} and "
                f"gpu_models [{run.setup.gpu.name}]",
            )
        r = Replica(len(run.replicas), run.mem.kv_blocks, run.bs)
        r.alloc = alloc
        r.started_at = t
        r.ready_at = t + run.cold_s
        run.replicas.append(r)
        run._mark(t)
        self.by_pod[i] = r.id
        self.view.log.append({"t_s": t, "pod": name, "replica": r.id, "what": "start"})
        return [Event(r.ready_at, PRIO_RELEASE, "sv_ready", r.id)]

    def on_pod_end(self, i: int, alloc: Allocation, t: float, outcome: str) -> list[Event]:
        rid = self.by_pod.pop(i, None)
        if rid is None:
            return []
        r = self.run.replicas[rid]
        self.view.log.append({"t_s": t, "pod": self.view.runtime.pods.names[i], "replica": rid, "what": outcome})
        return self.run.lose(r, t)

    def summary(self) -> dict:
        run = self.run
        t_end = self.view.clock()
        served = np.asarray(run.served)
        ok = served == 1
        arr = np.asarray(run.arr)
        ttft = np.asarray(run.ttft)[ok] - arr[ok]
        done = np.asarray(run.done)[ok]
        n_out = np.asarray(run.O)[ok]
        tpot = np.where(n_out > 1, (done - np.asarray(run.ttft)[ok]) / np.maximum(n_out - 1, 1), 0.0)
        slo = run.cfg.slo
        held = sum(((r.ended_at if not math.isnan(r.ended_at) else t_end) - r.started_at) for r in run.replicas)
        return {
            "requests": len(arr),
            "completed": int(ok.sum()),
            "not_served": int((served == 0).sum()),
            "served_twice": int((served > 1).sum()),
            "retried": run.retried,
            "preemptions": run.preemptions,
            "replicas_started": len(run.replicas),
            "replica_gpu_hours": held * run.cfg.tp / 3600.0,
            "ttft_s": _pct(ttft),
            "tpot_s": _pct(tpot),
            "e2e_s": _pct(done - arr[ok]),
            "slo_attainment": float(((ttft <= slo.ttft_s) & (tpot <= slo.tpot_s)).mean()) if ok.any() else 0.0,
            "kv_never_overcommitted": all(r.peak_blocks <= r.blocks_total for r in run.replicas),
            "log": self.view.log[:200],
        }


@register("serving")
def _serving_factory(cfg: RunConfig, make_view) -> ServingReplay | None:
    spec = cfg.options.get("serving")
    return ServingReplay(make_view("serving"), spec) if spec is not None else None


def simulate(cfg: ServingConfig, reqs: Requests, seed: int = 0, keep_requests: bool = False) -> ServingResult:
    """Run one serving simulation to completion (every request served)."""
    return ServingRun(cfg, reqs, seed).run(keep_requests=keep_requests)


def summary_line(r: ServingResult) -> dict[str, Any]:
    """The headline numbers of a run, for tables."""
    return {
        "ttft_p50_s": r.ttft_s["p50"],
        "ttft_p99_s": r.ttft_s["p99"],
        "tpot_p50_s": r.tpot_s["p50"],
        "tpot_p99_s": r.tpot_s["p99"],
        "e2e_p99_s": r.e2e_s["p99"],
        "throughput_tok_s": r.throughput_tok_s,
        "slo_attainment": r.slo_attainment,
        "goodput_rps": r.goodput_rps,
        "usd_per_million_tokens": r.usd_per_million_tokens,
        "gpu_hours": r.gpu_hours,
    }


def capacity_at_slo(
    cfg: ServingConfig,
    input_tokens: str | int = 512,
    output_tokens: str | int = 128,
    *,
    attainment: float = 0.9,
    seed: int = 0,
    window_s: float = 300.0,
    rel_tol: float = 0.01,
) -> dict[str, Any]:
    """The largest steady Poisson load (requests/s) one replica of ``cfg`` sustains at its SLO.

    Sustains: of the requests arriving over ``window_s``, at least ``attainment`` meet both the
    TTFT and the TPOT targets of ``cfg.slo`` (defaults: Vidur-Search's TTFT p90 < 2 s, TBT p99 <
    200 ms, facts/serving.md 1.1; 0.9 reads its p90). Found by doubling then bisection over the
    rate, each probe a full request-level run of one warm replica (:func:`simulate`) on the same
    seeded stream; assumes attainment falls as load rises (a queue that grows with the rate).
    Returns ``rps`` (the sustained rate, within ``rel_tol``), ``attainment_at_rps``, ``probes``,
    ``window_s``, ``tokens`` and ``source``. Raises UserError when the model does not fit the GPU
    (``require_fits``) or when even ``rel_tol`` x 1 request/s misses the SLO."""
    from dataclasses import replace as dc_replace

    one = dc_replace(cfg, replicas=1, initial_ready=True, autoscaler=Autoscaler(), fail_at=())
    probes: list[tuple[float, float]] = []

    def ok(rate: float) -> bool:
        r = simulate(one, make_requests(seed, rate, window_s, input_tokens, output_tokens))
        probes.append((rate, r.slo_attainment))
        return r.completed > 0 and r.slo_attainment >= attainment

    lo, hi = 0.0, 1.0
    while ok(hi):
        lo, hi = hi, hi * 2.0
        if hi > 1e6:
            raise UserError("serving capacity search did not saturate below 10^6 requests/s", where="serving")
    if lo == 0.0:
        lo_probe = rel_tol
        if not ok(lo_probe):
            raise UserError(
                f"one replica of {cfg.model} on {cfg.gpu} misses its SLO (TTFT {cfg.slo.ttft_s} s, TPOT "
                f"{cfg.slo.tpot_s} s for {attainment:.0%} of requests) even at {lo_probe} request/s",
                where="serving SLO",
                expected="an SLO one replica can meet at some load",
            )
        lo = lo_probe
    while hi - lo > rel_tol * lo:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    att = next(a for r, a in probes if r == lo)
    return {
        "rps": lo,
        "attainment_at_rps": att,
        "probes": len(probes),
        "window_s": window_s,
        "tokens": {"input": str(input_tokens), "output": str(output_tokens)},
        "source": f"sim/serving.capacity_at_slo: {cfg.model} {cfg.precision} on {cfg.tp} x {cfg.gpu}, "
        f"{cfg.batching.kind} batching, Poisson load over {window_s:.0f} s, "
        f"SLO TTFT <= {cfg.slo.ttft_s} s and TPOT <= {cfg.slo.tpot_s} s for >= {attainment:.0%} of requests",
    }
