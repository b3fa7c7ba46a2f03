import pytest

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
