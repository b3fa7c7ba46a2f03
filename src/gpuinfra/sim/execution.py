"""Execution semantics in a replay: workload kinds, restart policies, checkpoints and lifecycle phases.

The ``execution`` subsystem gives pods (matched by their ``owner``) a workload kind:

- ``training``: finite, gang-scheduled when its pods form a gang, checkpointed every
  ``checkpoint_interval_s`` of steady work; a killed attempt loses only the work since its last
  durable checkpoint, and the next attempt resumes from it. When one pod of a gang dies the
  whole gang is restarted (JobSet's failure policy restarts every replicated job);
- ``batch``: finite batch inference, sharded: every pod is a shard, a failed shard is retried
  alone and restarts from zero (no checkpoints); the job completes when every shard has;
- ``service``: a long-running replica serving for its duration; restarted after a failure
  (``Always``); it *completes* when it served at least ``slo_availability`` of its window.

Restart policies, as Kubernetes and JobSet name them (kubernetes.io Job and Pod docs [P]):
``Never`` (a failed pod is not restarted: the job fails), ``OnFailure`` (restart with
exponential back-off ``backoff_s x 2^(n-1)``, capped at ``backoff_cap_s``: 10 s doubling to
6 min for Jobs; the job fails when its failures exceed ``backoff_limit``, default 6) and
``Always`` (restart with back-off capped at 5 min, CrashLoopBackOff, never give up). Every
eviction that is not the pod's normal end (fault, crash, preemption, drain, spot reclaim, the
application's own non-zero exit after ``fails_after_s``) is a failure, and by default it counts
toward ``backoff_limit`` (what Kubernetes does when a Job sets no ``podFailurePolicy``).

A Job's ``podFailurePolicy`` (``pod_failure_policy``; kubernetes.io/docs/tasks/job/pod-failure-policy,
API batch/v1 PodFailurePolicyRule [P]) decides otherwise for pods that carry the
``DisruptionTarget`` condition: the first rule whose ``onPodConditions`` matches applies its
action: ``Ignore`` (the failure does not count toward ``backoffLimit`` and a replacement pod is
created at once), ``Count`` (the default handling), ``FailJob`` (the job fails, its running pods
are stopped) or ``FailIndex`` (with ``backoffLimitPerIndex``: that index fails). Which evictions
are disruptions follows Kubernetes' "Pod disruption conditions" (kubernetes.io/docs/concepts/
workloads/pods/disruptions [P]): the eviction API (an upgrade drain: ``EvictionByEvictionAPI``),
scheduler preemption (``PreemptionByScheduler``), a NoExecute taint (``DeletionByTaintManager``)
and the kubelet's node-pressure eviction or graceful node shutdown (``TerminationByKubelet``: a
spot reclaim). The evicting subsystem marks them with :func:`mark_disruption` before it evicts
(sim/upgrade.py, sim/spot.py). A GPU fault or Xid is not one: the CUDA process dies and the
container exits non-zero, a failure like any other, so it counts. (A node that stops answering
and whose pods the taint manager deletes would be one; sim/faults.py does not model that path.)

Each attempt follows models/lifecycle.Timeline (startup: image pull, data/weights load, NCCL
initialisation growing with ranks; warm-up; steady with checkpoint stalls; teardown); the
subsystem sets the engine's per-pod ``remaining_s`` to the attempt's whole timeline and its
``restart_at_s`` to the policy's decision (sim/subsystem.PodRuntime). Recorded per job:
attempts, failures, progress, lost work, GPU-hours per attempt and per phase, the outcome; and
per attempt the phases, exported by :func:`chrome_trace` as Chrome/Perfetto trace JSON
(pid = node, tid = GPU).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gpuinfra.errors import UserError
from gpuinfra.models.lifecycle import Timeline, startup_parts
from gpuinfra.sim.kernel import PRIO_RELEASE, Event
from gpuinfra.sim.subsystem import RUNNING, RunConfig, Subsystem, View, register

KINDS = ("training", "batch", "service")
BACKOFF_RESET_S = 600.0
"""The kubelet resets a container's crash back-off after it ran 10 minutes (Kubernetes docs, pod
lifecycle: container restart policy [P])."""


MAX_OFFERED_RPS = 1e7
"""Upper bound on a service's offered load (requests/s). A sanity bound, not a measured figure:
the serving capacity search (sim/serving.capacity_at_slo) gives up above 10^6 requests/s per
replica, and 10^7 requests/s would need thousands of replicas at any capacity the simulator can
compute; a larger number is a unit mistake (requests per day or per month given as per second)."""

MAX_REPLICA_CAPACITY_RPS = 1e6
"""Upper bound on a measured per-replica capacity: the same 10^6 requests/s above which the
serving capacity search stops (sim/serving.capacity_at_slo)."""

MAX_SLO_S = 3600.0
"""Upper bound on a TTFT or TPOT objective: an hour per token is no latency objective (assumption)."""

MAX_MIN_REPLICAS = 100_000
"""Upper bound on min_replicas: 100,000 replicas is above the 100,000-GPU clusters reported
publicly (xAI Colossus, 2024), so a larger number cannot be served by one cluster."""


def _token_spec_problem(spec: object, model: str | None) -> str | None:
    """Why a token-length spec (``N``, ``uniform:A:B``, ``lognormal:MEAN:CV``) is wrong, or None.

    Lengths must be >= 1 and no longer than the model's context window (its
    ``max_position_embeddings``), when the model is known."""
    if isinstance(spec, bool):
        return f"expected a token count, got {spec!r}"
    s = str(spec).strip()
    limit, whose = 10_000_000, "10^7 tokens (no model's context window is larger)"
    if model:
        from gpuinfra.catalog.llms import llm_model
        from gpuinfra.errors import UserError

        try:
            m = llm_model(model, where=None)
            limit, whose = m.max_position, f"{m.name}'s context window of {m.max_position} tokens"
        except UserError:
            pass  # the model field reports its own problem
    form = "a positive integer, uniform:A:B (1 <= A <= B) or lognormal:MEAN:CV (MEAN >= 1, CV > 0)"
    try:
        if s.isdigit():
            top = lo = int(s)
        else:
            kind, a, b = s.split(":")
            if kind == "uniform":
                lo, top = int(a), int(b)
                if lo > top:
                    return f"uniform:{a}:{b} has its low end above its high end; expected {form}"
            elif kind == "lognormal":
                mean, cv = float(a), float(b)
                if not (math.isfinite(mean) and math.isfinite(cv)) or cv <= 0 or cv > 100:
                    return f"lognormal CV must be in (0, 100], got '{b}'"
                lo = top = mean
            else:
                raise ValueError
    except ValueError:
        shown = s if len(s) <= 40 else s[:40] + "..."
        return f"'{shown}' is not a token length; expected {form}"
    if lo < 1:
        return f"token lengths must be >= 1, got '{s}'"
    if top > limit:
        return f"{int(top):,} tokens is longer than {whose}"
    return None


class ServiceLoad(BaseModel):
    """What a service (kind ``service``) is asked to serve, so cost attribution can say how many
    replicas it needs (analysis/attribution.over_provisioning):

    needed replicas = max(``min_replicas``, ceil(``offered_rps`` / (capacity x ``target_utilization``)))

    where capacity is one replica's sustained requests/s at the SLO: ``replica_capacity_rps`` when
    measured (with ``capacity_source``), else computed by the request-level serving simulator
    (sim/serving.capacity_at_slo) for ``model`` on the GPU and GPU count the service's pods ran on."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    offered_rps: float = Field(gt=0, le=MAX_OFFERED_RPS, description="mean requests/s the service receives")
    source: str = Field(min_length=1, description="where offered_rps comes from (a trace, a dashboard, an assumption)")
    replica_capacity_rps: float | None = Field(
        None, gt=0, le=MAX_REPLICA_CAPACITY_RPS, description="measured requests/s one replica sustains"
    )
    capacity_source: str = Field("", description="where replica_capacity_rps comes from (required with it)")
    model: str = Field("llama-3-8b", description="served model (catalog name) when the capacity is computed")
    precision: Literal["bf16", "fp16", "fp8"] = "bf16"
    batching: Literal["single", "dynamic", "continuous", "chunked"] = "continuous"
    input_tokens: int | str = Field(512, description="prompt tokens: N, uniform:A:B or lognormal:MEAN:CV")
    output_tokens: int | str = Field(128, description="output tokens, same forms")
    slo_ttft_s: float = Field(
        2.0, gt=0, le=MAX_SLO_S, description="Vidur-Search: TTFT p90 < 2 s (facts/serving.md 1.1)"
    )
    slo_tpot_s: float = Field(0.2, gt=0, le=MAX_SLO_S, description="Vidur-Search: TBT p99 < 200 ms")
    slo_attainment: float = Field(0.9, gt=0, le=1, description="share of requests that must meet both")
    target_utilization: float = Field(
        0.7, gt=0, le=1, description="headroom: Knative's container-concurrency-target-percentage default 70 %"
    )
    min_replicas: int = Field(
        1, strict=True, ge=1, le=MAX_MIN_REPLICAS, description="replicas kept whatever the load (redundancy, N+1)"
    )

    @field_validator("source", "capacity_source")
    @classmethod
    def _not_blank(cls, v: str, info: ValidationInfo) -> str:
        if info.field_name == "source" and not v.strip():
            raise ValueError("source is blank: say where offered_rps comes from (a trace, a dashboard, an assumption)")
        return v

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from gpuinfra.catalog.llms import llm_model
        from gpuinfra.errors import UserError

        if v.strip().endswith(".json"):
            raise ValueError("a scenario names a built-in model; a config.json path is read only by the serving CLI")
        try:
            llm_model(v, where=None)
        except UserError as e:
            expected = (e.expected or "").replace(", or a path to a config.json", "")
            raise ValueError(f"{e.what}; expected {expected}" + (f". {e.fix}" if e.fix else "")) from None
        return v

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _no_coercion(cls, v: object) -> object:
        """A token count is an integer or a string form: ``true`` or ``2.0`` is refused, not read as 1 or 2."""
        if isinstance(v, bool | float):
            raise ValueError("expected a token count (an integer) or uniform:A:B / lognormal:MEAN:CV")
        return v

    @field_validator("input_tokens", "output_tokens")
    @classmethod
    def _token_spec(cls, v: int | str, info: ValidationInfo) -> int | str:
        why = _token_spec_problem(v, info.data.get("model"))
        if why:
            raise ValueError(why)
        return v

    @model_validator(mode="after")
    def _capacity_sourced(self) -> ServiceLoad:
        if self.replica_capacity_rps is not None and not self.capacity_source.strip():
            raise ValueError("replica_capacity_rps needs capacity_source: where was it measured?")
        return self


DISRUPTION_REASONS = (
    "PreemptionByScheduler",
    "DeletionByTaintManager",
    "EvictionByEvictionAPI",
    "DeletionByPodGC",
    "TerminationByKubelet",
)
"""The reasons of the DisruptionTarget pod condition (kubernetes.io/docs/concepts/workloads/pods/
disruptions, "Pod disruption conditions")."""


class PodConditionRequirement(BaseModel):
    """A pod condition a rule matches (batch/v1 PodFailurePolicyOnPodConditionsPattern)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["DisruptionTarget"] = Field(description="the only pod condition a failure carries here")
    status: Literal["True"] = "True"


class PodFailurePolicyRule(BaseModel):
    """One rule of a Job's podFailurePolicy (batch/v1 PodFailurePolicyRule; ``onExitCodes`` is not modelled)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    action: Literal["Ignore", "Count", "FailJob", "FailIndex"]
    onPodConditions: list[PodConditionRequirement] = Field(min_length=1)


class PodFailurePolicy(BaseModel):
    """A Job's ``podFailurePolicy``: rules evaluated in order, the first match wins; none: Count."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: list[PodFailurePolicyRule] = Field(min_length=1, max_length=20, description="Kubernetes allows 20")

    def action(self, disruption: str | None) -> str:
        """The action for a failed pod that carries the DisruptionTarget condition with reason
        ``disruption`` (None: it carries none)."""
        if disruption is None:
            return "Count"
        for r in self.rules:
            if any(c.type == "DisruptionTarget" for c in r.onPodConditions):
                return r.action
        return "Count"


IGNORE_DISRUPTIONS = PodFailurePolicy(
    rules=[PodFailurePolicyRule(action="Ignore", onPodConditions=[PodConditionRequirement(type="DisruptionTarget")])]
)
"""``podFailurePolicy: {rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]}``: the
rule Kubernetes' own example uses so that preemption, eviction and node shutdown do not fail a Job."""


MAX_KIND_TIME_S = 1e10
"""Upper bound of every time of an ``execution.kinds[]`` entry: about 317 years, the bound of every
time in a scenario (io/scenario_schema.MAX_TIME_S; not imported, that module imports this one)."""
MAX_KIND_GB = 1e6
"""Upper bound of ``image_gb`` and ``load_gb``: 1 PB read per node at start, a sanity bound far above
any container image (GBs) or checkpoint shard (a 405B model's bf16 weights are about 0.8 TB in all);
only a typo or a hostile file reaches it."""


class KindSpec(BaseModel):
    """The execution semantics of the pods of one owner (scenario ``execution.kinds[]``).

    Every number is finite (``.inf``/``.nan`` refused) and bounded: times by :data:`MAX_KIND_TIME_S`,
    sizes by :data:`MAX_KIND_GB`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    owner: str = Field(description="pods whose owner is this get these semantics")
    kind: Literal["training", "batch", "service"]
    restart_policy: Literal["Never", "OnFailure", "Always"] | None = Field(
        None, description="default: OnFailure for training and batch, Always for service"
    )
    backoff_limit: int = Field(
        6, ge=0, le=2**31 - 1, strict=True, description="OnFailure: failures before the job fails (Kubernetes Job: 6)"
    )
    backoff_s: float = Field(
        10.0, ge=0, le=MAX_KIND_TIME_S, description="first restart back-off (Kubernetes: 10 s, doubling)"
    )
    backoff_cap_s: float | None = Field(
        None, ge=0, le=MAX_KIND_TIME_S, description="back-off cap (Job 360 s, CrashLoopBackOff 300 s)"
    )
    checkpoint_interval_s: float | None = Field(
        None, gt=0, le=MAX_KIND_TIME_S, description="training: steady work between checkpoints"
    )
    checkpoint_stall_s: float = Field(
        0.0, ge=0, le=MAX_KIND_TIME_S, description="GPUs blocked per checkpoint (models/checkpoint)"
    )
    checkpoint_lag_s: float = Field(
        0.0, ge=0, le=MAX_KIND_TIME_S, description="async: persist time until a checkpoint is durable"
    )
    image_gb: float = Field(
        15.0, ge=0, le=MAX_KIND_GB, description="container image to pull per node [assumption: a CUDA image]"
    )
    load_gb: float = Field(
        0.0, ge=0, le=MAX_KIND_GB, description="data/weights read per node at start (checkpoint shard, model)"
    )
    storage: str = "nfs-flash"
    warmup_s: float = Field(60.0, ge=0, le=MAX_KIND_TIME_S)
    teardown_s: float = Field(30.0, ge=0, le=MAX_KIND_TIME_S)
    fails_after_s: float | None = Field(
        None, gt=0, le=MAX_KIND_TIME_S, description="an application bug: every attempt exits 1 this late"
    )
    slo_availability: float = Field(0.99, gt=0, le=1, description="service: share of its window it must serve")
    backoff_limit_per_index: bool | None = Field(
        None, description="count failures per pod (Indexed Job backoffLimitPerIndex); default: true for batch"
    )
    load: ServiceLoad | None = Field(None, description="service: the load it serves (over-provisioning line)")
    pod_failure_policy: PodFailurePolicy | None = Field(
        None,
        description="the Job's podFailurePolicy; default none: every failure counts toward backoff_limit (Kubernetes)",
    )

    @model_validator(mode="after")
    def _load_for_services(self) -> KindSpec:
        if self.load is not None and self.kind != "service":
            raise ValueError(f"load is for kind service; owner {self.owner} is kind {self.kind}")
        if self.pod_failure_policy is not None:
            if self.policy == "Always":
                raise ValueError(
                    f"pod_failure_policy is a Job's field; owner {self.owner} restarts Always (a Deployment's "
                    "replicas), which has none: use restart_policy OnFailure or Never"
                )
            if not self.per_index and any(r.action == "FailIndex" for r in self.pod_failure_policy.rules):
                raise ValueError("action FailIndex needs backoff_limit_per_index (Kubernetes: backoffLimitPerIndex)")
        return self

    @property
    def policy(self) -> str:
        return self.restart_policy or ("Always" if self.kind == "service" else "OnFailure")

    @property
    def per_index(self) -> bool:
        return self.kind == "batch" if self.backoff_limit_per_index is None else self.backoff_limit_per_index

    @property
    def cap_s(self) -> float:
        if self.backoff_cap_s is not None:
            return self.backoff_cap_s
        return 300.0 if self.policy == "Always" else 360.0


class ExecutionSpec(BaseModel):
    """Scenario ``execution:``: workload kinds by owner, and how much of the timeline to keep."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kinds: list[KindSpec] = Field(default_factory=list)
    trace_max_attempts: int = Field(
        2000, ge=0, le=10**9, strict=True, description="pod attempts whose phases are kept for the trace"
    )

    def duplicate_owners(self) -> list[tuple[int, int]]:
        """(first, later) index pairs of ``kinds`` entries that name the same owner: one owner has one
        kind, and a later entry would otherwise silently replace the first."""
        first: dict[str, int] = {}
        out = []
        for j, k in enumerate(self.kinds):
            if k.owner in first:
                out.append((first[k.owner], j))
            else:
                first[k.owner] = j
        return out


class Execution(Subsystem):
    """The ``execution`` subsystem. Event kind: ``exec_exit`` (an attempt's own non-zero exit)."""

    name = "execution"

    def __init__(self, view: View, spec: ExecutionSpec) -> None:
        super().__init__(view)
        rt = self.rt = view.runtime
        pods = rt.pods
        self.spec = spec
        dup = spec.duplicate_owners()
        if dup:  # a scenario file is refused at its lines when built (io/scenario_build.py)
            a, b = dup[0]
            raise UserError(
                f"execution.kinds[{a}] and execution.kinds[{b}] both give owner '{spec.kinds[b].owner}'",
                where=f"execution.kinds[{b}].owner",
                expected="one kinds entry per owner",
                fix="merge the two entries or correct the owner of one",
            )
        by_owner = {k.owner: k for k in spec.kinds}
        self.kind_of: dict[int, KindSpec] = {}
        self.jobs: dict[str, list[int]] = {}
        for i in range(len(pods)):
            k = by_owner.get(pods.owners[i])
            if k is not None:
                self.kind_of[i] = k
                self.jobs.setdefault(pods.jobs[i], []).append(i)
        self.work = {i: float(pods.duration_s[i]) for i in self.kind_of}
        self.saved = dict.fromkeys(self.kind_of, 0.0)
        self.tl: dict[int, Timeline] = {}
        self.failures: dict[str, int] = dict.fromkeys(self.jobs, 0)
        """Every failure of a job (evictions that were not its normal end)."""
        self.counted: dict[str, int] = dict.fromkeys(self.jobs, 0)
        """Failures that count toward backoff_limit (not ignored by the job's podFailurePolicy)."""
        self.ignored: dict[str, int] = dict.fromkeys(self.jobs, 0)
        self.failed_by_rule: set[str] = set()
        self.disrupted: dict[int, str] = {}
        """pod -> reason of the DisruptionTarget condition of the eviction under way (mark_disruption)."""
        self.attempts: dict[int, list[dict]] = {i: [] for i in self.kind_of}
        self.phase_gpu_s: dict[str, dict[str, float]] = {j: {} for j in self.jobs}
        self.fail_phase: dict[str, dict[str, int]] = {j: {} for j in self.jobs}
        """Failures by the phase the attempt was in (what each phase risks)."""
        self.kept = 0
        self.kept_on_kill: dict[tuple[int, int], float] = {}
        """(pod, node) -> GPU milli-seconds of killed attempts that a durable checkpoint kept (the
        engine's ``lost_runs`` count them lost since the attempt's start; attribution moves them back)."""
        self.held_in_place: dict[tuple[int, int], list[float]] = {}
        """(pod, node) -> [lost, kept] GPU milli-seconds of gang ranks this subsystem restarted in place
        (the engine records no run for them: their held time before the restart is accounted here)."""
        self.trace_rows: list[tuple] = []
        self._restarting: set[str] = set()
        self.gang: dict[str, dict] = {}
        self.index_failures: dict[str, int] = {}
        self.streak: dict[str, int] = {}
        self.startup: dict[str, dict[str, float]] = {}
        for job, mem in self.jobs.items():
            k = self.kind_of[mem[0]]
            nodes = len(mem)
            ranks = int(sum(int(pods.num_gpu[m]) for m in mem))
            self.startup[job] = startup_parts(nodes, ranks, k.image_gb * 1e9, k.load_gb * 1e9, k.storage)
            self._plan_job(mem)
        self.job_idx = {job: np.asarray(mem, dtype=np.int64) for job, mem in self.jobs.items()}
        self.gang_of: dict[int, dict] = {}
        for job, mem in self.jobs.items():
            if self._is_gang(mem[0]):
                self.gang[job] = {"start": None, "waiting_since": None}
                for m in mem:
                    self.gang_of[m] = self.gang[job]

    # -- the attempt's plan ------------------------------------------------------------------
    def _plan(self, i: int) -> None:
        k = self.kind_of[i]
        left = max(self.work[i] - self.saved[i], 0.0)
        training = k.kind == "training" and k.checkpoint_interval_s is not None
        tl = Timeline(
            sum(self.startup[self.rt.pods.jobs[i]].values()),
            k.warmup_s,
            left,
            k.checkpoint_interval_s if training else math.inf,
            k.checkpoint_stall_s if training else 0.0,
            k.checkpoint_lag_s if training else 0.0,
            k.teardown_s,
        )
        self.tl[i] = tl
        self.rt.remaining_s[i] = tl.total_s

    def _plan_job(self, mem: list[int]) -> None:
        """One plan for pods that share a timeline (a gang's ranks, or a job's identical shards)."""
        if len(mem) > 1 and self._is_gang(mem[0]):
            self._plan(mem[0])
            for m in mem[1:]:
                self.tl[m] = self.tl[mem[0]]
            self.rt.remaining_s[np.asarray(mem)] = self.tl[mem[0]].total_s
        else:
            for m in mem:
                self._plan(m)

    def handlers(self) -> dict:
        return {"exec_exit": self.on_exit}

    def _is_gang(self, i: int) -> bool:
        return int(self.rt.pods.gang_size[i]) > 1 and len(self.jobs[self.rt.pods.jobs[i]]) > 1

    def on_pod_start(self, i: int, alloc, t: float, gen: int) -> list[Event]:
        g = self.gang_of.get(i)
        if g is not None and g["start"] == t and g["waiting_since"] is None:
            return []  # another rank of the same start (NOTE: first test, for speed at 10^5 ranks)
        k = self.kind_of.get(i)
        if k is None:
            return []
        rt = self.rt
        rt.restart_at_s[i] = 0.0
        out: list[Event] = []
        if self._is_gang(i):
            job = rt.pods.jobs[i]
            g = self.gang[job]
            if g["waiting_since"] is not None:
                mem = self.jobs[job]
                if (rt.state[self.job_idx[job]] != RUNNING).any():
                    # another replaced rank is not back yet: this one waits with the others
                    return rt.restart_in_place([i], t, run=False)
                # the replaced ranks are back: every other rank restarts in place from the checkpoint
                wait = t - g["waiting_since"]
                held = [m for m in mem if m != i]
                acc = self.phase_gpu_s[job]
                gpus = float((rt.pods.num_gpu[held].astype(np.float64) * rt.pods.gpu_milli[held]).sum()) / 1e3
                acc["waiting for a replacement"] = acc.get("waiting for a replacement", 0.0) + wait * gpus
                g["waiting_since"] = None
                g["start"] = t
                self._close_in_place(held, t, None)  # the wait held GPUs for nothing
                out += rt.restart_in_place(held, t)
            elif g["start"] == t:
                return []  # another rank of the same start
            g["start"] = t
            if k.fails_after_s is not None and k.fails_after_s < self.tl[i].total_s:
                out.append(Event(t + k.fails_after_s, PRIO_RELEASE, "exec_exit", i, gen))
            return out
        if k.fails_after_s is not None and k.fails_after_s < self.tl[i].total_s:
            out.append(Event(t + k.fails_after_s, PRIO_RELEASE, "exec_exit", i, gen))
        return out

    def _gpus(self, i: int) -> float:
        return float(self.rt.pods.num_gpu[i]) * float(self.rt.pods.gpu_milli[i]) / 1000.0

    def on_exit(self, ev: Event) -> list[Event]:
        """The application exits non-zero: the pod is evicted; its restart policy decides."""
        rt, i, t = self.rt, ev.ref, ev.t_s
        if rt.state[i] != RUNNING or ev.gen != rt.gen[i]:
            return []
        a = rt.allocs[i]
        rt.evict([a], None, t, "exited with code 1")
        out = rt.retry_nodes([a.node], t) + rt.retry_pods([i], t)
        rt.touch(t)
        return out

    def _served(self, i: int, start: float, done: float) -> float:
        """A service's steady time that fell inside its window (submit + duration)."""
        if self.kind_of[i].kind != "service":
            return 0.0
        window_end = float(self.rt.pods.submit_s[i]) + self.work[i]
        return max(0.0, min(done, window_end - (start + self.tl[i].head_s)))

    def _record(self, job: str, members: list[int], start: float, t: float, node: int, devs, outcome: str) -> float:
        """Account one attempt of ``members`` (same timeline) from ``start`` to ``t``; returns work kept."""
        i = members[0]
        tl = self.tl[i]
        elapsed = t - start
        done = tl.work_at(elapsed)
        saved = tl.saved_at(elapsed) if outcome == "evicted" and self.kind_of[i].kind != "service" else done
        gpus = float((self.rt.pods.num_gpu[members].astype(np.float64) * self.rt.pods.gpu_milli[members]).sum()) / 1e3
        acc = self.phase_gpu_s[job]
        self._account(acc, tl, elapsed, gpus)
        if outcome == "evicted":
            acc["lost work"] = acc.get("lost work", 0.0) + (done - saved) * gpus
            ph = tl.phase_at(elapsed)
            self.fail_phase[job][ph] = self.fail_phase[job].get(ph, 0) + 1
        self.attempts[i].append(
            {
                "served_s": self._served(i, start, done),
                "start_s": start,
                "end_s": t,
                "node": node,
                "end": outcome,
                "work_done_s": done,
                "work_kept_s": saved,
                "gpu_hours": elapsed * gpus / 3600.0,
            }
        )
        if self.kept < self.spec.trace_max_attempts:
            ph = tl.phases(elapsed)
            for m in members:
                if self.kept >= self.spec.trace_max_attempts:
                    break
                a = self.rt.allocs.get(m)
                self.kept += 1
                self.trace_rows.append((m, a.node if a else node, tuple(a.devices) if a else tuple(devs), start, ph))
        return saved

    def on_pod_end(self, i: int, alloc, t: float, outcome: str) -> list[Event]:
        disruption = self.disrupted.pop(i, None) if self.disrupted else None
        k = self.kind_of.get(i)
        if k is None:
            return []
        rt = self.rt
        if outcome == "evicted":
            lost = self.lost_if_killed_s(i, t)
            if lost is not None:
                kept = (t - float(rt.start_s[i]) - lost) * float(alloc.gpu_milli_total)
                if kept > 0:
                    key = (i, int(alloc.node))
                    self.kept_on_kill[key] = self.kept_on_kill.get(key, 0.0) + kept
        job = rt.pods.jobs[i]
        if job in self._restarting:
            return []
        action = k.pod_failure_policy.action(disruption) if k.pod_failure_policy is not None else "Count"
        if self._is_gang(i):
            return self._gang_end(i, k, job, alloc, t, outcome, action)
        saved = self._record(job, [i], float(rt.start_s[i]), t, int(alloc.node), alloc.devices, outcome)
        if outcome != "evicted":
            self.saved[i] = self.work[i]
            return []
        if k.kind == "service":
            # a service's window is wall time: the restarted replica serves what is left of it
            left = float(rt.pods.submit_s[i]) + self.work[i] - t - (self.tl[i].head_s if i in self.tl else 0.0)
            self.saved[i] = self.work[i] - max(left, 0.0)
        else:
            self.saved[i] += saved
        self._plan(i)
        self.failures[job] += 1
        if action == "Ignore":  # not counted toward backoffLimit; a replacement pod at once
            self.ignored[job] += 1
            rt.restart_at_s[i] = t
            return []
        self.counted[job] += 1
        if action in ("FailJob", "FailIndex"):
            self.failed_by_rule.add(job)
            if action == "FailIndex":
                rt.restart_at_s[i] = math.inf
            else:
                self._fail_job(job, i, t)
            return []
        key = rt.pods.names[i] if k.per_index else job
        if k.per_index:
            self.index_failures[key] = self.index_failures.get(key, 0) + 1
        ran = t - float(rt.start_s[i])
        n = self.index_failures.get(key) if k.per_index else None
        rt.restart_at_s[i] = self._decide(k, job, t, n, ran, rt.pods.names[i])
        return []

    def _fail_job(self, job: str, i: int, t: float) -> None:
        """The job failed (FailJob, or the back-off limit of a gang): no pod of it restarts, the running
        ones are stopped."""
        rt = self.rt
        mem = self.jobs[job]
        self._restarting.add(job)
        for m in mem:
            rt.restart_at_s[m] = math.inf
        others = [rt.allocs[m] for m in mem if m != i and rt.state[m] == RUNNING and m in rt.allocs]
        if others:
            rt.evict(others, None, t, f"job {job} failed")
        self._restarting.discard(job)

    def _gang_end(self, i: int, k: KindSpec, job: str, alloc, t: float, outcome: str, action: str) -> list[Event]:
        rt = self.rt
        g = self.gang[job]
        mem = self.jobs[job]
        if outcome != "evicted":
            if g["start"] is not None:  # the first rank to finish closes the attempt for all
                self._record(job, mem, g["start"], t, int(alloc.node), alloc.devices, outcome)
                g["start"] = None
                for m in mem:
                    self.saved[m] = self.work[m]
            return []
        self.failures[job] += 1
        if action == "Ignore":  # the disruption does not count: the gang restarts without a back-off
            self.ignored[job] += 1
            again = t
        else:
            self.counted[job] += 1
            if action in ("FailJob", "FailIndex"):  # a gang has no indexes that fail alone: the job fails
                self.failed_by_rule.add(job)
                again = math.inf
            else:
                again = self._decide(k, job, t, None, t - g["start"] if g["start"] is not None else 0.0, job)
        if g["waiting_since"] is not None:
            w = self.fail_phase[job]
            w["waiting for a replacement"] = w.get("waiting for a replacement", 0) + 1
        rank_lost_s = None
        if g["waiting_since"] is None and g["start"] is not None and k.kind == "training" and k.checkpoint_interval_s:
            rank_lost_s = lost_on_kill_s(self.tl[i], t - g["start"])  # the attempt's plan, before the re-plan
        if g["waiting_since"] is None and g["start"] is not None:
            kept = self._record(job, mem, g["start"], t, int(alloc.node), alloc.devices, outcome)
            for m in mem:
                self.saved[m] += kept
            self._plan_job(mem)
            g["start"] = None
        if math.isinf(again):  # the job fails: every rank stops for good
            self._fail_job(job, i, t)
            return []
        rt.restart_at_s[i] = again
        if g["waiting_since"] is None:
            g["waiting_since"] = t
            # the other ranks stop and hold their GPUs until the replacement is back
            idx = self.job_idx[job]
            others = idx[(rt.state[idx] == RUNNING) & (idx != i)]
            self._close_in_place(others.tolist(), t, rank_lost_s)
            rt.restart_in_place(others, t, run=False)
        return []

    def _close_in_place(self, ranks: list[int], t: float, lost_s: float | None) -> None:
        """Account the GPU-time ranks held since their start before this subsystem restarts them in
        place: ``lost_s`` of it lost (None: all of it), the rest kept by a checkpoint."""
        rt = self.rt
        for m in ranks:
            a = rt.allocs.get(int(m))
            ran = t - float(rt.start_s[m])
            if a is None or not ran > 0:
                continue
            lost = ran if lost_s is None else min(ran, lost_s)
            rec = self.held_in_place.setdefault((int(m), int(a.node)), [0.0, 0.0])
            rec[0] += lost * float(a.gpu_milli_total)
            rec[1] += (ran - lost) * float(a.gpu_milli_total)

    def _account(self, acc: dict[str, float], tl: Timeline, elapsed: float, gpus: float) -> None:
        """GPU-seconds per phase of one attempt (closed form, no per-checkpoint loop)."""
        parts = {"startup": (0.0, tl.startup_s), "warm-up": (tl.startup_s, tl.head_s)}
        for name, (a, b) in parts.items():
            acc[name] = acc.get(name, 0.0) + max(0.0, min(b, elapsed) - a) * gpus
        steady_end = tl.head_s + tl.work_s + tl.checkpoints * tl.stall_s
        x = max(0.0, min(elapsed, steady_end) - tl.head_s)
        work = tl.work_at(tl.head_s + x)
        acc["steady"] = acc.get("steady", 0.0) + work * gpus
        acc["checkpoint"] = acc.get("checkpoint", 0.0) + (x - work) * gpus
        acc["teardown"] = acc.get("teardown", 0.0) + max(0.0, elapsed - steady_end) * gpus

    def _decide(self, k: KindSpec, job: str, t: float, n: int | None, ran_s: float, key: str) -> float:
        """When the failed pods may queue again: t + back-off, or inf (the job, or the index, failed).

        OnFailure (Job controller): the delay doubles with the job's (or the index's) failures.
        Always (kubelet CrashLoopBackOff): it doubles with consecutive crashes and resets once an
        attempt ran 10 minutes (kubelet's back-off reset), so rare hardware faults wait 10 s each."""
        n = self.counted[job] if n is None else n
        if k.policy == "Never" or (k.policy == "OnFailure" and n > k.backoff_limit):
            return math.inf
        if k.policy == "Always":
            n = 1 if ran_s >= BACKOFF_RESET_S else self.streak.get(key, 0) + 1
            self.streak[key] = n
        return t + min(k.backoff_s * 2.0 ** min(n - 1, 60), k.cap_s)

    def lost_if_killed_s(self, i: int, t: float) -> float | None:
        """Seconds of pod ``i``'s running attempt thrown away if it is killed at ``t``: the time since
        its newest durable checkpoint (:func:`lost_on_kill_s`), capped at the time since its start.

        A service replica (kind ``service``) loses nothing once Ready (what it held, it served
        with), its whole attempt when killed before.

        None when the since-start figure applies: the pod is not a service nor a training pod with
        ``checkpoint_interval_s``, or (a gang rank) its gang has no attempt in progress (the ranks
        wait for a replacement, or the attempt was already closed by another rank's death, after
        which the timeline is re-planned from the checkpoint)."""
        k = self.kind_of.get(i)
        if k is None or i not in self.tl:
            return None
        start = float(self.rt.start_s[i])
        if math.isnan(start):
            return None
        if k.kind == "service":
            # a replica keeps no work to lose: once Ready, the GPU-time it held served traffic (its
            # in-flight requests, seconds, are not counted); killed before Ready, its start-up was for nothing
            ran = t - start
            return ran if ran < self.tl[i].head_s else 0.0
        if k.kind != "training" or k.checkpoint_interval_s is None:
            return None
        g = self.gang_of.get(i)
        if g is not None and (g["start"] is None or g["waiting_since"] is not None or g["start"] != start):
            return None
        ran = t - start
        return min(ran, lost_on_kill_s(self.tl[i], ran))

    # -- results -----------------------------------------------------------------------------
    def jobs_table(self) -> list[dict]:
        """One row per job: kind, policy, attempts, failures, progress, outcome, GPU-hours."""
        rt = self.rt
        rows = []
        for job, mem in self.jobs.items():
            k = self.kind_of[mem[0]]
            outs = [rt.outcome[m] or ("running_at_horizon" if rt.state[m] == RUNNING else "") for m in mem]
            target = sum(self.work[m] for m in mem)
            kept = sum(self.saved[m] for m in mem)
            atts = [a for m in mem for a in self.attempts[m]]
            running = [m for m in mem if rt.state[m] == RUNNING]
            g = self.gang.get(job)
            if g is not None and g["waiting_since"] is not None:
                running = []  # the ranks are holding their GPUs for a replacement, not working
            for m in running:  # credit the work of the attempt still running at the horizon
                kept += self.tl[m].work_at(self.view.clock() - float(rt.start_s[m]))
            gpu_h = sum(a["gpu_hours"] for a in atts)
            if k.kind == "service":
                now = self.view.clock()
                served = sum(a["served_s"] for a in atts) + sum(
                    self._served(m, float(rt.start_s[m]), self.tl[m].work_at(now - float(rt.start_s[m])))
                    for m in running
                )
                avail = served / target if target else 0.0
                kept = served
                done = avail >= k.slo_availability
                outcome = "served at SLO" if done else f"below SLO ({avail:.1%} of its window)"
            elif all(o == "completed" for o in outs):
                outcome = "completed"
            elif any(o == "failed" for o in outs):
                if job in self.failed_by_rule:
                    outcome = "failed (PodFailurePolicy)"
                else:
                    outcome = "failed (BackoffLimitExceeded)" if k.policy == "OnFailure" else "failed"
            else:
                outcome = "unfinished"
            pgs = self.phase_gpu_s[job]
            rows.append(
                {
                    "job": job,
                    "kind": k.kind,
                    "restart_policy": k.policy,
                    "pods": len(mem),
                    "attempts": len(atts),
                    "failures": self.failures[job],
                    "failures_counted": self.counted[job],
                    "failures_ignored": self.ignored[job],
                    "progress": kept / target if target else 0.0,
                    "outcome": outcome,
                    "gpu_hours": gpu_h,
                    "gpu_hours_by_phase": {p: v / 3600.0 for p, v in pgs.items()},
                    "gpu_hours_per_attempt": _per_attempt(atts),
                    "startup_s": self.startup[job],
                    "failures_by_phase": dict(self.fail_phase[job]),
                }
            )
        return rows

    def _replica_runs(self, owner: str) -> list[list]:
        """[pod, node, start_s, end_s] of every attempt of ``owner``'s pods, the running ones up to now."""
        rt, now = self.rt, self.view.clock()
        out = []
        for i, k in self.kind_of.items():
            if k.owner != owner:
                continue
            out += [[i, int(a["node"]), float(a["start_s"]), float(a["end_s"])] for a in self.attempts[i]]
            if rt.state[i] == RUNNING and i in rt.allocs:
                out.append([i, int(rt.allocs[i].node), float(rt.start_s[i]), float(now)])
        return out

    def summary(self) -> dict:
        return {
            "jobs": self.jobs_table(),
            "trace_attempts": len(self.trace_rows),
            "kept_on_kill": [[p, n, ms] for (p, n), ms in sorted(self.kept_on_kill.items())],
            "held_in_place": [[p, n, lost, kept] for (p, n), (lost, kept) in sorted(self.held_in_place.items())],
            "services": [
                {
                    "owner": k.owner,
                    "load": k.load.model_dump() if k.load is not None else None,
                    "runs": self._replica_runs(k.owner),
                }
                for k in self.spec.kinds
                if k.kind == "service"
            ],
        }

    def chrome_trace(self) -> dict:
        """The kept attempts' phases as Chrome trace JSON (``traceEvents``; pid = node, tid = GPU).

        Times in microseconds from the run's start; opens in ui.perfetto.dev and chrome://tracing."""
        rt = self.rt
        t0 = float(rt.pods.submit_s.min()) if len(rt.pods) else 0.0
        ev: list[dict] = []
        nodes = set()
        for i, node, devs, start, phases in self.trace_rows:
            nodes.add(node)
            for name, a, b in phases:
                for d in devs:
                    ev.append(
                        {
                            "name": name,
                            "cat": self.kind_of[i].kind,
                            "ph": "X",
                            "ts": round((start + a - t0) * 1e6, 3),
                            "dur": round((b - a) * 1e6, 3),
                            "pid": node,
                            "tid": d,
                            "args": {"pod": rt.pods.names[i], "job": rt.pods.jobs[i]},
                        }
                    )
        for n in sorted(nodes):
            ev.append(
                {"name": "process_name", "ph": "M", "pid": n, "tid": 0, "args": {"name": rt.cluster.node_names[n]}}
            )
        return {"traceEvents": ev, "displayTimeUnit": "ms"}


def lost_on_kill_s(tl: Timeline, elapsed: float) -> float:
    """Wall seconds of an attempt (plan ``tl``) thrown away when it is killed ``elapsed`` s after it
    started: the time since the end of the stall of its newest *durable* checkpoint (the state
    that checkpoint holds was produced up to then; ``Timeline.saved_at`` decides durability,
    async ``lag_s`` included), or the whole ``elapsed`` when no checkpoint is durable yet or the
    plan has none (``interval_s`` infinite). Start-up and warm-up before a durable checkpoint
    are not lost: the resumed attempt does not redo the work they led to.

    Closed form, e.g. no start-up, 30-min interval, no stall, killed at 100 min: checkpoints at
    30, 60 and 90 min, 10 min lost."""
    if elapsed <= 0:
        return 0.0
    if not math.isfinite(tl.interval_s):
        return elapsed
    n = round(tl.saved_at(elapsed) / tl.interval_s)
    if n <= 0:
        return elapsed
    return min(elapsed, max(0.0, elapsed - (tl.head_s + n * (tl.interval_s + tl.stall_s))))


def kill_loss_s(runtime, i: int, t: float) -> float:
    """Seconds of pod ``i``'s current run lost if it is killed at ``t`` (drain, spot reclaim, fault):
    since its last durable checkpoint when the run's ``execution`` subsystem checkpoints it
    (:meth:`Execution.lost_if_killed_s`), else since its start. Call it *before* evicting the pod.

    ``runtime`` is the subsystem's ``view.runtime``; the execution subsystem is looked up in its
    table of subsystems (absent: the since-start figure). Shared by sim/upgrade.py and, for
    reclaims, by sim/spot.py."""
    ran = t - float(runtime.start_s[i])
    exe = (getattr(runtime, "subsystems", None) or {}).get("execution")
    lost = exe.lost_if_killed_s(i, t) if exe is not None else None
    return ran if lost is None else lost


def mark_disruption(runtime, pods, reason: str) -> None:
    """Give pods about to be evicted Kubernetes' ``DisruptionTarget`` condition with ``reason`` (one of
    :data:`DISRUPTION_REASONS`), so the run's execution subsystem applies their Job's podFailurePolicy
    to the failure. Call it right *before* ``runtime.evict``; without an execution subsystem it does
    nothing. Raises ValueError for an unknown reason (a programming error)."""
    if reason not in DISRUPTION_REASONS:
        raise ValueError(f"unknown DisruptionTarget reason {reason!r}")
    exe = (getattr(runtime, "subsystems", None) or {}).get("execution")
    if exe is not None:
        for i in pods:
            exe.disrupted[int(i)] = reason


def _per_attempt(atts: list[dict]) -> list[float]:
    """GPU-hours of each attempt of a job (pods that started together form one attempt)."""
    by: dict[float, float] = {}
    for a in atts:
        by[a["start_s"]] = by.get(a["start_s"], 0.0) + a["gpu_hours"]
    return [by[k] for k in sorted(by)]


@register("execution")
def _build_execution(cfg: RunConfig, make_view) -> Execution | None:
    """Active when the run's options carry an ``execution`` spec with kinds."""
    spec = cfg.options.get("execution")
    if spec is None or not spec.kinds:
        return None
    return Execution(make_view("execution"), spec)


def job_pods(
    job: str,
    owner: str,
    pods: int,
    gpus_per_pod: int,
    work_s: float,
    *,
    submit_s: float = 0.0,
    gang: bool = True,
    cpu_milli: int = 8000,
    memory_mib: int = 65536,
) -> list:
    """The pods of one job: ``pods`` pods of ``gpus_per_pod`` GPUs, each ``work_s`` of steady work
    (a gang when ``gang``: all start together, as a training job's ranks do)."""
    from gpuinfra.sim.workload import Pod

    return [
        Pod(
            name=f"{job}-{k:05d}",
            submit_s=submit_s,
            duration_s=work_s,
            cpu_milli=cpu_milli,
            memory_mib=memory_mib,
            num_gpu=gpus_per_pod,
            gpu_milli=1000,
            owner=owner,
            job=job,
            gang_size=pods if gang and pods > 1 else 0,
        )
        for k in range(pods)
    ]
