"""MIG partitioning: which GPU-instance profiles fit a GPU in a given state, and where.

A MIG-capable GPU has 8 memory slices and 7 compute slices (NVIDIA MIG user guide). A GPU
instance of a profile occupies ``memory_slices`` contiguous memory slices starting at one of its
listed start slots (``nvidia-smi mig -lgipp``), and ``compute_slices`` of the 7 compute slices;
each profile has a maximum count per GPU, and at most one ``+me`` (media engines) instance may
exist. The placement tables are data (catalog/data/mig_profiles.csv, sources per row).
Fragmentation: free memory slices that no profile can use any more in the current state.
Reconfiguring instances needs the GPU idle (the guide's "reconfigure when idle").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

from gpuinfra.catalog._data import read_csv_rows
from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError, did_you_mean

MEMORY_SLICES = 8
COMPUTE_SLICES = 7


@dataclass(frozen=True, slots=True)
class MigProfile:
    gpu: str
    name: str
    profile_id: int
    compute_slices: int
    memory_slices: int
    max_count: int
    memory_gib: float
    sm_count: int
    """0 where no real reading is published (B200's 3g and larger)."""
    placements: tuple[int, ...]
    media_engines: bool
    source: str


@dataclass(frozen=True, slots=True)
class Instance:
    profile: MigProfile
    start: int

    @property
    def slots(self) -> range:
        return range(self.start, self.start + self.profile.memory_slices)

    def __str__(self) -> str:
        return f"{self.profile.name}@{self.start}"


@cache
def _all_profiles() -> tuple[MigProfile, ...]:
    return tuple(
        MigProfile(
            r["gpu"],
            r["profile"],
            int(r["profile_id"]),
            int(r["compute_slices"]),
            int(r["memory_slices"]),
            int(r["max_count"]),
            float(r["memory_gib"]),
            int(r["sm_count"]) if r["sm_count"] else 0,
            tuple(int(x) for x in r["placements"].split("|")),
            r["media_engines"] == "true",
            r["source"],
        )
        for r in read_csv_rows("mig_profiles.csv")
    )


def mig_profiles(gpu: str) -> tuple[MigProfile, ...]:
    m = gpu_model(gpu, where="GPU")
    out = tuple(p for p in _all_profiles() if p.gpu == m.name)
    if not out:
        raise UserError(
            f"{m.name} has no MIG profiles in the catalog",
            expected="a MIG-capable GPU: " + ", ".join(sorted({p.gpu for p in _all_profiles()})),
        )
    return out


def profile(gpu: str, name: str) -> MigProfile:
    for p in mig_profiles(gpu):
        if p.name == name:
            return p
    names = [p.name for p in mig_profiles(gpu)]
    raise UserError(
        f"unknown MIG profile '{name}' for {gpu_model(gpu).name}",
        expected="one of " + ", ".join(names),
        fix=did_you_mean(name, names) or f"see `gpuinfra mig profiles {gpu_model(gpu).name}`",
    )


def why_not(state: list[Instance], p: MigProfile, start: int) -> str | None:
    """None if ``p`` can be created at ``start`` in ``state``, else the reason."""
    if start not in p.placements:
        return f"{p.name} cannot start at slot {start} (valid starts: {', '.join(map(str, p.placements))})"
    used = {s for inst in state for s in inst.slots}
    clash = sorted(used & set(range(start, start + p.memory_slices)))
    if clash:
        return f"memory slice(s) {', '.join(map(str, clash))} already in use"
    if sum(i.profile.compute_slices for i in state) + p.compute_slices > COMPUTE_SLICES:
        return f"not enough compute slices ({COMPUTE_SLICES - sum(i.profile.compute_slices for i in state)} left)"
    if sum(1 for i in state if i.profile.name == p.name) >= p.max_count:
        return f"at most {p.max_count} x {p.name} per GPU"
    if p.media_engines and any(i.profile.media_engines for i in state):
        return "only one +me instance per GPU"
    return None


def placements(state: list[Instance], p: MigProfile) -> list[int]:
    return [s for s in p.placements if why_not(state, p, s) is None]


def validate(state: list[Instance]) -> None:
    """Raise UserError if the instances could not coexist (checked in creation order)."""
    built: list[Instance] = []
    for inst in state:
        why = why_not(built, inst.profile, inst.start)
        if why:
            raise UserError(f"{inst}: {why}", where="--have", expected="instances that can coexist on one GPU")
        built.append(inst)


def layouts(gpu: str, *, include_me: bool = False) -> list[tuple[Instance, ...]]:
    """Every maximal set of instances (no profile fits any more), as sorted (start, name) tuples."""
    profs = [p for p in mig_profiles(gpu) if include_me or not p.media_engines]
    seen: set[tuple[tuple[int, str], ...]] = set()
    out: list[tuple[Instance, ...]] = []

    def rec(state: list[Instance]) -> None:
        grew = False
        for p in profs:
            for s in placements(state, p):
                grew = True
                nxt = [*state, Instance(p, s)]
                key = tuple(sorted((i.start, i.profile.name) for i in nxt))
                if key in seen:
                    continue
                seen.add(key)
                rec(nxt)
        if not grew:
            out.append(tuple(sorted(state, key=lambda i: i.start)))

    rec([])
    uniq = {tuple((i.start, i.profile.name) for i in lay): lay for lay in out}
    return [uniq[k] for k in sorted(uniq)]


def stranded_slices(state: list[Instance], wanted: list[MigProfile]) -> list[int]:
    """Free memory slices that none of the ``wanted`` profiles can use in this state."""
    used = {s for i in state for s in i.slots}
    usable: set[int] = set()
    for p in wanted:
        for s in placements(state, p):
            usable |= set(range(s, s + p.memory_slices))
    return sorted(set(range(MEMORY_SLICES)) - used - usable)


def parse_have(gpu: str, text: str) -> list[Instance]:
    from gpuinfra.units import parse_names

    out = []
    for part in parse_names(text, "--have"):
        name, sep, start = part.partition("@")
        if not sep or not start.strip().isdigit():
            raise UserError(f"'{part}' is not PROFILE@START_SLOT", where="--have", expected="e.g. 3g.20gb@0,1g.5gb@6")
        out.append(Instance(profile(gpu, name.strip()), int(start)))
    validate(out)
    return out


def mig_milli(gpu: str, profile_name: str) -> int:
    """A MIG instance's share of the GPU's compute in milli-GPU: 1000 x compute slices // 7 (the
    scheduler's accounting unit; an A100/H100 has 7 compute slices). Raises UserError for an
    unknown GPU or profile."""
    return 1000 * profile(gpu, profile_name).compute_slices // 7


def mig_gpus() -> tuple[str, ...]:
    """The catalog GPUs that have MIG profiles (catalog/data/mig_profiles.csv), in table order."""
    return tuple(dict.fromkeys(p.gpu for p in _all_profiles()))


@cache
def _layout_names(gpu: str) -> tuple[tuple[str, ...], ...]:
    """Every maximal layout of ``gpu`` without media engines (:func:`layouts`) as profile names,
    largest instance first."""
    out = []
    for lay in layouts(gpu):
        ps = sorted((i.profile for i in lay), key=lambda q: (-q.memory_slices, -q.compute_slices, q.name))
        out.append(tuple(q.name for q in ps))
    return tuple(dict.fromkeys(out))


def layout_trouble(gpu: str, names: list[str]) -> str:
    """Why the instances ``names`` cannot share one GPU: a profile above its count per GPU, more
    compute or memory slices than the GPU has, or (when those add up) start slots that collide.
    Unknown profiles raise UserError (:func:`profile`)."""
    profs = [profile(gpu, n) for n in names]
    why = []
    for name, n in Counter(names).items():
        p = profile(gpu, name)
        if n > p.max_count:
            why.append(f"{n} x {name}, at most {p.max_count} per GPU")
    c, m = sum(p.compute_slices for p in profs), sum(p.memory_slices for p in profs)
    if c > COMPUTE_SLICES:
        why.append(f"{c} compute slices of the {COMPUTE_SLICES}")
    if m > MEMORY_SLICES:
        why.append(f"{m} memory slices of the {MEMORY_SLICES}")
    if sum(p.media_engines for p in profs) > 1:
        why.append("more than one +me instance")
    return "; ".join(why) or "the slices add up but no choice of the profiles' start slots keeps them apart"


def suggest_layouts(gpu: str, names: list[str], k: int = 3) -> list[str]:
    """Up to ``k`` valid maximal layouts of ``gpu`` closest to ``names``: those holding its largest
    profile; most requested instances kept first, then most compute slices used, then fewest
    instances. Comma-joined names, largest instance first."""
    want = Counter(names)
    known = [n for n in names if n in {p.name for p in mig_profiles(gpu)}]
    biggest = (
        max((profile(gpu, n) for n in known), key=lambda q: (q.memory_slices, q.compute_slices)).name if known else None
    )
    ranked = sorted(
        (lay for lay in _layout_names(gpu) if biggest is None or biggest in lay),
        key=lambda lay: (
            -sum((want & Counter(lay)).values()),
            -sum(profile(gpu, n).compute_slices for n in lay),
            len(lay),
            lay,
        ),
    )
    return [",".join(lay) for lay in ranked[:k]]
