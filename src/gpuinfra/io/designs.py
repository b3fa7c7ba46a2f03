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

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class CheckpointFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "design"
    checkpoint: CheckpointDesign = Field(default_factory=CheckpointDesign)


def load_model(path: Path, cls: type[BaseModel]) -> Any:
    """Read ``path`` as YAML into ``cls`` through the package's one input boundary
    (:func:`gpuinfra.io.scenario_load.load_model_file`): every problem listed with file:line and field."""
    from gpuinfra.io.scenario_load import load_model_file

    return load_model_file(path, cls, what="a design", fix="see the shipped designs under gpuinfra/labs/designs/")


def validate_pipeline(data: dict, where: str) -> Pipeline:
    """A Pipeline from a mapping; UserError naming the field otherwise."""
    try:
        return Pipeline.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise UserError(f"{field}: {err['msg']}", where=where) from None
