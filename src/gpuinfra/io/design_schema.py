"""Schemas of the labs' ``--design`` files, for :func:`gpuinfra.io.scenario_load.load_model_file`.

A design file gets the same treatment as a scenario: unknown keys refused with "did you mean",
duplicate keys, alias bombs and deep nesting refused, every problem listed with its line, and
every number typed and in range. The labs keep their defaults and semantics; these models only
say what a design file may contain.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from gpuinfra.io.scenario_schema import QuotasSpec, SchedulerSpec, _Model
from gpuinfra.sim.sharing import POLICIES


class Lab4Design(_Model):
    """Lab 4 (GPU sharing): the sharing policy to evaluate and export."""

    policy: Literal[POLICIES] = Field("mixed", description="whole, timeslice, mps, mig or mixed")  # type: ignore[valid-type]
    replicas: int = Field(
        4, ge=1, le=48, description="time-slicing replicas or MPS clients per GPU (MPS allows at most 48 clients)"
    )
    layout: list[str] | None = Field(None, description="MIG instances per GPU, e.g. [3g.40gb, 2g.20gb, 1g.10gb]")

    @field_validator("layout", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v


class Lab6Design(_Model):
    """Lab 6 (scheduling policy): a ``scheduler:`` block as in a scenario, optionally ``quotas:``."""

    scheduler: SchedulerSpec
    quotas: QuotasSpec | None = None
