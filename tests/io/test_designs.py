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
