"""Every real `nvidia-smi topo -m` matrix in tests/fixtures/topology (copied from shared/data, with
its SOURCE.md) parses, is symmetric, and renders back to a matrix that parses to the same thing."""

from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.topo import parse_topo, rank

FIX = Path(__file__).parents[1] / "fixtures" / "topology"
FILES = sorted(FIX.glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_real_matrix_parses_and_round_trips(path):
    mats = parse_topo(path.read_text(), path.name)
    for m in mats:
        assert m.gpus and all((d, d) in m.links and m.links[(d, d)] == "X" for d in m.devices)
        again = parse_topo(m.render(), "rendered")
        assert len(again) == 1
        r = again[0]
        assert r.devices == m.devices and r.links == m.links and r.affinity == m.affinity
        g = m.graph()
        assert g.number_of_nodes() == len(m.devices)
        assert g.number_of_edges() == len(m.devices) * (len(m.devices) - 1) // 2


def test_known_facts_of_the_matrices():
    h100 = parse_topo((FIX / "8xH100-sxm-nv18-ht-cpu-affinity.txt").read_text(), "x")[0]
    assert {h100.nvlinks(a, b) for a in h100.gpus for b in h100.gpus if a != b} == {18}
    assert h100.affinity["GPU4"]["NUMA Affinity"] == "1"
    # the published copy with run-together columns ("NIC7NIC8", "SYSSYS", "PXBSYS") still parses
    hgx = parse_topo((FIX / "hgx-8xA100-sxm4-80gb-nv12-10nic-pxb.txt").read_text(), "x")[0]
    assert len(hgx.devices) == 18 and hgx.link("GPU6", "NIC7") == "PXB" and hgx.link("GPU6", "NIC8") == "SYS"
    assert hgx.nic_names["NIC0"].startswith("mlx5")
    pairs = parse_topo((FIX / "8xA100-pcie-nv12-bridge-pairs-node-sys.txt").read_text(), "x")[0]
    bridged = {(a, b) for a in pairs.gpus for b in pairs.gpus if a < b and pairs.nvlinks(a, b)}
    assert len(bridged) == 4  # four NVLink-bridged pairs, the rest over PCIe
    two = parse_topo((FIX / "2gpu-nv2-vs-pcie-phb-with-legend.txt").read_text(), "x")
    assert [m.link("GPU0", "GPU1") for m in two] == ["NV2", "PHB"]
    assert rank("NV2") < rank("PIX") < rank("PXB") < rank("PHB") < rank("NODE") < rank("SYS")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("hello\n", "no topology matrix found"),
        ("\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV2\n", "row GPU1 has 1 matrix cells"),
        ("\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV4\t X\n", "not symmetric"),
        ("\tGPU0\tGPU1\nGPU0\tNV2\tNV2\nGPU1\tNV2\t X\n", "does not have X on the diagonal"),
    ],
)
def test_malformed_matrices_are_refused_with_the_line(text, needle):
    with pytest.raises(UserError, match=needle):
        parse_topo(text, "t.txt")
