"""Design files for execution and I/O: a pipeline (with redesigns) and a checkpointing design.

Both are YAML mappings validated by pydantic; an error names the file, line and field.

Pipeline file (``gpuinfra io profile FILE``, ``gpuinfra lab 8 --design FILE``)::

    pipeline: {storage: s3, format: files, workers_per_gpu: 5}   # fields of models.pipeline.Pipeline
    redesigns:                                                   # optional: overrides, side by side
      shards: {format: shards}

Checkpoint design (``gpuinfra lab 7 --design FILE``)::

    checkpoint: {storage: local-nvme, mode: async, interval: optimal}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gpuinfra.errors import UserError
from gpuinfra.models.pipeline import Pipeline


class PipelineFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: Pipeline = Field(default_factory=Pipeline)
    redesigns: dict[str, dict[str, Any]] = Field(default_factory=dict)


class CheckpointDesign(BaseModel):
    """How a training job checkpoints (models/checkpoint.CheckpointJob fields a design chooses)."""

    model_config = ConfigDict(extra="forbid")
    storage: str = "nfs-flash"
    mode: Literal["sync", "async"] = "async"
    interval: Literal["young", "daly", "optimal"] | float = Field(
        "optimal", description="minutes between checkpoints, or young / daly / optimal"
    )
    writers_per_node: int = Field(1, ge=1)
    pinned_staging: bool = False
    replicate_to: str = Field("s3", description="durable tier for checkpoints written to a node-local tier")

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: object) -> object:
        # checked here, in the design's own unit (minutes), so the message names the file, line and
        # the value the user wrote (the lab converts to seconds later)
        if isinstance(v, str):
            return v
        if not math.isfinite(v):
            raise ValueError(
                f"must be a finite number of minutes (or young, daly, optimal), not {v}; "
                "for a job without checkpoints compare with the lab's 'no checkpoints' baseline"
            )
        if v < MIN_INTERVAL_MIN or v > MAX_INTERVAL_MIN:
            raise ValueError(
                f"must be between {MIN_INTERVAL_MIN:g} and {MAX_INTERVAL_MIN:g} minutes between checkpoints "
                "(10 s to 24 h, the planner's range), or young, daly, optimal"
            )
        return v

    @field_validator("storage", "replicate_to")
    @classmethod
    def _tier(cls, v: str) -> str:
        from gpuinfra.models.storage import tiers

        known = tiers()
        if v not in known:
            from gpuinfra.io.scenario_load import closest

            near = closest(v, list(known))
            raise ValueError(
                f"unknown storage tier; expected one of {', '.join(known)}"
                + (f" (did you mean '{near}'?)" if near else "")
                + "; `gpuinfra io tiers` lists them"
            )
        return v


MIN_INTERVAL_MIN = 10 / 60
"""Shortest design interval, minutes: 10 s, the low end of the planner's grid (models/checkpoint.plan);
a shorter one would only make the simulated job's checkpoint events explode."""
MAX_INTERVAL_MIN = 24 * 60.0
"""Longest design interval, minutes: 24 h, the high end of the planner's grid."""


class CheckpointFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "design"
    checkpoint: CheckpointDesign = Field(default_factory=CheckpointDesign)


def load_model(path: Path, cls: type[BaseModel]) -> Any:
    """Read ``path`` as YAML into ``cls`` through the package's one input boundary
    (:func:`gpuinfra.io.scenario_load.load_model_file`): every problem listed with file:line and field."""
    from gpuinfra.io.scenario_load import load_model_file

    extra = pipeline_problems if cls is PipelineFile else None
    return load_model_file(
        path, cls, extra=extra, what="a design", fix="see the shipped designs under gpuinfra/labs/designs/"
    )


def pipeline_problems(data: Any) -> list:
    """What a pipeline file's model cannot check by itself, as located problems (FILE:LINE at load):
    each redesign's overrides validated as a whole Pipeline (the baseline's fields plus its own),
    and every ``storage``/``cache_tier`` a known tier of models/storage.py, blamed where written."""
    from gpuinfra.io.scenario_load import Problem, closest, model_problems
    from gpuinfra.models.storage import tiers

    if not isinstance(data, dict):
        return []
    base = data.get("pipeline") if isinstance(data.get("pipeline"), dict) else {}
    known = list(tiers())
    out: list[Problem] = []

    def tier_problems(block: dict, prefix: tuple) -> None:
        for key in ("storage", "cache_tier"):
            v = block.get(key)
            if isinstance(v, str) and v not in known:
                near = closest(v, known)
                out.append(
                    Problem(
                        (*prefix, key),
                        f"unknown storage tier (got {v!r}); expected one of {', '.join(known)}",
                        f"did you mean '{near}'?" if near else "see `gpuinfra io tiers`",
                    )
                )

    tier_problems(base, ("pipeline",))
    red = data.get("redesigns")
    if isinstance(red, dict):
        for name, over in red.items():
            if not isinstance(over, dict):
                continue  # the model says so at its line
            for p in model_problems(Pipeline, {**base, **over}):
                if p.loc and p.loc[0] in over:  # the baseline's own problems are reported under pipeline:
                    out.append(Problem(("redesigns", name, *p.loc), p.msg, p.fix))
            tier_problems(over, ("redesigns", name))
    return out


def validate_pipeline(data: dict, where: str) -> Pipeline:
    """A Pipeline from a mapping; UserError naming the field otherwise."""
    try:
        return Pipeline.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise UserError(f"{field}: {err['msg']}", where=where) from None
