"""Scenario files: the public names of the schema, the loader and the builder in one place.

The code lives in three modules: :mod:`gpuinfra.io.scenario_schema` (the pydantic models),
:mod:`gpuinfra.io.scenario_load` (YAML with line numbers, every problem listed) and
:mod:`gpuinfra.io.scenario_build` (cluster, pods, profile and prices from a validated scenario).
This module re-exports them so that ``from gpuinfra.io.scenario import ...`` keeps working.
"""

from __future__ import annotations

from gpuinfra.io.scenario_build import (
    FIELD_ROOTS,
    Built,
    _generate,
    _impossible,
    _pools,
    _price_book,
    _resample,
    build,
    with_quotas,
)
from gpuinfra.io.scenario_load import (
    builtin_scenario_text,
    builtin_scenarios,
    default_scenario_text,
    line_of,
    load_scenario,
    parse_scenario,
)
from gpuinfra.io.scenario_schema import (
    ClusterSpec,
    FaultSpec,
    GeneratorSpec,
    PoolSpec,
    PriceOverride,
    PricesSpec,
    QueueSpec,
    QuotasSpec,
    Scenario,
    SchedulerSpec,
    ScoreEntry,
    TaintSpec,
    WorkloadSpec,
)

_line_of = line_of

__all__ = [
    "FIELD_ROOTS",
    "Built",
    "ClusterSpec",
    "FaultSpec",
    "GeneratorSpec",
    "PoolSpec",
    "PriceOverride",
    "PricesSpec",
    "QueueSpec",
    "QuotasSpec",
    "Scenario",
    "SchedulerSpec",
    "ScoreEntry",
    "TaintSpec",
    "WorkloadSpec",
    "_generate",
    "_impossible",
    "_line_of",
    "_pools",
    "_price_book",
    "_resample",
    "build",
    "builtin_scenario_text",
    "builtin_scenarios",
    "default_scenario_text",
    "line_of",
    "load_scenario",
    "parse_scenario",
    "with_quotas",
]
