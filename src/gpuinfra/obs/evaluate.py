"""Run alert rules over simulated telemetry and score them against the ground truth.

Rules are evaluated every ``interval_s`` from t = 0 as Prometheus does: an alert whose expression
holds becomes *pending* at the first evaluation that sees it and *firing* once it has held for
``for``; it resolves at the first evaluation where it does not hold. Each firing episode is one
page. An episode is a true positive when its labels point at the target of an incident (the GPU,
by Hostname and gpu, or the job, by pod, or a GPU of that job) that was in progress within 15
minutes of the page; otherwise it is noise. Per rule: precision (true episodes / episodes), recall
(incidents of the kinds the rule is meant for that it caught / such incidents), mean time to
detect (first firing minus incident start; never negative: an episode whose condition began before
the incident, or that fired before it, does not detect it; None when the rule caught none) and
pages per day.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from gpuinfra.obs.promql import Ctx, Labels
from gpuinfra.obs.rules import Rule
from gpuinfra.sim.telemetry import Telemetry, TruthIncident

GRACE_S = 900.0


@dataclass
class Episode:
    rule: str
    labels: dict[str, str]
    pending_at: float
    firing_at: float
    resolved_at: float | None
    incident: int | None = None
    """Index into the truth list, or None (noise)."""


@dataclass
class RuleScore:
    rule: str
    episodes: int
    true_episodes: int
    precision: float | None
    targeted: int
    caught: int
    recall: float | None
    mean_ttd_s: float | None
    pages_per_day: float


@dataclass
class Evaluation:
    episodes: list[Episode]
    scores: list[RuleScore]
    caught_by_set: dict[int, float] = field(default_factory=dict)
    """incident index -> first firing time of any rule of the set."""
    days: float = 0.0

    @property
    def recall(self) -> float:
        return len(self.caught_by_set) / self.n_incidents if self.n_incidents else 1.0

    n_incidents: int = 0

    def as_dict(self) -> dict:
        return {
            "episodes": [asdict(e) for e in self.episodes],
            "scores": [asdict(s) for s in self.scores],
            "recall": self.recall,
            "pages_per_day": len(self.episodes) / self.days if self.days else 0.0,
            "precision": (sum(e.incident is not None for e in self.episodes) / len(self.episodes))
            if self.episodes
            else None,
        }


def alert_states(rules: list[Rule], tel: Telemetry, interval_s: float = 30.0, until_s: float | None = None):
    """Yield (t, rule, {labels: 'pending'|'firing'}) at every evaluation, carrying `for` state."""
    ctx = Ctx(tel)
    end = tel.times[-1] if until_s is None else until_s
    active: list[dict[Labels, float]] = [{} for _ in rules]
    t = 0.0
    while t <= end + 1e-9:
        for k, r in enumerate(rules):
            res = r.expr.eval(ctx, t)
            prev = active[k]
            nxt = {lab: prev.get(lab, t) for lab in res}
            active[k] = nxt
            yield t, k, {lab: ("firing" if t - since >= r.for_s else "pending") for lab, since in nxt.items()}
        t += interval_s


def _matches(labels: dict[str, str], inc: TruthIncident, tel: Telemetry) -> bool:
    job = next((j for j in tel.jobs if j.pod == inc.pod), None)
    if labels.get("pod") and labels.get("pod") == inc.pod:
        return True
    host, gpu = labels.get("Hostname"), labels.get("gpu")
    if host is None or gpu is None:
        return False
    if inc.node is not None and host == tel.nodes[inc.node] and gpu == str(inc.gpu):
        return True
    return job is not None and any(host == tel.nodes[n] and gpu == str(g) for n, g in job.gpus)


def evaluate(rules: list[Rule], tel: Telemetry, interval_s: float = 30.0) -> Evaluation:
    open_eps: dict[tuple[int, Labels], Episode] = {}
    pending: dict[tuple[int, Labels], float] = {}
    episodes: list[Episode] = []
    for t, k, states in alert_states(rules, tel, interval_s):
        seen = set()
        for lab, st in states.items():
            key = (k, lab)
            seen.add(key)
            pending.setdefault(key, t)
            if st == "firing" and key not in open_eps:
                ep = Episode(rules[k].name, dict(lab), pending[key], t, None)
                open_eps[key] = ep
                episodes.append(ep)
        for key in [x for x in list(pending) if x[0] == k and x not in seen]:
            pending.pop(key, None)
            ep = open_eps.pop(key, None)
            if ep is not None:
                ep.resolved_at = t
    # match episodes to incidents
    truth = tel.truth
    caught: dict[int, float] = {}
    per_rule_caught: dict[str, dict[int, float]] = {r.name: {} for r in rules}
    targets = {r.name: r.targets for r in rules}
    for ep in episodes:
        # an episode detects an incident only if its condition began with the incident (at the
        # evaluation that first saw it, or later) and fired while the incident was on or just after:
        # an alert already pending before the incident started was about something else, and a
        # detection can never precede what it detects (no negative time to detect)
        cands = [
            i
            for i, inc in enumerate(truth)
            if ep.pending_at > inc.start_s - interval_s
            and inc.start_s <= ep.firing_at <= inc.end_s + GRACE_S
            and _matches(ep.labels, inc, tel)
        ]
        if not cands:
            continue
        # an alert explains the incident it is meant for first, then any other on its target
        i = min(cands, key=lambda x: (truth[x].kind not in targets[ep.rule], truth[x].start_s))
        ep.incident = i
        caught[i] = min(caught.get(i, ep.firing_at), ep.firing_at)
        per_rule_caught[ep.rule][i] = min(per_rule_caught[ep.rule].get(i, ep.firing_at), ep.firing_at)
    days = float(tel.times[-1] - tel.times[0] + tel.interval_s) / 86400
    scores = []
    for r in rules:
        eps = [e for e in episodes if e.rule == r.name]
        tp = sum(e.incident is not None for e in eps)
        targeted = [i for i, inc in enumerate(truth) if inc.kind in r.targets]
        got = [i for i in targeted if i in per_rule_caught[r.name]]
        ttd = [per_rule_caught[r.name][i] - truth[i].start_s for i in got]
        scores.append(
            RuleScore(
                r.name,
                len(eps),
                tp,
                tp / len(eps) if eps else None,
                len(targeted),
                len(got),
                len(got) / len(targeted) if targeted else None,
                float(np.mean(ttd)) if ttd else None,
                len(eps) / days if days else 0.0,
            )
        )
    ev = Evaluation(episodes, scores, caught, days)
    ev.n_incidents = len(truth)
    return ev
