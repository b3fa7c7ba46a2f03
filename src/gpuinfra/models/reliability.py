"""A large training job against GPU-cluster failures: detection, remediation and their cost.

Failure data (catalog/data/failure_mix.csv): the unexpected-interruption mix of Llama 3's 54-day
run (arXiv 2407.21783, Table 5 [S]), each row mapped to a class, a scope (one node, the job
only, or a rack behind one switch), an action, whether it is *sticky* (the node stays broken
until repaired), the signal that first sees it, and a repair time (assumptions, stated per row).
The total rate defaults to 3.8 unexpected interruptions per 1,000 node-days, the figure the
same run implies (facts/failures-and-checkpoints.md 3.1 [D]). Detection delays per signal are in
catalog/data/detection_signals.csv.

One job of ``nodes`` nodes runs for ``days``. Failures arrive as a Poisson process over the
job's nodes (node rates scaled by a lemon factor for a fraction of lemon nodes, as Meta's
lemon-node study found, Kokolis et al. HPCA 2025 [S]). At a failure:

1. the job stops making progress; work since the last checkpoint is lost;
2. after the signal's detection delay the failure is known;
3. the remediation policy acts:
   - ``naive``: restart in place at once. If the fault is sticky, every restart on the broken
     node crashes after ``crash_s``, and the loop repeats until a person notices (the
     ``manual`` delay); then the node is repaired and the job waits for it;
   - ``cordon``: cordon the broken node and wait for its repair, then restart;
   - ``spares``: cordon it and swap in a spare node at once if one is free (the broken node
     returns to the pool after its repair); otherwise wait like ``cordon``;
   - ``spares+quarantine``: as ``spares``, and a node that fails ``lemon_threshold`` times is
     replaced for good (its lemon rate leaves the job);
4. the restart itself takes ``restart_s`` (start-up, checkpoint load, warm-up).

The job holds all its GPUs throughout (GPUs are not preemptible, so waiting is paid). Outputs:
ETTR (productive time / wall time) and GPU-hours lost by cause. Simplifications, stated: the
next failure is drawn after the job restarts (failures while it is down are not counted), a rack
fault takes ``rack_nodes`` of the job's nodes at once, and spares are always healthy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError
from gpuinfra.rng import Rngs

POLICIES = ("naive", "cordon", "spares", "spares+quarantine")
LLAMA3_RATE_PER_1000_NODE_DAYS = 419 / (2048 * 54) * 1000
"""419 unexpected interruptions, 2,048 nodes, 54 days (facts 3.1) [D] = 3.79."""


@dataclass(frozen=True)
class FailureClass:
    component: str
    share: float
    cls: str
    scope: str
    action: str
    sticky: bool
    signal: str
    repair_s: float
    source: str


@dataclass(frozen=True)
class Signal:
    name: str
    fixed_s: float
    poll_s: float
    evidence: str
    source: str

    def delay(self, rng: np.random.Generator) -> float:
        """Fixed latency plus a uniformly distributed wait for the next poll."""
        return self.fixed_s + (float(rng.uniform(0, self.poll_s)) if self.poll_s else 0.0)

    @property
    def mean_s(self) -> float:
        return self.fixed_s + self.poll_s / 2


@cache
def failure_mix() -> tuple[FailureClass, ...]:
    rows = read_csv_rows("failure_mix.csv")
    total = sum(int(r["count"]) for r in rows)
    return tuple(
        FailureClass(
            r["component"],
            int(r["count"]) / total,
            r["class"],
            r["scope"],
            r["action"],
            r["sticky"] == "true",
            r["signal"],
            float(r["repair_s"]),
            r["source"],
        )
        for r in rows
    )


@cache
def signals() -> dict[str, Signal]:
    return {
        r["signal"]: Signal(r["signal"], float(r["fixed_s"]), float(r["poll_s"]), r["evidence"], r["source"])
        for r in read_csv_rows("detection_signals.csv")
    }


@dataclass(frozen=True)
class JobSpec:
    nodes: int = 128
    gpus_per_node: int = 8
    days: float = 30.0
    rate_per_1000_node_days: float = LLAMA3_RATE_PER_1000_NODE_DAYS
    checkpoint_interval_s: float = 3600.0
    restart_s: float = 600.0
    """Start-up + checkpoint load + warm-up: Kokolis et al. put restart overhead at 5-20 min [S]."""
    crash_s: float = 120.0
    """How long a restart on a still-broken node runs before it fails again [assumption]."""
    policy: str = "spares"
    spares: int = 4
    lemon_fraction: float = 0.0
    lemon_factor: float = 10.0
    lemon_threshold: int = 2
    rack_nodes: int = 4
    usd_per_gpu_hour: float = 0.0
    checkpoint_stall_s: float = 0.0
    """GPUs blocked per checkpoint (models/checkpoint.py): a cycle is interval + stall of uptime."""
    requeue_s: float = 0.0
    """Time in the queue before each restart is placed (0: the job keeps its capacity)."""

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise UserError(
                f"unknown remediation policy '{self.policy}'", where="--policy", expected=", ".join(POLICIES)
            )
        if self.nodes < 1 or self.days <= 0 or self.checkpoint_interval_s <= 0:
            raise UserError("a job needs nodes >= 1, days > 0 and a positive checkpoint interval")
        if self.checkpoint_stall_s < 0 or self.requeue_s < 0:
            raise UserError("checkpoint stall and requeue time must not be negative")
        if not 0.0 <= self.lemon_fraction < 1.0 or self.lemon_factor < 1.0:
            raise UserError(
                "lemon fraction must be in [0, 1) and the lemon factor >= 1", where="--lemon-fraction/--lemon-factor"
            )


@dataclass
class JobOutcome:
    spec: dict
    wall_s: float
    productive_s: float
    ettr: float
    failures: int
    failures_by_class: dict[str, int] = field(default_factory=dict)
    lost_gpu_hours: dict[str, float] = field(default_factory=dict)
    crash_loops: int = 0
    spares_used: int = 0
    waited_for_repair: int = 0
    quarantined: int = 0
    events: list[dict] = field(default_factory=list)

    @property
    def total_lost_gpu_hours(self) -> float:
        return sum(self.lost_gpu_hours.values())

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total_lost_gpu_hours"] = self.total_lost_gpu_hours
        d["usd_lost"] = self.total_lost_gpu_hours * self.spec["usd_per_gpu_hour"]
        return d


def simulate(spec: JobSpec, seed: int = 0, keep_events: int = 200) -> JobOutcome:
    spec.check()
    rng = Rngs(seed).stream("reliability")
    mix = failure_mix()
    sig = signals()
    shares = np.array([c.share for c in mix])
    base = spec.rate_per_1000_node_days / 1000 / 86400  # per node-second
    lemon = rng.random(spec.nodes) < spec.lemon_fraction
    weight = np.where(lemon, spec.lemon_factor, 1.0)
    fails_on = np.zeros(spec.nodes, dtype=int)
    gpus = spec.nodes * spec.gpus_per_node
    horizon = spec.days * 86400
    t = 0.0
    productive = 0.0
    since_cp = 0.0
    spare_return: list[float] = []
    out = JobOutcome(asdict(spec), horizon, 0.0, 0.0, 0)
    lost = {k: 0.0 for k in ("lost_work", "detection", "crash_loops", "waiting_for_repair", "restart")}
    stall, cyc = spec.checkpoint_stall_s, spec.checkpoint_interval_s + spec.checkpoint_stall_s
    if stall > 0:
        lost["checkpoint_stalls"] = 0.0
    if spec.requeue_s > 0:
        lost["requeue"] = 0.0

    def work(x: float) -> float:
        """Work done in ``x`` seconds of uptime from a cycle's start (stalls are not work)."""
        k, r = divmod(x, cyc)
        return k * spec.checkpoint_interval_s + min(r, spec.checkpoint_interval_s)

    def charge(kind: str, seconds: float) -> None:
        lost[kind] += seconds * gpus / 3600

    while t < horizon:
        rate = base * float(weight.sum())
        gap = float(rng.exponential(1 / rate)) if rate > 0 else horizon
        run = min(gap, horizon - t)
        done = work(since_cp + run) - work(since_cp)
        productive += done
        if stall > 0:
            charge("checkpoint_stalls", run - done)
        since_cp = (since_cp + run) % cyc
        t += run
        if t >= horizon:
            break
        # a failure: which node, which class
        node = int(rng.choice(spec.nodes, p=weight / weight.sum()))
        c = mix[int(rng.choice(len(mix), p=shares))]
        out.failures += 1
        out.failures_by_class[c.component] = out.failures_by_class.get(c.component, 0) + 1
        fails_on[node] += 1
        productive -= min(since_cp, spec.checkpoint_interval_s)
        charge("lost_work", since_cp)
        if stall > 0:  # a partial stall in the lost cycle was charged as a stall: count it as lost work only
            charge("checkpoint_stalls", -(since_cp - min(since_cp, spec.checkpoint_interval_s)))
        ev = {"t_h": t / 3600, "node": node, "component": c.component, "lost_work_s": since_cp}
        since_cp = 0.0
        down = 0.0
        detect = sig[c.signal].delay(rng)
        charge("detection", detect)
        down += detect
        broken_nodes = spec.rack_nodes if c.scope == "rack" else (1 if c.scope == "node" else 0)
        broken_nodes = min(broken_nodes, spec.nodes)
        if c.sticky and broken_nodes:
            if spec.policy == "naive":
                # restart in place until someone notices, then wait for the repair
                manual = sig["manual"].delay(rng)
                loops = int(manual // (spec.restart_s + spec.crash_s)) + 1
                out.crash_loops += loops
                charge("crash_loops", manual)
                down += manual
                charge("waiting_for_repair", c.repair_s)
                down += c.repair_s
                out.waited_for_repair += 1
            else:
                spare_return = (
                    [r for r in spare_return if r > t + down] if spec.policy.startswith("spares") else spare_return
                )
                free = spec.spares - len(spare_return) if spec.policy.startswith("spares") else 0
                if free >= broken_nodes:
                    out.spares_used += broken_nodes
                    spare_return += [t + down + c.repair_s] * broken_nodes
                else:
                    charge("waiting_for_repair", c.repair_s)
                    down += c.repair_s
                    out.waited_for_repair += 1
                if spec.policy == "spares+quarantine" and fails_on[node] >= spec.lemon_threshold:
                    out.quarantined += 1
                    weight[node] = 1.0  # replaced by a fresh node: no longer a lemon
                    fails_on[node] = 0
        charge("restart", spec.restart_s)
        down += spec.restart_s
        if spec.requeue_s > 0:
            charge("requeue", spec.requeue_s)
            down += spec.requeue_s
        ev["down_s"] = down
        if len(out.events) < keep_events:
            out.events.append(ev)
        t += down
    out.productive_s = max(productive, 0.0)
    out.wall_s = horizon
    out.ettr = out.productive_s / horizon
    out.lost_gpu_hours = lost
    return out


def expected_ettr(spec: JobSpec) -> float:
    """Closed form when repairs never hold the job (enough spares, no lemons): a run lasts
    X ~ Exp(lambda) with lambda = nodes x rate and keeps the work up to its last checkpoint,
    E[X - (X mod T)] = T / (e^(lambda T) - 1), then is down for detection d (the mix's mean) and
    restart R: ETTR = lambda T / (e^(lambda T) - 1) / (1 + lambda (d + R)) [D]. Exact under
    memoryless failures, always in (0, 1]; for T << 1/lambda it is (1 - lambda T / 2) / (1 +
    lambda (d + R)), the half-interval rule."""
    lam = spec.nodes * spec.rate_per_1000_node_days / 1000 / 86400
    d = sum(c.share * signals()[c.signal].mean_s for c in failure_mix())
    x = lam * spec.checkpoint_interval_s
    kept = x / math.expm1(x) if x > 0 else 1.0
    return kept / (1.0 + lam * (d + spec.restart_s))
