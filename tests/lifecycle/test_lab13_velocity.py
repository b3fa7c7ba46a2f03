"""Lab 13 (velocity): the report builds in --quick with every activity, its parts are deterministic,
the guardrail runs measure what they claim, the rollout runs obey the policies' semantics."""

import json
import math
import re

import pytest

from gpuinfra.errors import UserError


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from gpuinfra.labs import lab13

    out = tmp_path_factory.mktemp("lab13")
    lab13.run(out, quick=True)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_report_has_every_activity_and_figures_are_labelled(lab):
    s, html = lab
    for h in ("1. Why AI infra", "2. Configuration churn", "3. Guardrails", "4. Rollback speed", "4b. Cross-check"):
        assert h in html
    # every plotly figure carries axis titles with units; more than one trace: a legend
    figs = re.findall(r'<script type="application/json" class="gpuinfra-figure"[^>]*>(.*?)</script>', html, re.S)
    assert len(figs) >= 4
    for raw in figs:
        f = json.loads(raw.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&"))
        lay = f["layout"]
        for ax in ("xaxis", "yaxis"):
            t = lay[ax]["title"]["text"]
            assert t, (lay.get("title"), ax)
        assert "(" in lay["yaxis"]["title"]["text"] or "GiB" in lay["yaxis"]["title"]["text"]  # a unit
        if len(f["data"]) > 1:
            assert lay.get("showlegend", True) is not False
    from tests.labs.report_checks import figure_problems

    assert figure_problems(html) == []
    assert s["churn"]["base"]["fits"]


def test_churn_varies_every_knob_and_stays_physical(lab):
    s, _ = lab
    rows = s["churn"]["changes"]
    groups = {r["group"] for r in rows}
    assert {"batch", "precision", "parallelism", "runtime flags"} <= groups
    assert {r["config"]["precision"] for r in rows} >= {"fp32", "bf16", "fp16", "fp8"}
    assert {r["config"]["zero"] for r in rows} >= {0, 1, 3}
    for r in [s["churn"]["base"], *rows]:
        assert 0 < r["mfu"] < 1 and r["step_s"] > 0 and r["memory_gib"] > 0
        assert r["fits"] == (r["memory_gib"] <= r["capacity_gib"])
    sup = {r["gpu"]: r for r in s["churn"]["support"]}
    assert sup["A100-80GB"]["fp8"] is None and sup["H100-SXM"]["fp8"] == pytest.approx(2 * sup["H100-SXM"]["bf16"])
    vl = s["churn"]["variable_lengths"]["runs"]
    d = vl["default allocator"]
    # the allocator never runs a step longer than the static estimate allows
    assert d["longest_ok"] <= d["fit_length_formula"]
    if d["shortest_oom"]:
        assert d["shortest_oom"] > s["churn"]["variable_lengths"]["nominal_seq"]


def test_churn_and_rollback_are_deterministic():
    from gpuinfra.labs._rollback import rollback_runs
    from gpuinfra.labs._velocity import churn

    assert json.dumps(churn(13, quick=True), sort_keys=True) == json.dumps(churn(13, quick=True), sort_keys=True)
    a, b = rollback_runs([3], one_run=False), rollback_runs([3], one_run=False)  # one-run: tests/serving
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_guardrail_runs_measure_what_they_claim(lab):
    s, html = lab
    g = s["guardrails"]
    horizon = 3 * 86400
    for r in g.values():
        assert r["invariants_ok"]
        assert 0 <= r["small_wait_p50_s"] <= r["small_wait_p90_s"] <= horizon
        assert r["small_completed"] <= r["small_started"] <= r["small_arrived"]
    # quotas with reclaim are not a no-op any more (Kueue reclaims through preemption)
    assert g["quotas only"]["preemptions"] > 0
    assert g["quotas only"] != g["no guardrails"]
    assert g["TTL only"]["forgotten_gpu_hours"] < g["no guardrails"]["forgotten_gpu_hours"]
    from gpuinfra.labs.lab13 import _strongest

    assert f"strongest baseline ({_strongest(g)})" in html


def test_rollout_policies_semantics(lab):
    s, _ = lab
    rb = s["rollback"]
    for r in rb["results"].values():
        for f in r["failures"].values():
            assert f["invariants_ok"]
            assert f["wrong"] <= f["served_by_new"]
            if not r["policy"].startswith("all at once"):
                assert f["refused"] == 0  # maxUnavailable 0 / a canary / a second fleet: never zero ready replicas
    bg = [r for r in rb["results"].values() if r["policy"] == "blue/green"]
    assert all(f["peak_gpus"] == 16 for r in bg for f in r["failures"].values())  # two full fleets of 8
    assert rb["cold_start_s"] == pytest.approx(20.0 + 16.06e9 / (16 * 87.5e6) + 20.0, rel=0.01)


def test_recreate_refuses_one_cold_start_of_traffic_per_switch():
    """Closed form: Recreate stops every replica, so rate x cold start requests are refused per switch
    (to within one tick of the traffic counter at each end)."""
    from gpuinfra.sim.rollout import FAILURES, RolloutConfig, Strategy, simulate_rollout

    cfg = RolloutConfig(strategy=Strategy("recreate"), failure=FAILURES["none"], cold_start_s=120.0)
    for seed in (0, 1):
        r = simulate_rollout(cfg, seed).summary
        switches = 1 + (r["phase"] == "rolled-back")
        lo = switches * cfg.rate_rps * (cfg.cold_start_s - cfg.tick_s)
        hi = switches * cfg.rate_rps * (cfg.cold_start_s + cfg.tick_s)
        # Poisson counts: allow 5 standard deviations
        sd = 5 * math.sqrt(hi)
        assert lo - sd <= r["requests"]["refused"] <= hi + sd


def test_bad_design_is_refused_before_any_run(tmp_path):
    from gpuinfra.labs import lab13

    p = tmp_path / "d.yaml"
    p.write_text("max_gpus_per_experiment: 16\nbogus: 1\n")
    with pytest.raises(UserError, match="bogus"):
        lab13.run(tmp_path / "o", design=p)
    assert not (tmp_path / "o").exists()


def test_guardrail_run_is_deterministic_across_scenario_files(tmp_path):
    from gpuinfra.labs import lab13

    exps = lab13.experiments(13)[:120]
    d = lab13.Design(label="ttl", max_gpus_per_experiment=None, ttl_hours=6, preemptible_large=False, team_quota_gpus=8)
    a = lab13._guardrail_run(tmp_path, "a", exps, d, 13)
    b = lab13._guardrail_run(tmp_path, "b", exps, d, 13)
    assert a == b and a["invariants_ok"]


def test_expandable_oom_rate_matches_the_static_closed_form(lab):
    """Without fragmentation the OOM steps are the lengths above the static estimate's limit: the
    count is Binomial(steps, P(L > limit)) with P from the log-normal length distribution."""
    s, _ = lab
    vl = s["churn"]["variable_lengths"]
    ex = vl["runs"]["expandable_segments:True"]
    n, p = ex["steps"], vl["oom_probability_static"]
    assert 0 < p < 1
    assert abs(ex["ooms"] - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1
