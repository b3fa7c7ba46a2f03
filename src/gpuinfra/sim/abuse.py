"""Abuse of a shared inference endpoint and the guardrails against it, on the kernel.

``replicas`` serving replicas (one GPU each, held through ``ClusterState`` for the whole run)
serve ``legit_keys`` API keys at ``legit_rps`` each, plus ``abusive_keys`` keys (a leaked key, a
scraper) at ``abuse_rps`` each asking for ``abuse_tokens`` output tokens. Requests arrive Poisson
per key (stream ``abuse.arrivals``); legitimate output lengths are log-normal (mean
``out_mean``, cv ``out_cv``) [assumption].

Guardrails, each optional (:class:`Guardrails`):

- **token bucket per key** (Envoy ``TokenBucket``: ``max_tokens`` is capacity and initial fill;
  refill continuous at ``rate_rps``; a request takes one token; none left: HTTP 429). Semantics
  here: continuous refill, no queueing of excess requests (nginx ``limit_req`` with ``nodelay``
  differs; facts/cost-lifecycle-security.md 6 notes the disagreement);
- **max tokens per request**: the request's output is capped (it bounds the worst-case
  reservation, as Cerebras and OpenAI reserve prompt + ``max_tokens`` before running);
- **daily token quota per key**: a request whose capped output would exceed the key's remaining
  quota is refused (429).

The replicas are one FIFO server of ``tokens_per_s`` x ``replicas`` output tokens per second
(continuous batching keeps the GPUs at their batched throughput; the per-replica figure is the
roofline decode throughput of the served model, :mod:`gpuinfra.models.precision`). A request
starts when the work ahead of it is done; one that would wait longer than ``timeout_s`` is
dropped by its client before it runs (it costs nothing). Per key class: requests, served,
rate-limited, dropped, tokens served, and the abusers' share of the GPU-hours held.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gpuinfra.errors import UserError
from gpuinfra.sim.cluster import Allocation, ClusterState, NodePool
from gpuinfra.sim.invariants import check_invariants, require
from gpuinfra.sim.kernel import PRIO_ARRIVAL, Event, Kernel, Rngs
from gpuinfra.sim.recorder import Recorder
from gpuinfra.sim.subsystem import Subsystem, View, route

POD_BASE = 2_000_000_000


@dataclass(frozen=True)
class Guardrails:
    rate_rps: float | None = None
    burst: int | None = None
    max_tokens: int | None = None
    daily_token_quota: int | None = None

    def check(self) -> None:
        if (self.rate_rps is None) != (self.burst is None):
            raise UserError("a token bucket needs both rate_rps and burst", where="guardrails")
        for k in ("rate_rps", "burst", "max_tokens", "daily_token_quota"):
            v = getattr(self, k)
            if v is not None and v <= 0:
                raise UserError(f"{k} must be > 0", where=f"guardrails.{k}")

    @property
    def any(self) -> bool:
        return any(v is not None for v in asdict(self).values())


class TokenBucket:
    """Per-key bucket: capacity ``burst`` (initially full), continuous refill at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = float(rate), float(burst)
        self.tokens = float(burst)
        self.t = 0.0

    def take(self, t: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (t - self.t) * self.rate)
        self.t = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class AbuseConfig:
    replicas: int = 4
    tokens_per_s: float = 2500.0
    """Output tokens/s one replica sustains (default: the order of the roofline decode throughput
    of Llama-3-8B bf16 on an H100 at batch 16; labs compute it from models/precision)."""
    gpu: str = "H100-SXM"
    legit_keys: int = 50
    legit_rps: float = 0.1
    out_mean: float = 250.0
    out_cv: float = 0.8
    abusive_keys: int = 1
    abuse_rps: float = 5.0
    abuse_tokens: int = 4096
    timeout_s: float = 30.0
    horizon_s: float = 3600.0
    tick_s: float = 10.0
    guardrails: Guardrails = field(default_factory=Guardrails)

    def check(self) -> None:
        self.guardrails.check()
        if self.replicas < 1 or self.tokens_per_s <= 0 or self.horizon_s <= 0 or self.tick_s <= 0:
            raise UserError("replicas >= 1; tokens_per_s, horizon_s, tick_s > 0", where="abuse")
        if self.legit_keys < 0 or self.abusive_keys < 0 or self.legit_rps < 0 or self.abuse_rps < 0:
            raise UserError("key counts and rates must be >= 0", where="abuse")
        if self.abuse_tokens < 1 or self.out_mean <= 0 or self.out_cv <= 0 or self.timeout_s < 0:
            raise UserError("abuse_tokens >= 1, out_mean and out_cv > 0, timeout_s >= 0", where="abuse")


CLASSES = ("legit", "abuse")


class Endpoint(Subsystem):
    """The endpoint: arrivals, guardrails and the FIFO token server; event ``ab_tick``."""

    name = "abuse"

    def __init__(self, view: View, cfg: AbuseConfig) -> None:
        super().__init__(view)
        self.cfg = cfg
        g = cfg.guardrails
        n = cfg.legit_keys + cfg.abusive_keys
        self.buckets = [TokenBucket(g.rate_rps, g.burst) for _ in range(n)] if g.rate_rps else None
        self.quota_left = np.full(n, float(g.daily_token_quota)) if g.daily_token_quota else None
        self.rates = np.array([cfg.legit_rps] * cfg.legit_keys + [cfg.abuse_rps] * cfg.abusive_keys)
        self.cls = np.array([0] * cfg.legit_keys + [1] * cfg.abusive_keys)
        self.capacity = cfg.tokens_per_s * cfg.replicas
        self.free_at = 0.0
        sigma = math.sqrt(math.log(1 + cfg.out_cv**2))
        self.mu, self.sigma = math.log(cfg.out_mean) - sigma**2 / 2, sigma
        self.stats = {c: dict.fromkeys(("requests", "served", "rate_limited", "dropped", "tokens"), 0) for c in CLASSES}
        self.waits: dict[str, list[float]] = {c: [] for c in CLASSES}

    def handlers(self):
        return {"ab_tick": self._on_tick}

    def first_events(self, t0: float) -> list[Event]:
        return [Event(t0, PRIO_ARRIVAL, "ab_tick")]

    def _on_tick(self, ev: Event) -> list[Event]:
        cfg, rng, t0 = self.cfg, self.view.rng, ev.t_s
        dt = min(cfg.tick_s, cfg.horizon_s - t0)
        counts = rng.poisson(self.rates * dt)
        keys = np.repeat(np.arange(len(self.rates)), counts)
        times = t0 + rng.uniform(0.0, dt, size=len(keys))
        order = np.argsort(times, kind="stable")
        keys, times = keys[order], times[order]
        legit_len = rng.lognormal(self.mu, self.sigma, size=len(keys))
        g = cfg.guardrails
        for k, t, ll in zip(keys.tolist(), times.tolist(), legit_len.tolist()):
            c = CLASSES[self.cls[k]]
            st = self.stats[c]
            st["requests"] += 1
            want = float(cfg.abuse_tokens) if c == "abuse" else max(1.0, round(ll))
            if g.max_tokens is not None:
                want = min(want, float(g.max_tokens))
            if self.buckets is not None and not self.buckets[k].take(t):
                st["rate_limited"] += 1
                continue
            if self.quota_left is not None:
                if self.quota_left[k] < want:
                    st["rate_limited"] += 1
                    continue
                self.quota_left[k] -= want
            start = max(t, self.free_at)
            if start - t > cfg.timeout_s:
                st["dropped"] += 1
                continue
            self.free_at = start + want / self.capacity
            st["served"] += 1
            st["tokens"] += int(want)
            self.waits[c].append(start - t)
        nxt = t0 + cfg.tick_s
        return [Event(nxt, PRIO_ARRIVAL, "ab_tick")] if nxt < cfg.horizon_s else []

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in CLASSES:
            w = np.asarray(self.waits[c])
            out[c] = dict(self.stats[c]) | {
                "wait_p50_s": float(np.percentile(w, 50)) if len(w) else None,
                "wait_p99_s": float(np.percentile(w, 99)) if len(w) else None,
            }
        tot = sum(out[c]["tokens"] for c in CLASSES)
        out["abuse_token_share"] = out["abuse"]["tokens"] / tot if tot else 0.0
        lg = out["legit"]
        out["legit_success_ratio"] = lg["served"] / lg["requests"] if lg["requests"] else 1.0
        return out


@dataclass(frozen=True)
class AbuseResult:
    summary: dict[str, Any]
    gpu_hours: float
    abuse_gpu_hours: float
    invariants: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def simulate_abuse(cfg: AbuseConfig, seed: int = 0) -> AbuseResult:
    """One hour (``horizon_s``) of the endpoint; the replicas hold their GPUs through the run."""
    cfg.check()
    per_node = min(8, cfg.replicas)
    nodes = -(-cfg.replicas // per_node)
    cluster = ClusterState.from_pools([NodePool("inference", cfg.gpu, per_node, 10**9, 10**9, nodes)])
    rec = Recorder(cluster, interval_s=60.0)
    for i in range(cfg.replicas):
        a = Allocation(POD_BASE + i, i // per_node, (i % per_node,), 1000, 0, 0)
        cluster.allocate(a)
        rec.changed([a.node])
    rec.record(0.0)
    kernel = Kernel({})
    ep = Endpoint(View(lambda: kernel.now_s, cluster, None, Rngs(seed).stream("abuse.arrivals"), rec), cfg)  # type: ignore[arg-type]
    kernel.handlers = route([ep], {})
    kernel.schedule_many(ep.first_events(0.0))
    kernel.run(until_s=cfg.horizon_s)
    inv = require(check_invariants(cluster, rec, cfg.horizon_s), "abuse run")
    s = ep.summary()
    # GPU time the abusers' tokens took: their tokens at one replica's throughput
    abuse_h = s["abuse"]["tokens"] / cfg.tokens_per_s / 3600.0
    return AbuseResult(s, inv.allocated_gpu_hours, abuse_h, inv.as_dict())
