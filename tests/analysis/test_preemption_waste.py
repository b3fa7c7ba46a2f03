"""Preemption's thrown-away work is its own cost line, not failure waste, and the lines still sum to the bill.

Hand-computed case (T4 at 2 USD/GPU-hour): one 1-GPU node; notebook nb-a (priority 0) submitted at 0
runs 10,000 s; b (priority 1) submitted at 3,800 runs 600 s and preempts nb-a, which binds again at
4,400 and ends at 14,400. Bill: 1 GPU x 14,400 s = 4 GPU-h = 8 USD, split into nb-a's surviving run
10,000 s, b's 600 s, and nb-a's thrown-away 3,800 s as preemption waste; no idle, no failure.
"""

import pytest

from gpuinfra.analysis import attribution as at
from gpuinfra.analysis.accounting import ledger
from gpuinfra.models.cost import PriceBook
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.framework import Profile
from tests.conftest import cluster, pod, table

PRICES = PriceBook({"T4": 2.0}, {"T4": "test"}, "on_demand")


def _attribute(pods):
    r = ReplayEngine(cluster(("n", "T4", 1, 64000, 65536, 1)), table(*pods), Profile(), seed=1).run()
    return r, at.attribute(r, ledger(r, PRICES), PRICES)


def test_preempted_run_is_preemption_waste_and_lines_sum_to_the_bill():
    r, t = _attribute([pod("nb-a", 0, 10_000, prio=0, owner="nb"), pod("b", 3_800, 600, prio=1, owner="batch")])
    h = t.groupby("costCategory")["gpuHours"].sum()
    assert "failure_waste" not in h.index  # nothing failed
    assert h["preemption_waste"] == pytest.approx(3_800 / 3600)
    assert h["workload"] == pytest.approx((10_000 + 600) / 3600)
    assert h.get("idle", 0.0) == pytest.approx(0.0, abs=1e-9)
    row = t[t.costCategory == "preemption_waste"].iloc[0]
    assert row["name"] == "nb/nb-a/__preemption__"
    assert (row["startS"], row["endS"]) == (0.0, 3_800.0)  # the thrown-away attempt's own window
    assert row["totalCost"] == pytest.approx(3_800 / 3600 * 2.0)
    assert t["totalCost"].sum() == pytest.approx(at.bill(r, PRICES)["total"], rel=1e-12)
    assert at.bill(r, PRICES)["total"] == pytest.approx(8.0)
