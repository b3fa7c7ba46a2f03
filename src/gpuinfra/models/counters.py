"""What the GPU's utilization counters read for a stream of kernels, and what work was done.

Definitions (facts/gpu.md 5.3; NVML ``nvmlUtilization_t``, DCGM profiling fields) [P], and the
simulator rules derived from them [D]:

- ``DCGM_FI_DEV_GPU_UTIL`` (NVML gpu utilization): percent of the sample period during which
  one or more kernels was executing. One thread on one SM for the whole period reads 100 %.
- ``DCGM_FI_PROF_GR_ENGINE_ACTIVE``: the same time fraction, as a ratio.
- ``DCGM_FI_PROF_SM_ACTIVE``: cycles with at least one warp on an SM, averaged over all SMs:
  sum over kernels of (SMs it occupies / SMs) x (its time in the period).
- ``DCGM_FI_PROF_SM_OCCUPANCY``: resident warps over the maximum, averaged over SMs and time.
- ``DCGM_FI_PROF_PIPE_TENSOR_ACTIVE``: cycles the tensor pipe is busy: achieved tensor FLOP/s
  over the dense peak, time-weighted.
- ``DCGM_FI_PROF_DRAM_ACTIVE``: cycles the memory interface is busy: achieved bytes/s over the
  peak bandwidth, time-weighted.
- ``DCGM_FI_DEV_MEM_COPY_UTIL``: percent of the period during which device memory was read or
  written (a time fraction again: any kernel that touches memory counts fully).

A kernel is described by its work (FLOPs, bytes), how many SMs it occupies (its grid: blocks
beyond the SM count fill every SM) and its occupancy; its duration comes from the roofline with
the compute peak and the bandwidth it can draw scaled by the fraction of SMs it occupies (a few
SMs cannot saturate HBM either: an assumption, stated). One stream, kernels back to back with
host gaps between them; concurrent kernels are not modelled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models import roofline as rl

TRAINING_MFU = 0.43
"""Model FLOP utilisation of healthy large-scale training: 38-43 % BF16 MFU for Llama 3 405B on
8,192-16,384 H100 (Grattafiori et al. 2024, arXiv 2407.21783, Table 4; facts/failures-and-checkpoints.md
3.1 quotes 38-43 %); MegaScale reports 55.2 % on 12,288 GPUs (arXiv 2402.15627). The upper Llama 3
figure is used: a healthy job, not a record."""

NVML_SAMPLE_S = 1.0
"""NVML's gpu-utilization sample period is between 1/6 s and 1 s depending on the product
(facts/gpu.md 5.3); 1 s assumed."""


@dataclass(frozen=True)
class Kernel:
    name: str
    duration_s: float
    sm_fraction: float
    """SMs with at least one warp of this kernel / all SMs."""
    occupancy: float
    """Resident warps / maximum warps on the SMs it occupies."""
    tensor_active: float
    """Achieved tensor FLOP/s / dense tensor peak while it runs (whole GPU)."""
    dram_active: float
    """Achieved bytes/s / peak bandwidth while it runs."""
    flops: float = 0.0
    """Useful work (what a throughput metric would count)."""


def kernel(
    name: str,
    device: str,
    flops: float,
    bytes_: float,
    blocks: int,
    *,
    occupancy: float = 0.5,
    tensor: bool = True,
    precision: str = "bf16",
    min_duration_s: float = 0.0,
) -> Kernel:
    """A kernel on ``device`` from its work and grid: duration by the roofline on the SMs it gets."""
    m = gpu_model(device)
    if not m.sm_count:
        raise UserError(f"{m.name} has no SM count in the catalog", expected="a GPU model with specs")
    if blocks < 1 or not 0.0 < occupancy <= 1.0:
        raise UserError("a kernel needs at least one block and an occupancy in (0, 1]", where=name)
    frac = min(1.0, blocks / m.sm_count)
    peak = rl.peak(m, precision if tensor else "fp32") * frac
    bw = float(m.mem_bw_bytes_per_s or 0.0) * frac
    t = max(flops / peak if flops else 0.0, bytes_ / bw if bytes_ else 0.0, min_duration_s)
    if t <= 0:
        raise UserError("a kernel with no work and no duration", where=name)
    tensor_active = (flops / t) / rl.peak(m, precision) if tensor and flops else 0.0
    dram_active = (bytes_ / t) / float(m.mem_bw_bytes_per_s or 1.0)
    return Kernel(name, t, frac, occupancy, min(tensor_active, 1.0), min(dram_active, 1.0), flops)


@dataclass(frozen=True)
class Counters:
    window_s: float
    gpu_util_pct: float
    gr_engine_active: float
    sm_active: float
    sm_occupancy: float
    tensor_active: float
    dram_active: float
    mem_copy_util_pct: float
    useful_tflops: float
    """Useful FLOP/s delivered in the window (TFLOP/s)."""
    useful_fraction: float
    """Useful FLOP/s over the dense tensor peak: how much of the GPU's work capacity was used."""

    def as_dcgm(self) -> dict[str, float]:
        """The counters under dcgm-exporter's names (catalog/data/dcgm)."""
        return {
            "DCGM_FI_DEV_GPU_UTIL": round(self.gpu_util_pct),
            "DCGM_FI_DEV_MEM_COPY_UTIL": round(self.mem_copy_util_pct),
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE": self.gr_engine_active,
            "DCGM_FI_PROF_SM_ACTIVE": self.sm_active,
            "DCGM_FI_PROF_SM_OCCUPANCY": self.sm_occupancy,
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": self.tensor_active,
            "DCGM_FI_PROF_DRAM_ACTIVE": self.dram_active,
        }


def timeline(stream: list[tuple[Kernel, float]], repeat_for_s: float) -> dict[str, np.ndarray]:
    """Arrays (start, end and each kernel's attributes) for a stream of (kernel, host gap after
    it), repeated to fill ``repeat_for_s`` seconds."""
    if not stream:
        raise UserError("an empty kernel stream")
    dur = np.array([k.duration_s for k, _ in stream])
    gaps = np.array([g for _, g in stream])
    if np.any(dur <= 0) or np.any(gaps < 0):
        raise UserError("kernel durations must be positive and host gaps non-negative")
    step = dur + gaps
    period = float(step.sum())
    offs = np.concatenate([[0.0], np.cumsum(step)[:-1]])
    reps = int(np.ceil(repeat_for_s / period))
    start = (np.arange(reps)[:, None] * period + offs[None, :]).ravel()
    keep = start < repeat_for_s
    n = len(stream)
    attr = {
        f: np.tile(np.array([getattr(k, f) for k, _ in stream], dtype=float), reps)[keep]
        for f in ("duration_s", "sm_fraction", "occupancy", "tensor_active", "dram_active", "flops")
    }
    attr["start"] = start[keep]
    attr["end"] = attr["start"] + attr["duration_s"]
    attr["n_kernels"] = np.array([n])
    return attr


def sample(
    stream: list[tuple[Kernel, float]], device: str, duration_s: float = 10.0, window_s: float = NVML_SAMPLE_S
) -> list[Counters]:
    """Counters per sample window over ``duration_s`` of the stream."""
    m = gpu_model(device)
    peak = rl.peak(m, "bf16")
    tl = timeline(stream, duration_s)
    s, e = tl["start"], tl["end"]
    out = []
    w0 = 0.0
    while w0 < duration_s - 1e-12:
        w1 = min(w0 + window_s, duration_s)
        w = w1 - w0
        lo = max(int(np.searchsorted(e, w0, side="right")) - 1, 0)
        hi = int(np.searchsorted(s, w1, side="left"))
        ov = np.clip(np.minimum(e[lo:hi], w1) - np.maximum(s[lo:hi], w0), 0.0, None)
        sl = slice(lo, hi)
        busy = float(ov.sum())
        sm = float((ov * tl["sm_fraction"][sl]).sum())
        occ = float((ov * tl["sm_fraction"][sl] * tl["occupancy"][sl]).sum())
        ten = float((ov * tl["tensor_active"][sl]).sum())
        dram = float((ov * tl["dram_active"][sl]).sum())
        mem = float((ov * (tl["dram_active"][sl] > 0)).sum())
        flops = float((tl["flops"][sl] * ov / tl["duration_s"][sl]).sum())
        out.append(
            Counters(
                w,
                100 * busy / w,
                busy / w,
                sm / w,
                occ / w,
                ten / w,
                dram / w,
                100 * mem / w,
                flops / w / 1e12,
                flops / w / peak,
            )
        )
        w0 = w1
    return out


def average(cs: list[Counters]) -> Counters:
    tot = sum(c.window_s for c in cs)
    vals = {
        f: sum(getattr(c, f) * c.window_s for c in cs) / tot for f in Counters.__dataclass_fields__ if f != "window_s"
    }
    return Counters(window_s=tot, **vals)


# -- scenarios -----------------------------------------------------------------------------------


def scenarios(device: str = "H100-SXM") -> dict[str, tuple[str, list[tuple[Kernel, float]]]]:
    """Kernel streams whose counters mislead (and one that does not), on ``device``."""
    m = gpu_model(device)
    sms = m.sm_count or 100
    h = 8192
    # A training step is GEMMs, attention, norms and exposed communication; as one stream it delivers
    # the model FLOP utilisation real runs report, not the GEMM roofline: TRAINING_MFU of the peak.
    step_flops = 2.0 * h**3
    big = kernel(
        "training step (GEMMs, attention, norms)",
        device,
        step_flops,
        2 * 3 * h * h,
        blocks=4 * sms,
        occupancy=0.5,
        min_duration_s=step_flops / (rl.peak(m, "bf16" if m.bf16 else "fp16") * TRAINING_MFU),
    )
    gemv = kernel("decode gemv 1x8192x8192", device, 2.0 * h * h, 2.0 * h * h, blocks=2 * sms, occupancy=0.75)
    tiny = kernel(
        "small-batch op",
        device,
        2.0 * 8 * 1024 * 1024,
        2 * (8 * 1024 + 1024 * 1024),
        blocks=8,
        occupancy=0.25,
        min_duration_s=4e-6,
    )
    spin = Kernel("NCCL wait (spinning)", 1.0, 1.0 / sms, 1.0 / 64, 0.0, 0.0, 0.0)
    one = kernel("one-block reduction", device, 1e6, 64e6, blocks=1, occupancy=1.0 / 64, tensor=False, precision="fp32")
    launch = rl.LAUNCH_OVERHEAD_S
    return {
        "healthy training": (
            f"a training step's kernels back to back at {TRAINING_MFU:.0%} MFU (Llama 3 405B on H100): "
            "what 100% utilization looks like when all is well",
            [(big, launch)],
        ),
        "data-starved": (
            "the same training kernels, waiting 60% of the time for input from the CPU",
            [(big, big.duration_s * 1.5)],
        ),
        "memory-bound decode": ("LLM decode: every step streams the weights, FLOPs are few", [(gemv, launch)]),
        "small-batch inference": ("tiny kernels on 8 SMs, launch after launch", [(tiny, launch)]),
        "one-block kernel": ("a single-block kernel runs all the time (a serial reduction)", [(one, launch)]),
        "hung collective": ("an NCCL kernel spins on one SM waiting for a peer that never comes", [(spin, 0.0)]),
    }


@dataclass(frozen=True)
class MonitorVerdict:
    scenario: str
    counters: Counters
    util_only_says: str
    truth: str
    misled: bool
    better_signal: str

    def as_dict(self) -> dict:
        d = asdict(self)
        d["counters"] = asdict(self.counters)
        return d


def util_only_monitor(c: Counters, idle_below_pct: float = 50.0) -> str:
    """The design seed section 2 asks to examine: trust DCGM_FI_DEV_GPU_UTIL alone."""
    return "idle: reclaim or alert" if c.gpu_util_pct < idle_below_pct else "busy: healthy, leave it"


def truth(c: Counters, useful_min: float = 0.3) -> str:
    """What the GPU is doing, judged by work delivered (useful FLOP/s or bandwidth used)."""
    if c.useful_fraction >= useful_min:
        return f"doing useful compute ({c.useful_fraction:.0%} of peak FLOP/s)"
    if c.dram_active >= 0.5:
        return "memory-bandwidth bound: busy moving bytes, compute mostly idle"
    if c.gpu_util_pct >= 50:
        return "occupied but doing little work"
    if c.useful_fraction > 0.05:
        return "working in bursts, starved by the host between kernels"
    return "mostly idle"


def evaluate_monitor(device: str = "H100-SXM", duration_s: float = 10.0) -> list[MonitorVerdict]:
    out = []
    for name, (_, stream) in scenarios(device).items():
        c = average(sample(stream, device, duration_s))
        says, real = util_only_monitor(c), truth(c)
        # misled: calls a GPU that does little work healthy, or calls a running job idle
        misled = (says.startswith("busy") and real == "occupied but doing little work") or (
            says.startswith("idle") and real != "mostly idle"
        )
        better = f"SM_ACTIVE {c.sm_active:.2f}, TENSOR {c.tensor_active:.2f}, DRAM {c.dram_active:.2f}"
        out.append(MonitorVerdict(name, c, says, real, misled, better))
    return out
