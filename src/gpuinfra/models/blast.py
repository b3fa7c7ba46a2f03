"""Blast radius of a compromised endpoint, computed from a scenario's declared boundaries.

The declared estate (:class:`Estate`): workloads (endpoints, training, batch jobs) with their
tenant, node, GPU, model, mounted secrets, service account, egress and privileges; GPUs with a
sharing mode; secrets and service accounts with what they grant. It becomes a directed
``networkx`` graph whose edges say what an attacker who controls the source can do to the target
and through which boundary:

- **control** edges (the attacker now holds the target and continues from it): a mounted secret,
  an automounted service-account token and what its RBAC lets it read, what a secret grants
  (e.g. a hub token that reads another model's weights), the model weights a workload loads, and
  a container escape to the node (``privileged`` or ``host_path``), from which every workload on
  the node and its mounted secrets are reachable (the kubelet's view);
- **impact** edges (the attacker affects the target but does not hold it): co-tenants of the same
  GPU through the sharing mode's boundaries (from ``catalog/data/security/isolation.csv``: crash
  through a shared fault domain, out-of-memory through no capacity isolation, slowdown, side-channel
  leak), workloads on other GPUs of the same node (NVLink side channel), and network paths the
  workload's egress allows (another service's API, the internet for exfiltration).

:func:`blast_radius` walks control edges from the compromised workload (breadth first), then
adds the impact edges of everything reached, and returns each reached asset by category with the
shortest path that reaches it. A pure function of the declared estate: no clock, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import networkx as nx

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError

SHARING_MODES = ("whole", "timeslice", "mps", "mig")
BOUNDARIES = ("memory_capacity", "memory_protection", "fault", "performance", "side_channel")


@dataclass(frozen=True)
class IsolationRow:
    mode: str
    boundary: str
    level: str
    effect_on_cotenant: str
    detail: str
    source: str


@cache
def isolation_table() -> tuple[IsolationRow, ...]:
    """``catalog/data/security/isolation.csv``: boundary strength per sharing mode, sourced."""
    return tuple(
        IsolationRow(r["mode"], r["boundary"], r["level"], r["effect_on_cotenant"], r["detail"], r["source"])
        for r in read_csv_rows("security", "isolation.csv")
    )


def cotenant_effects(mode: str) -> list[IsolationRow]:
    """Rows of ``mode`` through which a co-tenant on the same GPU can be affected."""
    if mode not in SHARING_MODES:
        raise UserError(f"unknown sharing mode '{mode}'", where="sharing", expected=", ".join(SHARING_MODES))
    return [r for r in isolation_table() if r.mode == mode and r.effect_on_cotenant != "none"]


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str = "endpoint"
    tenant: str = ""
    node: str = ""
    gpu: str | None = None
    model: str | None = None
    service_account: str | None = None
    secrets: tuple[str, ...] = ()
    egress: tuple[str, ...] = ()
    privileged: bool = False
    host_path: bool = False


@dataclass(frozen=True)
class Estate:
    """What a scenario declares (already validated: every reference resolves)."""

    name: str
    workloads: tuple[Workload, ...]
    gpu_sharing: dict[str, str] = field(default_factory=dict)
    """GPU name -> sharing mode (whole, timeslice, mps, mig)."""
    secret_grants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Secret -> what holding it grants, as ``model:NAME`` / ``bucket:NAME`` / ``secret:NAME``."""
    sa_grants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Service account -> what its RBAC lets it read, same notation."""


def build_graph(e: Estate) -> nx.DiGraph:
    """The estate as a graph (nodes ``kind:name``; edges with ``control`` and ``how``)."""
    g = nx.DiGraph()

    def edge(a: str, b: str, control: bool, how: str, effect: str = "") -> None:
        if g.has_edge(a, b) and (g[a][b]["control"] or not control):  # control outranks impact
            if not control and effect and effect not in g[a][b]["effect"]:
                g[a][b]["effect"] += f", {effect}"
                g[a][b]["how"] += f"; {how}"
            return
        g.add_edge(a, b, control=control, how=how, effect=effect)

    by_name = {w.name: w for w in e.workloads}
    for w in e.workloads:
        me = f"workload:{w.name}"
        g.add_node(me, tenant=w.tenant)
        for s in w.secrets:
            edge(me, f"secret:{s}", True, "mounted secret")
        if w.service_account:
            edge(me, f"sa:{w.service_account}", True, "automounted service-account token")
        if w.model:
            edge(me, f"model:{w.model}", True, "weights loaded in its memory")
        if w.privileged or w.host_path:
            edge(
                me, f"node:{w.node}", True, "container escape (" + ("privileged" if w.privileged else "hostPath") + ")"
            )
        for x in w.egress:
            if x in by_name:
                edge(me, f"workload:{x}", False, "network path (egress allowed)", "requests")
            else:
                edge(me, f"net:{x}", False, "network egress", "exfiltration")
        for o in e.workloads:
            if o.name == w.name:
                continue
            if o.node == w.node:
                edge(f"node:{w.node}", f"workload:{o.name}", True, "kubelet/host access to pods on the node")
            if w.gpu and o.gpu == w.gpu:
                mode = e.gpu_sharing.get(w.gpu, "whole")
                for r in cotenant_effects(mode):
                    edge(me, f"workload:{o.name}", False, f"same GPU ({mode}): {r.boundary}", r.effect_on_cotenant)
            elif w.gpu and o.gpu and o.node == w.node:
                for r in cotenant_effects("whole"):
                    if r.boundary == "side_channel":
                        edge(me, f"workload:{o.name}", False, "same node, NVLink: side_channel", r.effect_on_cotenant)
    for s, grants in e.secret_grants.items():
        for t in grants:
            edge(f"secret:{s}", t, True, "what the secret grants")
    for sa, grants in e.sa_grants.items():
        for t in grants:
            edge(f"sa:{sa}", t, True, "RBAC of the service account")
    return g


@dataclass(frozen=True)
class Reached:
    asset: str
    category: str
    control: bool
    effect: str
    path: tuple[str, ...]
    how: str


CATEGORY = {
    "secret": "secrets",
    "sa": "secrets",
    "model": "models",
    "bucket": "data",
    "node": "nodes",
    "net": "network paths",
}


def blast_radius(e: Estate, compromised: str) -> list[Reached]:
    """Everything an attacker holding workload ``compromised`` controls or affects, by category:
    secrets, models, data, nodes, other workloads (held), co-tenants (affected), network paths."""
    g = build_graph(e)
    start = f"workload:{compromised}"
    if start not in g:
        names = sorted(w.name for w in e.workloads)
        raise UserError(f"no workload '{compromised}'", where="--endpoint", expected=", ".join(names))
    ctrl = g.edge_subgraph([(a, b) for a, b, d in g.edges(data=True) if d["control"]]).copy()
    ctrl.add_node(start)
    held = nx.single_source_shortest_path(ctrl, start)
    out: list[Reached] = []
    for node, path in sorted(held.items()):
        if node == start:
            continue
        kind = node.split(":", 1)[0]
        cat = CATEGORY.get(kind, "other workloads (held)")
        out.append(Reached(node, cat, True, "control", tuple(path), g[path[-2]][node]["how"]))
    seen = set(held)
    impacts: dict[str, Reached] = {}
    for src in sorted(held):
        for _, dst, d in g.out_edges(src, data=True):
            if d["control"] or dst in seen:
                continue
            kind = dst.split(":", 1)[0]
            cat = "network paths" if kind == "net" or d["effect"] == "requests" else "co-tenants (affected)"
            prev = impacts.get(dst)
            path = tuple(held[src]) + (dst,)
            if prev is None or len(path) < len(prev.path):
                impacts[dst] = Reached(dst, cat, False, d["effect"], path, d["how"])
    return out + [impacts[k] for k in sorted(impacts)]


def summarize(reached: list[Reached]) -> dict[str, int]:
    """Counts per category (the size of the blast radius)."""
    cats = ("secrets", "models", "data", "nodes", "other workloads (held)", "co-tenants (affected)", "network paths")
    return {c: sum(1 for r in reached if r.category == c) for c in cats}
