"""The caching-allocator model against hand-traced sequences, one documented rule at a time
(facts/gpu.md section 8), and properties over random sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.models.memory import (
    AllocatorConfig,
    CachingAllocator,
    GiB,
    Gpu,
    MiB,
    OutOfMemoryError,
    format_size,
)
from gpuinfra.models.memory_trace import SCENARIOS, parse_trace, run_trace, scenario


def alloc(total=1 * GiB, conf="", frac=1.0, others=None, context=0):
    g = Gpu(total, others)
    return g, CachingAllocator(g, AllocatorConfig.parse(conf, frac), context_bytes=context)


def test_rounding_to_512_and_the_small_pool():
    _, a = alloc()
    b = a.malloc(1, "x")
    assert b.size == 512 and a.memory_stats()["requested_bytes.all.current"] == 1
    a.malloc(513, "y")
    assert a.live["y"].size == 1024
    st_ = a.memory_stats()
    assert st_["reserved_bytes.all.current"] == 2 * MiB  # one kSmallBuffer segment for both
    assert st_["num_device_alloc"] == 1
    assert st_["inactive_split_bytes.all.current"] == 2 * MiB - 1536
    a.check()


def test_segment_sizes_by_request():
    _, a = alloc()
    a.malloc(5 * MiB, "mid")  # (1, 10) MiB -> a 20 MiB segment, split (remainder 15 MiB > 1 MiB)
    assert a.reserved == 20 * MiB and a.live["mid"].size == 5 * MiB
    assert a.inactive_split() == 15 * MiB
    a.malloc(11 * MiB, "in-rest")  # best fit: the cached 15 MiB remainder, split again (4 MiB left)
    assert a.reserved == 20 * MiB and a.live["in-rest"].size == 11 * MiB
    _, b = alloc()
    b.malloc(11 * MiB, "big")  # >= 10 MiB -> cudaMalloc 12 MiB; remainder 1 MiB is not > 1 MiB: no split
    assert b.reserved == 12 * MiB and b.live["big"].size == 12 * MiB and b.allocated == 12 * MiB
    a.check()
    b.check()


def test_best_fit_takes_the_smallest_block_that_fits():
    _, a = alloc()
    for n, s in (("a", 30), ("b", 40), ("c", 50)):
        a.malloc(s * MiB, n)
    for n in "abc":
        a.free(n)
    a.malloc(35 * MiB, "x")
    seg = a.segments[a.live["x"].segment]
    assert seg.size == 40 * MiB  # not the 50 MiB one
    assert [b.size for b in seg.blocks] == [35 * MiB, 5 * MiB]  # split: remainder 5 MiB > 1 MiB
    assert a.memory_stats()["num_device_alloc"] == 3
    a.check()


def test_max_split_size_rules():
    _, a = alloc(conf="max_split_size_mb:64")
    a.malloc(100 * MiB, "big")
    a.free("big")  # a cached 100 MiB block, >= max_split_size
    a.malloc(30 * MiB, "small")  # must not be carved out of the oversize block
    assert a.segments[a.live["small"].segment].size == 30 * MiB
    a.malloc(70 * MiB, "x")  # oversize, but 100 >= 70 + 20 (max_non_split_rounding): no reuse
    assert a.segments[a.live["x"].segment].size == 70 * MiB
    a.free("x")
    a.malloc(90 * MiB, "y")  # 100 < 90 + 20: reuses the cached 100 MiB block whole, unsplit
    assert a.live["y"].size == 100 * MiB and a.allocated == 130 * MiB
    a.check()
    with pytest.raises(UserError, match="below 20"):
        AllocatorConfig.parse("max_split_size_mb:8")


def test_free_merges_neighbours_and_empty_cache_returns_whole_segments():
    _, a = alloc()
    a.malloc(3 * MiB, "p")
    a.malloc(3 * MiB, "q")  # both inside one 20 MiB segment
    assert len(a.segments) == 1
    a.free("p")
    assert a.inactive_split() == 17 * MiB
    a.free("q")
    seg = next(iter(a.segments.values()))
    assert len(seg.blocks) == 1 and seg.blocks[0].size == 20 * MiB  # merged back
    assert a.inactive_split() == 0 and a.reserved == 20 * MiB  # cached, still reserved
    a.empty_cache()
    assert a.reserved == 0 and a.memory_stats()["num_device_free"] == 1
    a.check()


def test_free_and_retry_before_oom():
    g, a = alloc(total=200 * MiB)
    for i in range(8):
        a.malloc(5 * MiB, f"t{i}")  # 8 x 5 MiB over two 20 MiB segments
    for i in range(8):
        a.malloc(15 * MiB, f"u{i}")  # 16 MiB segments
    for i in range(8):
        a.free(f"u{i}")  # 128 MiB cached in whole free segments
    assert g.free() == 200 * MiB - 168 * MiB
    a.malloc(100 * MiB, "big")  # cudaMalloc fails, cached segments released, retry succeeds
    st_ = a.memory_stats()
    assert st_["num_alloc_retries"] == 1 and st_["num_ooms"] == 0
    assert a.reserved == 40 * MiB + 100 * MiB
    a.check()


def test_oom_message_is_pytorchs():
    g, a = alloc(total=1 * GiB, others={4242: 512 * MiB}, context=100 * MiB)
    a.malloc(300 * MiB, "w")
    a.malloc(3 * MiB, "small")
    a.free("small")
    with pytest.raises(OutOfMemoryError) as e:
        a.malloc(200 * MiB, "x")
    assert str(e.value) == (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 200.00 MiB. GPU 0 has a total capacity of "
        "1024.00 MiB of which 112.00 MiB is free. Process 4242 has 512.00 MiB memory in use. "
        "Including non-PyTorch memory, this process has 400.00 MiB memory in use. "
        "Of the allocated memory 300.00 MiB is allocated by PyTorch, and "
        "0 bytes is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting "
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory "
        "Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
    )
    # the free-and-retry path ran first: the cached 20 MiB segment went back before the OOM
    assert a.memory_stats()["num_ooms"] == 1 and a.memory_stats()["num_alloc_retries"] == 1
    assert a.reserved == 300 * MiB


def test_tried_to_allocate_is_the_segment_size():
    _, a = alloc(total=10 * MiB)
    with pytest.raises(OutOfMemoryError, match=r"Tried to allocate 20\.00 MiB\."):
        a.malloc(5 * MiB, "x")  # a 5 MiB tensor asks cudaMalloc for a 20 MiB segment


def test_memory_fraction_is_allowed_memory():
    g, a = alloc(total=1 * GiB, frac=0.25)
    a.malloc(200 * MiB, "a")
    with pytest.raises(OutOfMemoryError, match=r"256\.00 MiB allowed; "):
        a.malloc(100 * MiB, "b")
    assert g.free() > 700 * MiB  # the device had room; the fraction did not


def test_garbage_collection_threshold():
    g, a = alloc(total=1 * GiB, conf="garbage_collection_threshold:0.5", frac=0.5)  # 512 MiB allowed, GC above 256
    for i in range(6):
        a.malloc(50 * MiB, f"t{i}")
    for i in range(6):
        a.free(f"t{i}")
    assert a.reserved == 300 * MiB
    a.malloc(60 * MiB, "x")  # no cached block fits: GC frees aged cached segments down to <= 256 MiB first
    assert a.reserved <= 256 * MiB + 60 * MiB
    assert a.memory_stats()["num_alloc_retries"] == 0
    a.check()


def test_roundup_power2_divisions():
    _, a = alloc(total=4 * GiB, conf="roundup_power2_divisions:4")
    assert a.round_size(1200 * MiB) == 1280 * MiB  # facts/gpu.md 8.3's example
    assert a.round_size(1024 * MiB) == 1024 * MiB
    assert a.round_size(1000) == 1024  # tiny sizes keep 512-byte rounding (size <= 512 x D)


def test_expandable_segments_grow_in_place():
    _, a = alloc(conf="expandable_segments:True")
    a.malloc(30 * MiB, "a")
    a.malloc(30 * MiB, "b")
    assert len(a.segments) == 1 and a.reserved == 60 * MiB  # 3 pages of 20 MiB
    a.free("a")
    a.malloc(50 * MiB, "c")  # the 30 MiB hole + growth at the end: one segment still
    assert len(a.segments) == 1 and a.inactive_split() == 0
    a.empty_cache()
    a.check()


def test_format_size_is_pytorchs():
    # c10/cuda/CUDACachingAllocator.cpp format_size: size <= 1024 bytes, <= 1 MiB KiB, <= 1 GiB MiB, else GiB
    cases = {
        0: "0 bytes",
        1023: "1023 bytes",
        1024: "1024 bytes",
        1025: "1.00 KiB",
        MiB - 1: "1024.00 KiB",
        MiB: "1024.00 KiB",
        MiB + 1: "1.00 MiB",
        20 * MiB: "20.00 MiB",
        GiB: "1024.00 MiB",
        GiB + 1: "1.00 GiB",
        int(3.15 * GiB): "3.15 GiB",
    }
    assert {x: format_size(x) for x in cases} == cases


def test_oom_total_capacity_is_cudas_not_nvidia_smis():
    from gpuinfra.catalog.gpus import gpu_model
    from gpuinfra.models.memory_trace import gpu_total

    # what published PyTorch OOM messages print as "total capacity" (catalog cuda_total_source)
    published = {"H100-SXM": "79.18 GiB", "B200": "178.36 GiB", "H200": "139.72 GiB"}
    for name, text in published.items():
        total, _ = gpu_total(name, "t")
        assert format_size(total) == text, name
    h100 = gpu_model("H100-SXM")
    assert h100.cuda_total_mib < h100.memory_visible_mib  # nvidia-smi's 81559 MiB prints as 79.65 GiB
    assert format_size(h100.memory_visible_mib * MiB) == "79.65 GiB"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_show_free_memory_is_not_enough(name):
    r = run_trace(scenario(name))
    assert r.oom is not None, name
    o = r.oom
    # at the moment of the OOM, memory the process does not use exists: cached, or on the device
    assert o["cached_free"] + o["device_free"] > 0
    if name == "variable-batch":
        assert o["device_free"] + o["cached_free"] > o["size"]  # 8 GiB are free or cached, and still no
        assert run_trace(scenario(name), "expandable_segments:True").oom is None
    if name == "interleaved":
        assert (
            o["cached_free"] >= 40 * o["size"] and o["largest_free_block"] < o["size"]
        )  # 960 MiB cached, in 12 MiB holes
    if name == "cached-not-free":
        assert [x["proc"] for x in r.ooms] == ["B"] and r.rows[-1]["ok"]  # B2 starts after A's empty_cache


def test_trace_errors_name_the_line():
    with pytest.raises(UserError, match=r"t\.txt:3.*cannot read 'alloc x'"):
        parse_trace("gpu T4\nalloc a 1MiB\nalloc x\n", "t.txt")
    with pytest.raises(UserError, match=r"t\.txt:1.*unknown GPU model"):
        parse_trace("gpu T5\n", "t.txt")
    with pytest.raises(UserError, match=r"t\.txt:2.*unknown option 'max_split'"):
        parse_trace("gpu T4\nconfig max_split:3\n", "t.txt")
    with pytest.raises(UserError, match="no 'gpu' line"):
        parse_trace("alloc a 1MiB\n", "t.txt")
    with pytest.raises(UserError, match=r"t\.txt:2.*'b' is not allocated"):
        run_trace(parse_trace("gpu T4\nfree b\n", "t.txt"))


ops = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "alloc", "alloc", "free", "empty"]), st.integers(0, 40), st.integers(1, 64 * MiB)
    ),
    max_size=60,
)


@settings(max_examples=120, deadline=None)
@given(ops, st.sampled_from(["", "expandable_segments:True", "max_split_size_mb:32", "roundup_power2_divisions:2"]))
def test_invariants_on_random_sequences(seq, conf):
    g, a = alloc(total=256 * MiB, conf=conf)
    live: dict[str, int] = {}
    for kind, k, size in seq:
        name = f"t{k}"
        if kind == "alloc" and name not in live:
            try:
                a.malloc(size, name)
                live[name] = size
            except OutOfMemoryError:
                pass
        elif kind == "free" and name in live:
            a.free(name)
            del live[name]
        elif kind == "empty":
            a.empty_cache()
        a.check()
        assert a.allocated <= a.reserved <= g.total
        assert a.memory_stats()["requested_bytes.all.current"] == sum(live.values())
    for name in list(live):
        a.free(name)
    assert a.allocated == 0
    a.empty_cache()
    assert a.reserved == 0  # every byte taken from the device went back
