from __future__ import annotations

import math

import pytest

from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.workload import Pod, PodTable


def pod(
    name: str,
    t: float = 0.0,
    dur: float = 10.0,
    *,
    gpus: int = 1,
    milli: int = 1000,
    cpu: int = 1000,
    mem: int = 1024,
    models: tuple[str, ...] = (),
    prio: int = 0,
    owner: str = "t",
    delete: float = math.nan,
    job: str = "",
    gang: int = 0,
) -> Pod:
    return Pod(
        name, t, dur, cpu, mem, gpus, milli if gpus else 0, models, prio, "", owner, delete, job or name, gang_size=gang
    )


def cluster(*pools: tuple[str, str | None, int, int, int, int]) -> ClusterState:
    """pools: (name, model, gpus_per_node, cpu_milli, memory_mib, count)"""
    return ClusterState.from_pools([NodePool(n, m, g, c, mem, k) for n, m, g, c, mem, k in pools])


@pytest.fixture
def two_node_cluster() -> ClusterState:
    return cluster(("a", "A100-80GB", 2, 16000, 65536, 1), ("b", "T4", 4, 32000, 131072, 1))


def table(*pods: Pod) -> PodTable:
    return PodTable(list(pods))


FIRST_FIT = Profile()
