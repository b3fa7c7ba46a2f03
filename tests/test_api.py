"""The public API: the README's example runs as written, and its results are typed and seeded."""

import re
from pathlib import Path

import pytest

from gpuinfra import api
from gpuinfra.errors import UserError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs():
    text = README.read_text()
    m = re.search(r"```python\n(from gpuinfra import api\n.*?)```", text, re.S)
    assert m, "README has no python example starting with 'from gpuinfra import api'"
    ns: dict = {}
    exec(compile(m.group(1), "README.md", "exec"), ns)  # noqa: S102 - our own README
    res = ns["res"]
    assert isinstance(res, api.SimulationResult)
    assert res.invariants.ok
    assert 0.0 < res.allocation_ratio <= 1.0


def test_same_seed_same_results():
    a = api.simulate("synthetic-small", seed=3, log_events=False)
    b = api.simulate("synthetic-small", seed=3, log_events=False)
    assert a.summary == b.summary
    assert a.pods.equals(b.pods)


def test_unknown_builtin_names_the_closest():
    with pytest.raises(UserError, match="synthetic-small"):
        api.scenario("synthetic-smal")


def test_compare_table_has_one_row_per_policy():
    c = api.compare("synthetic-small", "scenario,bestfit", seed=1)
    assert list(c.table["policy"]) == ["scenario", "bestfit"]
    assert c.table["invariants_ok"].all()
