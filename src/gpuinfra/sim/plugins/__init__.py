"""Scheduler plugins. Each module registers itself; adding a plugin = one file + one line here."""

from gpuinfra.sim.plugins import (  # noqa: F401
    best_fit,
    dot_prod,
    drf_sort,
    fgd,
    first_fit,
    first_fit_devices,
    gpu_clustering,
    gpu_model,
    gpu_packing,
    kueue_quota,
    least_allocated,
    mig,
    node_affinity,
    node_resources_fit,
    policy_devices,
    priority_sort,
    random_score,
    taint_toleration,
    topology_aware,
    topology_devices,
)
