"""A `nvidia-smi topo -m` matrix is one node: bounded GPU count (models.topomatrix.MAX_GPUS), GPU/NIC
numbers without gaps, affinity columns that are id lists, and a file no larger than a configuration
file (textfile.MAX_FILE_BYTES)."""

from __future__ import annotations

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.topo import MAX_GPUS, parse_topo, read_topo_file
from gpuinfra.textfile import MAX_FILE_BYTES
from tests.clirunner import gi


def matrix(gpus: list[int], *, cpu: dict[int, str] | None = None, numa: dict[int, str] | None = None) -> str:
    """A synthetic all-NVLink matrix of the given GPU numbers, with CPU and NUMA affinity columns."""
    cpu, numa = cpu or {}, numa or {}
    rows = ["\t" + "\t".join(f"GPU{i}" for i in gpus) + "\tCPU Affinity\tNUMA Affinity"]
    for a in gpus:
        cells = "\t".join("X" if a == b else "NV18" for b in gpus)
        rows.append(f"GPU{a}\t{cells}\t{cpu.get(a, '0-51')}\t{numa.get(a, '0')}")
    return "\n".join(rows) + "\n"


def test_the_cap_is_inclusive():
    (m,) = parse_topo(matrix(list(range(MAX_GPUS))), "m.txt")
    assert len(m.gpus) == MAX_GPUS
    with pytest.raises(UserError, match=rf"m.txt:1: the header names {MAX_GPUS + 1} GPUs"):
        parse_topo(matrix(list(range(MAX_GPUS + 1))), "m.txt")


def test_a_huge_header_is_refused_before_any_row_is_read():
    # 5,000 GPUs in the header and no rows: refused at the header, not after building 25M pairs
    text = "\t" + "\t".join(f"GPU{i}" for i in range(5000)) + "\n"
    with pytest.raises(UserError, match="5,000 GPUs"):
        parse_topo(text, "big.txt")


@pytest.mark.parametrize(("gpus", "missing"), [([0, 1, 7], "GPU2"), ([0, 2], "GPU1")])
def test_gaps_in_gpu_numbers_are_refused(gpus, missing):
    with pytest.raises(UserError, match=f"m.txt:1: .*not .*{missing}"):
        parse_topo(matrix(gpus), "m.txt")


@pytest.mark.parametrize(
    ("cpu", "numa", "line", "needle"),
    [
        ({1: "51-0"}, {}, 3, "CPU Affinity '51-0'"),
        ({0: "0-51,x"}, {}, 2, "CPU Affinity '0-51,x'"),
        ({}, {0: "-1"}, 2, "NUMA Affinity '-1'"),
    ],
)
def test_unreadable_affinity_names_the_line(cpu, numa, line, needle):
    with pytest.raises(UserError, match=f"m.txt:{line}: row GPU.: {needle}"):
        parse_topo(matrix([0, 1], cpu=cpu, numa=numa), "m.txt")


def test_real_affinity_forms_are_read():
    (m,) = parse_topo(matrix([0, 1], cpu={0: "0-51,104-155", 1: "N/A"}, numa={0: "0-1", 1: "N/A"}), "m.txt")
    assert m.affinity["GPU0"] == {"CPU Affinity": "0-51,104-155", "NUMA Affinity": "0-1"}


def test_a_file_over_the_configuration_bound_is_refused(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text(matrix([0, 1]) + " " * MAX_FILE_BYTES)
    with pytest.raises(UserError, match="at most 4,194,304 bytes"):
        read_topo_file(big)
    r = gi("topo", "show", big, "--gpu", "H100-SXM")
    assert r.returncode == 2 and "4,194,304" in r.output and "Traceback" not in r.output, r.output[-1500:]
