"""Checkpointing a large training job: size, blocking and persist time, interval, ETTR and goodput.

Sources (facts/failures-and-checkpoints.md 3.4 and 3.6):

- **size** = parameters x bytes per parameter of the saved state, by precision and optimizer
  (``catalog/data/checkpoint_state.csv``: ZeRO's 16 B/param resident for mixed-precision Adam,
  14 saved without the gradients);
- **blocking time** (the GPUs wait): the device-to-host copy of each GPU's shard over its PCIe
  link (all GPUs in parallel), plus, when *synchronous*, the persist; *asynchronous* saving
  (torch.distributed.checkpoint ``async_save``, CheckFreq's snapshot/persist split) blocks only
  for the copy, and persists in the background, so the checkpoint is durable ``persist_s`` later;
  if the next checkpoint comes before the last persist ended, the job waits for it;
- **persist time**: each node's shard through the storage tier's write path (models/storage.py:
  per-stream, per-node and shared aggregate ceilings, one writer per node by default), so
  shared-filesystem contention grows with the number of nodes writing at once;
- **durability**: a tier that does not outlive its node (local NVMe) is the first level only: the
  checkpoint is durable once a background copy reaches ``replicate_to`` (S3 by default), and a
  restart reads it from there (multi-level checkpointing, as CheckFreq and Gemini layer it);
- **host memory**: the node's shard is staged in host memory (async_save's CPU buffers); a shard
  larger than the node's memory is a :class:`UserError` with both numbers;
- **intervals**: Young (1974) ``sqrt(2 delta M)``; Daly (2006) higher-order estimate
  ``sqrt(2 delta M) (1 + sqrt(delta / 2M) / 3 + delta / 18M) - delta`` for ``delta < 2M``, else
  ``M`` (the facts mark it [U]: from memory, to verify); and the numerical optimum of the ETTR
  below, which is what :func:`plan` recommends;
- **ETTR** under memoryless failures at rate ``lambda = nodes x r_f`` (MTBF ``M = 1/lambda``):
  a run of uptime ``X ~ Exp(lambda)`` loses the uptime since its last durable checkpoint, whose
  exact mean for a checkpoint cycle ``c = T + delta`` is
  ``E[X mod c] = 1/lambda - c e^{-lambda c} / (1 - e^{-lambda c})`` (-> ``c/2`` as
  ``lambda c -> 0``: half an interval), plus, for async saving, one more cycle when the failure
  comes before the newest checkpoint is durable: ``c P(X >= c) P(X mod c < persist lag)``;
  then it is down for detection ``d`` (mean of the fleet's detection signals, models/reliability),
  requeue ``q`` and restart ``R`` (start-up, checkpoint load from the tier, warm-up). By
  renewal-reward, ``ETTR = (M - L) T / c / (M + d + q + R)``; the rest of the wall time is split
  into checkpoint stalls, lost work, detection, requeue and restart (they sum to 1). Failures
  while the job is down are not counted (as in models/reliability.simulate, which checks this
  closed form by Monte Carlo).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import cache

import numpy as np

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.catalog.nodes import node_shape
from gpuinfra.errors import UserError
from gpuinfra.models.feeding import HOST_MEMCPY_BYTES_PER_S, pcie_bytes_per_s
from gpuinfra.models.reliability import LLAMA3_RATE_PER_1000_NODE_DAYS, failure_mix, signals
from gpuinfra.models.storage import Tier, throughput, tier

MODES = ("sync", "async")
DAY_S = 86400.0


@dataclass(frozen=True)
class StateLayout:
    """Bytes per parameter of one training state layout (weights, fp32 master, optimizer, grads)."""

    precision: str
    optimizer: str
    weights: float
    master: float
    optimizer_state: float
    grads: float
    evidence: str
    source: str

    @property
    def saved_bytes_per_param(self) -> float:
        """What a checkpoint holds: weights, master copy and optimizer state (not gradients)."""
        return self.weights + self.master + self.optimizer_state

    @property
    def resident_bytes_per_param(self) -> float:
        """What training holds on the GPUs (gradients included): ZeRO's 16 for mixed-precision Adam."""
        return self.saved_bytes_per_param + self.grads


@cache
def state_layouts() -> dict[tuple[str, str], StateLayout]:
    return {
        (r["precision"], r["optimizer"]): StateLayout(
            r["precision"],
            r["optimizer"],
            float(r["weights_bytes"]),
            float(r["master_bytes"]),
            float(r["optimizer_bytes"]),
            float(r["grad_bytes"]),
            r["evidence"],
            r["source"],
        )
        for r in read_csv_rows("checkpoint_state.csv")
    }


def layout(precision: str, optimizer: str) -> StateLayout:
    lay = state_layouts().get((precision, optimizer))
    if lay is None:
        known = ", ".join(f"{p}/{o}" for p, o in state_layouts())
        raise UserError(
            f"no state layout for precision '{precision}' with optimizer '{optimizer}'",
            where="--precision/--optimizer",
            expected=f"one of {known}",
        )
    return lay


def young_interval(delta_s: float, mtbf_s: float) -> float:
    """Young (1974): ``sqrt(2 delta M)`` seconds."""
    return math.sqrt(2.0 * delta_s * mtbf_s)


def daly_interval(delta_s: float, mtbf_s: float) -> float:
    """Daly (2006) higher-order estimate (facts 3.6, marked [U]); ``M`` when ``delta >= 2M``."""
    if delta_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = delta_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * delta_s * mtbf_s) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta_s


def expected_lost_s(cycle_s: float, rate_per_s: float) -> float:
    """E[X mod c] for X ~ Exp(rate): the uptime since the last checkpoint when a failure strikes."""
    if rate_per_s <= 0:
        return 0.0
    lc = rate_per_s * cycle_s
    if lc < 1e-9:
        return cycle_s / 2.0
    return 1.0 / rate_per_s - cycle_s * math.exp(-lc) / -math.expm1(-lc)


def _p_within(cycle_s: float, lag_s: float, rate_per_s: float) -> float:
    """P(X mod c < lag) for X ~ Exp(rate): a failure before the newest checkpoint is durable."""
    if lag_s <= 0:
        return 0.0
    if lag_s >= cycle_s:
        return 1.0
    if rate_per_s <= 0:
        return lag_s / cycle_s
    return math.expm1(-rate_per_s * lag_s) / math.expm1(-rate_per_s * cycle_s)


@dataclass(frozen=True)
class CheckpointJob:
    """A training job and its checkpointing. Defaults: Llama 3 405B's scale and failure rate.

    ``interval_s`` None means "the ETTR-optimal interval"; ``detect_s`` None means the mean
    detection delay of the fleet's failure mix (models/reliability).
    """

    params: float = 405e9
    gpus: int = 16384
    gpus_per_node: int = 8
    gpu: str = "H100-SXM"
    precision: str = "bf16-mixed"
    optimizer: str = "adam"
    storage: str = "nfs-flash"
    mode: str = "async"
    interval_s: float | None = None
    writers_per_node: int = 1
    replicate_to: str = "s3"
    """Where checkpoints on a non-durable tier (local NVMe) are copied in the background; they
    count as durable, and are read back on restart, from there."""
    replicate_streams_per_node: int = 10
    """Concurrent part uploads per node for that copy (the AWS CLI's default
    ``max_concurrent_requests`` is 10)."""
    pinned_staging: bool = False
    """Stage into pinned host buffers (a DMA at PCIe rate) instead of pageable memory (the driver's
    extra host copy at models/feeding.HOST_MEMCPY_BYTES_PER_S); async_save offers both."""
    node_shape: str = "aws:p5.48xlarge"
    """Where the node's host memory comes from (2 TiB on a p5.48xlarge, catalog/data/node_shapes.csv)."""
    rate_per_1000_node_days: float = LLAMA3_RATE_PER_1000_NODE_DAYS
    detect_s: float | None = None
    requeue_s: float = 0.0
    """Time in the queue before the job is placed again (0: dedicated capacity, spares at hand)."""
    startup_s: float = 120.0
    """Process start, rendezvous and NCCL communicator set-up [assumption; Kokolis et al. put the
    whole restart overhead u0 at 5-20 min, facts 3.4 [S]]."""
    warmup_s: float = 120.0
    """Compilation, autotuning and the first slow steps before steady throughput [assumption]."""

    @property
    def nodes(self) -> int:
        return max(1, math.ceil(self.gpus / self.gpus_per_node))

    def check(self) -> None:
        if self.params <= 0 or self.gpus < 1 or self.gpus_per_node < 1:
            raise UserError(
                f"a job needs parameters > 0 and GPUs >= 1 (got {self.params:g} parameters, {self.gpus} GPUs)",
                where="--params/--gpus",
            )
        if self.mode not in MODES:
            raise UserError(f"unknown checkpoint mode '{self.mode}'", where="--mode", expected="sync or async")
        if self.interval_s is not None and self.interval_s <= 0:
            raise UserError(f"checkpoint interval must be positive, got {self.interval_s} s", where="--interval")
        if self.rate_per_1000_node_days < 0 or self.requeue_s < 0 or self.startup_s < 0 or self.warmup_s < 0:
            raise UserError("failure rate and overheads must not be negative", where="--rate/--requeue/--startup")


@dataclass(frozen=True)
class CheckpointCost:
    """Size and time of one checkpoint (bytes, seconds)."""

    bytes_per_param: float
    size_bytes: float
    node_shard_bytes: float
    host_memory_bytes: float
    d2h_s: float
    persist_s: float
    persist_bound_by: str
    blocking_s: float
    """What the GPUs wait per checkpoint (``delta``)."""
    durable_lag_s: float
    """After the blocking part, how long until the checkpoint is durable (async: the persist)."""
    load_s: float
    """Reading the node's shard back on restart."""
    restart_s: float
    """Start-up + checkpoint load + warm-up (``R``)."""

    def as_dict(self) -> dict:
        return asdict(self)


def cost(job: CheckpointJob, interval_s: float | None = None) -> CheckpointCost:
    """One checkpoint's size and times. Raises UserError when a node's shard exceeds host memory."""
    job.check()
    lay = layout(job.precision, job.optimizer)
    t: Tier = tier(job.storage)
    size = job.params * lay.saved_bytes_per_param
    gpn = min(job.gpus_per_node, job.gpus)
    node_bytes = size / job.nodes
    host = node_shape(job.node_shape, where="--node-shape").memory_mib * 2**20
    if node_bytes > host:
        raise UserError(
            f"each node's checkpoint shard is {node_bytes / 1e12:.2f} TB ({job.params:g} parameters x "
            f"{lay.saved_bytes_per_param:g} B / {job.nodes} nodes) but a node of shape {job.node_shape} has "
            f"{host / 1e12:.2f} TB of host memory to stage it",
            where="--params/--gpus",
            fix="shard over more nodes, save fewer bytes per parameter, or use a node with more memory",
        )
    gpu_bytes = node_bytes / gpn
    d2h = gpu_bytes / pcie_bytes_per_s(job.gpu) + (0.0 if job.pinned_staging else gpu_bytes / HOST_MEMCPY_BYTES_PER_S)
    w = throughput(t, job.nodes, job.writers_per_node, node_bytes / job.writers_per_node, write=True)
    persist = node_bytes / w.per_node
    r = throughput(t, job.nodes, job.writers_per_node, node_bytes / job.writers_per_node)
    load = node_bytes / r.per_node
    if job.mode == "sync":
        blocking, lag = d2h + persist, 0.0
    else:
        blocking, lag = d2h, persist
    upload = 0.0
    if not t.durable:
        # a node-local copy dies with a replaced node: the checkpoint counts once a background copy
        # reaches the durable tier (multi-level checkpointing), and a restart reads it from there
        rep = tier(job.replicate_to, where="--replicate-to")
        if not rep.durable:
            raise UserError(
                f"checkpoints on '{t.name}' need a durable tier to replicate to; '{rep.name}' is not durable",
                where="--replicate-to",
                fix="replicate to s3, nfs-flash or a network volume",
            )
        k = job.replicate_streams_per_node
        up = throughput(rep, job.nodes, k, node_bytes / k, write=True)
        upload = node_bytes / up.per_node
        lag += upload
        rd = throughput(rep, job.nodes, k, node_bytes / k)
        load = node_bytes / rd.per_node
    if job.mode == "async":
        iv = interval_s if interval_s is not None else job.interval_s
        busy = persist + upload
        if iv is not None and busy > iv:
            blocking += busy - iv  # the next snapshot waits for the last persist (and copy) to end
    return CheckpointCost(
        lay.saved_bytes_per_param,
        size,
        node_bytes,
        host,
        d2h,
        persist,
        w.bound_by,
        blocking,
        lag,
        load,
        job.startup_s + load + job.warmup_s,
    )


def mean_detect_s() -> float:
    """Mean detection delay over the fleet's failure mix (models/reliability)."""
    return sum(c.share * signals()[c.signal].mean_s for c in failure_mix())


@dataclass(frozen=True)
class Evaluation:
    """ETTR and where the rest of the wall time goes, at one interval (fractions sum to 1)."""

    interval_s: float
    blocking_s: float
    mtbf_s: float
    lost_per_failure_s: float
    ettr: float
    stalls: float
    lost_work: float
    detection: float
    requeue: float
    restart: float

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(job: CheckpointJob, interval_s: float, c: CheckpointCost | None = None) -> Evaluation:
    """ETTR at ``interval_s`` seconds of work between checkpoints (see the module docstring).

    ``c`` (the job's cost) is reused for sync saving; async blocking depends on the interval and
    is recomputed."""
    if interval_s <= 0:
        raise UserError(f"checkpoint interval must be positive, got {interval_s} s", where="--interval")
    c = cost(job, interval_s) if c is None or job.mode == "async" else c
    lam = job.nodes * job.rate_per_1000_node_days / 1000.0 / DAY_S
    d = mean_detect_s() if job.detect_s is None else job.detect_s
    return ettr(interval_s, c.blocking_s, c.durable_lag_s, lam, d, job.requeue_s, c.restart_s)


def ettr(
    interval_s: float,
    blocking_s: float,
    lag_s: float,
    rate_per_s: float,
    detect_s: float,
    requeue_s: float,
    restart_s: float,
) -> Evaluation:
    """The renewal-reward ETTR of the module docstring from its inputs (seconds, failures per second)."""
    cyc = interval_s + blocking_s
    if rate_per_s <= 0:
        return Evaluation(interval_s, blocking_s, math.inf, 0.0, interval_s / cyc, blocking_s / cyc, 0, 0, 0, 0)
    m = 1.0 / rate_per_s
    # a failure before the newest checkpoint is durable falls back one more cycle, unless it is the
    # first cycle of the run (X mod c and X div c are independent for exponential X)
    lost = expected_lost_s(cyc, rate_per_s) + cyc * math.exp(-rate_per_s * cyc) * _p_within(cyc, lag_s, rate_per_s)
    wall = m + detect_s + requeue_s + restart_s
    up = m - lost
    return Evaluation(
        interval_s,
        blocking_s,
        m,
        lost,
        up * interval_s / cyc / wall,
        up * blocking_s / cyc / wall,
        lost / wall,
        detect_s / wall,
        requeue_s / wall,
        restart_s / wall,
    )


@dataclass
class Plan:
    """A recommended interval, the closed-form intervals beside it, and the trade-off curve."""

    job: dict
    cost: CheckpointCost
    mtbf_s: float
    young_s: float
    daly_s: float
    recommended: Evaluation
    fixed: Evaluation | None
    curve: list[Evaluation]

    def as_dict(self) -> dict:
        return {
            "job": self.job,
            "cost": self.cost.as_dict(),
            "mtbf_s": self.mtbf_s,
            "young_s": self.young_s,
            "daly_s": self.daly_s,
            "recommended": self.recommended.as_dict(),
            "fixed": self.fixed.as_dict() if self.fixed else None,
            "curve": [e.as_dict() for e in self.curve],
        }


def plan(job: CheckpointJob, points: int = 61) -> Plan:
    """Evaluate intervals from 10 s to 24 h (log grid) and recommend the ETTR-optimal one.

    The optimum is refined by golden-section search around the best grid point. ``job.interval_s``
    (if set) is evaluated too, as ``fixed``.
    """
    c0 = cost(job, None)
    lam = job.nodes * job.rate_per_1000_node_days / 1000.0 / DAY_S
    m = 1.0 / lam if lam > 0 else math.inf
    grid = np.geomspace(10.0, DAY_S, points)
    curve = [evaluate(job, float(x), c0) for x in grid]
    k = max(range(len(curve)), key=lambda j: curve[j].ettr)
    lo, hi = float(grid[max(k - 1, 0)]), float(grid[min(k + 1, len(grid) - 1)])
    g = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if evaluate(job, a, c0).ettr >= evaluate(job, b, c0).ettr:
            hi = b
        else:
            lo = a
    best = evaluate(job, (lo + hi) / 2, c0)
    delta = c0.blocking_s
    fixed = evaluate(job, job.interval_s, c0) if job.interval_s else None
    return Plan(
        asdict(job) | {"nodes": job.nodes},
        c0,
        m,
        young_interval(delta, m) if math.isfinite(m) else math.inf,
        daly_interval(delta, m) if math.isfinite(m) else math.inf,
        best,
        fixed,
        curve,
    )


def compare_modes(job: CheckpointJob) -> dict[str, Plan]:
    """The plan for sync and for async saving of the same job."""
    return {m: plan(replace(job, mode=m)) for m in MODES}
