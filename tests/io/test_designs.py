"""Design files (pipeline, checkpoint): any text is either a valid design or one UserError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.designs import CheckpointFile, PipelineFile, load_model

KEYS = ["pipeline", "redesigns", "checkpoint", "storage", "mode", "interval", "format", "workers_per_gpu", "x"]
VALS = st.one_of(
    st.integers(-5, 10**6), st.floats(allow_nan=True), st.sampled_from(["s3", "async", "files", "young", "", "?"])
)
TREE = st.recursive(VALS, lambda c: st.dictionaries(st.sampled_from(KEYS), c, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=TREE, raw=st.text(max_size=60))
def test_any_design_text_loads_or_raises_user_error(tmp_path, tree, raw):
    import yaml

    for text in (yaml.safe_dump(tree), raw):
        p = tmp_path / "d.yaml"
        p.write_text(text)
        for cls in (PipelineFile, CheckpointFile):
            try:
                load_model(p, cls)
            except UserError as e:
                assert str(p) in str(e)


def test_error_names_the_line(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("name: x\ncheckpoint:\n  storage: s3\n  mode: lazy\n")
    try:
        load_model(p, CheckpointFile)
    except UserError as e:
        assert "d.yaml:4" in str(e) and "checkpoint.mode" in str(e)
    else:
        raise AssertionError("expected a UserError")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    interval=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**5)),
    storage=st.sampled_from(["local-nvme", "s3", "nfs-flash", "nosuch", "S3"]),
)
def test_a_checkpoint_design_that_loads_builds_the_labs_job(tmp_path, interval, storage):
    """Root of the lab 7 crash: every design the loader accepts must build the simulator's KindSpec
    (interval > 0, finite, known tiers); every other one is refused at FILE:LINE with the user's value."""
    from gpuinfra.labs.lab7 import _ckpt_kind
    from gpuinfra.models.checkpoint import CheckpointJob

    p = tmp_path / "d.yaml"
    p.write_text(
        f"name: a\ncheckpoint:\n  storage: {storage}\n  mode: async\n  interval: {interval!r}\n".replace(
            "nan", ".nan"
        ).replace("inf", ".inf")
    )
    try:
        d = load_model(p, CheckpointFile).checkpoint
    except UserError as e:
        msg = str(e)
        assert f"{p}:" in msg and ("checkpoint.interval" in msg or "checkpoint.storage" in msg)
        assert "Traceback" not in msg and "input_value" not in msg
        return
    job = CheckpointJob(params=70e9, gpus=64, storage=d.storage, mode=d.mode)
    _ckpt_kind("t", job, float(d.interval) * 60.0)


def test_checkpoint_interval_errors_quote_the_users_minutes(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("name: a\ncheckpoint: {storage: local-nvme, mode: async, interval: -5}\n")
    try:
        load_model(p, CheckpointFile)
    except UserError as e:
        msg = str(e)
        assert "d.yaml:2" in msg and "(got -5)" in msg and "minutes" in msg and "-300" not in msg
    else:
        raise AssertionError("a negative interval loaded")


def test_checkpoint_design_unknown_tier_names_the_design_field_not_a_flag(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("name: a\ncheckpoint:\n  storage: local-nvm\n")
    try:
        load_model(p, CheckpointFile)
    except UserError as e:
        msg = str(e)
        assert "d.yaml:3" in msg and "checkpoint.storage" in msg and "--storage" not in msg and "local-nvme" in msg
    else:
        raise AssertionError("an unknown tier loaded")


def test_pipeline_redesign_problems_are_located_at_load(tmp_path):
    # a redesign's override used to fail only when profiled, as a raw pydantic dump without a line
    p = tmp_path / "d.yaml"
    p.write_text("pipeline: {storage: s3}\nredesigns:\n  r1:\n    workers_per_gpu: -3\n    cache_tier: local-nvm\n")
    try:
        load_model(p, PipelineFile)
    except UserError as e:
        msg = str(e)
        assert "d.yaml:4: redesigns.r1.workers_per_gpu" in msg and "(got -3)" in msg
        assert "d.yaml:5: redesigns.r1.cache_tier" in msg and "local-nvme" in msg
        assert "validation error for" not in msg
    else:
        raise AssertionError("a bad redesign loaded")
