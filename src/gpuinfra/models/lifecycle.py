"""Lifecycle phases of one attempt of a GPU job: startup, warm-up, steady state with checkpoint
stalls, teardown; how far it got when it ended, and what it had saved.

An attempt that must still do ``work_s`` seconds of steady work runs (all times in seconds):

- **startup** = image pull (``image_bytes`` over the registry's per-node rate, or its aggregate
  divided by the nodes pulling at once) + data/weights load (``load_bytes`` per node from the
  storage tier, models/storage.py) + NCCL initialisation, which grows with the ranks;
- **warm-up** (compilation, autotuning, the first slow steps);
- **steady** work in segments of ``interval_s``, each followed by a **checkpoint** stall of
  ``stall_s`` (the blocking part, models/checkpoint.py) except after the last; a checkpoint is
  durable ``lag_s`` after its stall ends (async persist);
- **teardown** (final flush, process exit, release).

Numbers standing for the real world are parameters with stated defaults (assumptions):
registry 1.25 GB/s per node (10 Gb/s) and 50 GB/s in aggregate, NCCL initialisation
5 s + 2 ms per rank. Failure risk by phase: startup touches every node's image cache, storage
and network at once (where cold-start bugs and NCCL timeouts surface); steady state carries the
hardware failure rate; teardown holds GPUs for nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpuinfra.models.storage import throughput, tier

REGISTRY_NODE_BYTES_PER_S = 1.25e9
"""A node pulls image layers at up to 10 Gb/s [assumption]."""
REGISTRY_AGGREGATE_BYTES_PER_S = 50e9
"""A registry (or its mirror) serves 50 GB/s in all [assumption]."""
NCCL_INIT_FIXED_S = 5.0
NCCL_INIT_PER_RANK_S = 0.002
"""NCCL communicator set-up: bootstrap all-gather and ring/tree set-up grow with ranks [assumption:
5 s + 2 ms per rank, about 38 s at 16,384 ranks]."""


def startup_parts(nodes: int, ranks: int, image_bytes: float, load_bytes: float, storage: str) -> dict[str, float]:
    """Seconds of each startup part: image pull, data/weights load, NCCL initialisation."""
    pull = image_bytes / min(REGISTRY_NODE_BYTES_PER_S, REGISTRY_AGGREGATE_BYTES_PER_S / max(nodes, 1))
    load = 0.0
    if load_bytes > 0:
        load = load_bytes / throughput(tier(storage, where="execution.storage"), nodes, 1, load_bytes).per_node
    nccl = NCCL_INIT_FIXED_S + NCCL_INIT_PER_RANK_S * ranks if ranks > 1 else 0.0
    return {"image pull": pull, "data/weights load": load, "NCCL init": nccl}


@dataclass(frozen=True)
class Timeline:
    """One attempt's plan: startup, warm-up, ``work_s`` of steady work with checkpoints, teardown."""

    startup_s: float
    warmup_s: float
    work_s: float
    interval_s: float = math.inf
    stall_s: float = 0.0
    lag_s: float = 0.0
    teardown_s: float = 0.0

    @property
    def head_s(self) -> float:
        return self.startup_s + self.warmup_s

    @property
    def checkpoints(self) -> int:
        """Checkpoints taken during the steady phase (none after the last segment)."""
        if not math.isfinite(self.interval_s) or self.work_s <= 0:
            return 0
        return max(0, math.ceil(self.work_s / self.interval_s) - 1)

    @property
    def total_s(self) -> float:
        return self.head_s + self.work_s + self.checkpoints * self.stall_s + self.teardown_s

    def work_at(self, elapsed: float) -> float:
        """Steady work done ``elapsed`` seconds into the attempt."""
        x = elapsed - self.head_s
        if x <= 0:
            return 0.0
        if not math.isfinite(self.interval_s):
            return min(x, self.work_s)
        k, r = divmod(x, self.interval_s + self.stall_s)
        return min(k * self.interval_s + min(r, self.interval_s), self.work_s)

    def saved_at(self, elapsed: float) -> float:
        """Work covered by the newest *durable* checkpoint ``elapsed`` seconds in (0 if none)."""
        if not math.isfinite(self.interval_s):
            return 0.0
        x = elapsed - self.head_s
        cyc = self.interval_s + self.stall_s
        n = math.floor((x - self.lag_s) / cyc) if x > self.lag_s else 0
        return min(max(n, 0), self.checkpoints) * self.interval_s

    def phase_at(self, elapsed: float) -> str:
        """The phase the attempt is in ``elapsed`` seconds after it started."""
        if elapsed < self.startup_s:
            return "startup"
        if elapsed < self.head_s:
            return "warm-up"
        steady_end = self.head_s + self.work_s + self.checkpoints * self.stall_s
        if elapsed >= steady_end:
            return "teardown"
        if not math.isfinite(self.interval_s):
            return "steady"
        r = (elapsed - self.head_s) % (self.interval_s + self.stall_s)
        return "steady" if r < self.interval_s else "checkpoint"

    def phases(self, elapsed: float | None = None, max_segments: int = 50) -> list[tuple[str, float, float]]:
        """(phase, start, end) offsets up to ``elapsed`` (default: the whole attempt).

        Steady segments and checkpoint stalls beyond ``max_segments`` are merged into one
        ``steady (+N checkpoints)`` span, so a long job's trace stays small."""
        end = self.total_s if elapsed is None else min(elapsed, self.total_s)
        out: list[tuple[str, float, float]] = []

        def add(name: str, a: float, b: float) -> bool:
            if a >= end:
                return False
            out.append((name, a, min(b, end)))
            return b < end

        if not add("startup", 0.0, self.startup_s) and self.startup_s >= end:
            return out
        if not add("warm-up", self.startup_s, self.head_s) and self.head_s >= end:
            return out
        t = self.head_s
        n = self.checkpoints
        for k in range(n + 1):
            seg = self.interval_s if k < n else self.work_s - n * self.interval_s if n else self.work_s
            if k == max_segments and n + 1 > max_segments:
                rest = self.head_s + self.work_s + n * self.stall_s - t
                add(f"steady (+{n - k} checkpoints)", t, t + rest)
                t += rest
                break
            if not add("steady", t, t + seg):
                return out
            t += seg
            if k < n:
                if not add("checkpoint", t, t + self.stall_s):
                    return out
                t += self.stall_s
        add("teardown", t, t + self.teardown_s)
        return out
