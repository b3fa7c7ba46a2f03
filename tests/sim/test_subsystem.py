"""The subsystem contract: a new subsystem plugs in by registration alone, and every run checks
the invariants. The maintenance subsystem below is written the way a section would write one."""

from __future__ import annotations

import numpy as np
import pytest

from gpuinfra.sim import subsystem as ss
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.kernel import PRIO_RELEASE, Event, Rngs
from gpuinfra.sim.subsystem import Subsystem, View, register, route
from tests.conftest import cluster, pod, table


class Maintenance(Subsystem):
    """Takes node 1's GPUs out of service from t=100 s to t=400 s (it is idle then)."""

    name = "maintenance"

    def handlers(self):
        return {"mt_down": self.down, "mt_up": self.up}

    def first_events(self, t0):
        return [Event(100.0, PRIO_RELEASE, "mt_down"), Event(400.0, PRIO_RELEASE, "mt_up")]

    def down(self, ev):
        c = self.view.cluster
        for d in range(int(c.gpu_count[1])):
            c.set_device_available(1, d, False)
        self.view.runtime.mark_dirty(1)
        self.view.runtime.touch(ev.t_s)
        self.view.log.append({"t_s": ev.t_s, "what": "down", "draw": float(self.view.rng.random())})
        return []

    def up(self, ev):
        c = self.view.cluster
        for d in range(int(c.gpu_count[1])):
            c.set_device_available(1, d, True)
        rt = self.view.runtime
        rt.mark_dirty(1)
        out = rt.retry_nodes([1], ev.t_s)
        rt.touch(ev.t_s)
        return out

    def summary(self):
        return {"log": self.view.log}


@pytest.fixture
def maintenance_registered():
    @register("maintenance")
    def _factory(cfg, make_view):
        return Maintenance(make_view("maintenance")) if cfg.options.get("maintenance") else None

    yield
    ss.REGISTRY[:] = [(n, f) for n, f in ss.REGISTRY if n != "maintenance"]


def _cluster():
    return cluster(("n", "A100-80GB", 4, 64000, 65536, 2))


def _pods():
    return table(pod("a", 0, 1000, gpus=4), pod("b", 150, 100, gpus=4))


def test_a_registered_subsystem_runs_without_engine_changes(maintenance_registered):
    r = ReplayEngine(
        _cluster(), _pods(), Profile(), 1, subsystem_options={"maintenance": True}, sample_interval_s=50
    ).run()
    # a takes node 0 at t=0; node 1 is down from 100 s to 400 s, so b (submitted at 150 s)
    # waits for it: by hand, b starts at 400 s, and 4 GPUs x 300 s = 1/3 GPU-hour is unavailable
    assert r.invariants.ok
    assert r.invariants.unavailable_gpu_hours == pytest.approx(4 * 300 / 3600)
    assert list(r.start_s) == [0.0, 400.0]
    assert [e["what"] for e in r.subsystems["maintenance"]["log"]] == ["down"]


def test_subsystem_stream_is_seeded_by_name(maintenance_registered):
    draws = []
    for _ in range(2):
        r = ReplayEngine(_cluster(), table(), Profile(), 5, subsystem_options={"maintenance": True}).run()
        draws.append(r.subsystems["maintenance"]["log"][0]["draw"])
    assert draws[0] == draws[1] == float(Rngs(5).stream("maintenance").random())


def test_an_event_kind_claimed_twice_is_refused():
    class A(Subsystem):
        name = "a"

        def handlers(self):
            return {"fault": lambda ev: []}

    with pytest.raises(TypeError, match="already handled"):
        route([A(None)], {"fault": lambda ev: []})


def test_historical_streams_keep_their_spawn_keys():
    r = Rngs(42)
    child = np.random.SeedSequence(42).spawn(5)[2]
    assert r["faults"].random() == np.random.Generator(np.random.PCG64(child)).random()
    assert Rngs(42).stream("serving").random() != Rngs(42).stream("storage").random()
    with pytest.raises(ValueError):
        Rngs(-1)


def test_view_is_narrow():
    # stream: other named streams of the run's seed (Rngs.stream), e.g. spot's per-reclaim replacement
    # draws kept apart from its reclaim draws; no generator of a subsystem's own
    assert set(View.__dataclass_fields__) == {"clock", "cluster", "runtime", "rng", "recorder", "log", "stream"}
