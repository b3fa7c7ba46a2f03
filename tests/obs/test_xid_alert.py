"""The Xid page: generated from the catalog, counted over a window (no latching, repeats seen)."""

from types import SimpleNamespace

import numpy as np

from gpuinfra.catalog.xid import paging_xids
from gpuinfra.obs.promql import Ctx
from gpuinfra.obs.rules import designed_rules, xid_page_expr

GPU = (("Hostname", "n1"), ("gpu", "0"))


def _tel(series: dict) -> SimpleNamespace:
    times = np.arange(0.0, 7200.0 + 1, 30.0)
    out: dict = {}
    for (metric, labels), fn in series.items():
        out.setdefault(metric, {})[labels] = np.array([fn(t) for t in times], dtype=float)
    return SimpleNamespace(times=times, series=out)


def _fires(tel, t: float) -> bool:
    return bool(xid_page_expr().eval(Ctx(tel), t))


def test_rule_is_generated_from_the_catalog():
    text = designed_rules()[0].expr.render()
    assert designed_rules()[0].name == "GpuXidCritical"
    for x in paging_xids():
        assert f"|{x}|" in f"|{text.split('xid=~')[1].split('}')[0].strip(chr(34))}|"
    assert "62" in text  # a real Xid 62 was reported on a live system (issue 14)


def test_last_xid_gauge_does_not_latch_after_recovery():
    # the exporter holds the last Xid (48) until it restarts; the GPU was reset at t=600
    tel = _tel({("DCGM_FI_DEV_XID_ERRORS", GPU): lambda t: 0.0 if t < 60 else 48.0})
    assert _fires(tel, 120) and _fires(tel, 300)
    assert not _fires(tel, 3600)


def test_windowed_count_sees_a_repeat_of_the_same_xid():
    # the gauge stays 48 (no change) but dcgm-exporter's windowed count sees the second Xid 48
    def count(t):
        return 1.0 if (60 <= t < 360) or (3600 <= t < 3900) else 0.0

    tel = _tel(
        {
            ("DCGM_FI_DEV_XID_ERRORS", GPU): lambda t: 0.0 if t < 60 else 48.0,
            ("DCGM_EXP_XID_ERRORS_COUNT", GPU + (("xid", "48"),)): count,
        }
    )
    assert _fires(tel, 3700) and not _fires(tel, 3000)


def test_application_xid_does_not_page_but_62_does():
    app = _tel({("DCGM_EXP_XID_ERRORS_COUNT", GPU + (("xid", "13"),)): lambda t: 1.0})
    pmu = _tel({("DCGM_EXP_XID_ERRORS_COUNT", GPU + (("xid", "62"),)): lambda t: 1.0})
    assert not _fires(app, 600) and _fires(pmu, 600)
