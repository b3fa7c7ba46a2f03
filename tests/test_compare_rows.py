"""compare's rows run what they are named for: each equals simulate under the same profile."""

from __future__ import annotations

from pathlib import Path

from gpuinfra.compare import compare_replay, profile_label, replay_table, with_policy
from gpuinfra.io.scenario import ScoreEntry, load_scenario
from gpuinfra.run import simulate

ROOT = Path(__file__).resolve().parents[1]


def _same(row: dict, summary: dict) -> None:
    g = summary["gpu_time"]
    assert row["allocation_ratio"] == g["allocation_ratio"]
    assert row["idle_gpu_hours"] == g["idle_gpu_hours"]
    assert row["wait_s"] == summary["pods"]["wait_s"]
    assert row["pending_at_end"] == summary["pending"]["at_end"]


def test_rows_equal_simulate_under_the_profile_they_name():
    sc, base = load_scenario(ROOT / "examples" / "small-cluster.yaml")
    table = replay_table(compare_replay(sc, base, ["scenario", "firstfit"], None))
    # "scenario" is the scenario's own profile, exactly what `gpuinfra simulate` runs
    _same(table["scenario"], simulate(sc, base, log_events=False).summary)
    assert table["scenario"]["profile"] == profile_label(sc)
    # "firstfit" is FirstFit with the FGD artifact's devices and seeded ties, and says so
    sched = sc.scheduler.model_copy(
        update={"scores": [ScoreEntry(name="FirstFit")], "reserve": "PolicyDevices", "tie_break": "random"}
    )
    ff = sc.model_copy(update={"scheduler": sched})
    ff._label, ff._text = sc._label, sc._text
    _same(table["firstfit"], simulate(ff, base, log_events=False).summary)
    assert table["firstfit"]["profile"] == "score FirstFit, reserve PolicyDevices, ties seeded random"
    assert profile_label(with_policy(sc, "firstfit")) == table["firstfit"]["profile"]


def test_a_first_fit_scenario_and_the_firstfit_policy_are_told_apart():
    sc, _ = load_scenario(ROOT / "examples" / "small-cluster.yaml")
    sched = sc.scheduler.model_copy(update={"scores": [ScoreEntry(name="FirstFit")], "reserve": "FirstFitDevices"})
    own = sc.model_copy(update={"scheduler": sched})
    assert profile_label(own) == "score FirstFit, reserve FirstFitDevices, ties first"
    assert profile_label(with_policy(own, "firstfit")) != profile_label(own)
