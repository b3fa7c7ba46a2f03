"""Declared arguments of every scheduler plugin: what ``scheduler.plugin_args.NAME`` (and a score
entry's ``args``) may hold, with types and ranges.

kube-scheduler declares each plugin's args as a typed, versioned struct (``NodeResourcesFitArgs``,
``InterPodAffinityArgs``, ...) and refuses a profile whose args do not decode strictly; this is
the same idea for gpuinfra's plugins. The plugins themselves still read ``self.args`` as before
(defaults live there); this registry only says which keys exist so that a typo such as
``typical_treshold`` is refused at load time instead of silently using the default.

A plugin missing from :data:`PLUGIN_ARGS` takes no arguments: any key given to it is refused.
``tests/sim/test_plugin_args.py`` checks that every key a plugin (or sim/mig_manager.py, for MigFit)
reads from its args is declared here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class PluginArgs(BaseModel):
    """Base of every declared args schema: unknown keys and non-finite numbers refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DRFArgs(PluginArgs):
    weights: dict[str, Annotated[float, Field(gt=0, le=1e9)]] = Field(
        default_factory=dict, description="owner -> weight (default 1); a dominant share is divided by it"
    )


class FGDArgs(PluginArgs):
    typical_threshold: float = Field(
        0.95, gt=0, le=1, description="pod classes covering this share of the workload form the typical set"
    )


class TaintTolerationArgs(PluginArgs):
    extended_resource_toleration: bool = Field(
        True, description="GPU pods tolerate the nvidia.com/gpu taint (ExtendedResourceToleration admission)"
    )


class TopologyAwareArgs(PluginArgs):
    comm_bytes: int = Field(
        256 * 1024**2, ge=1, le=1 << 50, description="bytes all-reduced per step, for the path cost of a placement"
    )


class MigFitArgs(PluginArgs):
    reconfigure: bool = Field(False, description="run the MIG manager (sim/mig_manager.py)")
    interval_s: float = Field(300.0, gt=0, le=10 * 365 * 86400, description="reconciliation period")
    reconfigure_s: float = Field(60.0, ge=0, le=86400, description="time a repartitioned GPU serves nothing")


class KueueQueueArgs(PluginArgs):
    name: str
    cohort: str | None = None
    nominal_gpus: float = Field(ge=0, le=1e7)
    borrowing_limit_gpus: float | None = Field(None, ge=0, le=1e7)


class KueueQuotaArgs(PluginArgs):
    queues: list[KueueQueueArgs] = Field(default_factory=list)
    reclaim: bool = True


PLUGIN_ARGS: dict[str, type[PluginArgs]] = {
    "DRF": DRFArgs,
    "FGD": FGDArgs,
    "TaintToleration": TaintTolerationArgs,
    "TopologyAware": TopologyAwareArgs,
    "MigFit": MigFitArgs,
    "KueueQuota": KueueQuotaArgs,
}
"""Plugin name -> its args schema. Plugins not listed take no args."""


class NoArgs(PluginArgs):
    """A plugin that reads no arguments."""


def args_schema(plugin: str) -> type[PluginArgs]:
    """The args schema of ``plugin`` (:class:`NoArgs` for a plugin that takes none)."""
    return PLUGIN_ARGS.get(plugin, NoArgs)
