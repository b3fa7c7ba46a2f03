"""Collective model against closed forms, nccl-tests' bus-bandwidth factors, and monotonicity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.models.collectives import (
    BUS_FACTOR,
    COLLECTIVES,
    Fabric,
    Placement,
    best_devices,
    collective,
    parse_size,
    placement_cost,
    ring_bw,
    sweep,
)
from gpuinfra.models.topology import builtin

GIB = 1024**3


def test_ring_all_reduce_is_the_closed_form():
    """t = base + 2(n-1) x hop latency + 2(n-1)/n x S / B (NCCL tuning.cc; nccl-tests PERFORMANCE.md)."""
    t = builtin("dgx-a100")
    pl = Placement.make(t)
    n, s = 8, 1 * GIB
    b, _ = ring_bw(t, pl.gpus)
    assert b == pytest.approx(12 * 20.0e9)  # NCCL's SM80 NVLink figure x 12 links, one ring hop per link
    r = collective("all_reduce", s, pl, algo="ring", proto="Simple")
    expect = (8.4 + 2 * (n - 1) * 3.4) * 1e-6 + 2 * (n - 1) / n * s / b
    assert r.time_s == pytest.approx(expect, rel=1e-12)
    assert r.busbw == pytest.approx(r.algbw * 2 * (n - 1) / n)


def test_ring_gather_and_tree_closed_forms():
    t = builtin("dgx-h100")
    pl = Placement.make(t, 4)
    b, _ = ring_bw(t, pl.gpus)
    s = 256 * 1024**2
    ag = collective("all_gather", s, pl, algo="ring", proto="LL128")
    assert ag.time_s == pytest.approx((14.0 + 3 * 1.9) * 1e-6 + 3 / 4 * s / (b * 0.92), rel=1e-12)
    tr = collective("all_reduce", s, pl, algo="tree", proto="Simple")
    assert tr.time_s == pytest.approx((8.4 + 2 * 3 * 4.0) * 1e-6 + 2 * s / (b * 0.92), rel=1e-12)


@pytest.mark.parametrize("op", [c for c in COLLECTIVES if c != "send_recv"])
def test_busbw_factors_are_nccl_tests(op):
    pl = Placement.make(builtin("dgx-h100"), 8)
    r = collective(op, 64 * 1024**2, pl)
    assert r.busbw / r.algbw == pytest.approx(BUS_FACTOR[op](8))
    assert r.algbw == pytest.approx(r.size / r.time_s)


def test_large_messages_reach_the_link_rate():
    """At large sizes ring busbw tends to B: the definition of bus bandwidth."""
    t = builtin("pcie-8x-l40s")
    pl = Placement.make(t)
    b, where = ring_bw(t, pl.gpus)
    assert b == pytest.approx(22e9) and "CPU0-CPU1" in where  # the ring crosses sockets once each way
    r = collective("all_reduce", 64 * GIB, pl, algo="ring", proto="Simple")
    assert r.busbw == pytest.approx(b, rel=1e-3)


def test_nvls_only_where_the_hardware_has_it():
    assert collective("all_reduce", GIB, Placement.make(builtin("dgx-h100")), algo="nvls").algo == "nvls"
    with pytest.raises(UserError, match="cannot run"):
        collective("all_reduce", GIB, Placement.make(builtin("dgx-a100")), algo="nvls")  # Ampere: no NVLS
    with pytest.raises(UserError, match="cannot run"):
        collective("all_gather", GIB, Placement.make(builtin("dgx-h100")), algo="tree")


def test_nvls_traffic_derivation():
    """NVLS all-reduce moves S (n+1)/n each way over the GPU's NVLink bond, at nvlsEfficiency."""
    t = builtin("dgx-h100")
    r = collective("all_reduce", 8 * GIB, Placement.make(t), algo="nvls")
    bw = 18 * 20.6e9 * 0.85
    assert r.time_s == pytest.approx(25e-6 + 8 * GIB * 9 / 8 / bw, rel=1e-12)


def test_auto_is_the_fastest_choice():
    pl = Placement.make(builtin("dgx-h100"), nodes=4)
    for s in (1024, 1024**2, GIB):
        auto = collective("all_reduce", s, pl)
        for a in ("ring", "tree"):
            for p in ("LL", "LL128", "Simple"):
                assert auto.time_s <= collective("all_reduce", s, pl, algo=a, proto=p).time_s + 1e-15
    assert collective("all_reduce", 1024, pl).algo == "tree"  # latency-bound: logarithmic tree
    assert collective("all_reduce", 4 * GIB, pl).algo == "ring"  # bandwidth-bound: ring


def test_multi_node_is_capped_by_the_nics():
    a100 = builtin("dgx-a100")  # 8 x HDR 200 Gb/s at NCCL's 0.96 efficiency = 8 x 24 GB/s
    r = collective("all_reduce", 16 * GIB, Placement.make(a100, nodes=2), algo="ring", proto="Simple")
    assert r.link_bw == pytest.approx(8 * 24e9)
    assert "network" in r.bottleneck
    one_node = collective("all_reduce", 16 * GIB, Placement.make(a100), algo="ring", proto="Simple")
    assert r.busbw < one_node.busbw
    faster = collective("all_reduce", 16 * GIB, Placement.make(a100, nodes=2, fabric=Fabric(nic="ndr")), algo="ring")
    assert faster.time_s < r.time_s


def test_oversubscription_slows_all_to_all_only_past_one_leaf():
    t = builtin("dgx-h100")
    inside = Fabric(nodes_per_leaf=32, oversubscription=4.0)
    a = collective("all_to_all", GIB, Placement.make(t, nodes=16, fabric=inside))
    b = collective("all_to_all", GIB, Placement.make(t, nodes=16))
    assert a.time_s == pytest.approx(b.time_s)
    c = collective("all_to_all", GIB, Placement.make(t, nodes=64, fabric=inside))
    d = collective("all_to_all", GIB, Placement.make(t, nodes=64))
    assert c.time_s > d.time_s and "leaf uplinks" in c.bottleneck


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["dgx-h100", "dgx-a100", "pcie-8x-l40s", "pcie-4x-a100-nvbridge", "workstation"]),
    st.sampled_from(["all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all"]),
    st.integers(1, 4),
)
def test_time_grows_with_size_and_nodes(name, op, nodes):
    t = builtin(name)
    rows = sweep(op, Placement.make(t, nodes=nodes), 1024, 4 * GIB, 8)
    times = [r.time_s for r in rows]
    assert times == sorted(times)
    if op == "all_to_all":
        return  # S is the per-rank buffer: with more ranks each peer's share shrinks, so no monotone law
    more = collective(op, GIB, Placement.make(t, nodes=nodes + 1))
    assert more.time_s >= collective(op, GIB, Placement.make(t, nodes=nodes)).time_s * (1 - 1e-9)


def test_send_recv_uses_the_pair_path():
    br = builtin("pcie-4x-a100-nvbridge")
    nv = collective("send_recv", GIB, Placement.make(br, ["GPU0", "GPU1"]))
    sysp = collective("send_recv", GIB, Placement.make(br, ["GPU1", "GPU2"]))
    assert nv.busbw > 5 * sysp.busbw
    with pytest.raises(UserError, match="2 ranks"):
        collective("send_recv", GIB, Placement.make(br))


def test_best_devices_prefers_nvlink_pairs_and_one_socket():
    br = builtin("pcie-4x-a100-nvbridge")
    devs, bw = best_devices(br, (1, 2, 3), 2)
    assert devs == (2, 3) and bw == pytest.approx(240e9)  # the NVLink-bridged pair, not first-fit's (1, 2)
    l40 = builtin("pcie-8x-l40s")
    devs, _ = best_devices(l40, (3, 4, 6), 2)
    assert devs == (4, 6)  # same socket, not the cross-socket (3, 4)
    assert placement_cost(br, (2, 3)) < placement_cost(br, (1, 2))


def test_sizes_parse_like_nccl_tests():
    assert parse_size("8") == 8 and parse_size("128K") == 128 * 1024 and parse_size("8G") == 8 * GIB
    with pytest.raises(UserError, match="bad size"):
        parse_size("eight")
