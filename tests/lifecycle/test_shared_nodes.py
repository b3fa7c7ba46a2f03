"""Subsystems that take the same node down: holds are counted per owner (ClusterState.set_node_up).

Without the holds, whichever subsystem brought a node back last won: a reboot's repair could
uncordon a node the upgrade was still draining. These runs put reboots on the pool being upgraded
at a rate where reboots strike nodes the upgrade holds, and check every repair and every bind
against the upgrade's own view of the node; the hold semantics themselves are tested against a
reference model in tests/sim/test_cluster.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from gpuinfra import api
from gpuinfra.sim.engine import ReplayEngine

EX = Path(__file__).resolve().parents[2] / "examples"


def _scenario(tmp_path: Path, seed: int) -> Path:
    d = yaml.safe_load((EX / "upgrade.yaml").read_text())
    d["seed"] = seed
    d["upgrade"]["node_upgrade_s"] = 7200  # long reimage windows, so reboots land inside them
    d["faults"] = [
        {
            "name": "node-reboot",
            "rate_per_day": 6.0,
            "action": "reboot_node",
            "repair_s": 1800,
            "scope": "node",
            "source": "test rate, far above any measured one, to make overlaps certain",
        }
    ]
    shutil.copy(EX / "upgrade-jobs.csv", tmp_path / "upgrade-jobs.csv")
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_no_pod_binds_to_a_node_the_upgrade_holds_while_faults_reboot_it(tmp_path, monkeypatch):
    from gpuinfra.sim import faults

    held_binds: list[tuple[int, float]] = []
    overlaps: list[tuple[int, float]] = []
    orig_start = ReplayEngine.start

    def start(self, i, alloc, t):
        up = self.subsystems.get("upgrade")
        if up is not None and (alloc.node in up.draining or alloc.node in up.reimaging):
            held_binds.append((alloc.node, t))
        return orig_start(self, i, alloc, t)

    cls = next(v for v in vars(faults).values() if isinstance(v, type) and "_strike" in vars(v))
    orig_strike = cls._strike

    def strike(self, fc, k, node, devices, t, whole=False):
        up = self.e.subsystems.get("upgrade")
        if up is not None and (node in up.draining or node in up.reimaging):
            overlaps.append((node, t))
        return orig_strike(self, fc, k, node, devices, t, whole)

    orig_repair = cls.on_repair
    lifted: list[tuple[int, float]] = []

    def on_repair(self, ev):
        out = orig_repair(self, ev)
        node = ev.ref // 1024
        up, c = self.e.subsystems.get("upgrade"), self.e.cluster
        held = up is not None and (node in up.draining or node in up.reimaging)
        if held and (c.node_up[node] or (node in up.reimaging and c.dev_available[node].any())):
            lifted.append((node, ev.t_s))  # the repair gave back a node the upgrade still holds
        return out

    monkeypatch.setattr(cls, "_strike", strike)
    monkeypatch.setattr(cls, "on_repair", on_repair)
    monkeypatch.setattr(ReplayEngine, "start", start)
    for seed in (1, 2, 3):
        d = tmp_path / str(seed)
        d.mkdir()
        out = api.simulate(api.scenario(_scenario(d, seed)))._output.run
        assert out.subsystems["upgrade"]["nodes_done"] == 5
        assert out.invariants  # the run's invariants were checked (and held)
    assert overlaps, "no reboot struck a node the upgrade held: the test proves nothing"
    assert lifted == [], "a reboot's repair brought back a node the upgrade still held"
    assert held_binds == [], "a pod was bound to a node the upgrade held"
