"""MIG placements against the published tables (facts/gpu.md 2.2-2.3, NVIDIA MIG user guide)."""

import json
from collections import Counter

import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.mig import (
    COMPUTE_SLICES,
    Instance,
    layouts,
    mig_profiles,
    parse_have,
    placements,
    profile,
    stranded_slices,
)
from tests.clirunner import gi


@pytest.mark.parametrize("gpu", ["A100-40GB", "A100-80GB", "H100-SXM", "H100-PCIe", "H200", "B200"])
def test_profile_tables(gpu):
    ps = {p.name: p for p in mig_profiles(gpu)}
    assert len(ps) == 7
    by_g = {(p.compute_slices, p.memory_slices, p.media_engines): p for p in ps.values()}
    # the lgipp output is the same for every MIG GPU here: IDs 19/20 {0..6}:1, 15 {0,2,4,6}:2,
    # 14 {0,2,4}:2, 9 {0,4}:4, 5 {0}:4, 0 {0}:8
    assert by_g[(1, 1, False)].placements == (0, 1, 2, 3, 4, 5, 6) and by_g[(1, 1, False)].max_count == 7
    assert by_g[(1, 1, True)].max_count == 1
    assert by_g[(1, 2, False)].placements == (0, 2, 4, 6) and by_g[(1, 2, False)].max_count == 4
    assert by_g[(2, 2, False)].placements == (0, 2, 4) and by_g[(2, 2, False)].max_count == 3
    assert by_g[(3, 4, False)].placements == (0, 4) and by_g[(3, 4, False)].max_count == 2
    assert by_g[(4, 4, False)].placements == (0,) and by_g[(7, 8, False)].placements == (0,)
    assert {p.profile_id for p in ps.values()} == {19, 20, 15, 14, 9, 5, 0}


def test_guide_examples():
    g = "A100-40GB"
    # 4g(0:4) + 3g(4:4) fills the GPU
    st = parse_have(g, "4g.20gb@0,3g.20gb@4")
    assert all(not placements(st, p) for p in mig_profiles(g))
    # the guide's 3-2-1-1 example ends at 0:1, 1:1, 2:2, 4:4
    parse_have(g, "3g.20gb@4,2g.10gb@2,1g.5gb@0,1g.5gb@1")
    # a 1g at slot 4 with another instance in 0-3 blocks both 3g placements
    st = parse_have(g, "1g.5gb@4,1g.5gb@0")
    assert placements(st, profile(g, "3g.20gb")) == []
    # a 2g cannot start at 6 even with 6-7 free
    assert placements(parse_have(g, "4g.20gb@0,2g.10gb@4"), profile(g, "2g.10gb")) == []


@pytest.mark.parametrize(
    "have",
    [
        "2g.10gb@6",
        "3g.20gb@2",
        "4g.20gb@4",
        "7g.40gb@0,1g.5gb@0",
        "3g.20gb@0,4g.20gb@0",
        "1g.5gb+me@0,1g.5gb+me@1",
        "1g.10gb@0,1g.10gb@2,1g.10gb@4,1g.10gb@6,1g.5gb@1",
    ],
)
def test_invalid_states_are_refused(have):
    with pytest.raises(UserError):
        parse_have("A100-40GB", have)


def test_every_layout_is_valid_and_the_documented_combinations_exist():
    for gpu in ("A100-40GB", "H100-SXM"):
        lays = layouts(gpu)
        shapes = set()
        for lay in lays:
            slots = [s for i in lay for s in i.slots]
            assert len(slots) == len(set(slots)) and max(slots) < 8  # never overlaps, never past slice 7
            assert sum(i.profile.compute_slices for i in lay) <= COMPUTE_SLICES
            counts = Counter(i.profile.name for i in lay)
            assert all(counts[p.name] <= p.max_count for p in mig_profiles(gpu))
            shapes.add(tuple(sorted((i.profile.compute_slices for i in lay), reverse=True)))
        # facts/gpu.md 2.3: combinations that fit include 4-2-1, 3-3, 3-2-1-1, 2-2-2-1 and 7 x 1g
        for combo in [(4, 2, 1), (3, 3), (3, 2, 1, 1), (2, 2, 2, 1), (1,) * 7]:
            assert combo in shapes, (gpu, combo)


def test_stranded_slices_are_mig_fragmentation():
    st = parse_have("H100-SXM", "3g.40gb@0,3g.40gb@4")
    assert stranded_slices(st, list(mig_profiles("H100-SXM"))) == []
    st = [
        Instance(profile("H100-SXM", "1g.10gb"), 0),
        Instance(profile("H100-SXM", "1g.10gb"), 2),
        Instance(profile("H100-SXM", "1g.10gb"), 4),
        Instance(profile("H100-SXM", "1g.10gb"), 6),
    ]
    # 1, 3, 5 are free but only 1g profiles fit them; 7 is usable by nothing (no 1g starts at 7)
    assert stranded_slices(st, [profile("H100-SXM", "2g.20gb")]) == [1, 3, 5, 7]
    assert stranded_slices(st, list(mig_profiles("H100-SXM"))) == [7]


def test_cli_fit_json():
    r = gi("mig", "fit", "A100-40GB", "--have", "3g.20gb@0", "--want", "2g.10gb", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["fits"] is True and d["start_slots"] == [4]
    assert d["why_not"] == {"0": "memory slice(s) 0, 1 already in use", "2": "memory slice(s) 2, 3 already in use"}
    r = gi("mig", "fit", "T4", "--want", "1g.5gb")
    assert r.returncode == 2 and "no MIG profiles" in r.stderr
    r = gi("mig", "fit", "H100", "--want", "2g.20gb", "--have", "2g.20gb@6")
    assert r.returncode == 2 and "cannot start at slot 6" in r.stderr
