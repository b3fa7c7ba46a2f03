"""CPU-GPU feeding: which stage of a training or inference loop bounds the GPU.

One step handles one batch through four stages:

- **load**: reading and decoding samples on CPU worker processes: batch x decode time per sample /
  min(workers, cores) (a DataLoader's workers decode in parallel; more workers than cores do not
  help);
- **copy**: host-to-device over PCIe: batch bytes / effective PCIe rate. From *pinned* memory the
  copy is a DMA that runs asynchronously beside compute; from *pageable* memory the driver first
  copies into a pinned staging buffer (at host memory-copy speed) and the transfer is synchronous
  with the host thread (CUDA programming guide, "page-locked host memory") [P, behaviour];
- **launch**: the host thread issues every kernel: kernels x launch overhead (5 us assumed, as in
  the roofline);
- **compute**: the GPU's time for the batch: a fixed part per step plus a part per sample (from
  the roofline or given).

With prefetching (workers run ahead, pinned non-blocking copies), the stages overlap and the step
takes as long as the slowest pipeline stage; the launch thread and the GPU overlap because
kernels are queued asynchronously, so the GPU idles when launching takes longer than computing.
Without prefetching every stage waits for the previous one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models.roofline import LAUNCH_OVERHEAD_S
from gpuinfra.models.topology import PCIE_EFFICIENCY, PCIE_LINE_X16

HOST_MEMCPY_BYTES_PER_S = 10e9
"""Single-thread host memcpy into the pinned staging buffer: order of 10 GB/s on current servers
(an assumption, not a measurement; set it for your machine)."""


@dataclass(frozen=True)
class Loop:
    """A training or inference loop. Defaults: an image classifier on JPEGs (assumptions, stated)."""

    gpu: str = "A100-80GB"
    batch: int = 256
    decode_s_per_sample: float = 4e-3
    """CPU time to read, decode and augment one sample (a JPEG ~ a few ms) [assumption]."""
    bytes_per_sample: float = 224 * 224 * 3 * 4
    """What is copied per sample (a float32 224x224 RGB image)."""
    gpu_s_per_sample: float = 0.8e-3
    """GPU time per sample (forward + backward) [assumption: a ResNet-50-class model on an A100]."""
    gpu_s_fixed: float = 2e-3
    """GPU time per step independent of the batch (optimizer, small kernels)."""
    kernels_per_step: int = 600
    workers: int = 8
    cores: int = 32
    pinned: bool = True
    prefetch: bool = True

    def check(self) -> None:
        for k in ("batch", "workers", "cores", "kernels_per_step"):
            if getattr(self, k) < 1:
                raise UserError(f"{k} must be at least 1", where=f"--{k.replace('_', '-')}")
        for k in ("decode_s_per_sample", "bytes_per_sample", "gpu_s_per_sample", "gpu_s_fixed"):
            if getattr(self, k) < 0:
                raise UserError(f"{k} must not be negative", where=f"--{k.replace('_', '-')}")


@dataclass(frozen=True)
class StepBreakdown:
    load_s: float
    copy_s: float
    launch_s: float
    compute_s: float
    step_s: float
    bound_by: str
    gpu_idle_fraction: float
    samples_per_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def pcie_bytes_per_s(gpu: str) -> float:
    m = gpu_model(gpu)
    return PCIE_LINE_X16[m.pcie_gen or 4] * PCIE_EFFICIENCY


def step(loop: Loop) -> StepBreakdown:
    loop.check()
    load = loop.batch * loop.decode_s_per_sample / min(loop.workers, loop.cores)
    nbytes = loop.batch * loop.bytes_per_sample
    copy = nbytes / pcie_bytes_per_s(loop.gpu)
    if not loop.pinned:
        copy += nbytes / HOST_MEMCPY_BYTES_PER_S  # staging copy into a pinned bounce buffer
    launch = loop.kernels_per_step * LAUNCH_OVERHEAD_S
    compute = loop.gpu_s_fixed + loop.batch * loop.gpu_s_per_sample
    if loop.prefetch:
        # pageable copies are synchronous with the host thread that also launches kernels
        host = launch + (copy if not loop.pinned else 0.0)
        stages = {
            "data loading (CPU workers)": load,
            "host thread (launch + sync copies)": host,
            "GPU compute": compute,
        }
        if loop.pinned:
            stages["PCIe copy"] = copy
        st = max(stages.values())
        bound = max(stages, key=stages.get)
    else:
        st = load + copy + max(launch, compute)
        parts = {
            "data loading (CPU workers)": load,
            "PCIe copy": copy,
            "GPU compute": compute,
            "host thread (launch + sync copies)": launch,
        }
        bound = max(parts, key=parts.get)
    return StepBreakdown(load, copy, launch, compute, st, bound, 1.0 - compute / st, loop.batch / st)


def sweep_workers(loop: Loop, workers: list[int]) -> list[dict]:
    return [{"workers": w, **step(replace(loop, workers=w)).as_dict()} for w in workers]


def sweep_batch(loop: Loop, batches: list[int]) -> list[dict]:
    return [{"batch": b, **step(replace(loop, batch=b)).as_dict()} for b in batches]
