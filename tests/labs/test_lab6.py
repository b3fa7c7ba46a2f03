"""Lab 6 computes its conclusions: the report's sentences carry the numbers of its own runs."""

import copy
import json
import re
import subprocess
import sys

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab6, registry

PROGRESS: list[tuple[str, int, int]] = []


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab6")
    lab6.run(out, quick=True, workers=1, progress=lambda *a: PROGRESS.append(a))
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
    worst = max(s["paper_policies"], key=lambda p: at[p]["unalloc_pct"])
    assert f"policies, {at[worst]['unalloc_pct']:.1f}% unallocated)" in html
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


def test_paper_policies_and_the_variants_beyond_it_are_both_shown(quick):
    _, s, html = quick
    assert set(s["paper_policies"]) == {"random", "dotprod", "clustering", "packing", "bestfit", "fgd"}
    assert set(s["beyond_paper_policies"]) <= set(s["fill_at_100pct"])
    assert "Beyond the paper" in html
    for p in s["beyond_paper_policies"]:
        assert p in html


def test_fill_headline_compares_the_best_policy_with_the_strongest_other_one(quick):
    """Finding 1 names the run's best policy and the strongest other policy of the same run (paper or variant),
    with the percentages and GPU count those policies produced; never the weakest policy as the comparison."""
    _, s, html = quick
    at = s["fill_at_100pct"]
    m = re.search(
        r"even the best policy of this run, ([\w-]+), leaves ([0-9.]+)% of the ([0-9,]+) GPUs unallocated "
        r"\(([0-9,]+) GPUs\), against ([0-9.]+)% under the strongest other policy, ([\w-]+) \(",
        html,
    )
    assert m, "finding 1 states the best policy and its strongest rival"
    lead, lead_pct, n_gpus, lead_gpus, rival_pct, rival = m.groups()
    ranked = sorted(at, key=lambda p: at[p]["unalloc_pct"])
    assert (lead, rival) == (ranked[0], ranked[1])
    assert abs(float(lead_pct) - at[lead]["unalloc_pct"]) <= 0.05
    assert abs(float(rival_pct) - at[rival]["unalloc_pct"]) <= 0.05
    n = int(n_gpus.replace(",", ""))
    assert abs(int(lead_gpus.replace(",", "")) - at[lead]["unalloc_pct"] / 100 * n) <= 0.5
    weakest = ranked[-1]
    assert weakest == rival or f"under the strongest other policy, {weakest} (" not in html


def test_cost_table_terms_are_not_the_simulators_stranded(quick):
    """simulate defines stranded as idle GPU-hours while pods wait; lab 6's table counts unallocated GPUs at
    100 % arrived load and says what the dollar column is the cost of."""
    _, _, html = quick
    assert "stranded" not in html.lower()
    assert "cost of the unallocated GPUs (USD per day)" in html


def test_cost_headline_is_against_the_strongest_baseline(quick):
    _, s, html = quick
    cost = s["idle_cost"]
    baselines = [p for p in cost if p != "fgd"]
    strongest = min(baselines, key=lambda p: cost[p]["usd_per_day"])
    diff = cost[strongest]["usd_per_day"] - cost["fgd"]["usd_per_day"]  # from unrounded values
    assert f"strongest baseline of this run ({strongest}," in html
    assert f"${abs(diff):,.0f} a day at" in html
    weakest = max(baselines, key=lambda p: cost[p]["usd_per_day"])
    worst_diff = cost[weakest]["usd_per_day"] - cost["fgd"]["usd_per_day"]
    assert weakest == strongest or f"${abs(worst_diff):,.0f} a day at" not in html


def test_design_headline_compares_p90_and_p99_per_class(quick):
    _, s, _ = quick
    s = copy.deepcopy(s)
    d = s["design"]["results"]
    for name in d:
        for cls in ("inference", "training"):
            d[name][cls].update(wait_p90_s=0.0, wait_p99_s=0.0, not_started=0)
    d["design"]["inference"]["wait_p99_s"] = 826.0  # an edited design: a long inference tail
    spec, _ = lab6.load_design(None)
    html = lab6.render(s, [], 6212, spec)
    assert "inference waits p90 0 s / p99 826 s against 0 s / 0 s" in html
    assert "training waits p90 0 s / p99 0 s" in html


def test_best_baseline_ranks_by_p99_then_p90():
    base = {
        "a": {"x": {"wait_p90_s": 0.0, "wait_p99_s": 900.0, "not_started": 0}},
        "b": {"x": {"wait_p90_s": 50.0, "wait_p99_s": 100.0, "not_started": 0}},
        "c": {"x": {"wait_p90_s": None, "wait_p99_s": None, "not_started": 9}},
    }
    assert lab6.best_baseline(base, "x") == "b"


def _figures(html: str) -> list[tuple[str, list, dict]]:
    """(div id, traces, layout) of every plotly figure in a report (the reports embed each figure
    as escaped JSON in a <script type="application/json"> block)."""
    from tests.labs.report_checks import figures

    return [(div, f["data"], f["layout"]) for div, f in figures(html)]


def _numeric(values) -> bool:
    if isinstance(values, dict):  # plotly's typed array {"dtype": "f8", "bdata": ...}
        return "dtype" in values
    return bool(values) and isinstance(values[0], (int, float)) and not isinstance(values[0], bool)


def test_every_figure_has_axis_titles_units_and_a_legend(quick):
    _, _, html = quick
    figs = _figures(html)
    assert {f for f, _, _ in figs} >= {"lab6-fill", "lab6-blast", "lab6-constraints"}
    for fid, data, layout in figs:
        for ax in ("xaxis", "yaxis"):
            title = layout.get(ax, {}).get("title", {}).get("text", "")
            assert title, (fid, ax)
            numeric = any(_numeric(t.get(ax[0])) for t in data)
            if numeric:
                assert re.search(r"\(.+\)", title), (fid, ax, title)  # a unit in parentheses
        named = [t for t in data if t.get("showlegend", True) is not False]
        if len(named) > 1:
            assert layout.get("showlegend") is True, fid
            assert all(t.get("name") for t in named), fid


def test_unknown_plugin_in_a_design_fails_before_any_run(tmp_path):
    d = tmp_path / "typo.yaml"
    d.write_text("scheduler:\n  scores: [{name: FDG}]\n  reserve: PolicyDevices\n")
    with pytest.raises(UserError) as e:
        lab6.load_design(d)
    msg = str(e.value)
    assert "scheduler.scores[0].name" in msg and "Did you mean 'FGD'" in msg
    d.write_text("scheduler:\n  filters: [NodeResourcesFit, FGD]\n")
    with pytest.raises(UserError, match=r"scheduler.filters\[1\].*'FGD' is not a Filter plugin"):
        lab6.load_design(d)
    out = tmp_path / "o"
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "lab", "6", "--quick", "--design", str(d), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "FGD" in r.stderr
    assert not out.exists()  # refused before any run wrote anything


def test_progress_is_reported_for_every_run(quick):
    # (step, done, total) after each fill run and replay: done counts 1..total, steps name the work
    assert PROGRESS, "no progress reported"
    total = PROGRESS[0][2]
    assert [d for _, d, _ in PROGRESS] == list(range(1, total + 1))
    assert {t for _, _, t in PROGRESS} == {total}
    steps = {s for s, _, _ in PROGRESS}
    assert any(s.startswith("fill") for s in steps) and any("design" in s for s in steps)


def test_progress_lines_print_above_a_running_status():
    # under the CLI's status spinner stderr is rich's FileProxy: one line per finished step
    import io

    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    with console.status("lab 6"), lab6._progress(3, None) as advance:
        for step in ("fill: default", "fill: default", "design [x]"):
            advance(step)
    text = buf.getvalue()
    assert "lab 6 [2/3] fill: default: done" in text
    assert "lab 6 [3/3] design [x]: done" in text


def test_a_bad_quotas_block_is_located(tmp_path):
    d = tmp_path / "q.yaml"
    d.write_text("scheduler: {queue_sort: fifo}\nquotas:\n  foo: 1\n")
    with pytest.raises(UserError) as e:
        lab6.load_design(d)
    assert "q.yaml:3: quotas.foo" in str(e.value)
