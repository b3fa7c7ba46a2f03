"""GPU fragmentation as the FGD paper defines it (Weng et al., USENIX ATC '23, Sec. 3-4).

Fragmentation is measured against a *target workload*: the "typical pods", the pod classes
(CPU, milli-GPU per GPU, GPU count, allowed GPU models) that cover 95% of the workload's pods,
with their frequencies ``p_m`` renormalised to 1 (artifact flag ``--pod-popularity-threshold
95``; CPU-only pods included). A node's fragmentation is the GPU milli that a typical pod
could not use, in expectation:

- a CPU-only class (XL or XR in the paper) counts *all* the node's idle GPU milli;
- a class whose GPU model the node lacks (no-access) counts all idle milli;
- a class that fits (Q3: k GPUs each with >= its milli free, and the CPU) counts only the milli
  on GPUs too small for it (free < milli);
- a class that does not fit (Q1, Q2, Q4) counts all idle milli.

``F_n = sum_m p_m * frag_n(m)``; the cluster's fragmentation is ``sum_n F_n``. This is the
measure of the artifact's ``pkg/utils/frag.go`` (NodeGpuShareFragAmount) as described in the
project's fact sheet ``facts/scheduling.md`` section 2.6. Memory is not part of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

POPULARITY_THRESHOLD = 0.95
"""Share of pods the typical classes must cover (the artifact's default, 95%)."""


@dataclass(frozen=True, slots=True)
class PodClass:
    cpu_milli: int
    gpu_milli: int
    """Per-GPU milli (1000 for whole GPUs, 0 for CPU-only)."""
    num_gpu: int
    gpu_models: tuple[str, ...] = ()
    """Allowed GPU models; empty means any."""


class PodClassList(list):
    """A list of :class:`PodClass` (one per pod) that also holds how often each class occurs,
    so :func:`typical_pods` need not count a million entries again."""

    def __init__(self, items: Iterable[PodClass] = ()) -> None:
        super().__init__(items)
        self.counts: dict[PodClass, int] = {}
        self.distinct: list[PodClass] = []
        """The distinct classes in order of first appearance."""
        self.index: np.ndarray = np.zeros(0, dtype=np.int64)
        """Per entry, the position of its class in ``distinct``."""


@dataclass(frozen=True, slots=True)
class TypicalPods:
    classes: tuple[PodClass, ...]
    weights: tuple[float, ...]
    coverage: float
    """Share of the workload's pods that the kept classes cover."""


def typical_pods(specs: Iterable[PodClass], threshold: float = POPULARITY_THRESHOLD) -> TypicalPods:
    """Classes sorted by count (ties by the class itself, for determinism), kept until their
    cumulative share reaches ``threshold``, then renormalised."""
    counts = specs.counts if isinstance(specs, PodClassList) else Counter(specs)
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no pods to derive typical pods from")
    ranked = sorted(
        counts.items(), key=lambda kv: (-kv[1], kv[0].num_gpu, kv[0].gpu_milli, kv[0].cpu_milli, kv[0].gpu_models)
    )
    kept, covered = [], 0
    for cls, n in ranked:
        kept.append((cls, n))
        covered += n
        if covered / total >= threshold:
            break
    s = sum(n for _, n in kept)
    return TypicalPods(tuple(c for c, _ in kept), tuple(n / s for _, n in kept), covered / total)


def node_fragmentation(model: str | None, cpu_free: int, gpu_free: tuple[int, ...], typical: TypicalPods) -> float:
    """F_n in milli-GPU for a node with GPU ``model``, ``cpu_free`` millicores and the free milli
    of each of its available GPUs. This is the definition, written plainly; the simulator uses
    :class:`FragmentationModel`, which computes the same number faster."""
    idle = sum(gpu_free)
    if idle == 0:
        return 0.0
    total = 0.0
    for cls, p in zip(typical.classes, typical.weights):
        if cls.num_gpu == 0 or (cls.gpu_models and model not in cls.gpu_models):
            total += p * idle
            continue
        usable = sum(1 for f in gpu_free if f >= cls.gpu_milli)
        if usable >= cls.num_gpu and cpu_free >= cls.cpu_milli:
            total += p * sum(f for f in gpu_free if f < cls.gpu_milli)
        else:
            total += p * idle
    return total


class FragmentationModel:
    """:func:`node_fragmentation` with the per-model constant part precomputed.

    For a GPU model, classes that cannot use it at all (CPU-only, other models) always count all
    idle milli: their weights are summed once. For the others, with the free milli sorted
    descending, "k GPUs with >= milli free" is ``free[k-1] >= milli`` and the milli on GPUs too
    small is a suffix sum.
    """

    def __init__(self, typical: TypicalPods) -> None:
        self.typical = typical
        self._per_model: dict[str | None, tuple[float, list[tuple[float, int, int, int]]]] = {}

    def _model_part(self, model: str | None) -> tuple[float, list[tuple[float, int, int, int]]]:
        got = self._per_model.get(model)
        if got is None:
            always, usable = 0.0, []
            for cls, p in zip(self.typical.classes, self.typical.weights):
                if cls.num_gpu == 0 or (cls.gpu_models and model not in cls.gpu_models):
                    always += p
                else:
                    usable.append((p, cls.gpu_milli, cls.num_gpu, cls.cpu_milli))
            got = self._per_model[model] = (always, usable)
        return got

    def __call__(self, model: str | None, cpu_free: int, free_desc: tuple[int, ...]) -> float:
        idle = sum(free_desc)
        if idle == 0:
            return 0.0
        always, usable = self._model_part(model)
        total = always * idle
        g = len(free_desc)
        for p, milli, k, cpu in usable:
            if k <= g and free_desc[k - 1] >= milli and cpu_free >= cpu:
                # GPUs with free < milli are a suffix of the descending list
                j = k
                while j < g and free_desc[j] >= milli:
                    j += 1
                total += p * sum(free_desc[j:])
            else:
                total += p * idle
        return total
