"""A user's own `nvidia-smi topo -m` matrix: the CPU, PCIe and NIC assumptions behind its rates are
printed as a built-in node's are, and --cpu states the host CPU.

Hand-computed: the 4x L40S matrix (two sockets, pairs across them are SYS) has its SYS pairs
bottlenecked by the inter-socket link, below the L40S's PCIe Gen4 x16 effective 31.5 x 0.88 = 27.72
GB/s: NCCL's SRP_QPI_BW 22 GB/s by default (Sapphire Rapids), AMD_BW 16 GB/s for an EPYC."""

import json
from pathlib import Path

from tests.clirunner import gi

TOPO = Path(__file__).parents[1] / "fixtures" / "topology"
L40S = TOPO / "4xL40S-pcie-node-sys-2nic.txt"
NO_NICS = TOPO / "8xH100-sxm-nv18-no-nics.txt"


def _sys_bw(*extra):
    r = gi("topo", "show", str(L40S), "--gpu", "L40S", "--json", *extra)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    return {p["bw_gb_s"] for p in d["pairs"] if p["nvidia_smi"] == "SYS"}, d


def test_cpu_option_sets_the_inter_socket_rate():
    bw, d = _sys_bw()
    assert bw == {22.0} and d["cpu_link"] == "srp"
    assert any("assumed" in a and "--cpu" in a for a in d["assumptions"])  # the default is said to be one
    bw, d = _sys_bw("--cpu", "EPYC-9654")
    assert bw == {16.0} and d["cpu_link"] == "amd"
    assert not any("assumed [U]: an `nvidia-smi topo -m` matrix" in a for a in d["assumptions"])
    assert _sys_bw("--cpu", "xeon-8480+")[0] == {22.0}  # Sapphire Rapids, case-insensitive
    # NODE pairs (same socket) do not cross the CPU link: PCIe Gen4 effective 27.72 either way
    assert {p["bw_gb_s"] for p in d["pairs"] if p["nvidia_smi"] == "NODE"} == {27.72}


def test_user_matrix_prints_its_assumptions_and_says_why_no_nics():
    r = gi("topo", "show", str(NO_NICS), "--gpu", "H100-SXM")
    assert r.returncode == 0, r.stderr
    head = r.stdout.split("┏")[0]
    assert "0 NICs (no NIC column in the matrix)" in head and "(ndr)" not in head
    lines = [x for x in " ".join(head.split()).split("assumption: ") if x][1:]
    assert len(lines) == 3  # CPU, PCIe, NICs
    assert "Sapphire Rapids" in lines[0] and "22 GB/s" in lines[0] and "--cpu" in lines[0]
    assert "63.00 GB/s line" in lines[1] and "gpus.csv" in lines[1]  # Gen5 x16 line rate, from the GPU catalog
    assert "no NIC column" in lines[2]


def test_bad_cpu_and_cpu_on_a_builtin_are_refused():
    r = gi("topo", "show", str(L40S), "--gpu", "L40S", "--cpu", "Apple-M2")
    assert r.returncode == 2 and "--cpu" in r.stderr and "EPYC-9654" in r.stderr and "Traceback" not in r.stderr
    r = gi("topo", "show", "dgx-h100", "--cpu", "amd")
    assert r.returncode == 2 and "built-in node" in r.stderr
