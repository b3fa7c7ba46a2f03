"""Node topology as a graph: GPUs, NVLink and NVSwitch, PCIe switches, host bridges, CPU sockets
(NUMA nodes) and NICs, with a bandwidth and a latency on every link.

A :class:`Topology` is built from an `nvidia-smi topo -m` matrix (:func:`from_matrix`), so the
built-in nodes are real published matrices (catalog/data/topology, SOURCE.md) plus the GPU model,
CPU interconnect and NIC type that set the link rates. The PCIe tree is recovered from the codes:
devices joined by PIX share a leaf switch, by PXB an upper switch, by PHB a host bridge, by NODE a
CPU (NUMA node), and SYS crosses the inter-socket link. NV# is a direct NVLink bond of # links;
when every GPU pair shows the same NV# and # x (GPUs - 1) exceeds the NVLink links one GPU has,
the links must go to an NVSwitch fabric, and the GPU connects to it with all # links.

Rates, unidirectional, bytes/s; each constant carries its source (facts/gpu.md sections 1.4, 6, 7):
- NVLink line rate per link: 25 GB/s (NVLink 2-4), 50 GB/s (NVLink 5) [S, stas00 network/README].
  NCCL's planning rate per link (src/graph/topo.h): SM70 20.0, SM80 20.0, SM90 20.6, SM100 40.1
  GB/s [P]: the effective rate the collective model uses.
- PCIe x16 line rate: Gen3 15.75, Gen4 31.5, Gen5 63 GB/s [S]; effective = 0.88 x line, the
  measured H2D 55.4 of 63 GB/s on an H200 (facts 1.4) [D].
- CPU-to-CPU (the SYS hop): NCCL's constants AMD_BW 16, SKL_QPI_BW 10, SRP_QPI_BW 22,
  ERP_QPI_BW 40 GB/s [P] (they are NCCL's effective figures; line = effective here).
- NICs: InfiniBand NDR 400 Gb/s, HDR 200 Gb/s per NIC (line rate, facts 7.2); RoCE 400 GbE and
  200 GbE; effective = 0.96 x line, NCCL's NET_BW of 12 GB/s for a 100 Gb/s (12.5 GB/s) NIC [D].
- Latency of one hop: NCCL's hardware latency per step for the LL protocol (tuning.cc): NVLink
  0.6 us, PCI 1.0 us, NET 2.7 us (ring) [P]. The collective model uses the per-protocol table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import networkx as nx

from gpuinfra.catalog.gpus import GpuModel, gpu_model
from gpuinfra.catalog.topologies import BuiltinSpec, builtin_specs
from gpuinfra.errors import UserError, did_you_mean
from gpuinfra.models.topomatrix import TopoMatrix, parse_topo, rank

GB = 1e9
NVLINK_LINE_PER_LINK = {2: 25 * GB, 3: 25 * GB, 4: 25 * GB, 5: 50 * GB}
"""NVLink per-link unidirectional line rate by generation (facts/gpu.md 1.4, stas00) [S]."""
NVLINK_LINKS_PER_GPU = {2: 6, 3: 12, 4: 18, 5: 18}
NCCL_NVLINK_PER_LINK = {
    "Volta": 20.0 * GB,
    "Ampere": 20.0 * GB,
    "Ada": 12.0 * GB,
    "Hopper": 20.6 * GB,
    "Blackwell": 40.1 * GB,
}
"""NCCL src/graph/topo.h per-link NVLink bandwidth by SM (SM70/80 20.0, SM86/89 12.0, SM90 20.6, SM100 40.1) [P]."""
PCIE_LINE_X16 = {3: 15.75 * GB, 4: 31.5 * GB, 5: 63.0 * GB, 6: 121.0 * GB}
PCIE_EFFICIENCY = 0.88
"""Measured H2D 55.4 GB/s over 63 GB/s Gen5 line rate on an H200 (facts/gpu.md 1.4) [D]."""
CPU_LINK = {"amd": 16 * GB, "skl": 10 * GB, "srp": 22 * GB, "erp": 40 * GB}
"""NCCL topo.h: AMD_BW, SKL_QPI_BW, SRP_QPI_BW (Sapphire Rapids), ERP_QPI_BW (Emerald Rapids) [P]."""
CPU_CLASS_NAME = {
    "amd": "AMD EPYC (NCCL AMD_BW)",
    "skl": "Intel Skylake-class Xeon (NCCL SKL_QPI_BW)",
    "srp": "Intel Sapphire Rapids (NCCL SRP_QPI_BW)",
    "erp": "Intel Emerald Rapids (NCCL ERP_QPI_BW)",
}
"""What each of NCCL's inter-socket classes stands for (NCCL src/graph/topo.h constants) [P]."""
CPU_MODEL_CLASS = {"EPYC-9654": "amd", "Xeon-8480+": "srp"}
"""The CPU catalog's server models (catalog/data/cpus.csv) -> NCCL's inter-socket class: NCCL uses AMD_BW for
every AMD CPU; the Xeon Platinum 8480+ is a 4th-generation Xeon Scalable, Sapphire Rapids (Intel ARK) [P].
The catalog's laptop CPU (Apple-M2) is one socket with no NCCL class."""
NIC_NAME = {
    "ndr": "InfiniBand NDR 400 Gb/s",
    "hdr": "InfiniBand HDR 200 Gb/s",
    "roce400": "RoCE 400 GbE",
    "roce200": "RoCE 200 GbE",
    "eth100": "Ethernet 100 GbE",
}
NIC_LINE = {"ndr": 400e9 / 8, "hdr": 200e9 / 8, "roce400": 400e9 / 8, "roce200": 200e9 / 8, "eth100": 100e9 / 8}
NIC_EFFICIENCY = 12.0 / 12.5
"""NCCL NET_BW = 12 GB/s for a 100 Gb/s NIC, over its 12.5 GB/s line rate (facts/gpu.md 1.4) [D]."""
HOP_LATENCY_S = {"nvlink": 0.6e-6, "pcie": 1.0e-6, "cpu": 1.0e-6, "net": 2.7e-6}
"""NCCL tuning.cc hwLat, ring, LL protocol: NVLink 0.6, PCI 1.0, NET 2.7 us [P]."""

# NCCL path types (src/include/graph.h) [P]
PATH_TYPES = ["LOC", "NVL", "NVB", "C2C", "PIX", "PXB", "P2C", "PXN", "PHB", "SYS", "NET"]
PATH_RANK = {p: i for i, p in enumerate(PATH_TYPES)}
SMI_FROM_NCCL = {"PIX": "PIX", "PXB": "PXB", "PHB": "PHB", "SYS": "SYS"}


@dataclass(frozen=True)
class PathInfo:
    a: str
    b: str
    hops: tuple[str, ...]
    """Every vertex from a to b."""
    nvidia_smi: str
    """What `nvidia-smi topo -m` prints for the pair: X, NV#, PIX, PXB, PHB, NODE or SYS."""
    nccl: str
    """NCCL's path type: NVL, NVB, PIX, PXB, PHB or SYS (NODE is PHB-or-worse in NCCL: it reports SYS
    only across sockets; within a socket through the CPU it is PHB)."""
    bw_line: float
    """Bottleneck line rate along the path, bytes/s one way."""
    bw: float
    """Bottleneck effective rate (the one collectives use), bytes/s one way."""
    latency_s: float
    p2p: bool
    """Would NCCL use peer-to-peer between these GPUs (path <= PXB; AMD with <= 2 GPUs: any path)."""
    why: str


@dataclass
class Topology:
    name: str
    gpu: GpuModel
    graph: nx.Graph
    cpu: str = "srp"
    nic: str = "ndr"
    source: str = ""
    assumptions: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    """Memoised paths and rings (the graph is fixed once built; add_nics clears it)."""

    # -- views ----------------------------------------------------------------------------------
    @property
    def gpus(self) -> list[str]:
        return sorted((n for n, d in self.graph.nodes(data=True) if d["kind"] == "gpu"), key=_devkey)

    @property
    def nics(self) -> list[str]:
        return sorted((n for n, d in self.graph.nodes(data=True) if d["kind"] == "nic"), key=_devkey)

    @property
    def has_nvswitch(self) -> bool:
        return any(d["kind"] == "nvswitch" for _, d in self.graph.nodes(data=True))

    @property
    def nvls(self) -> bool:
        """NVLink SHARP needs NVSwitch gen 3 (Hopper) or later (facts 7.3: none on Volta/Ampere)."""
        return self.has_nvswitch and self.gpu.arch in ("Hopper", "Blackwell")

    def numa(self, dev: str) -> str:
        return self.graph.nodes[dev].get("numa", "")

    def nvlinks(self, a: str, b: str) -> int:
        """NVLink links a pair uses: a direct bond, or through the switch the smaller GPU bond."""
        g = self.graph
        if g.has_edge(a, b) and g.edges[a, b]["kind"] == "nvlink":
            return int(g.edges[a, b]["links"])
        sw = [s for s in g.neighbors(a) if g.nodes[s]["kind"] == "nvswitch" and g.has_edge(s, b)]
        if sw:
            return min(int(g.edges[a, sw[0]]["links"]), int(g.edges[b, sw[0]]["links"]))
        return 0

    # -- paths ----------------------------------------------------------------------------------
    def path(self, a: str, b: str) -> PathInfo:
        key = ("path", a, b)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self._path(a, b)
        return hit

    def _path(self, a: str, b: str) -> PathInfo:
        for d in (a, b):
            if d not in self.graph:
                raise UserError(f"no device {d} in topology {self.name}", expected=", ".join(self.gpus + self.nics))
        if a == b:
            return PathInfo(a, b, (a,), "X", "LOC", float("inf"), float("inf"), 0.0, True, "same device")
        smi = self._smi_code(a, b)
        hops = self._widest_path(a, b)
        edges = list(zip(hops, hops[1:]))
        kinds = [self.graph.edges[e]["kind"] for e in edges]
        bw_line = min(self.graph.edges[e]["bw_line"] for e in edges)
        bw = min(self.graph.edges[e]["bw"] for e in edges)
        if all(k == "nvlink" for k in kinds):
            via_gpu = any(self.graph.nodes[v]["kind"] == "gpu" for v in hops[1:-1])
            nccl = "NVB" if via_gpu else "NVL"
            lat = HOP_LATENCY_S["nvlink"] * (2 if via_gpu else 1)
        elif "nvlink" in kinds:
            # over NVLink to a peer GPU, then PCIe to the NIC: NCCL's PXN path (rank above PXB)
            nccl = "PXN"
            lat = HOP_LATENCY_S["nvlink"] + HOP_LATENCY_S["pcie"]
        else:
            cls = _pcie_class(self.graph, hops)
            nccl = {"NODE": "PHB"}.get(cls, cls)
            lat = HOP_LATENCY_S["pcie"]
        both_gpus = self.graph.nodes[a]["kind"] == "gpu" and self.graph.nodes[b]["kind"] == "gpu"
        p2p = PATH_RANK[nccl] <= PATH_RANK["PXB"] or (self.cpu == "amd" and len(self.gpus) <= 2)
        if not both_gpus:
            why = f"GPUDirect RDMA {'yes' if p2p else 'no'}: NCCL allows it when the GPU-NIC path is at most PXB"
        elif p2p:
            why = f"P2P over {'NVLink' if nccl in ('NVL', 'NVB') else 'PCIe'} (path {nccl} <= PXB)"
        else:
            why = f"no P2P: path {nccl} crosses a host bridge; NCCL stages through host memory (SHM)"
        return PathInfo(a, b, tuple(hops), smi, nccl, bw_line, bw, lat, p2p, why)

    def gdr(self, gpu: str, nic: str) -> bool:
        return self.path(gpu, nic).p2p

    def closest_nic(self, gpu: str) -> str | None:
        if not self.nics:
            return None
        return min(self.nics, key=lambda n: (PATH_RANK[self.path(gpu, n).nccl], -self.path(gpu, n).bw, _devkey(n)))

    def _widest_path(self, a: str, b: str) -> list[str]:
        """Highest bottleneck bandwidth, then fewest hops (NCCL's path search keeps the best bandwidth).
        NICs are endpoints, never transit."""
        prev = self._widest_tree(a)
        if b not in prev:
            raise UserError(f"{a} and {b} are not connected in topology {self.name}")
        out = [b]
        while out[-1] != a:
            out.append(prev[out[-1]])
        return out[::-1]

    def _widest_tree(self, a: str) -> dict[str, str]:
        """Predecessors of the widest (then fewest-hop) paths from ``a`` to every device, one
        label-correcting search per source, memoised: a node's N x N pairs cost N searches, not
        N^2 (a 200-GPU matrix took minutes with one search per pair). A NIC gets a label but is
        never expanded, so no path transits a NIC, as NCCL's search treats NICs."""
        key = ("widest", a)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        g = self.graph
        adj = self.cache.get("adjacency")
        if adj is None:
            adj = self.cache["adjacency"] = {
                u: [(v, g.edges[u, v]["bw_line"], g.nodes[v]["kind"] == "nic") for v in g.neighbors(u)] for u in g
            }
        best: dict[str, tuple[float, int]] = {a: (float("inf"), 0)}
        prev: dict[str, str] = {}
        frontier = [a]
        while frontier:
            nxt = []
            for u in frontier:
                if u != a and g.nodes[u]["kind"] == "nic":
                    continue  # an endpoint, never transit
                bu, hu = best[u]
                for v, bw, _ in adj[u]:
                    cand = (min(bu, bw), hu + 1)
                    old = best.get(v)
                    if old is None or cand[0] > old[0] or (cand[0] == old[0] and cand[1] < old[1]):
                        best[v] = cand
                        prev[v] = u
                        nxt.append(v)
            frontier = nxt
        self.cache[key] = prev
        return prev

    def _pcie_hops(self, a: str, b: str) -> list[str]:
        """The PCIe/CPU route between two devices (NVLink ignored): what nvidia-smi classifies."""
        key = ("pcie", a, b)
        hit = self.cache.get(key)
        if hit is None:
            sub = self.cache.get("pcie-graph")
            if sub is None:
                keep = [(u, v) for u, v, d in self.graph.edges(data=True) if d["kind"] != "nvlink"]
                # a copy, not a filtered view: a view re-filters every neighbour on each search
                sub = self.cache["pcie-graph"] = nx.Graph(self.graph.edge_subgraph(keep))
            hit = self.cache[key] = nx.shortest_path(sub, a, b)
        return hit

    def _smi_code(self, a: str, b: str) -> str:
        n = self.nvlinks(a, b)
        if n:
            return f"NV{n}"
        return _pcie_class(self.graph, self._pcie_hops(a, b))

    # -- rendering ------------------------------------------------------------------------------
    def matrix(self) -> TopoMatrix:
        devs = self.gpus + self.nics
        links = {(x, y): self.path(x, y).nvidia_smi if x != y else "X" for x in devs for y in devs}
        aff = {g: {"NUMA Affinity": self.numa(g)} for g in self.gpus if self.numa(g)}
        return TopoMatrix(devices=devs, links=links, affinity=aff, extra_columns=["NUMA Affinity"] if aff else [])

    def describe(self) -> list[str]:
        nics = f"{len(self.nics)} NICs ({self.nic})" if self.nics else "0 NICs (no NIC column in the matrix)"
        lines = [f"{self.name}: {len(self.gpus)}x {self.gpu.name}, {nics}, CPU link {self.cpu}"]
        if self.source:
            lines.append(f"source: {self.source}")
        lines += [f"assumption: {a}" for a in self.assumptions]
        return lines


def _devkey(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return (head, int(tail) if tail else -1)


def _pcie_class(g: nx.Graph, hops: list[str]) -> str:
    inner = [g.nodes[v]["kind"] for v in hops[1:-1]]
    if inner.count("cpu") >= 2:
        return "SYS"
    if "cpu" in inner:
        return "NODE"
    if "hostbridge" in inner:
        return "PHB"
    return "PXB" if inner.count("switch") >= 2 else "PIX"


# -- building from a matrix -------------------------------------------------------------------


def _components(devs: list[str], m: TopoMatrix, max_rank: int) -> list[list[str]]:
    """Groups of devices joined (transitively) by PCIe codes no farther than max_rank; NV pairs hide
    their PCIe relation and join nothing."""
    parent = {d: d for d in devs}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, a in enumerate(devs):
        for b in devs[i + 1 :]:
            c = m.link(a, b)
            if not c.startswith("NV") and rank(c) <= max_rank:
                parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for d in devs:
        groups.setdefault(find(d), []).append(d)
    return sorted(groups.values(), key=lambda grp: _devkey(grp[0]))


def from_matrix(
    m: TopoMatrix,
    gpu: str | GpuModel,
    *,
    name: str = "matrix",
    cpu: str = "srp",
    nic: str = "ndr",
    source: str = "",
    assumptions: list[str] | None = None,
) -> Topology:
    model = gpu if isinstance(gpu, GpuModel) else gpu_model(gpu)
    if cpu not in CPU_LINK:
        raise UserError(f"unknown CPU interconnect '{cpu}'", expected=", ".join(CPU_LINK))
    if nic not in NIC_LINE:
        raise UserError(f"unknown NIC type '{nic}'", expected=", ".join(NIC_LINE))
    pcie_line = PCIE_LINE_X16[model.pcie_gen or 4]
    pcie = {"kind": "pcie", "bw_line": pcie_line, "bw": pcie_line * PCIE_EFFICIENCY}
    g = nx.Graph()
    devs = m.devices
    numa_of = {d: m.affinity.get(d, {}).get("NUMA Affinity", "") for d in devs}
    for d in devs:
        kind = "gpu" if d.startswith("GPU") else "nic"
        g.add_node(d, kind=kind, numa=numa_of[d] if numa_of[d] not in ("N/A",) else "", name=m.nic_names.get(d, d))
    # PCIe tree: leaf switches (PIX), upper switches (PXB), host bridges (PHB), CPUs (NODE)
    cpus = _components(devs, m, rank("NODE"))
    # devices whose every PCIe relation is hidden by NVLink: group by NUMA affinity when it is known
    merged: list[list[str]] = []
    by_numa: dict[str, list[str]] = {}
    for grp in cpus:
        key = numa_of[grp[0]] if len(grp) == 1 and numa_of[grp[0]] not in ("", "N/A") else None
        if key is None:
            merged.append(grp)
        else:
            by_numa.setdefault(key, []).append(grp[0])
    for key, grp in by_numa.items():
        home = next((x for x in merged if any(numa_of[d] == key for d in x)), None)
        if home is not None:
            home.extend(grp)
        else:
            merged.append(grp)
    for ci, cgroup in enumerate(sorted(merged, key=lambda grp: _devkey(grp[0]))):
        cpu_node = f"CPU{ci}"
        g.add_node(cpu_node, kind="cpu", numa=numa_of[cgroup[0]])
        for hi, hgroup in enumerate(_components(cgroup, m, rank("PHB"))):
            hb = f"HB{ci}.{hi}"
            g.add_node(hb, kind="hostbridge")
            g.add_edge(hb, cpu_node, **pcie)
            for xi, xgroup in enumerate(_components(hgroup, m, rank("PXB"))):
                pix = _components(xgroup, m, rank("PIX"))
                if len(pix) == 1:
                    top = hb
                    if len(pix[0]) > 1:
                        sw = f"SW{ci}.{hi}.{xi}"
                        g.add_node(sw, kind="switch")
                        g.add_edge(sw, hb, **pcie)
                        top = sw
                    for d in pix[0]:
                        g.add_edge(d, top, **pcie)
                    continue
                up = f"SW{ci}.{hi}.{xi}"
                g.add_node(up, kind="switch")
                g.add_edge(up, hb, **pcie)
                for pi, pgroup in enumerate(pix):
                    leaf = f"SW{ci}.{hi}.{xi}.{pi}"
                    g.add_node(leaf, kind="switch")
                    g.add_edge(leaf, up, **pcie)
                    for d in pgroup:
                        g.add_edge(d, leaf, **pcie)
    cpu_nodes = [n for n, d in g.nodes(data=True) if d["kind"] == "cpu"]
    for i, a in enumerate(cpu_nodes):
        for b in cpu_nodes[i + 1 :]:
            g.add_edge(a, b, kind="cpu", bw_line=CPU_LINK[cpu], bw=CPU_LINK[cpu])
    # NVLink
    gpus = m.gpus
    nv = {(a, b): m.nvlinks(a, b) for i, a in enumerate(gpus) for b in gpus[i + 1 :]}
    per_link_line = NVLINK_LINE_PER_LINK.get(model.nvlink_gen or 3, 25 * GB)
    per_link_eff = NCCL_NVLINK_PER_LINK.get(model.arch, 20.0 * GB)
    max_links = NVLINK_LINKS_PER_GPU.get(model.nvlink_gen or 0, 18)
    counts = set(nv.values())
    if len(gpus) > 2 and len(counts) == 1 and 0 not in counts and next(iter(counts)) * (len(gpus) - 1) > max_links:
        links = next(iter(counts))
        g.add_node("NVSwitch", kind="nvswitch")
        for a in gpus:
            g.add_edge(
                a, "NVSwitch", kind="nvlink", links=links, bw_line=links * per_link_line, bw=links * per_link_eff
            )
    else:
        for (a, b), links in nv.items():
            if links:
                g.add_edge(a, b, kind="nvlink", links=links, bw_line=links * per_link_line, bw=links * per_link_eff)
    # NICs hang off the PCIe tree; the NIC's own port is the network link (not a graph edge)
    for d in m.devices:
        if g.nodes[d]["kind"] == "nic":
            g.nodes[d]["port_line"] = NIC_LINE[nic]
            g.nodes[d]["port"] = NIC_LINE[nic] * NIC_EFFICIENCY
    return Topology(name, model, g, cpu=cpu, nic=nic, source=source, assumptions=list(assumptions or []))


def cpu_class(name: str) -> tuple[str, str]:
    """(NCCL inter-socket class, how it was chosen) for a CPU named by the user: a model of the CPU
    catalog (``gpuinfra catalog cpus``: EPYC-9654 -> amd, Xeon-8480+ -> srp, :data:`CPU_MODEL_CLASS`) or
    one of NCCL's classes itself (amd, skl, srp, erp). Case-insensitive.

    Raises UserError for any other name (the catalog's laptop CPU included: it has no inter-socket link)."""
    key = name.strip().lower()
    for model, cls in CPU_MODEL_CLASS.items():
        if model.lower() == key:
            return cls, f"--cpu {model} (CPU catalog) is {CPU_CLASS_NAME[cls]}"
    if key in CPU_LINK:
        return key, f"--cpu {key}: {CPU_CLASS_NAME[key]}"
    names = [*CPU_MODEL_CLASS, *CPU_LINK]
    raise UserError(
        f"unknown CPU '{name}' for the inter-socket link",
        where="--cpu",
        expected="a server CPU of the catalog ("
        + ", ".join(CPU_MODEL_CLASS)
        + ") or NCCL's class: "
        + ", ".join(CPU_LINK),
        fix=did_you_mean(name, names) or "see `gpuinfra catalog cpus`",
    )


def matrix_assumptions(t: Topology, cpu_from: str | None) -> list[str]:
    """The assumptions behind a topology built from a user's matrix, as sentences with their source:
    the CPU interconnect (``cpu_from``: how the user chose it, None when it was the default), the PCIe
    generation of every hop, and the NIC speed (or that the matrix has no NIC column)."""
    out = []
    sockets = sum(1 for _, d in t.graph.nodes(data=True) if d["kind"] == "cpu")
    link = f"{CPU_LINK[t.cpu] / GB:.0f} GB/s per direction (NCCL src/graph/topo.h)"
    if cpu_from is None:
        cpu = (
            f"CPU link {t.cpu}: {CPU_CLASS_NAME[t.cpu]}, {link}, assumed [U]: an `nvidia-smi topo -m` matrix does "
            "not name its CPU; state it with --cpu (a catalog CPU such as EPYC-9654 or Xeon-8480+, or amd/skl/srp/erp)"
        )
    else:
        cpu = f"CPU link {t.cpu}: {cpu_from}, {link}"
    if sockets < 2:
        cpu += "; this matrix shows one CPU (no SYS path), so no path crosses it"
    out.append(cpu)
    gen = t.gpu.pcie_gen
    line = PCIE_LINE_X16[gen or 4]
    out.append(
        f"PCIe Gen{gen or 4} x16 on every PCIe hop, {line / GB:.2f} GB/s line, {line * PCIE_EFFICIENCY / GB:.1f} "
        f"effective (x{PCIE_EFFICIENCY}, measured H2D on an H200, facts/gpu.md 1.4): "
        + (
            f"the {t.gpu.name}'s own PCIe generation (GPU catalog, catalog/data/gpus.csv)"
            if gen
            else f"the GPU catalog has no PCIe generation for the {t.gpu.name}, Gen4 assumed [U]"
        )
        + "; the matrix gives no link generations or widths, so an older host or switch would be slower [U]"
    )
    if t.nics:
        out.append(
            f"NICs: {len(t.nics)} from the matrix, each {NIC_NAME[t.nic]} assumed [U]: the matrix names NICs, "
            "not their speed (`gpuinfra collective --nic` and `gpuinfra scale --nic` set it for the network)"
        )
    else:
        out.append("NICs: none: the matrix has no NIC column, so no GPU has a path off the node here")
    return out


# -- built-in nodes ---------------------------------------------------------------------------


BUILTINS: dict[str, BuiltinSpec] = builtin_specs()
"""The built-in nodes (catalog/data/topology/builtin_nodes.yaml): a published matrix plus GPU
model, CPU and NIC class, source and assumptions each."""


@cache
def builtin_names() -> tuple[str, ...]:
    return tuple(BUILTINS)


def _subset(m: TopoMatrix, keep: set[str]) -> TopoMatrix:
    devs = [d for d in m.devices if d in keep]
    rename = {}
    gi = ni = 0
    for d in devs:
        if d.startswith("GPU"):
            rename[d] = f"GPU{gi}"
            gi += 1
        else:
            rename[d] = f"NIC{ni}"
            ni += 1
    return TopoMatrix(
        devices=[rename[d] for d in devs],
        links={(rename[a], rename[b]): c for (a, b), c in m.links.items() if a in keep and b in keep},
        affinity={rename[d]: v for d, v in m.affinity.items() if d in keep},
        extra_columns=m.extra_columns,
        nic_names={rename[d]: v for d, v in m.nic_names.items() if d in keep},
    )


def builtin(name: str, gpu: str | None = None) -> Topology:
    """A built-in node; ``gpu`` puts another GPU model in the same wiring (link rates follow it).
    Built once per (name, gpu) and shared: treat it as read-only."""
    return _builtin(name, gpu)


@cache
def _builtin(name: str, gpu: str | None) -> Topology:
    spec = BUILTINS.get(name)
    if spec is None:
        raise UserError(
            f"unknown node topology '{name}'",
            expected="one of " + ", ".join(BUILTINS) + " or a saved `nvidia-smi topo -m` file",
            fix=did_you_mean(name, BUILTINS) or "see `gpuinfra topo list`",
        )
    m = parse_topo(spec.matrix_text(), spec.file)[0]
    if spec.keep or spec.nic_names:
        keep = set(spec.keep or m.gpus) | set(spec.nic_names or [d for d in m.devices if not d.startswith("GPU")])
        m = _subset(m, keep)
    t = from_matrix(
        m,
        gpu or spec.gpu,
        name=spec.name if gpu is None else f"{spec.name}[{gpu}]",
        cpu=spec.cpu,
        nic=spec.nic,
        source=spec.source,
        assumptions=list(spec.assumptions),
    )
    if spec.assumed_nics:
        add_nics(t, spec.assumed_nics)
    return t


def add_nics(t: Topology, count: int) -> None:
    """Attach NICs the matrix does not show: each on its own host bridge, round-robin over the CPUs."""
    g = t.graph
    t.cache.clear()
    cpus = sorted((n for n, d in g.nodes(data=True) if d["kind"] == "cpu"), key=_devkey)
    line = PCIE_LINE_X16[t.gpu.pcie_gen or 4]
    first = len(t.nics)
    for i in range(count):
        cpu = cpus[i % len(cpus)]
        hb, nic = f"HB{cpu}.nic{i}", f"NIC{first + i}"
        g.add_node(hb, kind="hostbridge")
        g.add_edge(hb, cpu, kind="pcie", bw_line=line, bw=line * PCIE_EFFICIENCY)
        g.add_node(nic, kind="nic", numa=g.nodes[cpu].get("numa", ""), name=nic, assumed=True)
        g.add_edge(nic, hb, kind="pcie", bw_line=line, bw=line * PCIE_EFFICIENCY)
        g.nodes[nic]["port_line"] = NIC_LINE[t.nic]
        g.nodes[nic]["port"] = NIC_LINE[t.nic] * NIC_EFFICIENCY


def default_for_gpu(model: str) -> str | None:
    """The built-in node a GPU model most often comes in (for the scheduler's cost estimates):
    the node whose ``default_for`` names it in builtin_nodes.yaml."""
    m = gpu_model(model)
    return next((n for n, sp in BUILTINS.items() if m.name in sp.default_for), None)


@cache
def node_topology(model: str, gpus: int) -> Topology | None:
    """The built-in wiring for a node of ``gpus`` GPUs of ``model``: the model's usual node if the
    count matches, else any built-in with that GPU model and count (None: the scheduler then
    treats the node as one flat domain)."""
    try:
        m = gpu_model(model)
        usual = default_for_gpu(model)
    except UserError:
        return None
    names = ([usual] if usual else []) + [
        n for n, sp in BUILTINS.items() if n != usual and gpu_model(sp.gpu).name == m.name
    ]
    for n in names:
        t = builtin(n)
        if len(t.gpus) == gpus:
            return t
    return None
