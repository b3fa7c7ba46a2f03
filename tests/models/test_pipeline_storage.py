"""Storage tiers and the input pipeline: slowest stage bounds, hand-computed rates, caches, bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.models.pipeline import Pipeline, compare, profile, scale_nodes
from gpuinfra.models.storage import cache_hit_ratio, stream_rate, throughput, tier
from gpuinfra.sim.kernel import Rngs


def test_object_store_stream_is_latency_bound_for_small_objects():
    s3 = tier("s3")
    # hand-computed: 110 KB in 0.15 s + 110e3 / 87.5e6 s
    assert stream_rate(s3, 110e3) == pytest.approx(110e3 / (0.15 + 110e3 / 87.5e6))
    assert stream_rate(s3, 1e9) == pytest.approx(1e9 / (0.15 + 1e9 / 87.5e6))
    # more requests in flight hide latency, up to the connection's rate
    assert stream_rate(s3, 110e3, depth=4) == pytest.approx(4 * stream_rate(s3, 110e3))
    assert stream_rate(s3, 256e6, depth=64) == pytest.approx(87.5e6)


def test_throughput_grows_with_concurrency_until_a_ceiling():
    s3 = tier("s3")
    rates = [throughput(s3, 1, n, 256e6, depth=2).per_node for n in (1, 8, 64, 256)]
    assert rates[0] < rates[1] < rates[2] and rates[3] == pytest.approx(8e9)  # instance ceiling (facts 4.2)
    nfs = tier("nfs-flash")
    per = [throughput(nfs, n, 8, 1e9).per_node for n in (1, 10, 100)]
    assert per[2] == pytest.approx(100e9 / 100) and per[0] > per[2]  # the shared aggregate divides


def test_cache_hit_ratios():
    assert cache_hit_ratio("minio", 50e9, 100e9, epoch=1) == 0.0  # cold first epoch
    assert cache_hit_ratio("minio", 50e9, 100e9, epoch=2) == 0.5
    assert cache_hit_ratio("partitioned", 50e9, 100e9, epoch=2, nodes=4) == 1.0
    lru = cache_hit_ratio("lru", 50e9, 100e9, epoch=2, rng=Rngs(1).stream("cache"))
    assert 0.0 < lru < 0.5  # LRU under a random order keeps less than a cache that never evicts
    assert lru == cache_hit_ratio("lru", 50e9, 100e9, epoch=2, rng=Rngs(1).stream("cache"))  # determinism


def test_throughput_is_the_slowest_stage():
    for over in ({}, {"storage": "s3"}, {"decode_on": "gpu"}, {"workers_per_gpu": 12}, {"format": "shards"}):
        p = profile(Pipeline(**over))
        assert p.achieved_per_gpu == pytest.approx(min(p.stages.values()))
        assert p.stages[p.bound_by] == p.achieved_per_gpu
        assert 0.0 <= p.stall_fraction <= 1.0 and 0.0 <= p.gpu_idle_fraction <= 1.0


def test_hand_computed_cpu_stage_and_serialised_stages():
    p = profile(Pipeline(workers_per_gpu=5, cores_per_gpu=12, decode_cpu_s=3e-3, augment_cpu_s=1e-3))
    assert p.stages["decode + augment (CPU workers)"] == pytest.approx(5 / 4e-3)
    s = profile(Pipeline(prefetch_depth=0))
    assert s.achieved_per_gpu == pytest.approx(1 / sum(1 / v for v in s.stages.values()))


def test_redesigns_move_the_bottleneck():
    res = compare(
        Pipeline(storage="s3"), {"shards": {"format": "shards"}, "gpu decode": {"format": "shards", "decode_on": "gpu"}}
    )
    assert res["baseline"].bound_by == "read (storage)"
    assert res["shards"].achieved_per_gpu > res["baseline"].achieved_per_gpu
    assert res["gpu decode"].achieved_per_gpu >= res["shards"].achieved_per_gpu


def test_shared_filesystem_contention_as_nodes_grow():
    curve = scale_nodes(Pipeline(decode_on="gpu"), [1, 16, 64, 96])
    rates = [p.achieved_per_gpu for _, p in curve]
    assert rates[0] >= rates[1] >= rates[2] >= rates[3] and rates[3] < rates[0]
    assert curve[-1][1].read_bound_by == "aggregate"


def test_bad_input_with_the_numbers():
    with pytest.raises(UserError, match=r"0 CPU workers.*2,470 samples/s"):
        profile(Pipeline(workers_per_gpu=0))
    with pytest.raises(UserError, match=r"cannot sustain 8,000 concurrent streams.*4,096"):
        profile(Pipeline(nodes=200))
    with pytest.raises(UserError, match="unknown storage tier"):
        profile(Pipeline(storage="tape"))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 16),
    st.integers(0, 8),
    st.sampled_from(["files", "shards"]),
    st.sampled_from(["cpu", "gpu"]),
    st.sampled_from(["local-nvme", "s3", "nfs-flash", "ebs-gp3"]),
)
def test_any_pipeline_is_bounded_by_its_slowest_stage(workers, prefetch, fmt, dec, storage):
    p = profile(Pipeline(workers_per_gpu=workers, prefetch_depth=prefetch, format=fmt, decode_on=dec, storage=storage))
    assert p.achieved_per_gpu <= min(p.stages.values()) * (1 + 1e-12)
    assert p.achieved_per_gpu <= p.compute_only_per_gpu and math.isfinite(p.idle_gpu_hours_per_day)
