"""Collective communication cost: NCCL's model structure on gpuinfra's topology graph.

Output is what nccl-tests prints (NVIDIA/nccl-tests doc/PERFORMANCE.md, facts/gpu.md 7.1 [P]):
size S in bytes (for all_gather, reduce_scatter and all_to_all the whole gathered buffer), the
time t, ``algbw = S / t`` and ``busbw = algbw x factor`` with factor 2(n-1)/n for all_reduce,
(n-1)/n for all_gather, reduce_scatter and all_to_all, 1 for broadcast, reduce and send_recv.

Time = latency + bandwidth term, following NCCL src/graph/tuning.cc (facts/gpu.md 7.3 [P]):

- bandwidth term, from the topology, not from published results:
  * ring: every hop carries 2(n-1)/n x S (all_reduce) or (n-1)/n x S (gather/scatter), so the time
    is that volume over B, the slowest per-rank share of any link (links shared by several ring
    hops, a PCIe uplink say, divide their rate). Across nodes B is also capped by the node's NICs
    (sum over the NICs its GPUs use of min(NIC rate, GPU-NIC PCIe path)), and by the leaf uplinks
    when a job spans more nodes than one leaf switch holds (``nodes_per_leaf``, oversubscription).
  * tree (all_reduce): 2 x S over B (NCCL: algbw = busbw / 2), latency logarithmic in nodes.
  * NVLS (NVLink SHARP, all_reduce on Hopper/Blackwell NVSwitch): the switch reduces and
    multicasts; each GPU sends S and receives S/n while reducing, then sends S/n and receives S
    while gathering, so S (n+1)/n crosses each direction of its NVLink bond [D]; times NCCL's
    nvlsEfficiency (0.85 Hopper, 0.74 Blackwell) [P].
  * all_to_all: every rank sends S/n to every other rank at once; the busiest link (or NIC, or
    leaf uplink) sets the time. Multi-node traffic goes over rails through PXN (NCCL routes a
    message to the NIC on the destination's rail over NVLink first) [assumption].
  * protocol efficiency on the bandwidth (tuning.cc): ring LL x0.5 (capped at llMaxBw), LL128
    x0.92, Simple x1; tree Simple x0.92, LL x1/3.8, LL128 x7/9 (one node) or 120/128; NVLS
    Simple only.
- latency term: base latency per algorithm and protocol plus NCCL's per-step hardware latency
  for the transport (NVLink, PCI, NET), with ring steps 2(n-1) (all_reduce) or n-1, tree steps
  2((ppn-1) + log2(nodes)), and the x1.4 (SM80+) / x1.9 multi-node ring all_reduce factor.

``auto`` picks the (algorithm, protocol) with the lowest modelled time, as NCCL's tuner does.
Not modelled: channel counts and their per-channel caps (LL128 and tree), NCCL's tree
correction factors, PAT, CollNet, SHM staging costs beyond link rates, congestion from other
jobs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from gpuinfra.errors import UserError
from gpuinfra.models.topology import NIC_EFFICIENCY, NIC_LINE, Topology, _devkey

GB = 1e9
COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce", "all_to_all", "send_recv")
BUS_FACTOR = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "send_recv": lambda n: 1.0,
}
"""nccl-tests busbw factors (src/*.cu getBw, facts/gpu.md 7.1) [P]."""
PROTOCOLS = ("LL", "LL128", "Simple")
ALGOS = ("ring", "tree", "nvls")
TYPE_SIZE = {"float": 4, "half": 2, "bfloat16": 2, "double": 8, "int8": 1}

# NCCL tuning.cc (facts/gpu.md 7.3) [P]; microseconds
BASE_LAT_US = {"tree": (6.8, 14.0, 8.4), "ring": (6.6, 14.0, 8.4), "nvls": (0.0, 0.0, 0.0)}
HW_LAT_US = {
    "nvlink": {"tree": (0.6, 1.25, 4.0), "ring": (0.6, 1.9, 3.4), "nvls": (0.0, 0.0, 25.0)},
    "pci": {"tree": (1.0, 1.9, 4.0), "ring": (1.0, 2.5, 5.7), "nvls": (0.0, 0.0, 0.0)},
    "net": {"tree": (5.0, 8.5, 14.0), "ring": (2.7, 4.0, 14.0), "nvls": (0.0, 0.0, 18.0)},
}
LL_MAX_BW = {
    "Volta": (39.0, 39.0, 20.4),
    "Ampere": (87.7, 22.5, 19.0),
    "Hopper": (141.0, 45.0, 35.0),
    "Blackwell": (282.0, 90.0, 70.0),
}
"""llMaxBws (GB/s) for 1 node, 2 nodes, more; Ada is treated as Ampere [assumption]."""
NVLS_EFFICIENCY = {"Hopper": 0.85, "Blackwell": 0.74}


@dataclass(frozen=True)
class Fabric:
    """The network between nodes."""

    nic: str | None = None
    """NIC type (ndr, hdr, roce400, roce200, eth100); None: the node topology's."""
    nodes_per_leaf: int = 32
    """Nodes under one leaf (one rail group); 32 is a DGX SuperPOD scalable unit [U]."""
    oversubscription: float = 1.0
    """Leaf downlink over uplink capacity (1.0: a non-blocking fat tree)."""

    def check(self) -> None:
        if self.nic is not None and self.nic not in NIC_LINE:
            raise UserError(f"unknown NIC type '{self.nic}'", where="--nic", expected=", ".join(NIC_LINE))
        if self.nodes_per_leaf < 1:
            raise UserError("nodes per leaf must be at least 1", where="--nodes-per-leaf")
        if self.oversubscription < 1.0:
            raise UserError("oversubscription must be >= 1 (1 = non-blocking)", where="--oversubscription")


@dataclass(frozen=True)
class Placement:
    topo: Topology
    gpus: tuple[str, ...]
    """GPUs used on every node (the same local GPUs on each)."""
    nodes: int = 1
    fabric: Fabric = field(default_factory=Fabric)
    net_share: float = 1.0
    """How many concurrent groups share the NICs this placement uses (divides its network rate)."""

    @property
    def ranks(self) -> int:
        return len(self.gpus) * self.nodes

    @staticmethod
    def make(
        topo: Topology, gpus: int | list[str] | None = None, nodes: int = 1, fabric: Fabric | None = None
    ) -> Placement:
        all_gpus = topo.gpus
        if gpus is None:
            sel = all_gpus
        elif isinstance(gpus, int):
            if not 1 <= gpus <= len(all_gpus):
                raise UserError(f"{topo.name} has {len(all_gpus)} GPUs, asked for {gpus}", where="--gpus")
            sel = all_gpus[:gpus]
        else:
            bad = [g for g in gpus if g not in all_gpus]
            if bad:
                raise UserError(f"no {', '.join(bad)} in {topo.name}", where="--gpus", expected=", ".join(all_gpus))
            dup = sorted({g for g in gpus if gpus.count(g) > 1}, key=_devkey)
            if dup:
                raise UserError(
                    f"{', '.join(dup)} named more than once",
                    where="--gpus",
                    expected="each GPU index once (one rank per GPU)",
                    fix="remove the repeated indices, e.g. --gpus 0,1,4,5",
                )
            sel = sorted(set(gpus), key=_devkey)
        if nodes < 1:
            raise UserError("nodes must be at least 1", where="--nodes")
        fab = fabric or Fabric()
        fab.check()
        return Placement(topo, tuple(sel), nodes, fab)


@dataclass(frozen=True)
class Result:
    collective: str
    algo: str
    proto: str
    size: int
    count: int
    dtype: str
    ranks: int
    nodes: int
    time_s: float
    algbw: float
    busbw: float
    latency_s: float
    bandwidth_s: float
    link_bw: float
    """The bottleneck bandwidth B the bandwidth term used (bytes/s, after protocol efficiency)."""
    bottleneck: str

    def as_dict(self) -> dict:
        return asdict(self)


# -- bandwidth pieces ------------------------------------------------------------------------


def ring_order(topo: Topology, gpus: tuple[str, ...]) -> list[str]:
    """GPUs in PCIe-tree order (socket, host bridge, switch), so a ring crosses each shared
    uplink as few times as it can, as NCCL's ring search finds."""
    return sorted(gpus, key=lambda g: (_to_cpu(topo, g)[::-1], _devkey(g)))


def _to_cpu(topo: Topology, dev: str) -> list[str]:
    """The chain of PCIe vertices from a device up to its CPU (the tree position)."""
    key = ("to_cpu", dev)
    hit = topo.cache.get(key)
    if hit is None:
        hit = topo.cache[key] = _to_cpu_search(topo, dev)
    return hit


def _to_cpu_search(topo: Topology, dev: str) -> list[str]:
    g = topo.graph
    cpus = [n for n, d in g.nodes(data=True) if d["kind"] == "cpu"]
    best = None
    for c in cpus:
        try:
            p = topo._pcie_hops(dev, c)
        except Exception:  # noqa: BLE001 - unreachable vertex
            continue
        if best is None or len(p) < len(best):
            best = p
    return best[1:] if best else []


def ring_bw(topo: Topology, gpus: tuple[str, ...]) -> tuple[float, str]:
    """Per-rank bandwidth of the best ring through ``gpus`` in one node: the slowest directed link
    share, each link's effective rate divided by the ring hops that cross it in that direction."""
    if len(gpus) < 2:
        return float("inf"), "one GPU: no communication inside the node"
    key = ("ring", tuple(gpus))
    hit = topo.cache.get(key)
    if hit is None:
        hit = topo.cache[key] = _ring_bw(topo, gpus)
    return hit


def _ring_bw(topo: Topology, gpus: tuple[str, ...]) -> tuple[float, str]:
    order = ring_order(topo, gpus)
    uses: dict[tuple[str, str], int] = {}
    for a, b in zip(order, order[1:] + order[:1]):
        hops = topo.path(a, b).hops
        for u, v in zip(hops, hops[1:]):
            uses[(u, v)] = uses.get((u, v), 0) + 1
    best, where = float("inf"), ""
    for (u, v), n in uses.items():
        e = topo.graph.edges[u, v]
        share = e["bw"] / n
        if share < best:
            best, where = (
                share,
                f"{e['kind']} link {u}-{v} ({e['bw'] / GB:.1f} GB/s shared by {n} ring hop{'s' * (n > 1)})",
            )
    return best, where


def nic_assignment(topo: Topology, gpus: tuple[str, ...]) -> dict[str, str]:
    """Each GPU's NIC: the closest (by NCCL path type, then bandwidth), spreading ties."""
    if not topo.nics:
        return {}
    key = ("nics", tuple(gpus))
    hit = topo.cache.get(key)
    if hit is None:
        hit = topo.cache[key] = _nic_assignment(topo, gpus)
    return dict(hit)


def _nic_assignment(topo: Topology, gpus: tuple[str, ...]) -> dict[str, str]:
    load: dict[str, int] = {n: 0 for n in topo.nics}
    out = {}
    for g in gpus:
        paths = {n: topo.path(g, n) for n in topo.nics}
        best = min(topo.nics, key=lambda n: (_path_rank(paths[n].nccl), -paths[n].bw, load[n], _devkey(n)))
        out[g] = best
        load[best] += 1
    return out


def _path_rank(p: str) -> int:
    from gpuinfra.models.topology import PATH_RANK

    return PATH_RANK[p]


def node_net_bw(pl: Placement) -> tuple[float, str, dict[str, str]]:
    """What one node can push into the network: per NIC used, min(NIC rate, GPU-NIC path rate)."""
    topo = pl.topo
    assign = nic_assignment(topo, pl.gpus)
    if not assign:
        raise UserError(
            f"topology {topo.name} has no NICs, so it cannot talk to other nodes",
            where="--nodes",
            fix="use a node with NICs (gpuinfra topo list) or --nodes 1",
        )
    nic_type = pl.fabric.nic or topo.nic
    total, parts = 0.0, []
    for nic in sorted(set(assign.values()), key=_devkey):
        port = NIC_LINE[nic_type] * NIC_EFFICIENCY
        path = min(topo.path(g, nic).bw for g, n in assign.items() if n == nic)
        gdr = all(topo.path(g, nic).p2p for g, n in assign.items() if n == nic)
        total += min(port, path)
        parts.append(
            f"{nic} {min(port, path) / GB:.1f} GB/s{'' if gdr else ' (no GPUDirect RDMA: staged via host memory)'}"
        )
    note = f", shared by {pl.net_share:g} concurrent groups" if pl.net_share > 1 else ""
    return total / pl.net_share, f"{len(parts)} NIC(s) x {nic_type}: " + ", ".join(parts) + note, assign


def _spine_cap(pl: Placement, node_bw: float) -> float:
    """Per-node share of a leaf's uplinks when the job spans several leaves (inf otherwise)."""
    f = pl.fabric
    if pl.nodes <= f.nodes_per_leaf or f.oversubscription <= 1.0:
        return float("inf")
    return node_bw / f.oversubscription


def _intra_transport(topo: Topology, gpus: tuple[str, ...]) -> str:
    if len(gpus) < 2:
        return "nvlink"
    key = ("transport", tuple(gpus))
    if key in topo.cache:
        return topo.cache[key]
    order = ring_order(topo, gpus)
    kinds = {topo.path(a, b).nccl for a, b in zip(order, order[1:] + order[:1])}
    topo.cache[key] = out = "nvlink" if kinds <= {"NVL", "NVB"} else "pci"
    return out


# -- the model -------------------------------------------------------------------------------


def _proto_factor(algo: str, proto: str, nodes: int) -> float:
    if algo == "ring":
        return {"LL": 0.5, "LL128": 0.92, "Simple": 1.0}[proto]
    if algo == "tree":
        return {"LL": 1 / 3.8, "LL128": 7 / 9 if nodes == 1 else 120 / 128, "Simple": 0.92}[proto]
    return 1.0


def _valid(op: str, algo: str, proto: str, pl: Placement) -> bool:
    if algo == "nvls":
        return op == "all_reduce" and proto == "Simple" and pl.topo.nvls and len(pl.gpus) > 1
    if algo == "tree":
        return op == "all_reduce"
    return True


def collective(
    op: str,
    size: int,
    pl: Placement,
    *,
    algo: str = "auto",
    proto: str = "auto",
    dtype: str = "float",
) -> Result:
    """Time of one NCCL collective of ``size`` bytes on a placement, as nccl-tests reports it.

    ``pl`` says which GPUs of which node topology take part and how many nodes (with the NIC
    fabric). ``algo``/``proto`` force NCCL's algorithm (ring, tree, nvls) and protocol (LL,
    LL128, Simple); ``auto`` picks the cheapest valid pair, as NCCL's tuner does. Returns a
    :class:`Result` with time (s), algbw and busbw (bytes/s, nccl-tests' definitions: busbw =
    algbw x the op's bus factor, e.g. 2(n-1)/n for all_reduce), the algorithm, protocol and the
    bottleneck link. Latencies and per-link rates come from NCCL's tuning.cc/topo.h structure
    (cited in this module's header). Raises ``UserError`` for an unknown op, dtype, algorithm or
    protocol, or a negative size.
    """
    if op not in COLLECTIVES:
        raise UserError(f"unknown collective '{op}'", expected=", ".join(COLLECTIVES))
    if dtype not in TYPE_SIZE:
        raise UserError(f"unknown data type '{dtype}'", where="--dtype", expected=", ".join(TYPE_SIZE))
    if size < 0:
        raise UserError("message size must be >= 0", where="--bytes")
    if algo != "auto" and algo not in ALGOS:
        raise UserError(f"unknown algorithm '{algo}'", where="--algo", expected="auto, ring, tree or nvls")
    if proto != "auto" and proto not in PROTOCOLS:
        raise UserError(f"unknown protocol '{proto}'", where="--proto", expected="auto, LL, LL128 or Simple")
    n = pl.ranks
    if op == "send_recv" and n != 2:
        raise UserError(f"send_recv runs between 2 ranks, the placement has {n}", where="--gpus/--nodes")
    if n < 2:
        t = 0.0
        return Result(
            op,
            "none",
            "none",
            size,
            size // TYPE_SIZE[dtype],
            dtype,
            1,
            1,
            t,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            "one rank: nothing to move",
        )
    algos = [algo] if algo != "auto" else list(ALGOS)
    protos = [proto] if proto != "auto" else list(PROTOCOLS)
    cands = [(a, p) for a in algos for p in protos if _valid(op, a, p, pl)]
    if not cands:
        raise UserError(
            f"{algo}/{proto} cannot run {op} on {pl.topo.name}",
            where="--algo",
            expected="ring for every collective, tree for all_reduce, nvls for all_reduce on Hopper/Blackwell NVSwitch nodes",
        )
    res = [_one(op, size, pl, a, p, dtype) for a, p in cands]
    order = {a: i for i, a in enumerate((*ALGOS, "p2p"))}
    return min(res, key=lambda r: (r.time_s, order[r.algo], PROTOCOLS.index(r.proto)))


def _one(op: str, size: int, pl: Placement, algo: str, proto: str, dtype: str) -> Result:
    topo, n, nodes, ppn = pl.topo, pl.ranks, pl.nodes, len(pl.gpus)
    pi = PROTOCOLS.index(proto)
    arch = topo.gpu.arch
    intra = _intra_transport(topo, pl.gpus)
    intra_lat = HW_LAT_US[intra][algo if algo in ("tree", "ring", "nvls") else "ring"][pi]
    inter_lat = HW_LAT_US["net"][algo][pi]
    base = BASE_LAT_US[algo][pi]

    # bottleneck bandwidth B (bytes/s, per rank) before protocol efficiency
    b_intra, why_intra = ring_bw(topo, pl.gpus)
    b, why = b_intra, why_intra
    if nodes > 1:
        b_net, why_net, _ = node_net_bw(pl)
        # a ring leaves each leaf once per channel: one node's traffic over the leaf's uplinks
        b_spine = _spine_cap(pl, b_net) * pl.fabric.nodes_per_leaf
        for cap, w in (
            (b_net, "network: " + why_net),
            (b_spine, f"leaf uplinks ({pl.fabric.oversubscription}:1 oversubscribed)"),
        ):
            if cap < b:
                b, why = cap, w

    factor = _proto_factor(algo, proto, nodes)
    eff = b * factor
    if algo == "ring" and proto == "LL":
        cap = (
            LL_MAX_BW.get(arch if arch != "Ada" else "Ampere", LL_MAX_BW["Ampere"])[
                0 if nodes == 1 else 1 if nodes == 2 else 2
            ]
            * GB
        )
        if cap < eff:
            eff, why = cap, f"LL protocol cap llMaxBw {cap / GB:.1f} GB/s ({arch})"

    if op == "all_reduce":
        if algo == "ring":
            steps, inter_steps = 2 * (n - 1), 2 * (nodes - 1)
            lat = base + (steps - inter_steps) * intra_lat + inter_steps * inter_lat
            if nodes > 1 and proto == "Simple":
                lat *= 1.4 if arch in ("Ampere", "Ada", "Hopper", "Blackwell") else 1.9
            bw_s = 2 * (n - 1) / n * size / eff
        elif algo == "tree":
            lat = base + 2 * ((ppn - 1) * intra_lat + math.log2(nodes) * inter_lat)
            bw_s = 2 * size / eff
        else:  # nvls
            nv_link = max(topo.graph.edges[g, "NVSwitch"]["bw"] for g in pl.gpus)
            e_nvls = nv_link * NVLS_EFFICIENCY[arch]
            bw_s = size * (ppn + 1) / ppn / e_nvls
            why = f"NVLink bond to the NVSwitch ({nv_link / GB:.1f} GB/s) x nvlsEfficiency {NVLS_EFFICIENCY[arch]}"
            eff = e_nvls
            lat = intra_lat
            if nodes > 1:
                # NVLS inside the node, a tree between nodes (NVLSTree): the slower of the two sets the rate
                b_net, why_net, _ = node_net_bw(pl)
                tree_eff = b_net * 0.92 / 2  # tree algbw = busbw / 2, Simple x0.92; per node
                bw_s = max(bw_s, size / tree_eff)
                if size / tree_eff >= size * (ppn + 1) / ppn / e_nvls:
                    why, eff = "network (NVLS tree between nodes): " + why_net, tree_eff
                lat = intra_lat + 2 * math.log2(nodes) * inter_lat
    elif op in ("all_gather", "reduce_scatter"):
        steps, inter_steps = n - 1, nodes - 1
        lat = base + (steps - inter_steps) * intra_lat + inter_steps * inter_lat
        bw_s = (n - 1) / n * size / eff
    elif op in ("broadcast", "reduce"):
        steps, inter_steps = n - 1, nodes - 1
        lat = base + (steps - inter_steps) * intra_lat + inter_steps * inter_lat
        bw_s = size / eff
    elif op == "send_recv":
        if nodes == 1:
            p = topo.path(pl.gpus[0], pl.gpus[1])
            eff, why = p.bw * factor, f"path {p.nvidia_smi} ({p.bw / GB:.1f} GB/s)"
            lat = base + (HW_LAT_US["nvlink" if p.nccl in ("NVL", "NVB") else "pci"]["ring"][pi])
        else:
            lat = base + inter_lat
        bw_s = size / eff
    else:  # all_to_all
        bw_s, why, eff = _all_to_all_time(size, pl, factor)
        lat = base + intra_lat + (inter_lat if nodes > 1 else 0.0)
    lat_s = lat * 1e-6
    t = lat_s + bw_s
    algbw = size / t if t > 0 else 0.0
    if op in ("all_to_all", "send_recv"):
        algo = "p2p"  # NCCL runs these as grouped point-to-point sends, not a ring
    return Result(
        op,
        algo,
        proto,
        size,
        size // TYPE_SIZE[dtype],
        dtype,
        n,
        nodes,
        t,
        algbw,
        algbw * BUS_FACTOR[op](n),
        lat_s,
        bw_s,
        eff,
        why,
    )


def _all_to_all_time(size: int, pl: Placement, factor: float) -> tuple[float, str, float]:
    """Every rank sends size/n to every other rank at once: route the traffic, the busiest link wins."""
    topo, n, nodes = pl.topo, pl.ranks, pl.nodes
    chunk = size / n
    load: dict[tuple[str, str], float] = {}
    for a in pl.gpus:
        for b in pl.gpus:
            if a == b:
                continue
            hops = topo.path(a, b).hops
            for u, v in zip(hops, hops[1:]):
                load[(u, v)] = load.get((u, v), 0.0) + chunk
    if nodes > 1:
        # remote traffic first crosses the node from each GPU to its NIC (and back in from it)
        remote_gpu = chunk * (n - len(pl.gpus))
        for g, nic in nic_assignment(topo, pl.gpus).items():
            hops = topo.path(g, nic).hops
            for u, v in zip(hops, hops[1:]):
                load[(u, v)] = load.get((u, v), 0.0) + remote_gpu
                load[(v, u)] = load.get((v, u), 0.0) + remote_gpu
    worst, why, eff = 0.0, "", float("inf")
    for (u, v), by in load.items():
        e = topo.graph.edges[u, v]
        t = by / (e["bw"] * factor)
        if t > worst:
            worst, why, eff = t, f"{e['kind']} link {u}-{v} ({e['bw'] / GB:.1f} GB/s)", e["bw"] * factor
    if nodes > 1:
        b_net, why_net, assign = node_net_bw(pl)
        remote = chunk * len(pl.gpus) * (n - len(pl.gpus))  # bytes one node sends to other nodes
        t_net = remote / (b_net * factor)
        if t_net > worst:
            worst, why, eff = t_net, "network: " + why_net, b_net * factor
        if nodes > pl.fabric.nodes_per_leaf and pl.fabric.oversubscription > 1.0:
            leaves_out = (nodes - pl.fabric.nodes_per_leaf) / (nodes - 1)
            t_sp = remote * leaves_out / (b_net * factor / pl.fabric.oversubscription)
            if t_sp > worst:
                worst, why = t_sp, f"leaf uplinks ({pl.fabric.oversubscription}:1 oversubscribed)"
                eff = b_net * factor / pl.fabric.oversubscription
    return worst, why, eff


def sweep(op: str, pl: Placement, min_bytes: int, max_bytes: int, factor: int = 2, **kw) -> list[Result]:
    """One result per size from min to max, multiplying by factor (nccl-tests -b -e -f)."""
    if min_bytes <= 0 or max_bytes < min_bytes or factor < 2:
        raise UserError(
            "bad size range", where="--min-bytes/--max-bytes/--step-factor", expected="0 < min <= max, factor >= 2"
        )
    out, s = [], min_bytes
    while s <= max_bytes:
        out.append(collective(op, s, pl, **kw))
        s *= factor
    return out


def parse_size(text: str, where: str = "--bytes") -> int:
    """nccl-tests style sizes: 8, 128K, 64M, 8G (binary multiples); see :func:`gpuinfra.units.parse_size`."""
    from gpuinfra.units import parse_size as _parse

    return _parse(text, where)


def format_table(rows: list[Result]) -> str:
    """The rows in nccl-tests' column layout (time in us, bandwidths in GB/s = 1e9 B/s)."""
    out = [
        "#",
        f"#{'size':>12} {'count':>12} {'type':>8} {'redop':>6} {'root':>5} {'time':>9} {'algbw':>7} {'busbw':>7}  algo/proto",
        f"#{'(B)':>12} {'(elements)':>12} {'':>8} {'':>6} {'':>5} {'(us)':>9} {'(GB/s)':>7} {'(GB/s)':>7}",
    ]
    for r in rows:
        redop = "sum" if r.collective in ("all_reduce", "reduce_scatter", "reduce") else "none"
        root = "0" if r.collective in ("broadcast", "reduce") else "-1"
        out.append(
            f" {r.size:>12} {r.count:>12} {r.dtype:>8} {redop:>6} {root:>5} {r.time_s * 1e6:>9.2f} {r.algbw / GB:>7.2f} {r.busbw / GB:>7.2f}  {r.algo}/{r.proto}"
        )
    return "\n".join(out) + "\n"


# -- what the scheduler asks -----------------------------------------------------------------


_BEST: dict[tuple[str, tuple[int, ...], int], tuple[tuple[int, ...], float]] = {}


def best_devices(topo: Topology, free: tuple[int, ...], k: int) -> tuple[tuple[int, ...], float]:
    """The k of the ``free`` GPU indices whose ring is fastest (then the lowest indices), and that
    ring's per-rank bandwidth: what a topology-aware device plugin's preferred allocation picks.
    Exhaustive over the combinations (at most C(8,4) = 70 on an 8-GPU node), memoised."""
    key = (topo.name, free, k)
    hit = _BEST.get(key)
    if hit is not None:
        return hit
    from itertools import combinations

    if k > len(free):
        raise ValueError(f"asked {k} GPUs of {len(free)} free")
    names = topo.gpus
    best: tuple[tuple[int, ...], float] = ((), -1.0)
    for combo in combinations(sorted(free), k):
        bw = ring_bw(topo, tuple(names[i] for i in combo))[0] if k > 1 else float("inf")
        if bw > best[1] + 1e-6:
            best = (combo, bw)
    _BEST[key] = best
    return best


def placement_cost(topo: Topology, devices: tuple[int, ...], nodes: int = 1, size: int = 256 * 1024**2) -> float:
    """Seconds one all-reduce of ``size`` bytes takes over ``devices`` (local indices) on each of
    ``nodes`` nodes: the communication cost of a placement, for schedulers and reports."""
    names = topo.gpus
    pl = Placement.make(topo, [names[i] for i in devices], nodes=nodes)
    return collective("all_reduce", size, pl).time_s
