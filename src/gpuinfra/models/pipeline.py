"""The training input pipeline as stages; the slowest bounds the GPU (facts/io-and-storage.md 4.1).

Per GPU, one sample flows through:

1. **read**: from the dataset's storage tier (models/storage.py: first-byte latency, per-stream,
   per-node and shared ceilings), in one request per sample (``format: files``) or per shard of
   many samples (``format: shards``, WebDataset/TFRecord style); ``prefetch_depth`` requests in
   flight per reader hide latency. A per-node cache (``cache``) serves the hit ratio of
   models/storage.cache_hit_ratio from its own tier; misses go to the remote tier; both run at once;
2. **decode** and 3. **augment**: on CPU worker processes (the CPU-GPU feeding model of section 2,
   models/feeding.step, is reused for these, the host-to-device copy and the GPU), or on the GPU
   (nvJPEG/DALI, which moves the work into the GPU's step);
4. **H2D copy**: over the GPU's PCIe link (pinned or pageable, models/feeding);
5. **GPU compute**: the model's ingestion rate with no stalls.

With prefetching the stages overlap and throughput = the slowest stage; without, they run one
after another. Stall fraction = 1 - achieved / compute-only rate (DS-Analyzer's definition,
Mohan et al. VLDB'21 [P]); idle GPU-hours and their cost follow.

Defaults: ResNet-50 v1.5 on A100-80GB with AMP at 2,470 images/s per GPU, 5 loader workers per
GPU (NVIDIA DeepLearningExamples README, facts 4.1 [P]); ImageNet-1k at ~110 KB per JPEG and
~140 GB in all (facts 4.1 [U]); CPU decode 3 ms and augment 1 ms per image per core and 12 cores
per GPU (a 96-vCPU 8-GPU node) are assumptions, stated so they can be changed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gpuinfra.errors import UserError
from gpuinfra.models.feeding import Loop, step
from gpuinfra.models.storage import cache_hit_ratio, check_streams, throughput, tier


class Pipeline(BaseModel):
    """An input pipeline and the job it feeds (fields in SI units: bytes, seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str = "A100-80GB"
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(8, ge=1)
    samples_per_s_per_gpu: float = Field(2470.0, gt=0, description="compute-only ingestion rate per GPU")
    sample_bytes: float = Field(110e3, gt=0, description="stored bytes per sample (compressed)")
    decoded_bytes: float = Field(224 * 224 * 3, gt=0, description="bytes per sample copied to the GPU")
    dataset_bytes: float = Field(140e9, gt=0)
    storage: str = "nfs-flash"
    format: Literal["files", "shards"] = "files"
    shard_bytes: float = Field(256e6, gt=0)
    readers_per_gpu: int = Field(5, ge=0, description="concurrent read streams per GPU")
    prefetch_depth: int = Field(2, ge=0, description="requests in flight per reader (0: no prefetch, stages serialise)")
    workers_per_gpu: int = Field(5, ge=0, description="CPU worker processes per GPU (decode + augment)")
    cores_per_gpu: float = Field(12.0, gt=0)
    decode_on: Literal["cpu", "gpu"] = "cpu"
    augment_on: Literal["cpu", "gpu"] = "cpu"
    decode_cpu_s: float = Field(3e-3, ge=0, description="CPU seconds per sample to decode [assumption]")
    augment_cpu_s: float = Field(1e-3, ge=0, description="CPU seconds per sample to augment [assumption]")
    decode_gpu_s: float = Field(5e-5, ge=0, description="GPU seconds per sample with nvJPEG [assumption]")
    augment_gpu_s: float = Field(2e-5, ge=0, description="GPU seconds per sample for GPU augmentation [assumption]")
    pinned: bool = True
    cache: Literal["none", "minio", "lru", "partitioned"] = "none"
    cache_tier: str = "host-dram"
    cache_bytes_per_node: float = Field(0.0, ge=0)
    epoch: int = Field(2, ge=1, description="1 = cold first epoch; later epochs read through the cache")
    usd_per_gpu_hour: float = Field(0.0, ge=0)

    def check(self) -> None:
        """UserError for stages that cannot run at all (zero workers or readers), with the numbers."""
        demand = self.samples_per_s_per_gpu
        if self.workers_per_gpu < 1:
            raise UserError(
                f"the decode/augment stage has 0 CPU workers per GPU; it must prepare {demand:,.0f} samples/s "
                f"per GPU ({self.decode_on} decode, {self.augment_on} augment)",
                where="workers_per_gpu",
                fix="give it at least 1 worker (loader processes also drive reads and batching)",
            )
        if self.readers_per_gpu < 1:
            raise UserError(
                f"the read stage has 0 readers per GPU; it must fetch "
                f"{demand * self.sample_bytes / 1e6:,.0f} MB/s per GPU",
                where="readers_per_gpu",
            )
        tier(self.storage, where="storage")
        tier(self.cache_tier, where="cache_tier")


@dataclass(frozen=True)
class Profile:
    """Per-GPU stage rates (samples/s), the bound, stalls and their cost."""

    stages: dict[str, float]
    bound_by: str
    achieved_per_gpu: float
    compute_only_per_gpu: float
    stall_fraction: float
    gpu_idle_fraction: float
    hit_ratio: float
    read_bound_by: str
    remote_bytes_per_s_per_node: float
    idle_gpu_hours_per_day: float
    idle_usd_per_day: float
    epoch_hours: float

    def as_dict(self) -> dict:
        return asdict(self)


def profile(p: Pipeline, rng=None) -> Profile:
    """Stage rates of ``p`` and where it stalls. ``rng``: the run's stream (LRU cache only)."""
    p.check()
    gpus = p.gpus_per_node
    streams = p.readers_per_gpu * gpus
    remote = tier(p.storage, where="storage")
    check_streams(remote, p.nodes, streams, where="readers_per_gpu")
    obj = p.sample_bytes if p.format == "files" else p.shard_bytes
    rt = throughput(remote, p.nodes, streams, obj, depth=max(p.prefetch_depth, 1))
    h = (
        0.0
        if p.cache == "none"
        else cache_hit_ratio(p.cache, p.cache_bytes_per_node, p.dataset_bytes, p.epoch, p.nodes, rng)
    )
    remote_rate = rt.per_node / p.sample_bytes / gpus  # samples/s per GPU from the tier
    read = remote_rate / (1.0 - h) if h < 1.0 else math.inf
    if h > 0:
        ct = throughput(
            tier(p.cache_tier, where="cache_tier"), 1, streams, p.sample_bytes, depth=max(p.prefetch_depth, 1)
        )
        read = min(read, ct.per_node / p.sample_bytes / gpus / h)
    cpu_s = (p.decode_cpu_s if p.decode_on == "cpu" else 0.0) + (p.augment_cpu_s if p.augment_on == "cpu" else 0.0)
    gpu_extra = (p.decode_gpu_s if p.decode_on == "gpu" else 0.0) + (p.augment_gpu_s if p.augment_on == "gpu" else 0.0)
    batch = 256
    loop = Loop(
        gpu=p.gpu,
        batch=batch,
        decode_s_per_sample=cpu_s,
        bytes_per_sample=p.decoded_bytes,
        gpu_s_per_sample=1.0 / p.samples_per_s_per_gpu + gpu_extra,
        gpu_s_fixed=0.0,
        kernels_per_step=1,
        workers=p.workers_per_gpu,
        cores=max(1, int(p.cores_per_gpu)),
        pinned=p.pinned,
        prefetch=p.prefetch_depth > 0,
    )
    b = step(loop)
    stages = {
        "read (storage)": read,
        "decode + augment (CPU workers)": batch / b.load_s if b.load_s > 0 else math.inf,
        "H2D copy (PCIe)": batch / b.copy_s,
        "GPU compute": batch / b.compute_s,
    }
    if p.prefetch_depth > 0:
        achieved = min(stages.values())
    else:
        achieved = 1.0 / sum(1.0 / v for v in stages.values() if math.isfinite(v))
    bound = min(stages, key=stages.get)
    compute_only = p.samples_per_s_per_gpu
    stall = 1.0 - achieved / compute_only
    idle = 1.0 - achieved / stages["GPU compute"]
    idle_h = idle * p.nodes * gpus * 24.0
    epoch_h = p.dataset_bytes / p.sample_bytes / (achieved * gpus * p.nodes) / 3600.0
    return Profile(
        stages,
        bound,
        achieved,
        compute_only,
        stall,
        idle,
        h,
        rt.bound_by,
        achieved * gpus * p.sample_bytes * (1.0 - h),
        idle_h,
        idle_h * p.usd_per_gpu_hour,
        epoch_h,
    )


def compare(base: Pipeline, redesigns: dict[str, dict], rng=None) -> dict[str, Profile]:
    """``base`` and each redesign (field overrides of ``base``) profiled side by side."""
    out = {"baseline": profile(base, rng)}
    for name, over in redesigns.items():
        try:
            p = base.model_validate(base.model_dump() | dict(over))
        except Exception as e:  # pydantic ValidationError: a user's design file
            raise UserError(f"redesign '{name}': {e}", where=f"redesigns.{name}") from None
        out[name] = profile(p, rng)
    return out


def scale_nodes(base: Pipeline, nodes: list[int], rng=None) -> list[tuple[int, Profile]]:
    """The same pipeline on more nodes: shared tiers' ceilings divide among them."""
    return [(n, profile(replace_nodes(base, n), rng)) for n in nodes]


def replace_nodes(p: Pipeline, n: int) -> Pipeline:
    return p.model_copy(update={"nodes": n})


__all__ = ["Pipeline", "Profile", "profile", "compare", "scale_nodes"]
