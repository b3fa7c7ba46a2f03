"""GPU OOM against CPU OOM: one process's memory demand ramps past capacity; what happens to its
progress (seed section 5.2).

- **GPU**: device memory has no swap and no overcommit. The allocation that does not fit raises
  ``torch.OutOfMemoryError`` at once (after the caching allocator's free-and-retry); uncaught, the
  process exits, and in a synchronous multi-GPU job every other rank then fails at its next
  collective: the whole job stops, its work since the last checkpoint is lost, and it must be
  restarted (the restart cost of :mod:`gpuinfra.models.preempt_cost`).
- **CPU**: the kernel first reclaims and swaps; a memory-bound process keeps running, slower, as
  its working set spills to swap. Only when RAM + swap (or a cgroup limit) is exhausted does the
  OOM killer pick a victim by its oom_score (roughly the largest resident process), and the
  other processes keep running; a container runtime restarts the killed container in seconds.
  Kubernetes nodes commonly run without swap, so a container there goes straight from "fits"
  to "killed" at its limit, but only that container.

The slowdown model for swapping is an assumption, stated: a memory-bound process whose fraction
``f`` of accesses hit swap runs at 1 / (1 + f x (memory bandwidth / swap bandwidth)) of its speed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class OomSetup:
    capacity_gib: float = 80.0
    start_fraction: float = 0.8
    """Demand at t = 0, as a fraction of capacity."""
    end_fraction: float = 1.3
    ramp_min: float = 30.0
    minutes: float = 60.0
    swap_gib: float = 32.0
    mem_bw_gb_s: float = 300.0
    swap_bw_gb_s: float = 3.0
    """An NVMe swap device (~3 GB/s) [assumption]."""
    since_checkpoint_min: float = 25.0
    restart_min: float = 10.0
    gpus: int = 8


@dataclass
class OomTimeline:
    minutes: list[float]
    demand_gib: list[float]
    cpu_progress: list[float]
    """Cumulative work done, in minutes of full-speed work."""
    gpu_progress: list[float]
    gpu_oom_at_min: float | None
    cpu_killed_at_min: float | None
    cpu_work_min: float
    gpu_work_min: float
    gpu_lost_gpu_hours: float

    def as_dict(self) -> dict:
        return asdict(self)


def compare(s: OomSetup = OomSetup(), dt_min: float = 0.5) -> OomTimeline:
    mins, demand, cpu, gpu = [], [], [], []
    cw = gw = 0.0
    gpu_dead_at = cpu_dead_at = None
    t = 0.0
    while t <= s.minutes + 1e-9:
        d = s.capacity_gib * (s.start_fraction + (s.end_fraction - s.start_fraction) * min(t / s.ramp_min, 1.0))
        # CPU: slower past RAM, killed past RAM + swap
        if cpu_dead_at is None:
            if d > s.capacity_gib + s.swap_gib:
                cpu_dead_at = t
            else:
                f = max(0.0, d - s.capacity_gib) / d
                cw += dt_min / (1 + f * s.mem_bw_gb_s / s.swap_bw_gb_s)
        # GPU: fine until the first allocation that does not fit, then the job is gone
        if gpu_dead_at is None:
            if d > s.capacity_gib:
                gpu_dead_at = t
                gw = max(0.0, gw - s.since_checkpoint_min)  # back to the last checkpoint
            else:
                gw += dt_min
        mins.append(t)
        demand.append(d)
        cpu.append(cw)
        gpu.append(gw)
        t += dt_min
    lost = 0.0
    if gpu_dead_at is not None:
        lost = (min(s.since_checkpoint_min, gpu_dead_at) + s.restart_min) * s.gpus / 60
    return OomTimeline(mins, demand, cpu, gpu, gpu_dead_at, cpu_dead_at, cw, gw, lost)
