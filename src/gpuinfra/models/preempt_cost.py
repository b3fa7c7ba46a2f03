"""What it costs to stop a GPU job, against a CPU process that is paused for free.

A CPU process can be stopped (SIGSTOP) and resumed (SIGCONT) in place: its state stays in host
memory, which the kernel may page out; nothing is lost and the cost is microseconds. A GPU job
cannot be paused off the device: there is no transparent GPU context swap in a running
cluster, so stopping it means (a) saving its state, if it saves at all, and (b) releasing the
GPUs, and resuming means starting again. The cost of one preemption, per job:

- save: the job's state (weights, gradients' optimizer states: 16 bytes per parameter with Adam
  and fp32 master weights, as in the scaling model) over the slower of PCIe to host memory (per
  GPU, in parallel) and the storage write bandwidth (shared);
- lost work: the time since the last checkpoint, on average half the checkpoint interval when
  preemptions come at random times (an unplanned stop: the job could not save first);
- restart: scheduling and process start-up, loading the checkpoint at the storage read
  bandwidth, and warm-up (NCCL communicator set-up, compilation, autotuning) before the first
  useful step; all of it holds the GPUs without progress.

Inputs that stand for the real world are parameters with stated defaults (assumptions, not
measurements): storage 10 GB/s read and write for the whole job, 60 s start-up, 120 s warm-up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models.topology import PCIE_EFFICIENCY, PCIE_LINE_X16


@dataclass(frozen=True)
class GpuJob:
    params: float
    gpus: int
    gpu: str = "H100-SXM"
    bytes_per_param: float = 16.0
    checkpoint_interval_s: float = 3600.0
    storage_write_bytes_per_s: float = 10e9
    storage_read_bytes_per_s: float = 10e9
    startup_s: float = 60.0
    warmup_s: float = 120.0
    planned: bool = False
    """True: the job is told first and saves before stopping (no lost work, but it pays the save)."""


@dataclass(frozen=True)
class PreemptionCost:
    state_bytes: float
    save_s: float
    lost_work_s: float
    restart_s: float
    total_s: float
    gpu_hours: float
    cpu_pause_s: float
    """What pausing a CPU process costs (SIGSTOP/SIGCONT): effectively zero."""

    def as_dict(self) -> dict:
        return asdict(self)


def preemption_cost(job: GpuJob) -> PreemptionCost:
    if job.params <= 0 or job.gpus < 1:
        raise UserError("a job needs parameters and at least one GPU")
    state = job.params * job.bytes_per_param
    m = gpu_model(job.gpu)
    pcie = PCIE_LINE_X16[m.pcie_gen or 4] * PCIE_EFFICIENCY
    to_host = state / job.gpus / pcie  # every GPU copies its shard at once
    to_storage = state / job.storage_write_bytes_per_s
    save = max(to_host, to_storage) if job.planned else 0.0
    lost = 0.0 if job.planned else job.checkpoint_interval_s / 2
    restart = job.startup_s + state / job.storage_read_bytes_per_s + job.warmup_s
    total = save + lost + restart
    return PreemptionCost(state, save, lost, restart, total, total * job.gpus / 3600, 0.0)
