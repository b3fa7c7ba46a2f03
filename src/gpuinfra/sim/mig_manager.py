"""MIG reconfiguration in the replay: repartition idle GPUs to fit pending MIG demand.

Every ``interval_s`` (the MIG manager's reconciliation period; 300 s by default, an assumption),
the pending MIG pods that no free instance could take are counted by profile. Each *idle* GPU of
a MIG pool (no pod on it: MIG can only be reconfigured when the GPU is idle, facts/gpu.md 2.3)
is then repartitioned: the pending profiles it can hold are placed first (largest first), and
the rest of the GPU is filled back with the pool's layout where it still fits, so capacity for
other demand is kept. A repartitioned GPU serves nothing for ``reconfigure_s`` (the MIG
manager's apply and device-plugin restart; models/sharing.MIG_RECONFIGURE_S, 60 s assumed);
that time is accounted as unavailable GPU-time. Busy GPUs are never drained here: the cost of
draining is the reconfiguration model's (models/sharing.reconfigure) to show.

Enable with ``scheduler.plugin_args: {MigFit: {reconfigure: true, interval_s: 300}}``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from gpuinfra.models import mig as migm
from gpuinfra.models.sharing import MIG_RECONFIGURE_S
from gpuinfra.sim.kernel import PRIO_RELEASE, PRIO_SAMPLE, Event
from gpuinfra.sim.plugins.mig import free_instances, gpu_layout, set_gpu_layout
from gpuinfra.sim.subsystem import RunConfig, Subsystem, View, register

if TYPE_CHECKING:
    pass


class MigManager(Subsystem):
    """The ``mig_manager`` subsystem. Event kinds: ``mig_manage`` (reconciliation), ``mig_ready``
    (ref: node * 1024 + GPU, the repartitioned GPU serves again). Summary: the repartitions."""

    name = "mig_manager"

    def __init__(self, view: View, interval_s: float = 300.0, reconfigure_s: float = MIG_RECONFIGURE_S) -> None:
        super().__init__(view)
        rt = self.e = view.runtime
        self.interval_s = float(interval_s)
        self.reconfigure_s = float(reconfigure_s)
        self.log: list[dict] = []
        c = rt.cluster
        self.mig_nodes = [n for n in range(c.n_nodes) if c.pools[c.node_pool[n]].mig_layout]
        self.busy: set[tuple[int, int]] = set()
        """GPUs being reconfigured."""
        self.mig_pods = [i for i in range(len(rt.pods)) if rt.pods.mig_profile[i]]
        """Only these pods can create MIG demand: scanned each reconciliation instead of all pods."""

    def handlers(self) -> dict:
        return {"mig_manage": self.on_manage, "mig_ready": self.on_ready}

    def summary(self) -> dict:
        return {"repartitions": len(self.log), "log": self.log}

    def first_events(self, t0: float) -> list[Event]:
        return [Event(t0 + self.interval_s, PRIO_SAMPLE, "mig_manage")] if self.mig_nodes else []

    def _demand(self) -> Counter:
        from gpuinfra.sim.subsystem import PENDING

        e, pods, c = self.e, self.e.pods, self.e.cluster
        want: Counter = Counter()
        has_free: dict[str, bool] = {}
        for i in self.mig_pods:
            if e.state[i] != PENDING:
                continue
            prof = pods.mig_profile[i]
            if prof not in has_free:
                has_free[prof] = any(free_instances(c, pods, n, prof) for n in self.mig_nodes)
            if not has_free[prof]:
                want[prof] += 1
        return want

    def on_manage(self, ev: Event) -> list[Event]:
        from gpuinfra.sim.subsystem import NOT_ARRIVED, PENDING

        e, c, t = self.e, self.e.cluster, ev.t_s
        out: list[Event] = []
        want = self._demand()
        for n in self.mig_nodes:
            if not want:
                break
            model = c.models[c.node_model[n]]
            pool_layout = c.pools[c.node_pool[n]].mig_layout
            for d in range(int(c.gpu_count[n])):
                if not want:
                    break
                if (n, d) in self.busy or not c.dev_available[n, d] or c.dev_free[n, d] != 1000:
                    continue  # not idle: MIG reconfigures only empty GPUs
                built: list[migm.Instance] = []
                for prof in sorted(want.elements(), key=lambda p: -migm.profile(model, p).memory_slices):
                    p = migm.profile(model, prof)
                    starts = migm.placements(built, p)
                    if starts:
                        built.append(migm.Instance(p, starts[0]))
                placed = Counter(i.profile.name for i in built)
                if not placed:
                    continue
                for prof in sorted(pool_layout, key=lambda x: -migm.profile(model, x).memory_slices):
                    p = migm.profile(model, prof)
                    starts = migm.placements(built, p)
                    if starts:
                        built.append(migm.Instance(p, starts[0]))
                new = tuple(sorted(i.profile.name for i in built))
                if new == tuple(sorted(gpu_layout(c, n, d))):
                    continue
                old = gpu_layout(c, n, d)
                set_gpu_layout(c, n, d, new)
                c.set_device_available(n, d, False, self.name)
                e.mark_dirty(n)
                self.busy.add((n, d))
                want -= placed
                self.log.append({"t_s": t, "node": c.node_names[n], "gpu": d, "from": list(old), "to": list(new)})
                out.append(Event(t + self.reconfigure_s, PRIO_RELEASE, "mig_ready", n * 1024 + d))
        e.touch(t)
        more = bool(np.any((e.state == PENDING) | (e.state == NOT_ARRIVED))) or bool(self.busy)
        if more:
            out.append(Event(t + self.interval_s, PRIO_SAMPLE, "mig_manage"))
        return out

    def on_ready(self, ev: Event) -> list[Event]:
        e, c, t = self.e, self.e.cluster, ev.t_s
        n, d = divmod(int(ev.ref), 1024)
        self.busy.discard((n, d))
        c.set_device_available(n, d, True, self.name)
        e.mark_dirty(n)
        out = e.retry_nodes([n], t)
        e.touch(t)
        return out


@register("mig_manager")
def _build_mig_manager(cfg: RunConfig, make_view) -> MigManager | None:
    """Active when the profile runs MigFit with ``reconfigure: true``."""
    args = dict(cfg.profile.plugin_args.get("MigFit") or {})
    if "MigFit" not in cfg.profile.filters or not args.get("reconfigure"):
        return None
    return MigManager(
        make_view("mig_manager"), float(args.get("interval_s", 300.0)), float(args.get("reconfigure_s", 60.0))
    )
