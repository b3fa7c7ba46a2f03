"""The one source of randomness: named, seeded streams.

Every random draw in gpuinfra comes from a stream of :class:`Rngs`, derived from one seed, so a
run is reproducible byte for byte and adding a draw in one stream never shifts another. The
simulator's subsystems get theirs through ``sim/kernel`` (each its own by name); Monte Carlo
models that never place work on a cluster (``models/reliability``) take one the same way.
"""

from __future__ import annotations

import zlib

import numpy as np

SUBSYSTEMS = ("workload", "scheduler", "faults", "sampling", "pricing")
"""The first streams, in their historical order (their spawn keys are 0..4)."""


class Rngs:
    """One numpy Generator per named stream, all derived from one seed.

    The streams in :data:`SUBSYSTEMS` are ``SeedSequence(seed).spawn(5)``; any other name gets
    ``SeedSequence(seed, spawn_key=(crc32(name) + 2**32,))``, a child no ``spawn`` call can
    produce, so a new subsystem's stream is stable, independent of registration order, and
    adding a draw in one stream never shifts another. The same name always returns the same
    Generator object within a run.
    """

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        children = np.random.SeedSequence(self.seed).spawn(len(SUBSYSTEMS))
        self._gens = {name: np.random.Generator(np.random.PCG64(c)) for name, c in zip(SUBSYSTEMS, children)}

    def stream(self, name: str) -> np.random.Generator:
        """The generator of stream ``name`` (created on first use)."""
        g = self._gens.get(name)
        if g is None:
            ss = np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(name.encode()) + 2**32,))
            g = self._gens[name] = np.random.Generator(np.random.PCG64(ss))
        return g

    def __getitem__(self, name: str) -> np.random.Generator:
        return self.stream(name)
