"""Spot replacements made late by a per-reclaim Bernoulli draw (sim/spot.py ``replace_unavailable_prob``)."""

import math

import pytest

from tests.lifecycle.test_upgrade_spot_cost import _run

RATE, REPLACE_S, LATE_S = 2.0, 900.0, 14400.0


def _spot(p, **kw):
    return {
        "pools": ["gpu"],
        "reclaim_rate_per_node_day": RATE,
        "notice_s": 0,
        "replace_s": REPLACE_S,
        "replace_unavailable_prob": p,
        "replace_unavailable_s": LATE_S,
        "replace_unavailable_source": "assumption: test share and delay",
        "source": "test rate",
        **kw,
    }


def test_late_replacements_are_binomial_and_each_takes_the_late_delay(tmp_path):
    # every reclaim draws once; late - p x reclaims is a martingale in the reclaims (a draw never sees
    # the future), so over the pooled runs |late - p n| stays within 4 sqrt(n p (1 - p)) but for a
    # 6e-5 chance; the bound is the binomial one, not a number read off a run
    p = 0.3
    n = late = 0
    for seed in range(6):
        res = _run(tmp_path, seed=seed, upgrade=None, horizon_s=3 * 86400, spot=_spot(p))
        s = res.summary["spot"]
        n += s["reclaims"]
        late += s["replacements_late"]
        # each reclaim's node is out (unbilled) for its own delay, cut at the horizon: at most the drawn
        # mix of delays x 8 GPUs (equal when every replacement joined before the horizon)
        delays_s = s["replacements_late"] * LATE_S + (s["reclaims"] - s["replacements_late"]) * REPLACE_S
        assert s["unprovisioned_gpu_hours"] <= delays_s * 8 / 3600 + 1e-9
        assert res.invariants.ok
    assert n >= 40, n  # enough draws for the bound to mean something
    assert abs(late - p * n) <= 4 * math.sqrt(n * p * (1 - p)), (late, n)


def test_same_seed_same_draws_p0_and_p1_are_the_two_plain_replays(tmp_path):
    a = _run(tmp_path, seed=3, upgrade=None, spot=_spot(0.5))
    b = _run(tmp_path, seed=3, upgrade=None, spot=_spot(0.5))
    assert a.summary == b.summary and a.outcomes == b.outcomes
    on_time = _run(tmp_path, seed=3, upgrade=None, spot=_spot(0.0))
    plain = _run(tmp_path, seed=3, upgrade=None, spot={k: v for k, v in _spot(0.0).items() if "unavailable" not in k})
    assert on_time.summary == plain.summary and on_time.summary["spot"]["replacements_late"] == 0
    late = _run(tmp_path, seed=3, upgrade=None, spot=_spot(1.0))
    all_late = _run(
        tmp_path,
        seed=3,
        upgrade=None,
        spot={**{k: v for k, v in _spot(0.0).items() if "unavailable" not in k}, "replace_s": LATE_S},
    )
    s1, s2 = dict(late.summary), dict(all_late.summary)
    sp1, sp2 = dict(s1.pop("spot")), dict(s2.pop("spot"))
    assert sp1.pop("replacements_late") == sp1["reclaims"] > 0 and sp2.pop("replacements_late") == 0
    assert sp1 == sp2 and s1 == s2


def test_a_share_without_its_delay_or_source_is_refused(tmp_path):
    from gpuinfra.errors import UserError

    for drop, word in (("replace_unavailable_s", "replace_unavailable_s"), ("replace_unavailable_source", "source")):
        spot = {k: v for k, v in _spot(0.2).items() if k != drop}
        with pytest.raises(UserError, match=word):
            _run(tmp_path, upgrade=None, spot=spot)
