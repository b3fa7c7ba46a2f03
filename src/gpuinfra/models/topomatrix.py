"""`nvidia-smi topo -m` matrices: the matrix type, its parser (including published copies with
run-together columns and terminal escapes), rendering back, and a graph view.

This lives in ``models/`` (pure, no I/O) so that the topology model can build on it; ``io.topo``
re-exports it for readers of files.

A file may hold several matrices (each starts at a header line naming GPU0). Each matrix cell
is one of X, SYS, NODE, PHB, PXB, PIX or NV# (legend in facts/gpu.md 6.1); older drivers print
SOC for what is now SYS (their own legend: "SOC = Connection traversing PCIe as well as the SMP
link between CPU sockets"), read as SYS. After the device columns a row may carry CPU affinity,
NUMA affinity and GPU NUMA ID. A "NIC Legend" maps NIC# to device names (any driver: mlx5_0,
bnxt_re0, irdma0, ...); older outputs name NIC columns by the device itself. Terminal formatting
(ANSI escapes such as ``ESC[4m`` around the header, as ``nvidia-smi`` prints it to a terminal)
is removed first. Cells are found by their vocabulary, not by spacing, so rows published with
columns run together ("SYSSYS", "NIC7NIC8") still parse; a row with a token that is no link code,
or with the wrong number of cells, is an error naming the token and the line.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from gpuinfra.errors import UserError

CELL = re.compile(r"SYS|SOC|NODE|PHB|PXB|PIX|NV\d+|X")
LEGACY = {"SOC": "SYS"}
"""Codes of older drivers and the code they are now (nvidia-smi's own legend in those outputs)."""
_DEV = r"GPU\d+|NIC\d+|(?!NV\d)[A-Za-z][A-Za-z0-9_]*\d"
LABEL = re.compile(r"CPU Affinity|NUMA Affinity|GPU NUMA ID|" + _DEV)
DEVICE = re.compile(r"^(" + _DEV + r")\b")
ANSI = re.compile(r"(?:\x1b|\\e|\\033|\\x1b)?\[[0-9;]*m")
"""Terminal escapes (SGR): the real ESC byte, or its written forms \\e, \\033 and \\x1b."""
CODES = "X, SYS (or legacy SOC), NODE, PHB, PXB, PIX, NV#"
# best (closest) first: NVLink, then PCIe paths by how far they travel (nvidia-smi's legend)
RANK = {"X": 0, "NV": 1, "PIX": 2, "PXB": 3, "PHB": 4, "NODE": 5, "SYS": 6}


def rank(code: str) -> int:
    return RANK["NV"] if code.startswith("NV") else RANK[code]


@dataclass
class TopoMatrix:
    devices: list[str]
    links: dict[tuple[str, str], str]
    affinity: dict[str, dict[str, str]] = field(default_factory=dict)
    """device -> {'CPU Affinity': '0-51,104-155', 'NUMA Affinity': '0', ...}"""
    extra_columns: list[str] = field(default_factory=list)
    nic_names: dict[str, str] = field(default_factory=dict)

    @property
    def gpus(self) -> list[str]:
        return [d for d in self.devices if d.startswith("GPU")]

    def link(self, a: str, b: str) -> str:
        return self.links[(a, b)]

    def nvlinks(self, a: str, b: str) -> int:
        c = self.links[(a, b)]
        return int(c[2:]) if c.startswith("NV") else 0

    def graph(self):
        """networkx Graph: devices as nodes (kind gpu/nic, NUMA), one edge per pair with its code."""
        import networkx as nx

        g = nx.Graph()
        for d in self.devices:
            g.add_node(
                d,
                kind="gpu" if d.startswith("GPU") else "nic",
                numa=self.affinity.get(d, {}).get("NUMA Affinity"),
                name=self.nic_names.get(d, d),
            )
        for (a, b), code in self.links.items():
            if a < b:
                g.add_edge(a, b, code=code, rank=rank(code), nvlinks=self.nvlinks(a, b))
        return g

    def render(self) -> str:
        """The matrix in nvidia-smi's layout (tab separated), legend omitted."""
        head = "\t" + "\t".join(self.devices + self.extra_columns)
        rows = [head]
        for a in self.devices:
            cells = [self.links[(a, b)] for b in self.devices]
            cells += [self.affinity.get(a, {}).get(c, "") for c in self.extra_columns] if a in self.affinity else []
            rows.append(a + "\t" + "\t".join(cells).rstrip())
        out = "\n".join(rows) + "\n"
        if self.nic_names:
            out += "\nNIC Legend:\n\n" + "".join(f"  {k}: {v}\n" for k, v in self.nic_names.items())
        return out


def _bad_token(rest: str) -> str:
    """The first whitespace-separated token of ``rest`` that is not made of link codes."""
    for tok in rest.split():
        if CELL.sub("", tok):
            return tok
    return rest.split()[0] if rest.split() else ""


MAX_NVLINKS = 18
"""The most NVLinks a GPU has, so the most two GPUs can bond (H100 SXM and B200: 18 links per GPU,
NVIDIA H100 and Blackwell datasheets); a larger NV count is a corrupt matrix."""


MAX_GPUS = 64
"""The most GPUs one matrix may name. A ``topo -m`` matrix is one OS node: NVIDIA's NVSwitch
single-node systems are the HGX/DGX 8-GPU baseboards and DGX-2/HGX-2 with 16 GPUs (NVIDIA Fabric
Manager User Guide, "single-node HGX and DGX systems"); a GB200 NVL72 rack is 18 compute trays that
each show nvidia-smi 4 GPUs. 64 leaves 4x the largest for PCIe expansion chassis; a larger matrix
is not one node (and the pair checks grow with its square)."""

MAX_DEVICES = 256
"""The most columns (GPUs plus NICs) one matrix may name: 64 GPUs and 192 NIC ports or virtual
functions; beyond it the file is not one node's ``topo -m``."""

_CPU_LIST = re.compile(r"^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$")


def _check_affinity(col: str, value: str, dev: str, where: str) -> None:
    """``CPU Affinity`` / ``NUMA Affinity``: 'N/A' or a list of ids and ascending ranges
    ('0-51,104-155', '0'); ``GPU NUMA ID``: 'N/A' or a non-negative number."""
    if value == "N/A":
        return
    if col == "GPU NUMA ID":
        ok = value.isdigit()
        expected = "N/A or a NUMA node number (0, 1, ...)"
    else:
        ok = bool(_CPU_LIST.match(value)) and all(
            int(a) <= int(b) for r in value.split(",") if "-" in r for a, b in [r.split("-")]
        )
        expected = "N/A or a list of ids and ascending ranges such as 0-51,104-155"
    if not ok:
        raise UserError(
            f"row {dev}: {col} '{value}' cannot be read",
            where=where,
            expected=expected,
            fix="give the unedited output of `nvidia-smi topo -m`",
        )


def _check_header(devs: list[str], where: str) -> None:
    """One node's devices: at most :data:`MAX_GPUS` GPUs and :data:`MAX_DEVICES` columns; GPU and
    NIC numbers run 0, 1, ... without gaps (nvidia-smi numbers the devices it sees, inside a
    container too)."""
    gpus = [d for d in devs if re.fullmatch(r"GPU\d+", d)]
    if len(gpus) > MAX_GPUS or len(devs) > MAX_DEVICES:
        raise UserError(
            f"the header names {len(gpus):,} GPUs and {len(devs) - len(gpus):,} other devices",
            where=where,
            expected=f"one node's `nvidia-smi topo -m`: at most {MAX_GPUS} GPUs and {MAX_DEVICES} columns "
            "(the largest single node, DGX-2/HGX-2, has 16 GPUs)",
            fix="give one node's matrix per file section; a rack or cluster is several nodes",
        )
    for prefix in ("GPU", "NIC"):
        nums = sorted(int(d[len(prefix) :]) for d in devs if re.fullmatch(prefix + r"\d+", d))
        if nums and nums != list(range(len(nums))):
            gaps = [f"{prefix}{k}" for k in range(max(nums) + 1) if k not in set(nums)]
            raise UserError(
                f"the header names {len(nums)} {prefix}s but not "
                + (", ".join(gaps[:5]) + (" ..." if len(gaps) > 5 else "")),
                where=where,
                expected=f"{prefix}0, {prefix}1, ... without gaps, as nvidia-smi numbers the devices it sees",
                fix="give the unedited output of `nvidia-smi topo -m`",
            )


def parse_topo(text: str, label: str) -> list[TopoMatrix]:
    """Every ``nvidia-smi topo -m`` matrix in ``text``. Raises UserError naming ``label``, the line
    and the offending token for a row that cannot be read, a header above :data:`MAX_GPUS` GPUs or
    with gaps in its GPU/NIC numbers, an affinity value that is no id list (``51-0``, ``-1``), and
    for a file with no matrix."""
    lines = text.splitlines()
    mats: list[TopoMatrix] = []
    cur: TopoMatrix | None = None
    cols: list[str] = []
    nic_names: dict[str, str] = {}
    for n, raw in enumerate(lines, start=1):
        line = ANSI.sub("", raw).rstrip()
        m_nic = re.match(r"^\s*(NIC\d+):\s*(\S+)\s*$", line)
        if m_nic:
            nic_names[m_nic.group(1)] = m_nic.group(2)
            continue
        if "GPU0" in line and not LABEL.sub("", line).strip():  # a header: nothing but column labels
            labels = LABEL.findall(line)
            devs = [x for x in labels if DEVICE.match(x)]
            dup = sorted(d for d, k in Counter(devs).items() if k > 1)
            if dup:
                raise UserError(
                    f"the header names {', '.join(dup)} more than once",
                    where=f"{label}:{n}",
                    expected="each device once (GPU0 GPU1 ... NIC0 ...), as nvidia-smi prints it",
                )
            _check_header(devs, f"{label}:{n}")
            cur = TopoMatrix(devices=devs, links={}, extra_columns=[x for x in labels if not DEVICE.match(x)])
            cols = devs
            mats.append(cur)
            continue
        m_dev = DEVICE.match(line.strip())
        if cur is None or not m_dev or m_dev.group(1) not in cols:
            continue
        dev = m_dev.group(1)
        rest = line.strip()[len(dev) :]
        cells, pos = [], 0
        stopped_at = None
        for m in CELL.finditer(rest):
            if len(cells) == len(cols):
                break
            if rest[pos : m.start()].strip():
                stopped_at = pos
                break  # something that is not a cell: the affinity columns start here
            cells.append(LEGACY.get(m.group(0), m.group(0)))
            pos = m.end()
        if len(cells) != len(cols):
            bad = _bad_token(rest[stopped_at if stopped_at is not None else pos :])
            raise UserError(
                (f"row {dev}: '{bad}' is not a link code; " if bad else f"row {dev}: ")
                + f"{len(cells)} matrix cells read, the header names {len(cols)} devices",
                where=f"{label}:{n}",
                expected=f"one of {CODES} per device",
            )
        big = [c for c in cells if c.startswith("NV") and not 1 <= int(c[2:]) <= MAX_NVLINKS]
        if big:
            raise UserError(
                f"row {dev}: '{big[0]}' is not a possible NVLink count",
                where=f"{label}:{n}",
                expected=f"NV1 .. NV{MAX_NVLINKS} (the links bonded between two GPUs; 18 on H100/B200 SXM)",
            )
        if cells[cols.index(dev)] != "X":
            raise UserError(f"row {dev} does not have X on the diagonal", where=f"{label}:{n}")
        for b, c in zip(cols, cells):
            cur.links[(dev, b)] = c
        tail = rest[pos:].split()
        if tail and cur.extra_columns:
            # CPU affinity is one token; NUMA affinity one token; GPU NUMA ID one token (N/A or a number)
            cur.affinity[dev] = dict(zip(cur.extra_columns, tail))
            for col, value in cur.affinity[dev].items():
                _check_affinity(col, value, dev, f"{label}:{n}")
    if not mats:
        raise UserError(
            "no topology matrix found",
            where=label,
            expected="the output of `nvidia-smi topo -m` (a header line with GPU0 GPU1 ...)",
        )
    for mt in mats:
        missing = [d for d in mt.devices if (d, d) not in mt.links]
        if missing:
            raise UserError(f"matrix rows missing for {', '.join(missing)}", where=label)
        for a in mt.devices:
            for b in mt.devices:
                if mt.links[(a, b)] != mt.links[(b, a)]:
                    raise UserError(
                        f"matrix is not symmetric: {a}-{b} is {mt.links[(a, b)]} but {b}-{a} is {mt.links[(b, a)]}",
                        where=label,
                    )
        mt.nic_names = {k: v for k, v in nic_names.items() if k in mt.devices}
    return mats
