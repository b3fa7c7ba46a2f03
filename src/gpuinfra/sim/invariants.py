"""The invariants every run checks, whatever command or lab made it.

1. **No over-commit**: no device above 1000 milli-GPU, no node above its CPU or memory, at any
   allocation (``ClusterState`` keeps the peaks; ``allocate`` raises ``OverCommitError`` at the
   moment it would happen, so a violation is a bug caught where it occurs).
2. **GPU-time balance**: allocated + idle + unavailable GPU-time = capacity x time. The three
   levels come from three places (the cluster's running totals, each node's free milli on its
   available devices, the availability mask), so the equality is a real check, integrated
   exactly from the recorder's change log.

:func:`check_invariants` computes both from a finished run's cluster and recorder and returns
an :class:`Invariants` value; :func:`require` raises :class:`InvariantError` when one fails.
The engine calls both at the end of every replay; other simulations on the kernel (sharing,
telemetry, serving) build a ``ClusterState`` and ``Recorder`` and call them the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState
from gpuinfra.sim.recorder import Recorder

BALANCE_REL_TOL = 1e-9
"""Relative tolerance of the GPU-time balance (floating-point integration error only)."""

MILLI_S_PER_GPU_HOUR = MILLI_PER_GPU * 3600.0


class InvariantError(AssertionError):
    """A simulation broke an invariant: a gpuinfra bug, never a user error."""


@dataclass(frozen=True)
class Invariants:
    """Both invariants of one run, with the figures that decide them (GPU-hours)."""

    no_overcommit: bool
    peak_device_used_milli: int
    peak_node_cpu_ratio: float
    peak_node_mem_ratio: float
    gpu_time_balance: bool
    allocated_gpu_hours: float
    idle_gpu_hours: float
    unavailable_gpu_hours: float
    capacity_x_time_gpu_hours: float
    relative_error: float

    @property
    def ok(self) -> bool:
        """Both invariants hold, and the figures are physically possible: a negative capacity x time
        or relative error (a run that ends before it starts) is never ok."""
        return (
            self.no_overcommit
            and self.gpu_time_balance
            and self.capacity_x_time_gpu_hours >= 0
            and self.relative_error >= 0
        )

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def check_invariants(cluster: ClusterState, recorder: Recorder, horizon_s: float) -> Invariants:
    """Both invariants of a run that ends at ``horizon_s`` (finalises the recorder if needed).

    A run that ends before it starts (``horizon_s`` < the recorder's ``start_s``) fails the GPU-time
    balance: its window, and so its capacity x time, would be negative (physically impossible; the
    engine never ends a run before it starts, and a scenario whose pods all arrive after
    ``horizon_s`` is refused when it is built)."""
    if not recorder.finalized:
        recorder.finalize(horizon_s)
    duration = float(recorder.edges[-1]) - recorder.start_s if len(recorder.edges) else 0.0
    ends_before_start = float(horizon_s) < recorder.start_s or duration < 0
    cap_ms = float(cluster.capacity_milli.sum()) * duration
    tot = recorder.totals()
    balance = tot["allocated"] + tot["idle"] + tot["unavailable"]
    rel = abs(balance - cap_ms) / cap_ms if cap_ms else abs(balance)
    over_ok = (
        cluster.peak_device_used_milli <= MILLI_PER_GPU
        and cluster.peak_cpu_ratio <= 1.0 + 1e-12
        and cluster.peak_mem_ratio <= 1.0 + 1e-12
    )
    return Invariants(
        no_overcommit=bool(over_ok),
        peak_device_used_milli=int(cluster.peak_device_used_milli),
        peak_node_cpu_ratio=float(cluster.peak_cpu_ratio),
        peak_node_mem_ratio=float(cluster.peak_mem_ratio),
        gpu_time_balance=bool(0 <= rel <= BALANCE_REL_TOL and cap_ms >= 0 and not ends_before_start),
        allocated_gpu_hours=tot["allocated"] / MILLI_S_PER_GPU_HOUR,
        idle_gpu_hours=tot["idle"] / MILLI_S_PER_GPU_HOUR,
        unavailable_gpu_hours=tot["unavailable"] / MILLI_S_PER_GPU_HOUR,
        capacity_x_time_gpu_hours=cap_ms / MILLI_S_PER_GPU_HOUR,
        relative_error=float(rel),
    )


def require(inv: Invariants, what: str = "run") -> Invariants:
    """Raise :class:`InvariantError` naming the broken invariant; return ``inv`` when both hold."""
    if not inv.no_overcommit:
        raise InvariantError(f"{what}: a device, CPU or memory was over-committed ({inv})")
    if not inv.gpu_time_balance or not inv.ok:
        raise InvariantError(f"{what}: allocated + idle + unavailable GPU-time != capacity x time ({inv})")
    return inv
