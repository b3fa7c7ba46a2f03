"""Topology graphs from real matrices: round trips, paths, P2P/GPUDirect rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.topo import parse_topo
from gpuinfra.models.topology import BUILTINS, builtin, from_matrix, node_topology

FIX = Path(__file__).parents[1] / "fixtures" / "topology"
FILES = sorted(FIX.glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_graph_renders_back_the_same_matrix(path):
    """The PCIe tree and NVLink fabric recovered from a real matrix print the same codes for
    every pair of devices (GPUs and NICs)."""
    for m in parse_topo(path.read_text(), path.name):
        t = from_matrix(m, "H100-SXM")
        r = t.matrix()
        assert set(r.devices) == set(m.devices)
        for a in m.devices:
            for b in m.devices:
                assert r.link(a, b) == m.link(a, b), (a, b)


def test_nvswitch_recognised_only_when_links_exceed_one_gpu():
    m8 = parse_topo((FIX / "8xH100-sxm-nv18-no-nics.txt").read_text(), "x")[0]
    assert from_matrix(m8, "H100-SXM").has_nvswitch  # 18 x 7 links > 18 per GPU
    m4 = parse_topo((FIX / "4xA100-sxm-nv4-4nic-pxb.txt").read_text(), "x")[0]
    t4 = from_matrix(m4, "A100-80GB")
    assert not t4.has_nvswitch  # 4 x 3 = 12 = an A100's links: a direct mesh
    assert t4.graph.edges["GPU0", "GPU1"]["links"] == 4


@pytest.mark.parametrize("name", list(BUILTINS))
def test_builtins_build_and_carry_sources(name):
    t = builtin(name)
    assert t.source and t.gpus
    assert len(t.gpus) in (4, 5, 8)
    assert t.nics, "every built-in node can reach the network"


def test_link_rates_follow_the_documented_constants():
    h = builtin("dgx-h100")
    e = h.graph.edges["GPU0", "NVSwitch"]
    assert e["bw_line"] == pytest.approx(18 * 25e9)  # NVLink 4: 18 links x 25 GB/s one way
    assert e["bw"] == pytest.approx(18 * 20.6e9)  # NCCL topo.h SM90 per-link figure
    b = builtin("hgx-b200").graph.edges["GPU0", "NVSwitch"]
    assert b["bw_line"] == pytest.approx(18 * 50e9) and b["bw"] == pytest.approx(18 * 40.1e9)
    pcie = builtin("pcie-8x-l40s").path("GPU0", "GPU1")
    assert pcie.bw_line == pytest.approx(31.5e9) and pcie.bw == pytest.approx(31.5e9 * 0.88)  # Gen4 x16


def test_p2p_and_gdr_rules():
    l40 = builtin("pcie-8x-l40s")
    assert l40.path("GPU0", "GPU1").nvidia_smi == "PIX" and l40.path("GPU0", "GPU1").p2p
    assert l40.path("GPU0", "GPU2").nccl == "PXB" and l40.path("GPU0", "GPU2").p2p
    sys_path = l40.path("GPU0", "GPU4")
    assert sys_path.nccl == "SYS" and not sys_path.p2p
    assert sys_path.bw == pytest.approx(22e9)  # NCCL SRP_QPI_BW: the inter-socket link is the bottleneck
    h = builtin("dgx-h100")
    assert h.path("GPU0", "GPU7").nccl == "NVL" and h.path("GPU0", "GPU7").p2p
    assert h.closest_nic("GPU0") == "NIC0" and h.gdr("GPU0", "NIC0")  # PIX
    assert not h.gdr("GPU0", "NIC4")  # SYS
    br = builtin("pcie-4x-a100-nvbridge")
    assert br.path("GPU0", "GPU1").nvidia_smi == "NV12"
    assert br.path("GPU1", "GPU2").nvidia_smi == "SYS"
    assert not br.gdr("GPU0", br.closest_nic("GPU0"))  # NIC behind the host bridge: no GPUDirect RDMA


def test_amd_two_gpu_exception():
    m = parse_topo((FIX / "2gpu-nv2-vs-pcie-phb-with-legend.txt").read_text(), "x")[1]
    assert m.link("GPU0", "GPU1") == "PHB"
    assert not from_matrix(m, "A100-80GB", cpu="srp").path("GPU0", "GPU1").p2p
    assert from_matrix(m, "A100-80GB", cpu="amd").path("GPU0", "GPU1").p2p  # NCCL: AMD, <= 2 GPUs


devices = st.sampled_from(list(BUILTINS)).flatmap(
    lambda n: st.tuples(
        st.just(n), st.sampled_from(builtin(n).gpus + builtin(n).nics), st.sampled_from(builtin(n).gpus)
    )
)


@settings(max_examples=150, deadline=None)
@given(devices)
def test_paths_symmetric_and_never_faster_than_their_slowest_link(case):
    name, a, b = case
    t = builtin(name)
    p, q = t.path(a, b), t.path(b, a)
    assert p.bw == pytest.approx(q.bw) and p.nvidia_smi == q.nvidia_smi and p.p2p == q.p2p
    if a == b:
        return
    edges = list(zip(p.hops, p.hops[1:]))
    assert p.bw == pytest.approx(min(t.graph.edges[e]["bw"] for e in edges))
    assert p.bw <= p.bw_line
    assert all(p.bw <= t.graph.edges[e]["bw"] + 1e-6 for e in edges)


def test_errors_name_what_was_wrong():
    with pytest.raises(UserError, match="unknown node topology 'dgx-h1000'.*dgx-h100"):
        builtin("dgx-h1000")
    with pytest.raises(UserError, match="no device GPU9"):
        builtin("dgx-h100").path("GPU0", "GPU9")
    m = parse_topo((FIX / "8xH100-sxm-nv18-no-nics.txt").read_text(), "x")[0]
    with pytest.raises(UserError, match="unknown NIC type"):
        from_matrix(m, "H100-SXM", nic="ib9000")


def test_node_topology_for_scheduler():
    assert node_topology("H100-SXM", 8).name == "dgx-h100"
    assert node_topology("A100-80GB", 4).name == "pcie-4x-a100-nvbridge"
    assert node_topology("V100M16", 8) is None  # no built-in wiring: one flat domain
    assert node_topology("nonsense", 8) is None
