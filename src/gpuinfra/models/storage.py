"""Storage tiers: latency, per-stream, per-node and aggregate throughput, concurrency limits.

A tier (``catalog/data/storage_tiers.csv``, one row per tier with its source) is either
node-local (local NVMe, a block volume per node: capacity grows with nodes) or shared (a network
filesystem, object storage: one aggregate ceiling for every client). Reading or writing through
it is a number of concurrent *streams* (connections, DataLoader readers, checkpoint writers),
each moving objects of one size:

- one stream moves an object in ``first_byte_s + size / per_stream`` seconds, so its effective
  rate is ``size / (first_byte_s + size / per_stream)`` (small objects are latency-bound: the
  object-store behaviour of facts/io-and-storage.md 4.2);
- with ``depth`` requests in flight per stream (prefetch), latency overlaps: a stream moves
  ``min(per_stream, depth x size / (first_byte_s + size / per_stream))`` bytes/s;
- a node moves at most its node ceiling (the drive, the volume, the NIC or instance cap);
- all nodes together move at most the tier's aggregate ceiling (shared tiers), shared equally.

So throughput grows with concurrency until a ceiling is hit, as the facts ask. A tier that cannot
hold the requested number of streams at all (``max_streams``) is a :class:`UserError` from
:func:`check_streams` naming both numbers.

Caching (:func:`cache_hit_ratio`): a per-node cache of ``cache_bytes`` in front of a dataset of
``dataset_bytes`` read once per epoch in a fresh random order. The first epoch is cold (hit 0).
Later epochs: a cache that keeps what it admitted and never evicts (CoorDL's MinIO policy, Mohan
et al. VLDB'21 [P]) hits ``cache/dataset``; an LRU page cache under a random permutation is
computed by replaying the access order on a scaled-down dataset (the facts note that the page
cache thrashes when the dataset does not fit). A *partitioned* cache (each node caches a
different share, peers serve each other over the network) hits ``min(1, nodes x cache/dataset)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Tier:
    """One storage tier. Rates in bytes/s; ``inf`` where the tier has no such ceiling."""

    name: str
    kind: str
    scope: str
    """``node`` (capacity per node) or ``shared`` (one aggregate ceiling for all nodes)."""
    first_byte_s: float
    per_stream_read: float
    per_stream_write: float
    node_read: float
    node_write: float
    aggregate_read: float
    aggregate_write: float
    max_streams: int
    durable: bool
    """Whether data outlives the node that wrote it (a replaced node's local disk does not)."""
    durability_consistency: str
    evidence: str
    source: str

    def as_dict(self) -> dict:
        return asdict(self)


@cache
def tiers() -> dict[str, Tier]:
    """The packaged storage tiers by name."""
    out = {}
    for r in read_csv_rows("storage_tiers.csv"):
        out[r["name"]] = Tier(
            r["name"],
            r["kind"],
            r["scope"],
            float(r["first_byte_s"]),
            float(r["per_stream_read_bytes_per_s"]),
            float(r["per_stream_write_bytes_per_s"]),
            float(r["node_read_bytes_per_s"]),
            float(r["node_write_bytes_per_s"]),
            float(r["aggregate_read_bytes_per_s"]),
            float(r["aggregate_write_bytes_per_s"]),
            int(r["max_streams"]),
            r["durable"] == "true",
            r["durability_consistency"],
            r["evidence"],
            r["source"],
        )
    return out


def tier(name: str, *, where: str = "--storage") -> Tier:
    """The tier called ``name``; UserError naming the known tiers otherwise."""
    t = tiers().get(name)
    if t is None:
        raise UserError(
            f"unknown storage tier '{name}'",
            where=where,
            expected="one of " + ", ".join(tiers()),
            fix=did_you_mean(name, tiers()) or "see `gpuinfra io tiers`",
        )
    return t


def check_streams(t: Tier, nodes: int, streams_per_node: int, *, where: str = "streams") -> None:
    """UserError when ``nodes x streams_per_node`` concurrent streams exceed what the tier holds."""
    if streams_per_node < 1 or nodes < 1:
        raise UserError(
            f"need at least one node and one stream per node, got {nodes} x {streams_per_node}", where=where
        )
    total = nodes * streams_per_node
    limit = t.max_streams * (nodes if t.scope == "node" else 1)
    if total > limit:
        raise UserError(
            f"storage tier '{t.name}' cannot sustain {total:,} concurrent streams ({nodes:,} nodes x "
            f"{streams_per_node:,}); it holds at most {limit:,}",
            where=where,
            fix="use fewer streams per node (e.g. one writer per node), fewer nodes, or another tier",
        )


def stream_rate(t: Tier, object_bytes: float, *, write: bool = False, depth: int = 1) -> float:
    """Bytes/s one stream moves with ``depth`` requests of ``object_bytes`` in flight."""
    bw = t.per_stream_write if write else t.per_stream_read
    one = object_bytes / (t.first_byte_s + object_bytes / bw)
    return min(bw, max(depth, 1) * one)


@dataclass(frozen=True)
class Throughput:
    """What ``nodes`` nodes with ``streams_per_node`` streams each get from a tier (bytes/s)."""

    per_node: float
    total: float
    bound_by: str
    """``streams`` (concurrency x latency), ``node`` (the node's ceiling) or ``aggregate`` (shared ceiling)."""
    streams_limit: float
    node_limit: float
    aggregate_share: float

    def as_dict(self) -> dict:
        return asdict(self)


def throughput(
    t: Tier, nodes: int, streams_per_node: int, object_bytes: float, *, write: bool = False, depth: int = 1
) -> Throughput:
    """Throughput of ``nodes x streams_per_node`` streams: min(streams, node ceiling, aggregate share)."""
    check_streams(t, nodes, streams_per_node)
    s = streams_per_node * stream_rate(t, object_bytes, write=write, depth=depth)
    n = t.node_write if write else t.node_read
    agg = t.aggregate_write if write else t.aggregate_read
    share = agg / nodes if t.scope == "shared" else math.inf
    per = min(s, n, share)
    bound = "streams" if per == s else ("node" if per == n else "aggregate")
    return Throughput(per, per * nodes, bound, s, n, share)


CACHE_POLICIES = ("minio", "lru", "partitioned")


def cache_hit_ratio(
    policy: str, cache_bytes: float, dataset_bytes: float, epoch: int, nodes: int = 1, rng=None, items: int = 4000
) -> float:
    """Hit ratio of a per-node cache in ``epoch`` (1 = first, cold). See the module docstring.

    ``rng`` (a numpy Generator from the run's streams) is needed for ``lru`` only: the access
    order of ``items`` scaled-down samples over two epochs is drawn from it.
    """
    if policy not in CACHE_POLICIES:
        raise UserError(f"unknown cache policy '{policy}'", where="cache.policy", expected=", ".join(CACHE_POLICIES))
    if cache_bytes < 0 or dataset_bytes <= 0 or epoch < 1:
        raise UserError("cache bytes must be >= 0, dataset bytes > 0 and epoch >= 1", where="cache")
    if epoch == 1 or cache_bytes == 0:
        return 0.0
    f = min(1.0, cache_bytes / dataset_bytes)
    if policy == "minio":
        return f
    if policy == "partitioned":
        return min(1.0, nodes * f)
    if f >= 1.0:
        return 1.0
    if rng is None:
        raise ValueError("lru hit ratio needs the run's random stream")
    return _lru_hits(int(f * items), items, rng)


def _lru_hits(cap: int, items: int, rng: np.random.Generator) -> float:
    """Hits in the second epoch of an LRU cache of ``cap`` items under two random permutations."""
    from collections import OrderedDict

    lru: OrderedDict[int, None] = OrderedDict()
    for x in rng.permutation(items):
        lru[int(x)] = None
        if len(lru) > cap:
            lru.popitem(last=False)
    hits = 0
    for x in rng.permutation(items):
        x = int(x)
        if x in lru:
            hits += 1
            lru.move_to_end(x)
        else:
            lru[x] = None
            if len(lru) > cap:
                lru.popitem(last=False)
    return hits / items
