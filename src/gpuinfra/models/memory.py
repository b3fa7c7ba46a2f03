"""PyTorch's CUDA caching allocator, simulated rule for rule, and the GPU it allocates from.

The rules follow pytorch/pytorch ``c10/cuda/CUDACachingAllocator.cpp`` and
``c10/core/AllocatorConfig.cpp`` as described in facts/gpu.md section 8 [P] (no code copied):

- sizes round up to 512 bytes (kMinBlockSize); ``roundup_power2_divisions`` D splits each power
  of two above 1 MiB... into D steps (applied only when size > 512 x D);
- requests of at most 1 MiB (kSmallSize) go to the small pool, larger ones to the large pool;
- a new segment (cudaMalloc) is 2 MiB for small requests (kSmallBuffer), 20 MiB for requests
  under 10 MiB (kLargeBuffer below kMinLargeAlloc), else the request rounded up to 2 MiB
  (kRoundLarge);
- best fit: the smallest cached free block of the pool that is large enough; with
  ``max_split_size_mb`` a cached block at least that big never serves a smaller request, and an
  oversize request only takes a cached block smaller than request + ``max_non_split_rounding``
  (20 MiB default);
- splitting: small pool (and expandable segments) if the remainder is at least 512 bytes; large
  pool only if the request is below max_split_size and the remainder exceeds 1 MiB; the
  remainder stays cached as an *inactive split* block;
- a freed block merges with free neighbours of its segment; memory returns to the device only
  through ``empty_cache()``, garbage collection or the OOM path, and only whole free segments;
- when no cached block fits: garbage collection (only with a per-process memory fraction and
  ``garbage_collection_threshold``), then cudaMalloc, then release cached oversize blocks and
  retry, then release every whole free segment and retry (``num_alloc_retries``); if all fail,
  OOM (``num_ooms``) with PyTorch's message;
- ``expandable_segments``: one virtual segment per pool that grows in place; physical pages
  (2 MiB small, 20 MiB large) are mapped under the blocks in use and unmapped from free blocks
  on the release path, so freed memory is not stranded in segments of the wrong size.

A :class:`Gpu` holds what every process on the device has mapped: a request fails when this
process's new segment does not fit in the device's free memory (cudaMemGetInfo), which other
processes and the CUDA context shrink. Not modelled: streams (one stream), CUDA graphs' private
pools, ``record_stream`` (so active == allocated), host-side pinned memory.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from gpuinfra.errors import UserError

KiB, MiB, GiB = 1024, 1024**2, 1024**3
MIN_BLOCK = 512
SMALL_SIZE = 1 * MiB
SMALL_BUFFER = 2 * MiB
LARGE_BUFFER = 20 * MiB
MIN_LARGE_ALLOC = 10 * MiB
ROUND_LARGE = 2 * MiB
DEFAULT_CONTEXT_BYTES = 500 * MiB
"""CUDA context and library memory of a process (the "non-PyTorch memory" of the OOM message).
An assumption: it depends on the GPU, driver, CUDA version and loaded libraries (commonly a few
hundred MiB); set it per run."""


def format_size(n: float) -> str:
    """Bytes as PyTorch's allocator prints them in its messages: c10/cuda/CUDACachingAllocator.cpp
    ``format_size`` (pytorch/pytorch): ``size <= 1024`` -> "N bytes", ``<= 1048576`` -> KiB,
    ``<= 1073741824`` -> MiB, else GiB, two decimals (std::fixed, precision 2). The bounds are
    inclusive, so exact powers of 1024 print in the smaller unit: 1024 -> "1024 bytes",
    1 GiB -> "1024.00 MiB"."""
    n = int(n)
    if n <= KiB:
        return f"{n} bytes"
    if n <= MiB:
        return f"{n / KiB:.2f} KiB"
    if n <= GiB:
        return f"{n / MiB:.2f} MiB"
    return f"{n / GiB:.2f} GiB"


def parse_bytes(text: str, where: str = "size") -> int:
    """Bytes from 512, 20MiB or 1.5GiB (binary units); see :func:`gpuinfra.units.parse_size`."""
    from gpuinfra.units import parse_size

    return parse_size(text, where)


@dataclass(frozen=True)
class AllocatorConfig:
    """PYTORCH_CUDA_ALLOC_CONF (facts/gpu.md 8.3)."""

    max_split_size: int = math.inf  # type: ignore[assignment]
    max_non_split_rounding: int = 20 * MiB
    garbage_collection_threshold: float = 0.0
    expandable_segments: bool = False
    roundup_power2_divisions: int = 0
    memory_fraction: float = 1.0
    """torch.cuda.set_per_process_memory_fraction (1.0 = not set)."""

    @staticmethod
    def parse(text: str, memory_fraction: float = 1.0) -> AllocatorConfig:
        """Parse ``max_split_size_mb:128,garbage_collection_threshold:0.8,expandable_segments:True``."""
        kw: dict = {"memory_fraction": memory_fraction}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, sep, val = part.partition(":")
            key = key.strip()
            try:
                if not sep:
                    raise ValueError
                if key == "max_split_size_mb":
                    mb = int(val)
                    if mb < LARGE_BUFFER // MiB:
                        raise UserError(
                            f"max_split_size_mb {mb} is below 20",
                            where="PYTORCH_CUDA_ALLOC_CONF",
                            expected="at least 20 (MiB)",
                        )
                    kw["max_split_size"] = mb * MiB
                elif key == "max_non_split_rounding_mb":
                    kw["max_non_split_rounding"] = int(val) * MiB
                elif key == "garbage_collection_threshold":
                    f = float(val)
                    if not 0.0 < f < 1.0:
                        raise UserError(
                            f"garbage_collection_threshold {f}",
                            where="PYTORCH_CUDA_ALLOC_CONF",
                            expected="a value between 0 and 1 (exclusive)",
                        )
                    kw["garbage_collection_threshold"] = f
                elif key == "expandable_segments":
                    # PyTorch's parser accepts exactly True or False (c10/cuda/CUDAAllocatorConfig.cpp:
                    # "Expected a single True/False argument for expandable_segments")
                    if val.strip() not in ("True", "False"):
                        raise UserError(
                            f"expandable_segments:{val.strip()}",
                            where="PYTORCH_CUDA_ALLOC_CONF",
                            expected="expandable_segments:True or expandable_segments:False",
                        )
                    kw["expandable_segments"] = val.strip() == "True"
                elif key == "roundup_power2_divisions":
                    d = int(val)
                    if d and d & (d - 1):
                        raise UserError(
                            f"roundup_power2_divisions {d}",
                            where="PYTORCH_CUDA_ALLOC_CONF",
                            expected="a power of two or 0",
                        )
                    kw["roundup_power2_divisions"] = d
                elif key in (
                    "backend",
                    "pinned_use_cuda_host_register",
                    "pinned_num_register_threads",
                    "pinned_use_background_threads",
                    "release_lock_on_cudamalloc",
                ):
                    continue  # no effect on device fragmentation
                else:
                    raise UserError(
                        f"unknown option '{key}'",
                        where="PYTORCH_CUDA_ALLOC_CONF",
                        expected="max_split_size_mb, max_non_split_rounding_mb, garbage_collection_threshold, expandable_segments or roundup_power2_divisions",
                    )
            except ValueError:
                raise UserError(
                    f"bad option '{part}'",
                    where="PYTORCH_CUDA_ALLOC_CONF",
                    expected="key:value pairs separated by commas",
                ) from None
        if not 0.0 < memory_fraction <= 1.0:
            raise UserError(
                f"memory fraction {memory_fraction}", where="--memory-fraction", expected="0 < fraction <= 1"
            )
        return AllocatorConfig(**kw)


class Gpu:
    """One device: its total memory and who has mapped what (bytes)."""

    def __init__(self, total: int, others: dict[int, int] | None = None, index: int = 0):
        self.total = int(total)
        self.index = index
        self.others = dict(others or {})
        """pid -> bytes held by processes outside the simulation (nvidia-smi shows them)."""
        self.processes: list[CachingAllocator] = []

    def used(self) -> int:
        return sum(self.others.values()) + sum(p.context_bytes + p.reserved for p in self.processes)

    def free(self) -> int:
        return self.total - self.used()


@dataclass
class Block:
    segment: int
    offset: int
    size: int
    allocated: bool = False
    requested: int = 0
    name: str = ""
    gc_age: int = 0


@dataclass
class Segment:
    sid: int
    pool: str
    size: int
    blocks: list[Block] = field(default_factory=list)
    expandable: bool = False
    page: int = 0
    mapped: set[int] = field(default_factory=set)
    """Expandable segments: indices of the physical pages mapped into the virtual range."""

    @property
    def reserved(self) -> int:
        return len(self.mapped) * self.page if self.expandable else self.size


class OutOfMemoryError(Exception):
    """torch.OutOfMemoryError, with PyTorch's message."""

    def __init__(self, message: str, alloc_size: int):
        super().__init__(message)
        self.message = message
        self.alloc_size = alloc_size

    def __str__(self) -> str:
        return f"torch.OutOfMemoryError: {self.message}"


@dataclass
class Stats:
    allocated: int = 0
    requested: int = 0
    reserved: int = 0
    peak_allocated: int = 0
    peak_reserved: int = 0
    num_alloc_retries: int = 0
    num_ooms: int = 0
    num_device_alloc: int = 0
    num_device_free: int = 0


class CachingAllocator:
    """One process's allocator on a :class:`Gpu`."""

    def __init__(
        self,
        gpu: Gpu,
        config: AllocatorConfig | None = None,
        pid: int = 1000,
        context_bytes: int = DEFAULT_CONTEXT_BYTES,
    ):
        self.gpu = gpu
        self.cfg = config or AllocatorConfig()
        self.pid = pid
        self.context_bytes = int(context_bytes)
        self.segments: dict[int, Segment] = {}
        self.free_blocks: dict[str, list[tuple[int, int, int]]] = {"small": [], "large": []}
        """pool -> sorted (size, segment, offset) of cached free blocks."""
        self.live: dict[str, Block] = {}
        self.stats = Stats()
        self._next_sid = 0
        gpu.processes.append(self)

    # -- public interface -------------------------------------------------------------------
    @property
    def reserved(self) -> int:
        return self.stats.reserved

    @property
    def allocated(self) -> int:
        return self.stats.allocated

    def allowed(self) -> int:
        return int(self.cfg.memory_fraction * self.gpu.total) if self.cfg.memory_fraction < 1.0 else self.gpu.total

    def malloc(self, size: int, name: str = "") -> Block:
        if size < 0:
            raise UserError(f"negative allocation {size}", where=name or "malloc")
        name = name or f"t{len(self.live)}"
        if name in self.live:
            raise UserError(f"'{name}' is already allocated", where=name, expected="a new tensor name (free it first)")
        rounded = self.round_size(size)
        pool = "small" if rounded <= SMALL_SIZE else "large"
        self._age(pool)
        if self.cfg.expandable_segments:
            blk = self._malloc_expandable(pool, rounded)
            if blk is None:
                self.stats.num_ooms += 1
                raise OutOfMemoryError(self.oom_message(self.allocation_size(rounded)), self.allocation_size(rounded))
            return self._finish(blk, pool, rounded, size, name)
        blk = self._get_free_block(pool, rounded)
        if blk is None:
            if self.cfg.memory_fraction < 1.0 and self.cfg.garbage_collection_threshold > 0:
                self._garbage_collect()
            alloc_size = self.allocation_size(rounded)
            blk = self._alloc_block(pool, rounded, alloc_size)
            if blk is None and self._release_available_cached_blocks(rounded):
                blk = self._alloc_block(pool, rounded, alloc_size)
            if blk is None:
                self.stats.num_alloc_retries += 1
                self._release_cached_blocks()
                blk = self._alloc_block(pool, rounded, alloc_size)
            if blk is None:
                self.stats.num_ooms += 1
                raise OutOfMemoryError(self.oom_message(alloc_size), alloc_size)
        return self._finish(blk, pool, rounded, size, name)

    def _finish(self, blk: Block, pool: str, rounded: int, size: int, name: str) -> Block:
        blk = self._split(blk, pool, rounded)
        blk.allocated, blk.requested, blk.name = True, size, name
        self.live[name] = blk
        self.stats.allocated += blk.size
        self.stats.requested += size
        self.stats.peak_allocated = max(self.stats.peak_allocated, self.stats.allocated)
        return blk

    def free(self, name: str) -> None:
        blk = self.live.pop(name, None)
        if blk is None:
            raise UserError(f"'{name}' is not allocated", where=name, expected="the name of a live tensor")
        self.stats.allocated -= blk.size
        self.stats.requested -= blk.requested
        blk.allocated, blk.requested, blk.name, blk.gc_age = False, 0, "", 0
        seg = self.segments[blk.segment]
        i = seg.blocks.index(blk)
        # merge with free neighbours of the same segment
        if i + 1 < len(seg.blocks) and not seg.blocks[i + 1].allocated:
            nxt = seg.blocks.pop(i + 1)
            self._unlist(seg.pool, nxt)
            blk.size += nxt.size
        if i > 0 and not seg.blocks[i - 1].allocated:
            prev = seg.blocks[i - 1]
            self._unlist(seg.pool, prev)
            prev.size += blk.size
            seg.blocks.pop(i)
            blk = prev
        self._list(seg.pool, blk)

    def empty_cache(self) -> None:
        """torch.cuda.empty_cache(): give every whole free segment back to the device."""
        self._release_cached_blocks()

    # -- sizes -------------------------------------------------------------------------------
    def round_size(self, size: int) -> int:
        if size < MIN_BLOCK:
            return MIN_BLOCK
        d = self.cfg.roundup_power2_divisions
        if d > 0 and size > MIN_BLOCK * d:
            return self._roundup_power2(size, d)
        return MIN_BLOCK * ((size + MIN_BLOCK - 1) // MIN_BLOCK)

    @staticmethod
    def _roundup_power2(size: int, d: int) -> int:
        """Each power-of-two interval split into d steps; round up to the next step."""
        if size <= 4:
            return size
        floor = 1 << (size.bit_length() - 1)
        if floor == size:
            return size
        step = floor // d
        if step == 0:
            return MIN_BLOCK * ((size + MIN_BLOCK - 1) // MIN_BLOCK)
        out = floor + step * ((size - floor + step - 1) // step)
        return MIN_BLOCK * ((out + MIN_BLOCK - 1) // MIN_BLOCK)

    def allocation_size(self, rounded: int) -> int:
        """What cudaMalloc is asked for (facts/gpu.md 8.1)."""
        if rounded <= SMALL_SIZE:
            return SMALL_BUFFER
        if rounded < MIN_LARGE_ALLOC:
            return LARGE_BUFFER
        return ROUND_LARGE * ((rounded + ROUND_LARGE - 1) // ROUND_LARGE)

    # -- pools -------------------------------------------------------------------------------
    def _list(self, pool: str, b: Block) -> None:
        bisect.insort(self.free_blocks[pool], (b.size, b.segment, b.offset))

    def _unlist(self, pool: str, b: Block) -> None:
        lst = self.free_blocks[pool]
        i = bisect.bisect_left(lst, (b.size, b.segment, b.offset))
        assert lst[i] == (b.size, b.segment, b.offset), "free list out of sync"
        lst.pop(i)

    def _block_at(self, seg: int, off: int) -> Block:
        for b in self.segments[seg].blocks:
            if b.offset == off:
                return b
        raise AssertionError("no block at offset")

    def _age(self, pool: str) -> None:
        if self.cfg.garbage_collection_threshold > 0 and pool == "large":
            for _size, sid, off in self.free_blocks["large"]:
                self._block_at(sid, off).gc_age += 1

    def _get_free_block(self, pool: str, rounded: int) -> Block | None:
        lst = self.free_blocks[pool]
        i = bisect.bisect_left(lst, (rounded, -1, -1))
        if i == len(lst):
            return None
        size, sid, off = lst[i]
        mss = self.cfg.max_split_size
        if rounded < mss and size >= mss:
            return None  # do not split an oversize cached block for a small request
        if rounded >= mss and size >= rounded + self.cfg.max_non_split_rounding:
            return None  # an oversize request may not waste more than max_non_split_rounding
        lst.pop(i)
        return self._block_at(sid, off)

    def _alloc_block(self, pool: str, rounded: int, alloc_size: int) -> Block | None:
        if self.stats.reserved + alloc_size > self.allowed():
            return None  # per-process memory fraction
        if alloc_size > self.gpu.free():
            return None  # cudaMalloc fails
        sid = self._next_sid
        self._next_sid += 1
        seg = Segment(sid, pool, alloc_size)
        blk = Block(sid, 0, alloc_size)
        seg.blocks.append(blk)
        self.segments[sid] = seg
        self.stats.reserved += alloc_size
        self.stats.peak_reserved = max(self.stats.peak_reserved, self.stats.reserved)
        self.stats.num_device_alloc += 1
        return blk

    # -- expandable segments ------------------------------------------------------------------
    def _malloc_expandable(self, pool: str, rounded: int) -> Block | None:
        """Best fit in the pool's one virtual segment, else grow it at the end; then map the
        pages the block covers. If mapping fails, unmap every free page and try once more."""
        for attempt in range(2):
            blk = self._get_free_block(pool, rounded)
            if blk is None:
                blk = self._grow(pool, rounded)
            if self._map(blk, rounded):
                return blk
            self._list(pool, blk)
            if attempt == 0:
                self.stats.num_alloc_retries += 1
                self._release_cached_blocks()
        return None

    def _grow(self, pool: str, rounded: int) -> Block:
        """Extend the virtual range so its free tail holds ``rounded`` bytes (no memory yet)."""
        page = SMALL_BUFFER if pool == "small" else LARGE_BUFFER
        seg = next((x for x in self.segments.values() if x.pool == pool and x.expandable), None)
        if seg is None:
            seg = Segment(self._next_sid, pool, 0, expandable=True, page=page)
            self._next_sid += 1
            self.segments[seg.sid] = seg
        tail = seg.blocks[-1] if seg.blocks and not seg.blocks[-1].allocated else None
        have = tail.size if tail else 0
        grow = page * math.ceil((rounded - have) / page)
        if tail:
            self._unlist(pool, tail)
            tail.size += grow
        else:
            tail = Block(seg.sid, seg.size, grow)
            seg.blocks.append(tail)
        seg.size += grow
        return tail

    def _map(self, blk: Block, rounded: int) -> bool:
        seg = self.segments[blk.segment]
        first, last = blk.offset // seg.page, (blk.offset + rounded - 1) // seg.page
        need = [p for p in range(first, last + 1) if p not in seg.mapped]
        cost = len(need) * seg.page
        if cost and (self.stats.reserved + cost > self.allowed() or cost > self.gpu.free()):
            return False
        if need:
            seg.mapped.update(need)
            self.stats.reserved += cost
            self.stats.peak_reserved = max(self.stats.peak_reserved, self.stats.reserved)
            self.stats.num_device_alloc += 1
        return True

    def _unmap_free_pages(self, seg: Segment) -> bool:
        used = set()
        for b in seg.blocks:
            if b.allocated:
                used.update(range(b.offset // seg.page, (b.offset + b.size - 1) // seg.page + 1))
        drop = seg.mapped - used
        if not drop:
            return False
        seg.mapped -= drop
        self.stats.reserved -= len(drop) * seg.page
        self.stats.num_device_free += 1
        return True

    def _split(self, blk: Block, pool: str, rounded: int) -> Block:
        rem = blk.size - rounded
        seg = self.segments[blk.segment]
        if pool == "small" or seg.expandable:
            split = rem >= MIN_BLOCK
        else:
            split = rounded < self.cfg.max_split_size and rem > SMALL_SIZE
        if not split:
            return blk
        rest = Block(blk.segment, blk.offset + rounded, rem)
        blk.size = rounded
        seg.blocks.insert(seg.blocks.index(blk) + 1, rest)
        self._list(pool, rest)
        return blk

    def _release_segment(self, seg: Segment) -> None:
        for b in seg.blocks:
            self._unlist(seg.pool, b)
        self.stats.reserved -= seg.size
        self.stats.num_device_free += 1
        del self.segments[seg.sid]

    def _whole_free(self) -> list[Segment]:
        return [
            s for s in self.segments.values() if not s.expandable and len(s.blocks) == 1 and not s.blocks[0].allocated
        ]

    def _release_cached_blocks(self) -> bool:
        """Free every non-split cached block (whole free segments) and unmap every free page of
        the expandable segments."""
        freed = False
        for seg in self._whole_free():
            self._release_segment(seg)
            freed = True
        for seg in [x for x in self.segments.values() if x.expandable]:
            freed |= self._unmap_free_pages(seg)
        return freed

    def _release_available_cached_blocks(self, rounded: int) -> bool:
        """Release cached oversize (>= max_split_size) whole segments until one fits or enough is freed."""
        mss = self.cfg.max_split_size
        if mss == math.inf:
            return False
        cands = sorted((s for s in self._whole_free() if s.pool == "large" and s.size >= mss), key=lambda s: s.size)
        if not cands:
            return False
        fit = next((s for s in cands if s.size >= rounded), None)
        if fit is not None:
            self._release_segment(fit)
            return True
        total = 0
        for s in reversed(cands):
            self._release_segment(s)
            total += s.size
            if total >= rounded:
                break
        return True

    def _garbage_collect(self) -> None:
        """Free aged, whole cached large segments until reserved <= threshold x allowed."""
        limit = self.cfg.garbage_collection_threshold * self.allowed()
        if self.stats.reserved <= limit:
            return
        while self.stats.reserved > limit:
            cands = [s for s in self._whole_free() if s.pool == "large"]
            if not cands:
                return
            avg = sum(s.blocks[0].gc_age for s in cands) / len(cands)
            old = [s for s in cands if s.blocks[0].gc_age >= avg]
            for s in old:
                self._release_segment(s)
                if self.stats.reserved <= limit:
                    return

    # -- what a user reads -------------------------------------------------------------------
    def inactive_split(self) -> int:
        """Free bytes inside partly used segments: cannot go back to the device (expandable excluded)."""
        return sum(
            b.size
            for s in self.segments.values()
            if not s.expandable and len(s.blocks) > 1
            for b in s.blocks
            if not b.allocated
        )

    def largest_free_block(self) -> int:
        return max((lst[-1][0] for lst in self.free_blocks.values() if lst), default=0)

    def memory_stats(self) -> dict[str, int]:
        """A subset of torch.cuda.memory_stats() keys (facts/gpu.md 8.4), pool 'all'."""
        st = self.stats
        return {
            "allocated_bytes.all.current": st.allocated,
            "allocated_bytes.all.peak": st.peak_allocated,
            "requested_bytes.all.current": st.requested,
            "reserved_bytes.all.current": st.reserved,
            "reserved_bytes.all.peak": st.peak_reserved,
            "active_bytes.all.current": st.allocated,
            "inactive_split_bytes.all.current": self.inactive_split(),
            "segment.all.current": len(self.segments),
            "allocation.all.current": len(self.live),
            "num_alloc_retries": st.num_alloc_retries,
            "num_ooms": st.num_ooms,
            "num_device_alloc": st.num_device_alloc,
            "num_device_free": st.num_device_free,
        }

    def oom_message(self, alloc_size: int) -> str:
        """PyTorch >= 2.1's message (facts/gpu.md 8.5)."""
        g = self.gpu
        procs = "".join(f"Process {pid} has {format_size(b)} memory in use. " for pid, b in sorted(g.others.items()))
        procs += "".join(
            f"Process {p.pid} has {format_size(p.context_bytes + p.reserved)} memory in use. "
            for p in g.processes
            if p is not self
        )
        allowed = f"{format_size(self.allowed())} allowed; " if self.cfg.memory_fraction < 1.0 else ""
        return (
            f"CUDA out of memory. Tried to allocate {format_size(alloc_size)}. GPU {g.index} has a total capacity of "
            f"{format_size(g.total)} of which {format_size(max(g.free(), 0))} is free. {procs}Including non-PyTorch memory, "
            f"this process has {format_size(self.context_bytes + self.reserved)} memory in use. {allowed}Of the allocated memory "
            f"{format_size(self.allocated)} is allocated by PyTorch, and {format_size(self.reserved - self.allocated)} is reserved "
            "by PyTorch but unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory Management  "
            "(https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
        )

    def snapshot(self) -> list[dict]:
        """Segments and their blocks (in the spirit of torch.cuda.memory._snapshot())."""
        return [
            {
                "segment": s.sid,
                "pool": s.pool,
                "size": s.size,
                "reserved": s.reserved,
                "expandable": s.expandable,
                "blocks": [
                    {
                        "offset": b.offset,
                        "size": b.size,
                        "state": "active_allocated" if b.allocated else "inactive",
                        "name": b.name,
                    }
                    for b in s.blocks
                ],
            }
            for s in sorted(self.segments.values(), key=lambda s: s.sid)
        ]

    def check(self) -> None:
        """Internal consistency (used by tests): blocks tile segments, free lists match, sums add up."""
        alloc = 0
        free_set = set()
        for s in self.segments.values():
            off = 0
            for b in s.blocks:
                assert b.offset == off and b.size > 0
                off += b.size
                if b.allocated:
                    alloc += b.size
                else:
                    free_set.add((b.size, s.sid, b.offset))
            assert off == s.size
            for a, b in zip(s.blocks, s.blocks[1:]):
                assert a.allocated or b.allocated, "adjacent free blocks were not merged"
            if s.expandable:
                for b in s.blocks:
                    if b.allocated:
                        assert all(
                            p in s.mapped for p in range(b.offset // s.page, (b.offset + b.size - 1) // s.page + 1)
                        )
        assert alloc == self.stats.allocated
        assert sum(s.reserved for s in self.segments.values()) == self.stats.reserved
        listed = set(self.free_blocks["small"]) | set(self.free_blocks["large"])
        assert listed == free_set
        assert self.stats.allocated <= self.stats.reserved <= self.gpu.total
