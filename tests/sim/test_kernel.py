import numpy as np
import pytest

from gpuinfra.sim.kernel import Event, Kernel, Rngs


def test_events_pop_by_time_then_priority_then_insertion():
    seen = []
    k = Kernel({"x": lambda ev: seen.append((ev.t_s, ev.priority, ev.ref))})
    k.schedule(Event(5.0, 1, "x", 0))
    k.schedule(Event(1.0, 9, "x", 1))
    k.schedule(Event(5.0, 0, "x", 2))
    k.schedule(Event(5.0, 1, "x", 3))
    k.run()
    assert seen == [(1.0, 9, 1), (5.0, 0, 2), (5.0, 1, 0), (5.0, 1, 3)]
    assert k.events_processed == 4


def test_handlers_return_follow_up_events_and_until_stops():
    times = []

    def tick(ev):
        times.append(ev.t_s)
        return [Event(ev.t_s + 2.0, 0, "tick")]

    k = Kernel({"tick": tick})
    k.schedule(Event(0.0, 0, "tick"))
    k.run(until_s=7.0)
    assert times == [0.0, 2.0, 4.0, 6.0]
    assert k.now_s == 7.0
    assert len(k) == 1  # the event at 8.0 is still pending: the run can be resumed


def test_scheduling_into_the_past_is_a_bug():
    k = Kernel({"x": lambda ev: [Event(ev.t_s - 1, 0, "x")]})
    k.schedule(Event(3.0, 0, "x"))
    with pytest.raises(RuntimeError, match="past"):
        k.run()


def test_snapshot_is_plain_data():
    import pickle

    k = Kernel({"x": lambda ev: None})
    k.schedule(Event(1.0, 0, "x", 3))
    snap = k.snapshot()
    assert pickle.loads(pickle.dumps(snap)) == snap


def test_rngs_are_deterministic_and_independent_per_subsystem():
    a, b = Rngs(42), Rngs(42)
    assert np.array_equal(a["workload"].random(5), b["workload"].random(5))
    # drawing from one subsystem does not shift another's stream
    c = Rngs(42)
    c["scheduler"].random(1000)
    assert np.array_equal(Rngs(42)["faults"].random(3), c["faults"].random(3))
    assert not np.array_equal(Rngs(42)["workload"].random(3), Rngs(43)["workload"].random(3))
