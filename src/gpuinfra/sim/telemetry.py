"""Telemetry of a simulated GPU cluster under dcgm-exporter's and kube-state-metrics' names: the
data types (:class:`Telemetry`, :class:`TJob`, :class:`TruthIncident`) and the per-profile counters.

The simulation that produces it is a replay on the one simulator, composed above ``sim/`` (the
engine is the composition, nothing in ``sim/`` imports it): ``gpuinfra.obs.simulate.simulate_telemetry``
replays the workload with the ``incidents`` and ``telemetry`` subsystems (``sim/incidents.py``).
``sim/telemetry_run.py`` builds the same type from a finished ``gpuinfra simulate`` run.
Values: power = idle + (TDP - idle) x (0.3 SM_ACTIVE + 0.7 tensor/DRAM activity), temperature
= 30 C + 0.07 C/W [assumptions, stated]; memory in MiB of the GPU's visible total.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.models.counters import average, sample, scenarios
from gpuinfra.sim.incidents import TruthIncident

__all__ = ["Telemetry", "TJob", "TruthIncident", "IDLE_W", "MODEL_NAMES"]

MODEL_NAMES = {"H100-SXM": "NVIDIA H100 80GB HBM3", "A100-80GB": "NVIDIA A100-SXM4-80GB", "H200": "NVIDIA H200"}
IDLE_W = 70.0
"""Idle board power, W: an assumption (order of 60-90 W for HGX parts)."""


@dataclass
class TJob:
    pod: str
    namespace: str
    gpus: list[tuple[int, int]]
    start_s: float
    end_s: float
    profile: str
    mem_frac: float
    steps_per_s: float


@dataclass
class Telemetry:
    times: np.ndarray
    """Sample times, seconds from the start (unix time = start_unix + t)."""
    series: dict[str, dict[tuple[tuple[str, str], ...], np.ndarray]]
    """metric -> label set (sorted tuples) -> values (NaN = no sample)."""
    types: dict[str, str]
    helps: dict[str, str]
    truth: list[TruthIncident]
    jobs: list[TJob]
    nodes: list[str]
    gpus_per_node: int
    gpu: str
    start_unix: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    noise: list[dict] = field(default_factory=list)
    invariants: dict | None = None
    """The simulation's invariant checks (sim/invariants.Invariants.as_dict), when it ran on the kernel."""

    @property
    def interval_s(self) -> float:
        return float(self.times[1] - self.times[0]) if len(self.times) > 1 else 0.0

    def n_samples(self) -> int:
        return int(sum(np.count_nonzero(~np.isnan(v)) for m in self.series.values() for v in m.values()))


PROFILE_STREAM = {"training": "healthy training", "starved": "data-starved", "decode": "memory-bound decode"}


def _profile_counters(gpu: str) -> dict[str, dict[str, float]]:
    sc = scenarios(gpu)
    out = {}
    for prof, name in PROFILE_STREAM.items():
        c = average(sample(sc[name][1], gpu, 10.0))
        out[prof] = {"util": c.gpu_util_pct, "sm": c.sm_active, "tensor": c.tensor_active, "dram": c.dram_active}
    out["idle"] = {"util": 0.0, "sm": 0.0, "tensor": 0.0, "dram": 0.0}
    out["hang"] = {"util": 100.0, "sm": 1.0 / (gpu_model(gpu).sm_count or 100), "tensor": 0.0, "dram": 0.0}
    return out
