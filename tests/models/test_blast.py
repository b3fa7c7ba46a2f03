"""Blast radius: hand-built estates, the isolation data's shape, the boundaries file's errors."""

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.deploy_schema import load_estate, parse_estate
from gpuinfra.models.blast import BOUNDARIES, SHARING_MODES, Estate, Workload, blast_radius, isolation_table, summarize

EXAMPLE = Path(__file__).parents[2] / "examples" / "security" / "shared-inference.yaml"


def _estate(mode: str) -> Estate:
    return Estate(
        "t",
        (
            Workload("a", node="n", gpu="g", model="m-a", secrets=("s",)),
            Workload("b", node="n", gpu="g", model="m-b"),
        ),
        {"g": mode},
        {"s": ("model:m-x",)},
    )


def test_isolation_table_covers_every_mode_and_boundary_once_with_a_source():
    rows = isolation_table()
    assert {(r.mode, r.boundary) for r in rows} == {(m, b) for m in SHARING_MODES for b in BOUNDARIES}
    assert len(rows) == len(SHARING_MODES) * len(BOUNDARIES)
    assert all(r.source.strip() for r in rows)


def test_mig_cotenant_only_leaks_mps_also_crashes():
    mig = {r.asset: r.effect for r in blast_radius(_estate("mig"), "a") if not r.control}
    mps = {r.asset: r.effect for r in blast_radius(_estate("mps"), "a") if not r.control}
    assert mig == {"workload:b": "leak"}
    assert set(mps["workload:b"].split(", ")) == {"oom", "crash", "slowdown", "leak"}


def test_secret_grants_are_followed_by_hand():
    held = {r.asset for r in blast_radius(_estate("whole"), "a") if r.control}
    assert held == {"secret:s", "model:m-x", "model:m-a"}  # not m-b: no path to b's weights


def test_privileged_escape_reaches_every_pod_on_the_node():
    e = Estate("t", (Workload("a", node="n", privileged=True), Workload("b", node="n", secrets=("s2",))), {}, {})
    held = {r.asset for r in blast_radius(e, "a") if r.control}
    assert {"node:n", "workload:b", "secret:s2"} <= held


def test_example_file_loads_and_public_endpoint_reaches_data_through_the_default_sa():
    e = load_estate(EXAMPLE)
    r = blast_radius(e, "chat-public")
    s = summarize(r)
    assert s["secrets"] >= 2 and s["co-tenants (affected)"] >= 1
    path = next(x.path for x in r if x.asset == "bucket:customer-embeddings")
    assert path[1] == "sa:default"


BAD = [
    ("workloads: []\n", "workloads"),
    ("workloads:\n  - {name: a, node: n, gpu: g9}\n", "unknown gpu 'g9'"),
    ("gpus: [{name: g, node: n, sharing: mpss}]\nworkloads: [{name: a, node: n}]\n", "sharing"),
    ("secrets: [{name: s, grants: [weights]}]\nworkloads: [{name: a, node: n}]\n", "KIND:NAME"),
    ("workloads:\n  - {name: a, node: n}\n  - {name: a, node: n}\n", "duplicate name"),
    ("workloads: [{name: a, node: n, secrets: [hf-tokn]}]\nsecrets: [{name: hf-token}]\n", "did you mean 'hf-token'"),
    ("gpus: [{name: g, node: n1}]\nworkloads: [{name: a, node: n2, gpu: g}]\n", "set node: n1"),
    ("workloads: [{name: a, node: n, privilegd: true}]\n", "privileged"),
]


@pytest.mark.parametrize("text,needle", BAD)
def test_bad_boundaries_file_names_the_problem(text, needle):
    with pytest.raises(UserError) as e:
        parse_estate(text, "b.yaml")
    assert needle in str(e.value) and "b.yaml" in str(e.value)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_crashes_on_any_text(text):
    with contextlib.suppress(UserError):
        parse_estate(text, "f.yaml")


def test_two_workloads_on_a_whole_gpu_is_refused():
    text = "gpus: [{name: g, node: n}]\nworkloads: [{name: a, node: n, gpu: g}, {name: b, node: n, gpu: g}]\n"
    with pytest.raises(UserError, match="whole GPU"):
        parse_estate(text, "w.yaml")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_lab_design_parsers_never_crash(text):
    from gpuinfra.io.deploy_schema import Lab10Design, Lab11Design, lab11_problems
    from gpuinfra.io.scenario_load import validate

    with contextlib.suppress(UserError):
        validate(Lab10Design, text, "d10.yaml")
    with contextlib.suppress(UserError):
        validate(Lab11Design, "compromised: a\nestate: " + text, "d11.yaml", extra=lab11_problems)


@pytest.mark.parametrize(
    "text",
    ["workloads: 5\n", "workloads: [{name: a, node: n, secrets: 3}]\n", "gpus: x\nworkloads: [{name: a, node: n}]\n"],
)
def test_wrong_types_are_user_errors(text):
    with pytest.raises(UserError):
        parse_estate(text, "t.yaml")
