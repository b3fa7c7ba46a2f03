"""Rollout and rollback of a model version across serving replicas, on the kernel.

A fleet of ``replicas`` serving replicas runs version ``old`` (one GPU each, held through
``ClusterState.allocate`` from the moment a replica starts loading until it is drained). At
``start_s`` a new version is rolled out by one of the strategies Kubernetes and Argo Rollouts
implement:

- ``recreate`` (Deployment ``Recreate``): every old replica is stopped, then the new ones start;
  nothing serves during the cold start (requests in that gap are refused). The baseline.
- ``rolling`` (Deployment ``RollingUpdate`` with maxSurge 1, maxUnavailable 0): one new replica
  starts; when it is ready one old replica is drained; repeat. Traffic follows the ready replicas.
- ``canary`` (Argo Rollouts ``setWeight`` with traffic routing): one extra replica of the new
  version gets ``canary_weight`` of the traffic for ``bake_s`` while an analysis compares it with
  the stable version; then it is promoted by a rolling replacement of the rest.
- ``bluegreen`` (Argo Rollouts ``blueGreen``): a full second fleet (the *green*) starts beside the
  blue, so the run holds twice the GPUs; when all green replicas are ready all traffic switches;
  blue is kept for ``bake_s`` (``scaleDownDelaySeconds``) and then released.

The new version may carry a *silent failure* (:class:`Failure`): a fraction of its answers are
wrong (an unvalidated precision change, a tokenizer or chat-template mismatch, a runtime/model
version skew); only some wrong answers surface as errors, and wrong answers have a different
output-length distribution. Nothing flags a single request. A team sees it through the signals it
has, evaluated every ``eval_s`` as Prometheus evaluates rules:

- **error-budget burn** (Google SRE Workbook, "Alerting on SLOs": multiwindow, multi-burn-rate):
  fire when the error ratio over both 5 min and 1 h exceeds ``burn_rate`` (14.4) x (1 - SLO);
- **perplexity drift**: the mean per-request negative log-likelihood of the model's own outputs
  (serving engines return token logprobs), standardised, over the last ``drift_window_s``, more
  than ``drift_z`` standard errors from the stable version's, for ``drift_for`` evaluations;
- **output-length drift**: the mean output length over the last ``drift_window_s`` differs from
  the stable version's known mean by more than ``drift_z`` standard errors for ``drift_for``
  consecutive evaluations (the Kayenta/Argo canary-analysis pattern, a two-sample comparison);
- **latency budget burn** (only where latency is modelled, :class:`ServingRollout`): a request is
  slow when its time to first token exceeds ``latency_ttft_s``; fire when the slow share over both
  5 min and 1 h exceeds ``burn_rate`` x (1 - ``latency_slo``), the error budget's rule applied to a
  latency SLI (the SRE Workbook treats both kinds of SLI alike).

Canary analysis evaluates both signals on the canary's own traffic (it is labelled); the other
strategies have only the fleet-wide aggregate. On the first firing, with ``auto_rollback`` the
controller acts after ``rollback_delay_s`` (a person paged: minutes; an analysis run: 0): the
canary's weight goes to 0; blue/green switches back while blue is still held; otherwise a rolling
update back to the old version, which pays cold starts again.

Traffic is Poisson at ``rate_rps`` (stream ``rollout.traffic``), counted per tick of ``tick_s``;
each request's output length is log-normal (``out_mean``, ``out_cv``) [assumption: a typical
chat workload's shape, not a trace]. Latency is not modelled here (lab 9's serving model does);
a replica serves whatever share of traffic the router gives it.

:class:`ServingRollout` (:func:`simulate_serving_rollout`) runs the same controller -- strategies,
signal windows, detectors and rollback, the one code path :meth:`RolloutController._observe` /
``_evaluate`` -- inside a request-level :class:`gpuinfra.sim.serving.ServingRun` on that run's kernel:
replicas are the run's (cold start from its serving model, drained through its lifecycle), the share
to the new version becomes the run's version weights, and each tick observes the requests the run
completed, per version. There, latency is modelled, and nothing is refused (requests wait in front
while no replica is ready).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gpuinfra.errors import UserError
from gpuinfra.sim.cluster import Allocation, ClusterState, NodePool
from gpuinfra.sim.invariants import check_invariants, require
from gpuinfra.sim.kernel import PRIO_ARRIVAL, PRIO_RELEASE, PRIO_SAMPLE, Event, Kernel, Rngs
from gpuinfra.sim.recorder import Recorder
from gpuinfra.sim.serving import DRAINING as SV_DRAINING
from gpuinfra.sim.serving import READY as SV_READY
from gpuinfra.sim.serving import STARTING as SV_STARTING
from gpuinfra.sim.serving import Replica as SvReplica
from gpuinfra.sim.serving import Requests, ServingConfig, ServingResult, ServingRun, Version
from gpuinfra.sim.subsystem import Subsystem, View, route

STRATEGIES = ("recreate", "rolling", "canary", "bluegreen")
GPUS_PER_NODE = 8
POD_BASE = 1_000_000_000
"""Replica allocation ids start here, far from any pod index of a replay."""


@dataclass(frozen=True)
class Failure:
    """A silent failure of the new version. ``bad_fraction`` of its answers are wrong;
    ``error_fraction`` of the wrong ones surface as an error (5xx, a client parse failure);
    wrong answers' output lengths are ``length_factor`` x the normal mean."""

    kind: str = "none"
    bad_fraction: float = 0.0
    error_fraction: float = 0.0
    length_factor: float = 1.0
    nll_shift: float = 0.0
    """Shift of a wrong answer's mean token negative log-likelihood (the perplexity signal), in
    standard deviations of its spread across good answers."""
    note: str = ""

    def check(self) -> None:
        if not (0 <= self.bad_fraction <= 1 and 0 <= self.error_fraction <= 1) or self.length_factor <= 0:
            raise UserError(
                "failure fractions must be in [0, 1] and length_factor > 0",
                where=f"failure {self.kind}",
                expected="bad_fraction, error_fraction in [0, 1]; length_factor > 0",
            )


FAILURES = {
    "none": Failure("none", note="a good release"),
    "precision": Failure(
        "precision",
        0.04,
        0.0,
        1.15,
        1.0,
        "weights cast to fp8/int4 without calibration: a few percent of answers degrade, none error "
        "[assumption; the published deltas in catalog/data/precision show calibrated quantisation costs "
        "0.01-0.5 perplexity, uncalibrated casts more]",
    ),
    "tokenizer": Failure(
        "tokenizer",
        0.25,
        0.08,
        3.0,
        3.0,
        "tokenizer/chat-template mismatch: prompts that use the changed tokens decode wrong; a wrong end-of-"
        "sequence id makes generations run towards max_tokens (longer outputs); some outputs fail JSON "
        "parsing and surface as errors [assumption]",
    ),
    "version": Failure(
        "version",
        0.10,
        0.30,
        0.6,
        1.5,
        "serving-runtime / model version skew (e.g. a rope-scaling config read differently): long "
        "prompts degrade, short truncated answers, a third of them raise [assumption]",
    ),
}


@dataclass(frozen=True)
class Strategy:
    """How the new version is rolled out and rolled back (see module docstring)."""

    kind: str = "rolling"
    canary_weight: float = 0.10
    bake_s: float = 1800.0
    auto_rollback: bool = True
    rollback_delay_s: float = 0.0
    """From the first firing signal to the rollback starting (0: automated analysis)."""

    def check(self) -> None:
        if self.kind not in STRATEGIES:
            raise UserError(f"unknown rollout strategy '{self.kind}'", where="strategy", expected=", ".join(STRATEGIES))
        if not 0 < self.canary_weight < 1 or self.bake_s < 0 or self.rollback_delay_s < 0:
            raise UserError(
                "canary_weight must be in (0, 1), bake_s and rollback_delay_s >= 0", where=f"strategy {self.kind}"
            )


@dataclass(frozen=True)
class Signals:
    """What the team watches (see module docstring); defaults from the SRE Workbook."""

    slo: float = 0.995
    base_error_ratio: float = 0.001
    """The stable version's own error ratio [assumption]."""
    burn_rate: float = 14.4
    """SRE Workbook: 2 % of a 30-day budget in 1 h."""
    drift_window_s: float = 300.0
    drift_z: float = 4.0
    drift_for: int = 2
    eval_s: float = 30.0
    latency_ttft_s: float = 2.0
    """Latency SLI threshold: a request is *slow* when its time to first token exceeds this. 2 s is
    the TTFT bound of Vidur-Search's SLO (facts/serving.md 1.1), the one sim/serving uses."""
    latency_slo: float = 0.99
    """Share of requests that must be faster than ``latency_ttft_s`` [assumption: a common latency
    objective]. The latency budget burns at the same multiwindow rates as the error budget."""

    def check(self) -> None:
        if (
            not 0 < self.slo < 1
            or not 0 < self.latency_slo < 1
            or self.burn_rate <= 0
            or self.drift_z <= 0
            or self.drift_for < 1
            or self.eval_s <= 0
            or not self.latency_ttft_s > 0
        ):
            raise UserError(
                "signal settings out of range",
                where="signals",
                expected="0 < slo < 1, 0 < latency_slo < 1; positive thresholds",
            )


@dataclass(frozen=True)
class RolloutConfig:
    replicas: int = 8
    rate_rps: float = 40.0
    start_s: float = 600.0
    horizon_s: float = 4 * 3600.0
    cold_start_s: float = 150.0
    """Image pull + weights load + warm-up of one replica [assumption: an 8B model in bf16 from
    object storage, ~16 GB at ~1.4 GB/s plus ~20 s of warm-up, see lab 9's cold-start model]."""
    tick_s: float = 10.0
    out_mean: float = 250.0
    out_cv: float = 0.8
    gpu: str = "H100-SXM"
    strategy: Strategy = field(default_factory=Strategy)
    failure: Failure = field(default_factory=Failure)
    signals: Signals = field(default_factory=Signals)

    def check(self) -> None:
        self.strategy.check()
        self.failure.check()
        self.signals.check()
        if self.replicas < 1 or self.rate_rps <= 0 or self.tick_s <= 0 or self.cold_start_s < 0:
            raise UserError("replicas >= 1, rate_rps > 0, tick_s > 0 and cold_start_s >= 0", where="rollout")
        if not 0 <= self.start_s < self.horizon_s:
            raise UserError("start_s must be in [0, horizon_s)", where="rollout.start_s")
        if self.out_mean <= 0 or self.out_cv <= 0:
            raise UserError("out_mean and out_cv must be > 0", where="rollout")


STARTING, READY, DRAINED = "starting", "ready", "drained"


@dataclass
class Replica:
    id: int
    version: str
    alloc: Allocation
    status: str = STARTING
    started_s: float = 0.0


class _Window:
    """Per-tick sums (requests, errors, output-length sum, slow requests) over a sliding window of ticks."""

    def __init__(self, ticks: int) -> None:
        self.buf: deque[tuple[int, int, float, int]] = deque(maxlen=ticks)

    def add(self, n: int, err: int, lsum: float, slow: int = 0) -> None:
        self.buf.append((n, err, lsum, slow))

    def totals(self, last: int | None = None) -> tuple[int, int, float]:
        items = list(self.buf)[-last:] if last else self.buf
        return sum(x[0] for x in items), sum(x[1] for x in items), sum(x[2] for x in items)

    def slow(self) -> int:
        """Slow requests in the window."""
        return sum(x[3] for x in self.buf)


class RolloutController(Subsystem):
    """Replicas, traffic, signals and the rollout/rollback controller, on one kernel.

    Events: ``ro_tick`` (traffic and signal evaluation every ``tick_s``), ``ro_ready`` (a replica
    finished its cold start), ``ro_begin`` (the rollout starts), ``ro_promote`` (canary bake over),
    ``ro_release_blue`` (blue/green bake over), ``ro_rollback`` (the rollback starts).
    """

    name = "rollout"

    def __init__(self, view: View, cfg: RolloutConfig) -> None:
        super().__init__(view)
        self.cfg = cfg
        self.c = view.cluster
        self.reps: list[Replica] = []
        self.target = "old"
        self.canary_weight = 0.0
        self.active_color = "old"
        self.phase = "steady"
        sig = cfg.signals
        ticks = lambda s: max(1, round(s / cfg.tick_s))  # noqa: E731
        self.w5 = {"all": _Window(ticks(300)), "new": _Window(ticks(300))}
        self.w60 = {"all": _Window(ticks(3600)), "new": _Window(ticks(3600))}
        self.wd = {"all": _Window(ticks(sig.drift_window_s)), "new": _Window(ticks(sig.drift_window_s))}
        self.drift_hits = 0
        self.nll_hits = 0
        self.latency_observed = False
        """True once a tick brought per-request latency (ServingRollout); the tick model has none."""
        self.next_eval = 0.0
        sigma = math.sqrt(math.log(1 + cfg.out_cv**2))
        self.mu = math.log(cfg.out_mean) - sigma**2 / 2
        self.sigma = sigma
        self.out_sd = cfg.out_mean * cfg.out_cv
        self.t_new_first: float | None = None
        self.t_new_last: float | None = None
        self.t_detect: float | None = None
        self.detected_by: str | None = None
        self.t_rollback_start: float | None = None
        self.t_rollback_done: float | None = None
        self.t_complete: float | None = None
        self.peak_gpus = 0
        self.n = {"total": 0, "new": 0, "wrong": 0, "errors": 0, "refused": 0, "wrong_after_detect": 0}
        self.series: list[tuple[float, int, int, float, float]] = []
        """(t, ready old, ready new, share to new, fleet error ratio of the tick)."""

    # -- replicas and GPUs ----------------------------------------------------------------------
    def _start(self, version: str, t: float) -> list[Event]:
        c = self.c
        for node in range(c.n_nodes):
            for d in range(int(c.gpu_count[node])):
                if c.dev_available[node, d] and c.dev_free[node, d] == 1000:
                    a = Allocation(POD_BASE + len(self.reps), node, (d,), 1000, 0, 0)
                    c.allocate(a)
                    self._touch(node, t)
                    r = Replica(len(self.reps), version, a, STARTING, t)
                    self.reps.append(r)
                    held = sum(1 for x in self.reps if x.status != DRAINED)
                    self.peak_gpus = max(self.peak_gpus, held)
                    return [Event(t + self.cfg.cold_start_s, PRIO_RELEASE, "ro_ready", r.id)]
        raise UserError(
            "no free GPU for a new replica", where="rollout", fix="give the run more nodes (bluegreen needs 2x)"
        )

    def _drain(self, r: Replica, t: float) -> None:
        if r.status == DRAINED:
            return
        r.status = DRAINED
        self.c.release(r.alloc)
        self._touch(r.alloc.node, t)

    def _touch(self, node: int, t: float) -> None:
        self.view.recorder.changed([node])
        self.view.recorder.record(t)

    def _live(self, version: str | None = None, status: str | None = None) -> list[Replica]:
        return [
            r
            for r in self.reps
            if r.status != DRAINED
            and (version is None or r.version == version)
            and (status is None or r.status == status)
        ]

    # -- kernel interface -----------------------------------------------------------------------
    def handlers(self):
        return {
            "ro_tick": self._on_tick,
            "ro_ready": self._on_ready,
            "ro_begin": self._on_begin,
            "ro_promote": self._on_promote,
            "ro_release_blue": self._on_release_blue,
            "ro_rollback": self._on_rollback,
        }

    def first_events(self, t0: float) -> list[Event]:
        for _ in range(self.cfg.replicas):
            self._start("old", t0)
        for r in self.reps:
            r.status = READY  # the fleet is up before the run starts
        return [
            Event(t0 + self.cfg.tick_s, PRIO_SAMPLE, "ro_tick"),
            Event(t0 + self.cfg.start_s, PRIO_ARRIVAL, "ro_begin"),
        ]

    def _on_begin(self, ev: Event) -> list[Event]:
        t, k = ev.t_s, self.cfg.strategy.kind
        self.phase = "rolling-out"
        if k == "recreate":
            for r in self._live("old"):
                self._drain(r, t)
            self.target = "new"
            return [e for _ in range(self.cfg.replicas) for e in self._start("new", t)]
        if k == "rolling":
            self.target = "new"
            return self._start("new", t)
        if k == "canary":
            return self._start("new", t)
        return [e for _ in range(self.cfg.replicas) for e in self._start("new", t)]  # bluegreen

    def _on_ready(self, ev: Event) -> list[Event]:
        r = self.reps[ev.ref]
        if r.status != STARTING:
            return []
        r.status = READY
        t, k = ev.t_s, self.cfg.strategy.kind
        if self.phase == "rolled-back" or (self.phase == "rolling-back" and r.version == "new"):
            return []
        if k == "bluegreen" and self.phase == "rolling-out":
            if not self._live("new", STARTING):
                self.active_color = "new"
                return [Event(t + self.cfg.strategy.bake_s, PRIO_ARRIVAL, "ro_release_blue")]
            return []
        if k == "canary" and self.phase == "rolling-out" and self.target == "old":
            self.canary_weight = self.cfg.strategy.canary_weight
            return [Event(t + self.cfg.strategy.bake_s, PRIO_ARRIVAL, "ro_promote")]
        return self._rolling_step(t)

    def _rolling_step(self, t: float) -> list[Event]:
        """maxSurge 1, maxUnavailable 0: a ready replica of the target lets one other go."""
        others = [r for r in self._live(status=READY) if r.version != self.target]
        ready_target = self._live(self.target, READY)
        if others and len(ready_target) + len(others) > self.cfg.replicas:
            self._drain(others[-1], t)
            others = others[:-1]
        if others and not self._live(self.target, STARTING):
            return self._start(self.target, t)
        if not others:
            self._converged(t)
        return []

    def _converged(self, t: float) -> None:
        if self.phase == "rolling-out" and self.target == "new":
            self.phase = "rolled-out"
            self.t_complete = t
        elif self.phase == "rolling-back":
            self.phase = "rolled-back"
            self.t_rollback_done = t

    def _on_promote(self, ev: Event) -> list[Event]:
        if self.phase != "rolling-out":
            return []
        self.canary_weight = 0.0
        self.target = "new"
        return self._rolling_step(ev.t_s)

    def _on_release_blue(self, ev: Event) -> list[Event]:
        if self.phase != "rolling-out":
            return []
        for r in self._live("old"):
            self._drain(r, ev.t_s)
        self.phase = "rolled-out"
        self.t_complete = ev.t_s
        return []

    def _on_rollback(self, ev: Event) -> list[Event]:
        t, k = ev.t_s, self.cfg.strategy.kind
        self.t_rollback_start = t
        old_ready = self._live("old", READY)
        if k == "canary" and self.target == "old":
            self.canary_weight = 0.0
            for r in self._live("new"):
                self._drain(r, t)
            self.phase, self.t_rollback_done = "rolled-back", t
            return []
        if k == "bluegreen" and len(old_ready) == self.cfg.replicas:
            self.active_color = "old"
            for r in self._live("new"):
                self._drain(r, t)
            self.phase, self.t_rollback_done = "rolled-back", t
            return []
        self.phase = "rolling-back"
        self.target = "old"
        self.active_color = "old"
        for r in self._live("new", STARTING):
            self._drain(r, t)
        if not self._live("new"):
            self._converged(t)
            return []
        if k == "recreate":  # Recreate rolls back the way it rolled out: stop all, start all
            for r in self._live("new"):
                self._drain(r, t)
            return [e for _ in range(self.cfg.replicas - len(self._live("old"))) for e in self._start("old", t)]
        return self._rolling_step(t) if not self._live("old", STARTING) else []

    # -- traffic and signals --------------------------------------------------------------------
    def _share_new(self) -> float:
        old_ready, new_ready = len(self._live("old", READY)), len(self._live("new", READY))
        k = self.cfg.strategy.kind
        if old_ready + new_ready == 0:
            return math.nan
        if k == "canary" and self.target == "old" and self.phase == "rolling-out":
            return self.canary_weight if new_ready else 0.0
        if k == "bluegreen" and self.phase == "rolling-out":
            return 1.0 if self.active_color == "new" else 0.0
        return new_ready / (old_ready + new_ready)

    def _on_tick(self, ev: Event) -> list[Event]:
        t, cfg, rng = ev.t_s, self.cfg, self.view.rng
        fail, sig = cfg.failure, cfg.signals
        n = int(rng.poisson(cfg.rate_rps * cfg.tick_s))
        share = self._share_new()
        if math.isnan(share):
            n_new = n_old = 0
        else:
            n_new = int(rng.binomial(n, share))
            n_old = n - n_new
        bad = int(rng.binomial(n_new, fail.bad_fraction))
        err_new = int(rng.binomial(bad, fail.error_fraction)) + int(rng.binomial(n_new - bad, sig.base_error_ratio))
        err_old = int(rng.binomial(n_old, sig.base_error_ratio))
        lens = rng.lognormal(self.mu, self.sigma, size=n_old + n_new)
        lens[n_old : n_old + bad] *= fail.length_factor
        l_old, l_new = float(lens[:n_old].sum()), float(lens[n_old:].sum())
        # standardised NLL: good answers N(0, 1), wrong ones N(nll_shift, 1); the sums are normal
        z_old = float(rng.normal(0.0, math.sqrt(n_old))) if n_old else 0.0
        z_new = float(rng.normal(bad * fail.nll_shift, math.sqrt(n_new))) if n_new else 0.0
        refused = n if math.isnan(share) else 0
        return self._observe(t, share, (n_old, err_old, l_old, z_old), (n_new, err_new, l_new, z_new), bad, refused)

    def _observe(
        self,
        t: float,
        share: float,
        old: tuple[int, int, float, float],
        new: tuple[int, int, float, float],
        bad: int,
        refused: int,
        slow: tuple[int, int] | None = None,
    ) -> list[Event]:
        """One tick's observations -- per version (requests, errors, output-token sum, standardised-NLL
        sum), wrong answers of the new version, refused requests, and where latency is modelled the
        slow requests per version (old, new; TTFT above ``signals.latency_ttft_s``) -- into the
        counters, the signal windows and the series; then the next tick and, every ``eval_s``, the
        detectors. The decision code both the tick model (``slow`` None: no latency signal) and
        :class:`ServingRollout` call."""
        cfg, sig = self.cfg, self.cfg.signals
        n_old, err_old, l_old, z_old = old
        n_new, err_new, l_new, z_new = new
        n = n_old + n_new + refused
        self.n["total"] += n
        self.n["refused"] += refused
        if n_new:
            self.t_new_first = t if self.t_new_first is None else self.t_new_first
            self.t_new_last = t
        self.n["new"] += n_new
        self.n["wrong"] += bad
        self.n["errors"] += err_new + err_old
        if self.t_detect is not None:
            self.n["wrong_after_detect"] += bad
        if slow is not None:
            self.latency_observed = True
        s_old, s_new = slow or (0, 0)
        for key, (nn, ee, ll, ss) in (
            ("all", (n, err_old + err_new + refused, l_old + l_new, s_old + s_new)),
            ("new", (n_new, err_new, l_new, s_new)),
        ):
            self.w5[key].add(nn, ee, ll, ss)
            self.w60[key].add(nn, ee, ll, ss)
        for key, (nn, zz, ll) in (("all", (n - refused, z_old + z_new, l_old + l_new)), ("new", (n_new, z_new, l_new))):
            self.wd[key].add(nn, zz, ll)
        self.series.append(
            (
                t,
                len(self._live("old", READY)),
                len(self._live("new", READY)),
                0.0 if math.isnan(share) else share,
                (err_old + err_new + refused) / n if n else 0.0,
            )
        )
        out = [Event(t + cfg.tick_s, PRIO_SAMPLE, "ro_tick")] if t + cfg.tick_s <= cfg.horizon_s else []
        if t + 1e-9 >= self.next_eval:
            self.next_eval = t + sig.eval_s
            out += self._evaluate(t)
        return out

    def _evaluate(self, t: float) -> list[Event]:
        if self.t_detect is not None or self.t_new_first is None:
            return []
        sig = self.cfg.signals
        key = "new" if self.cfg.strategy.kind == "canary" and self.target == "old" else "all"
        budget = 1 - sig.slo
        fired = None
        n5, e5, _ = self.w5[key].totals()
        n60, e60, _ = self.w60[key].totals()
        if n5 and n60 and e5 / n5 > sig.burn_rate * budget and e60 / n60 > sig.burn_rate * budget:
            fired = "error-budget burn"
        lat = sig.burn_rate * (1 - sig.latency_slo)
        if (
            fired is None
            and self.latency_observed
            and n5
            and n60
            and self.w5[key].slow() / n5 > lat
            and self.w60[key].slow() / n60 > lat
        ):
            fired = "latency budget burn"
        nd, zsum, ld = self.wd[key].totals()
        if nd >= 30:
            z = (ld / nd - self.cfg.out_mean) / (self.out_sd / math.sqrt(nd))
            self.drift_hits = self.drift_hits + 1 if abs(z) > sig.drift_z else 0
            self.nll_hits = self.nll_hits + 1 if zsum / math.sqrt(nd) > sig.drift_z else 0
            if fired is None and self.nll_hits >= sig.drift_for:
                fired = "perplexity drift"
            if fired is None and self.drift_hits >= sig.drift_for:
                fired = "output-length drift"
        if fired is None:
            return []
        self.t_detect, self.detected_by = t, fired
        st = self.cfg.strategy
        if not st.auto_rollback:
            return []
        return [Event(t + st.rollback_delay_s, PRIO_ARRIVAL, "ro_rollback")]

    def summary(self) -> dict[str, Any]:
        t0 = self.t_new_first
        return {
            "strategy": self.cfg.strategy.kind,
            "failure": self.cfg.failure.kind,
            "requests": dict(self.n),
            "peak_gpus": self.peak_gpus,
            "new_first_served_s": t0,
            "detected_s": self.t_detect,
            "detected_by": self.detected_by,
            "time_to_detect_s": None if self.t_detect is None or t0 is None else self.t_detect - t0,
            "rollback_started_s": self.t_rollback_start,
            "rollback_done_s": self.t_rollback_done,
            "time_to_rollback_s": None
            if self.t_rollback_done is None or self.t_detect is None
            else self.t_rollback_done - self.t_detect,
            "rollout_complete_s": self.t_complete,
            "rollout_duration_s": None if self.t_complete is None else self.t_complete - self.cfg.start_s,
            "phase": self.phase,
        }


@dataclass(frozen=True)
class RolloutResult:
    """One run: the controller's summary, GPU-hours held, invariants, and a per-tick series."""

    summary: dict[str, Any]
    gpu_hours: float
    invariants: dict[str, Any]
    series: list[tuple[float, int, int, float, float]]
    config: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "gpu_hours": self.gpu_hours, "invariants": self.invariants}


def simulate_rollout(cfg: RolloutConfig, seed: int = 0) -> RolloutResult:
    """Run one rollout on a cluster of 8-GPU nodes with room for two fleets; check the invariants."""
    cfg.check()
    gpus = 2 * cfg.replicas
    nodes = -(-gpus // GPUS_PER_NODE)
    pool = NodePool("serving", cfg.gpu, min(GPUS_PER_NODE, gpus), 10**9, 10**9, nodes)
    cluster = ClusterState.from_pools([pool])
    rec = Recorder(cluster, interval_s=60.0)
    rngs = Rngs(seed)
    kernel = Kernel({})
    view = View(lambda: kernel.now_s, cluster, None, rngs.stream("rollout.traffic"), rec)  # type: ignore[arg-type]
    ctl = RolloutController(view, cfg)
    kernel.handlers = route([ctl], {})
    kernel.schedule_many(ctl.first_events(0.0))
    kernel.run(until_s=cfg.horizon_s)
    inv = require(check_invariants(cluster, rec, cfg.horizon_s), "rollout run")
    return RolloutResult(ctl.summary(), inv.allocated_gpu_hours, inv.as_dict(), ctl.series, asdict(cfg))


# ------------------------------------------------------------------------------------------------
# The same controller driving a request-level serving run


def version_of(name: str, failure: Failure, signals: Signals) -> Version:
    """A serving :class:`~gpuinfra.sim.serving.Version` that behaves as ``failure`` says, erring at the
    stable version's ``signals.base_error_ratio`` on its right answers."""
    return Version(
        name, failure.bad_fraction, failure.error_fraction, failure.length_factor, failure.nll_shift,
        signals.base_error_ratio,
    )  # fmt: skip


class ServingRollout(RolloutController):
    """:class:`RolloutController` acting on a :class:`~gpuinfra.sim.serving.ServingRun` on the run's own
    kernel: its replicas are the serving run's (started with the serving model's cold start, drained
    through its lifecycle: a drained replica finishes what it holds, then releases its GPUs), the
    traffic share the strategy sets becomes the run's version weights, and each tick observes the
    requests the run completed since the last tick, per version (requests, errors, output tokens,
    NLL), as :meth:`RolloutController._observe` takes them -- the strategy, signal and rollback code
    is the tick model's, unchanged. ``cfg.rate_rps``, ``cfg.cold_start_s`` and the output-length
    draws are not used (the requests and the cold start are the serving run's); ``cfg.out_mean`` and
    ``cfg.out_cv`` stay the stable version's known length distribution the drift signal compares
    with. Nothing is refused: with no ready replica requests wait in front (Knative's activator), so
    a cold-start gap costs latency, not errors."""

    def __init__(self, view: View, cfg: RolloutConfig, run: ServingRun) -> None:
        super().__init__(view, cfg)
        self.run = run
        self.sv: list[SvReplica] = []
        self.seen = 0

    # replicas: the serving run's
    def _start(self, version: str, t: float) -> list[Event]:
        s = self.run.start_replica(t, version=version)
        if s is None:
            raise UserError(
                "no free GPU for a new replica", where="rollout", fix="give the run capacity_replicas >= 2 x replicas"
            )
        r = Replica(len(self.reps), version, s.alloc, STARTING, t)  # type: ignore[arg-type]
        self.reps.append(r)
        self.sv.append(s)
        self.peak_gpus = max(self.peak_gpus, sum(1 for x in self.reps if x.status != DRAINED))
        return [Event(s.ready_at, PRIO_RELEASE, "ro_ready", r.id)]

    def _drain(self, r: Replica, t: float) -> None:
        if r.status == DRAINED:
            return
        r.status = DRAINED
        s, run = self.sv[r.id], self.run
        if s.status == SV_STARTING:
            run.release(s, t)
        elif s.status == SV_READY:
            s.status = SV_DRAINING
            run._mark(t)
            if s.out == 0:
                run.release(s, t)

    def first_events(self, t0: float) -> list[Event]:
        for s in self.run.replicas:
            self.reps.append(Replica(len(self.reps), "old", s.alloc, READY, t0))  # type: ignore[arg-type]
            self.sv.append(s)
        self.peak_gpus = len(self.reps)
        self._push_weights()
        return [
            Event(t0 + self.cfg.tick_s, PRIO_SAMPLE, "ro_tick"),
            Event(t0 + self.cfg.start_s, PRIO_ARRIVAL, "ro_begin"),
        ]

    def _push_weights(self) -> None:
        share = self._share_new()
        if not math.isnan(share):
            self.run.set_weights({"old": 1.0 - share, "new": share})

    def handlers(self):
        def wrap(h):
            def f(ev: Event) -> list[Event]:
                out = h(ev)
                self._push_weights()
                return out

            return f

        return {k: wrap(h) for k, h in super().handlers().items()}

    def _on_ready(self, ev: Event) -> list[Event]:
        r = self.reps[ev.ref]
        was_starting = r.status == STARTING
        out = super()._on_ready(ev)
        s = self.sv[r.id]
        if was_starting and s.status == SV_STARTING:
            self._push_weights()  # the new replica's traffic share before the buffered requests go
            out += self.run._on_ready(Event(ev.t_s, PRIO_RELEASE, "sv_ready", s.id))
        return out

    def _on_tick(self, ev: Event) -> list[Event]:
        run = self.run
        ids, self.seen = run.finished[self.seen :], len(run.finished)
        acc = {"old": [0, 0, 0.0, 0.0], "new": [0, 0, 0.0, 0.0]}
        slow = {"old": 0, "new": 0}
        limit = self.cfg.signals.latency_ttft_s
        bad = 0
        for i in ids:
            v = run.ver_of[i]
            a = acc[v]
            a[0] += 1
            a[1] += run.errored(i)
            a[2] += run.O[i]
            a[3] += run.nll(i)
            slow[v] += run.ttft[i] - run.arr[i] > limit  # time to first token, queueing included
            if v == "new":
                bad += run.wrong(i)
        old, new = (tuple(acc[k]) for k in ("old", "new"))
        return self._observe(
            ev.t_s,
            self._share_new(),
            old,
            new,
            bad,
            0,
            (slow["old"], slow["new"]),  # type: ignore[arg-type]
        )

    def summary(self) -> dict[str, Any]:
        return super().summary() | {"fallbacks": self.run.fallbacks}


@dataclass(frozen=True)
class ServingRolloutResult:
    """One run: the rollout controller's summary, the serving run's result (per-version latency,
    errors, wrong answers and output lengths in ``serving.subsystems["versions"]``), the per-tick series."""

    summary: dict[str, Any]
    serving: ServingResult
    series: list[tuple[float, int, int, float, float]]

    @property
    def by_version(self) -> dict[str, dict[str, Any]]:
        return self.serving.subsystems["versions"]["by_version"]

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "serving": self.serving.as_dict()}


def simulate_serving_rollout(
    cfg: RolloutConfig,
    serving: ServingConfig,
    reqs: Requests,
    seed: int = 0,
) -> ServingRolloutResult:
    """Roll out ``cfg.failure`` by ``cfg.strategy`` inside one request-level serving run of ``reqs``.

    ``serving`` gives the model, GPU, batching and cold start; its ``replicas`` and ``versions`` are
    set here (``cfg.replicas`` warm replicas of ``old``, room for 2 x that many). Requests should span
    ``cfg.horizon_s`` (the controller ticks until then; the run ends when every request is served).
    Raises UserError on bad settings; the cluster and serving invariants are checked at the end."""
    cfg.check()
    svc = replace(
        serving,
        replicas=cfg.replicas,
        initial_ready=True,
        capacity_replicas=2 * cfg.replicas,
        versions=(version_of("old", FAILURES["none"], cfg.signals), version_of("new", cfg.failure, cfg.signals)),
    )
    run = ServingRun(svc, reqs, seed)
    ctl = ServingRollout(run._view("rollout"), cfg, run)
    run.add_subsystem(ctl)
    res = run.run()
    return ServingRolloutResult(ctl.summary(), res, ctl.series)
