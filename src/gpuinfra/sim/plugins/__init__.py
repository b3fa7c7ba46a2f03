"""Scheduler plugins. Each module registers itself; adding a plugin = one file + one line here."""

from gpuinfra.sim.plugins import (  # noqa: F401
    first_fit,
    first_fit_devices,
    gpu_model,
    least_allocated,
    node_resources_fit,
    priority_sort,
)
