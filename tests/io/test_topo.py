"""Every real `nvidia-smi topo -m` matrix in tests/fixtures/topology (copied from shared/data, with
its SOURCE.md) parses, is symmetric, and renders back to a matrix that parses to the same thing."""

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
        ("\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV2\n", "row GPU1: 1 matrix cells read"),
        ("\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV4\t X\n", "not symmetric"),
        ("\tGPU0\tGPU1\nGPU0\tNV2\tNV2\nGPU1\tNV2\t X\n", "does not have X on the diagonal"),
    ],
)
def test_malformed_matrices_are_refused_with_the_line(text, needle):
    with pytest.raises(UserError, match=needle):
        parse_topo(text, "t.txt")


def test_legacy_soc_is_sys_and_device_named_columns():
    m = parse_topo((FIX / "tf-gdr-4gpu-phb-soc-mlx4.txt").read_text(), "x")[0]
    assert m.devices == ["GPU0", "GPU1", "GPU2", "GPU3", "mlx4_0"]
    assert m.link("GPU0", "GPU2") == "SYS" and m.link("GPU2", "mlx4_0") == "PHB"
    p40 = parse_topo((FIX / "p40-8gpu-pix-pxb-soc-1nic.txt").read_text(), "x")[0]
    assert {p40.link(g, "mlx5_0") for g in p40.gpus} == {"SYS"}


def test_nic_legend_of_any_driver():
    m = parse_topo((FIX / "gb10-1gpu-4nic-rocep-node.txt").read_text(), "x")[0]
    assert m.nic_names == {"NIC0": "rocep1s0f0", "NIC1": "rocep1s0f1", "NIC2": "roceP2p1s0f0", "NIC3": "roceP2p1s0f1"}
    assert m.affinity["GPU0"] == {"CPU Affinity": "0-19", "NUMA Affinity": "0", "GPU NUMA ID": "N/A"}
    legend = "\tGPU0\tNIC0\nGPU0\t X \tPIX\nNIC0\tPIX\t X \n\nNIC Legend:\n\n  NIC0: bnxt_re0\n"
    assert parse_topo(legend, "x")[0].nic_names == {"NIC0": "bnxt_re0"}


def test_header_with_terminal_escapes():
    # the header as nvidia-smi prints it to a terminal (issue 14): underline on, off
    text = "\t\x1b[4mGPU0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\nGPU0\t X \t0-63\t0\t\tN/A\n"
    m = parse_topo(text, "x")[0]
    assert m.devices == ["GPU0"] and m.affinity["GPU0"]["NUMA Affinity"] == "0"
    # and the same escapes written out, as some pastes carry them
    m2 = parse_topo(text.replace("\x1b", "\\e"), "x")[0]
    assert m2.devices == ["GPU0"]
    h100 = (FIX / "hgx-8xH100-sxm-nv18-8nic-pix.txt").read_text().splitlines()
    hdr = next(i for i, ln in enumerate(h100) if "GPU0" in ln)
    h100[hdr] = "\x1b[4m" + h100[hdr] + "\x1b[0m"
    assert parse_topo("\n".join(h100), "x")[0].link("GPU0", "GPU7") == "NV18"


def test_unknown_token_is_named_with_its_line():
    text = "\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNVX\t X\n"
    with pytest.raises(UserError) as e:
        parse_topo(text, "t.txt")
    assert "t.txt:3" in str(e.value) and "'NVX' is not a link code" in str(e.value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "\tGPU0\tGPU1\tNIC0",
                    "GPU0",
                    "GPU1",
                    "NIC0",
                    "mlx5_0",
                    "\t",
                    " X ",
                    "NV2",
                    "SOC",
                    "SYS",
                    "PIX",
                    "\n",
                    "\x1b[4m",
                    "NIC Legend:",
                    "  NIC0: rocep1s0",
                    "CPU Affinity",
                    "0-7",
                ]
            ),
            st.text(max_size=5),
        ),
        max_size=40,
    )
)
def test_parser_never_crashes(parts):
    with contextlib.suppress(UserError):
        for m in parse_topo("".join(parts), "fuzz"):
            m.render()
