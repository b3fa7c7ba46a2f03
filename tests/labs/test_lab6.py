"""Lab 6 computes its conclusions: the report's sentences carry the numbers of its own runs."""

import json
import subprocess
import sys

import pytest

from gpuinfra.labs import lab6, registry


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab6")
    lab6.run(out, quick=True, workers=1)
    return out, json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_every_activity_ran(quick):
    _, s, html = quick
    for key in (
        "explain",
        "fill_at_100pct",
        "idle_cost",
        "blast_radius_at_60pct",
        "design",
        "constraints_unalloc_pct_at_100",
    ):
        assert s[key], key
    for heading in (
        "1. Explain",
        "2. Analyze: placement is a cost lever",
        "2. Analyze: placement is a reliability",
        "3. Design",
        "4. Simulate",
    ):
        assert heading in html


def test_explain_cases_are_refused_although_the_count_says_yes(quick):
    _, s, _ = quick
    for c in s["explain"]["cases"]:
        assert c["free_gpus_by_count"] >= c["asks"] and not c["placed"]
        assert c["scheduler_says"].startswith("0/")


def test_claims_carry_the_runs_numbers(quick):
    _, s, html = quick
    at = s["fill_at_100pct"]
    worst = max(at, key=lambda p: at[p]["unalloc_pct"])
    assert f"{at[worst]['unalloc_pct']:.1f}%" in html
    pack = s["blast_radius_at_60pct"]["mostallocated"]
    assert f"leaves {pack['nodes_empty']:,} nodes empty" in html
    # packing empties more nodes than spreading, and spreading puts fewer pods on its busiest node
    assert pack["nodes_empty"] > s["blast_radius_at_60pct"]["spread"]["nodes_empty"]
    assert pack["max_pods_on_one_node"] >= s["blast_radius_at_60pct"]["spread"]["max_pods_on_one_node"]


def test_a_users_design_is_evaluated_on_the_same_runs(tmp_path):
    # a design identical to a baseline must reproduce that baseline's numbers exactly
    d = tmp_path / "mine.yaml"
    d.write_text("scheduler:\n  queue_sort: FIFO\n  scores: [{name: LeastAllocated}]\n  preemption: false\n")
    spec, label = lab6.load_design(d)
    res = lab6.evaluate_designs(spec, quick=True)
    assert res["design"] == res["FIFO + spread"]
    assert label == str(d)


def test_bad_design_and_unknown_lab_exit_2(tmp_path):
    d = tmp_path / "bad.yaml"
    d.write_text("scheduler:\n  scores: [{name: FGD, weight: -1}]\n")
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "lab", "6", "--quick", "--design", str(d), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "weight" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "gpuinfra.cli", "lab", "99"], capture_output=True, text=True)
    assert r.returncode == 2 and "there is no lab 99" in r.stderr
    r = subprocess.run([sys.executable, "-m", "gpuinfra.cli", "lab", "list"], capture_output=True, text=True)
    lines = [ln.split(maxsplit=1) for ln in r.stdout.splitlines() if ln.strip()]
    assert r.returncode == 0 and [n for n, _ in lines] == [str(n) for n in sorted(registry())]
    assert ["6", lab6.TITLE] in lines
