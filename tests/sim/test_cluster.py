import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.sim.cluster import Allocation, OverCommitError
from tests.conftest import cluster


def test_devices_have_identity():
    c = cluster(("a", "A100-80GB", 2, 16000, 65536, 2), ("cpu", None, 0, 8000, 8192, 1))
    devs = c.devices()
    assert [(d.node, d.index, d.model) for d in devs] == [
        ("a-0000", 0, "A100-80GB"),
        ("a-0000", 1, "A100-80GB"),
        ("a-0001", 0, "A100-80GB"),
        ("a-0001", 1, "A100-80GB"),
    ]
    assert len({d.uid for d in devs}) == 4
    assert c.n_gpus == 4 and c.n_nodes == 3


def test_allocate_release_restore_state_exactly(two_node_cluster):
    c = two_node_cluster
    before = (c.cpu_free.copy(), c.mem_free.copy(), c.dev_free.copy(), c.alloc_milli.copy(), c.busy_devices.copy())
    a = Allocation(0, 1, (0,), 300, 1000, 100)
    b = Allocation(1, 1, (0, 2), 1000 - 300, 500, 100)  # 700 on device 0 and 700 on device 2
    c.allocate(a)
    c.allocate(b)
    assert c.dev_free[1, 0] == 0 and c.dev_free[1, 2] == 300
    assert c.busy_devices[c.models.index("T4")] == 2
    assert c.alloc_milli[c.models.index("T4")] == 300 + 1400
    c.release(b)
    c.release(a)
    after = (c.cpu_free, c.mem_free, c.dev_free, c.alloc_milli, c.busy_devices)
    for x, y in zip(before, after):
        assert (x == y).all()


def test_overcommit_is_refused(two_node_cluster):
    c = two_node_cluster
    c.allocate(Allocation(0, 0, (0,), 600, 0, 0))
    with pytest.raises(OverCommitError):
        c.allocate(Allocation(1, 0, (0,), 500, 0, 0))
    with pytest.raises(OverCommitError):
        c.allocate(Allocation(2, 0, (), 0, 16001, 0))
    with pytest.raises(OverCommitError):
        c.release(Allocation(3, 0, (1,), 1000, 0, 0))


def test_unavailable_device_takes_no_pods_and_is_accounted(two_node_cluster):
    c = two_node_cluster
    c.set_device_available(1, 3, False)
    assert c.dev_free[1, 3] == -1
    assert c.unavail_milli[c.models.index("T4")] == 1000
    with pytest.raises(OverCommitError):
        c.allocate(Allocation(0, 1, (3,), 100, 0, 0))
    c.allocate(Allocation(0, 1, (2,), 100, 0, 0))
    with pytest.raises(OverCommitError):
        c.set_device_available(1, 2, False)  # has a pod: the failures layer must evict first
    c.set_device_available(1, 3, True)
    assert c.unavail_milli.sum() == 0 and c.dev_free[1, 3] == 1000


def test_node_gpu_aggregates_track_the_devices(two_node_cluster):
    import numpy as np

    c = two_node_cluster
    c.allocate(Allocation(0, 1, (0, 1), 300, 0, 0))
    c.set_device_available(1, 3, False)
    c.allocate(Allocation(1, 0, (1,), 1000, 0, 0))
    assert (c.node_gpu_free == np.where(c.dev_free > 0, c.dev_free, 0).sum(axis=1)).all()
    assert (c.node_gpu_cap == c.dev_available.sum(axis=1) * 1000).all()


def test_node_holds_are_counted_per_owner(two_node_cluster):
    # a reboot (faults) that ends while an upgrade still has the node cordoned leaves it cordoned
    c = two_node_cluster
    c.set_node_up(0, False, "upgrade")
    c.set_node_up(0, False, "faults")
    c.set_node_up(0, True, "faults")
    assert not c.node_up[0] and c.down_owners(0) == {"upgrade": 1}
    c.set_node_up(0, True, "upgrade")
    assert c.node_up[0] and c.down_owners(0) == {}
    # the same owner twice needs two releases
    c.set_node_up(1, False, "faults")
    c.set_node_up(1, False, "faults")
    c.set_node_up(1, True, "faults")
    assert not c.node_up[1]
    c.set_node_up(1, True, "faults")
    assert c.node_up[1]
    assert c.state_key[1][3] is True  # the class key follows


def test_device_holds_are_counted_per_owner_and_accounted_once(two_node_cluster):
    c = two_node_cluster
    unav0 = int(c.unavail_milli.sum())
    c.set_device_available(0, 1, False, "faults")
    c.set_device_available(0, 1, False, "spot")
    assert int(c.unavail_milli.sum()) == unav0 + 1000  # one device out, however many hold it
    c.set_device_available(0, 1, True, "faults")
    assert not c.dev_available[0, 1] and c.dev_free[0, 1] == -1
    c.set_device_available(0, 1, True, "spot")
    assert c.dev_available[0, 1] and c.dev_free[0, 1] == 1000 and int(c.unavail_milli.sum()) == unav0


def test_an_unpaired_release_or_taking_a_busy_device_is_a_bug(two_node_cluster):
    c = two_node_cluster
    with pytest.raises(OverCommitError, match="holds it down nowhere"):
        c.set_node_up(0, True, "spot")
    c.set_node_up(0, False, "upgrade")
    with pytest.raises(OverCommitError, match="'spot'"):
        c.set_node_up(0, True, "spot")  # another owner's hold is not this one's
    c.allocate(Allocation(0, 1, (0,), 1000, 0, 0))
    with pytest.raises(OverCommitError, match="allocations"):
        c.set_device_available(1, 0, False, "faults")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["faults", "spot", "upgrade"]), st.booleans()), max_size=40))
def test_holds_follow_a_reference_model(ops):
    # reference: per owner a count; the node is up and the device in service iff every count is 0;
    # a release without a hold of that owner is refused and changes nothing
    from tests.conftest import cluster as mk

    c = mk(("a", "T4", 2, 8000, 8192, 1))
    ref = {"faults": 0, "spot": 0, "upgrade": 0}
    unav0 = int(c.unavail_milli.sum())
    for owner, take in ops:
        if not take and ref[owner] == 0:
            with pytest.raises(OverCommitError):
                c.set_node_up(0, True, owner)
            with pytest.raises(OverCommitError):
                c.set_device_available(0, 1, True, owner)
            continue
        ref[owner] += 1 if take else -1
        c.set_node_up(0, not take, owner)
        c.set_device_available(0, 1, not take, owner)
        down = any(ref.values())
        assert bool(c.node_up[0]) is not down and bool(c.dev_available[0, 1]) is not down
        assert int(c.unavail_milli.sum()) == unav0 + (1000 if down else 0)
        assert c.down_owners(0) == {k: v for k, v in ref.items() if v}
        assert c.state_key[0] == c._key_of(0)
