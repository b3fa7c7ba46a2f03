"""The subsystems a replay composes: importing this module registers each one's factory.

One line per subsystem. A new subsystem (checkpointing, lifecycle phases, storage, serving
replicas, autoscalers, upgrade controllers, spot reclaims) is a module under ``sim/`` with a
:class:`~gpuinfra.sim.subsystem.Subsystem` and a ``@register`` factory, plus its line here;
the engine does not change. The order of the lines is the order subsystems are built and
their first events scheduled, so it is part of a run's determinism: append, never reorder.
"""

from gpuinfra.sim import autoscaler as _autoscaler  # noqa: F401  cluster-autoscaler: scale node groups up and down
from gpuinfra.sim import execution as _execution  # noqa: F401  execution: workload kinds, restart policies, checkpoints, phases
from gpuinfra.sim import faults as _faults  # noqa: F401  faults: strikes, detection, crashes, repairs
from gpuinfra.sim import incidents as _incidents  # noqa: F401  incidents + telemetry sampling (sim/telemetry.py)
from gpuinfra.sim import mig_manager as _mig_manager  # noqa: F401  MIG repartitioning of idle GPUs
from gpuinfra.sim import serving as _serving  # noqa: F401  serving replicas as pods (options['serving'])
from gpuinfra.sim import spot as _spot  # noqa: F401  spot reclaims: notice, cordon, reclaim, replacement
from gpuinfra.sim import upgrade as _upgrade  # noqa: F401  node-pool upgrades: cordon, PDB-aware drain, reimage
