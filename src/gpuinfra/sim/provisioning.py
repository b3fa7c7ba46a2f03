"""Nodes that come and go: unprovisioned (not billed), requested (billed, booting), provisioned.

Three subsystems create and delete nodes during a run -- the upgrade controller (surge/green
nodes, deleted old ones), spot reclaims (a reclaimed VM and its replacement) and the cluster
autoscaler (scale-up and scale-down). The cluster holds every node *slot* for the whole run, so its
capacity x time stays fixed and the run's GPU-time balance (allocated + idle + unavailable =
capacity x time, sim/invariants.py) holds unchanged; a slot without a VM behind it is

- **unprovisioned**: node down (takes no pods) and its devices unavailable; its GPU-time is *not
  billed* -- the subsystem reports it as ``unprovisioned_gpu_hours_by_model`` and cost attribution
  (analysis/attribution.py) takes it out of the bill;
- **requested**: billing starts (clouds bill an instance from the moment it is running, before it
  joins the cluster: sim/upgrade.py's module docstring has the sources); its devices stay
  unavailable until it is provisioned -- billed and unavailable, reported as
  ``provisioning_gpu_hours_by_model``;
- **provisioned**: up, devices available, takes pods.

:class:`ProvisionLedger` keeps those intervals per node for one subsystem; the cluster changes go
through ``ClusterState.set_node_up`` / ``set_device_available`` only, as holds of the subsystem that
owns the ledger (the cluster counts holds per owner: a node another subsystem also holds down stays
down until both release it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpuinfra.sim.cluster import ClusterState
    from gpuinfra.sim.subsystem import PodRuntime


def unprovisioned_by_model(
    c, done: dict[int, float], since: dict[int, float], now: float, by: str = "model"
) -> dict[str, float]:
    """GPU-hours by GPU model (``by="pool"``: by node pool, what per-pool prices need) of nodes not
    provisioned: closed intervals ``done`` (node -> GPU-s) plus the open ones (node -> since) up to ``now``."""
    out: dict[str, float] = {}
    for n in set(done) | set(since):
        g = done.get(n, 0.0) + ((now - since[n]) * int(c.gpu_count[n]) if n in since else 0.0)
        if by == "pool":
            m = c.pools[c.node_pool[n]].name
        else:
            m = c.models[c.node_model[n]] if c.node_model[n] >= 0 else ""
        out[m] = out.get(m, 0.0) + g / 3600.0
    return dict(sorted(out.items()))


class ProvisionLedger:
    """The provisioning state of the nodes one subsystem manages, and the GPU-seconds of each state.

    ``unprov_since`` (node -> when its open unprovisioned interval began), ``unprov_gpu_s`` (node ->
    closed unprovisioned GPU-seconds), ``requested_at`` (node -> when it was requested and not yet
    provisioned), ``prov_gpu_s`` (node -> closed requested-but-not-up GPU-seconds). Times in
    simulated seconds; GPU-seconds = seconds x the node's GPU count.
    """

    def __init__(self, cluster: ClusterState, runtime: PodRuntime, owner: str) -> None:
        self.c = cluster
        self.e = runtime
        self.owner = owner
        """The subsystem whose holds these are (``ClusterState.set_node_up``'s ``owner``)."""
        self.unprov_since: dict[int, float] = {}
        self.unprov_gpu_s: dict[int, float] = {}
        self.requested_at: dict[int, float] = {}
        self.prov_gpu_s: dict[int, float] = {}

    def unprovision(self, n: int, t: float, hold_node: bool = True) -> None:
        """Node ``n`` has no VM from ``t`` on (deleted, reclaimed, not yet created): down, its devices
        unavailable (they must be empty), not billed. ``hold_node`` False: the owner already holds the
        node down (a spot node cordoned at its notice), so only its devices are taken out."""
        c = self.c
        if hold_node:
            c.set_node_up(n, False, self.owner)
        for d in range(int(c.gpu_count[n])):
            c.set_device_available(n, d, False, self.owner)
        self.unprov_since[n] = t
        self.e.mark_dirty(n)

    def bill_from(self, n: int, t: float) -> None:
        """Close node ``n``'s unprovisioned interval at ``t`` (a no-op adding 0 when none is open)."""
        t0 = self.unprov_since.pop(n, t)
        self.unprov_gpu_s[n] = self.unprov_gpu_s.get(n, 0.0) + (t - t0) * int(self.c.gpu_count[n])

    def request(self, n: int, t: float) -> None:
        """Node ``n`` is requested from the cloud at ``t``: billed from now, unavailable until provisioned."""
        self.bill_from(n, t)
        self.requested_at[n] = t

    def provision(self, n: int, t: float) -> None:
        """Node ``n`` joined at ``t``: the owner's holds on its devices and one hold on the node are
        released (up unless another subsystem holds it). Closes its requested interval, if any."""
        c = self.c
        t_req = self.requested_at.pop(n, None)
        if t_req is not None:
            self.prov_gpu_s[n] = self.prov_gpu_s.get(n, 0.0) + (t - t_req) * int(c.gpu_count[n])
        self.bill_from(n, t)  # no-op when billing started at the request
        for d in range(int(c.gpu_count[n])):
            c.set_device_available(n, d, True, self.owner)
        c.set_node_up(n, True, self.owner)
        self.e.mark_dirty(n)

    def unprovisioned_by_model(self, now: float, by: str = "model") -> dict[str, float]:
        """Unprovisioned (not billed) GPU-hours by model (``by="pool"``: by node pool) up to ``now``."""
        return unprovisioned_by_model(self.c, self.unprov_gpu_s, self.unprov_since, now, by)

    def provisioning_by_model(self, now: float, by: str = "model") -> dict[str, float]:
        """Requested-but-not-up (billed, unavailable) GPU-hours by model (``by="pool"``: by pool) up to ``now``."""
        return unprovisioned_by_model(self.c, self.prov_gpu_s, self.requested_at, now, by)
