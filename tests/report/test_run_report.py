"""The main job's report leads with contention, and its numbers agree with the run."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gpuinfra.io.scenario import build, default_scenario_text, parse_scenario
from gpuinfra.run import request_class, simulate, write_run_dir

SMALL = """
name: small-contention
seed: 5
sample_interval_s: 300
horizon_s: 14400
cluster:
  pools:
    - {name: a100, gpu_model: A100-80GB, gpus_per_node: 8, cpu_milli: 96000, memory_mib: 1048576, count: 3}
workload:
  generator:
    jobs: 700
    arrival_rate_per_hour: 180
    duration_median_s: 900
    duration_sigma: 0.8
    gpus: {1: 0.8, 8: 0.2}
    shared_gpu_fraction: 0.4
    shared_gpu_milli: [250, 500]
    owners: {a: 0.5, b: 0.5}
scheduler:
  queue_sort: PrioritySort
  filters: [NodeResourcesFit, GpuModel]
  scores: [{name: FirstFit}]
  reserve: FirstFitDevices
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = simulate(parse_scenario(SMALL, "small.yaml"), None, log_events=False)
    d = tmp_path_factory.mktemp("run")
    write_run_dir(out, d)
    return out, (d / "report.html").read_text()


def test_default_scenario_offers_the_load_it_states():
    """The scenario file derives 4,540 jobs/h for an offered load of 1.0; the jobs drawn agree."""
    sc = parse_scenario(default_scenario_text(), "openb-default")
    b = build(sc, None)
    p = b.pods
    g = p.num_gpu * p.gpu_milli / 1000.0
    window = p.submit_s.max() - p.submit_s.min()
    rho = float((g * p.duration_s).sum() / (b.cluster.n_gpus * window))
    assert rho == pytest.approx(1.0, abs=0.05)
    assert b.cluster.n_gpus == 6212 and sc.horizon_s


def test_report_leads_with_offered_load_and_waits_by_class(run):
    out, html = run
    c = out.summary["contention"]
    findings = re.findall(r'<p class="finding">(.*?)</p>', html)
    assert findings[0].startswith("Offered load")
    assert f"{c['offered_load']:.2f}" in findings[0]
    assert "Waits by request class" in html and "milli-GPU-s" not in html
    assert "GPU-hours against capacity x time" in html


def test_contention_numbers_agree_with_the_ledger_and_metrics(run):
    out, _ = run
    c, led, m = out.summary["contention"], out.ledger, out.metrics
    wc = c["waits_by_class"]
    assert sum(v["pods"] for v in wc.values()) == len(led)
    cls = [request_class(int(n), int(k)) for n, k in zip(out.built.pods.num_gpu, out.built.pods.gpu_milli)]
    eight = led[np.array(cls) == "8 GPUs"]["wait_s"].dropna()
    assert wc["8 GPUs"]["wait_p99_s"] == pytest.approx(float(np.percentile(eight, 99)))
    # stranded GPU-hours are part of the idle GPU-hours; both cost at the same mean price
    g = out.summary["gpu_time"]
    assert 0 <= c["stranded"]["gpu_hours"] <= g["idle_gpu_hours"] + 1e-6
    dt = (m["t_end_s"] - m["t_start_s"]).to_numpy()
    by_hand = float((m["idle_gpus"].to_numpy() * dt)[m["queue_len_max"].to_numpy() > 0].sum() / 3600)
    assert c["stranded"]["gpu_hours"] == pytest.approx(by_hand)
    assert out.summary["invariants"]["gpu_time_balance"]["ok"]


def test_this_small_run_shows_contention(run):
    """At the load above (180 jobs/h x E[GPUs] x E[duration] on 24 GPUs) big requests wait."""
    out, _ = run
    wc = out.summary["contention"]["waits_by_class"]
    assert out.summary["contention"]["offered_load"] > 0.8
    assert wc["8 GPUs"]["wait_p99_s"] > wc["share of 1 GPU"]["wait_p99_s"]


def test_request_classes():
    assert request_class(0, 0) == "CPU only"
    assert request_class(1, 500) == "share of 1 GPU"
    assert request_class(1, 1000) == "1 GPU"
    assert request_class(8, 1000) == "8 GPUs"


def test_pending_pods_count_in_the_censored_waits(run):
    """Pending pods enter the lower-bound percentiles at horizon end - submit (right-censored)."""
    out, _ = run
    led, wc = out.ledger, out.summary["contention"]["waits_by_class"]
    end = out.summary["horizon"]["end_s"]
    cls = np.array([request_class(int(n), int(k)) for n, k in zip(out.built.pods.num_gpu, out.built.pods.gpu_milli)])
    for name, v in wc.items():
        sel = cls == name
        pend = sel & (led["outcome"].to_numpy() == "pending_at_horizon")
        started = led["wait_s"].to_numpy()[sel]
        started = started[~np.isnan(started)]
        both = np.concatenate([started, end - out.built.pods.submit_s[pend]])
        assert v["pending_share"] == pytest.approx(pend.sum() / (len(started) + pend.sum()))
        if len(both):
            assert v["wait_p99_at_least_s"] == pytest.approx(float(np.percentile(both, 99)))
        if pend.any():
            assert v["pending_waited_min_s"] >= 0


def test_the_starving_class_is_named_worst_not_best():
    """The newcomer's case: 3 of 163 eight-GPU pods started (short waits), 159 still pending."""
    from gpuinfra.report.html import _waits_sentence

    wc = {
        "1 GPU": {
            "pods": 900, "started": 900, "pending_at_end": 0, "pending_share": 0.0,
            "wait_p50_s": 40.0, "wait_p99_s": 900.0, "wait_p50_at_least_s": 40.0, "wait_p99_at_least_s": 900.0,
            "pending_waited_min_s": None,
        },
        "8 GPUs": {
            "pods": 163, "started": 3, "pending_at_end": 159, "pending_share": 159 / 162,
            "wait_p50_s": 0.0, "wait_p99_s": 122.0, "wait_p50_at_least_s": 20000.0,
            "wait_p99_at_least_s": 40000.0, "pending_waited_min_s": 300.0,
        },
    }  # fmt: skip
    s = _waits_sentence(wc)
    assert s.index("asking 8 GPUs") < s.index("asking 1 GPU")
    assert "159 of the 162 pods asking 8 GPUs" in s and "at least 20,000 s" in s
    assert "0 s and 122 s" not in s


def test_saturation_sentence_follows_the_numbers():
    from gpuinfra.report.html import _saturation

    assert "ran full (99.9%" in _saturation(1.0, 720)  # 1 idle GPU of 720: full, not "below its count"
    assert "saturated at 90.0%" in _saturation(72.0, 720)


def test_the_best_class_is_the_one_with_the_shortest_waits_counting_pending_pods():
    """The seed-42 shape: a few shares of a GPU pending briefly still wait less than 2-GPU pods."""
    from gpuinfra.report.html import _waits_sentence

    wc = {
        "share of 1 GPU": {
            "pods": 15697, "started": 15554, "pending_at_end": 60, "pending_share": 60 / 15614,
            "wait_p50_s": 0.0, "wait_p99_s": 171.0, "wait_p50_at_least_s": 0.0, "wait_p99_at_least_s": 171.0,
            "pending_waited_min_s": 0.0,
        },
        "2 GPUs": {
            "pods": 81, "started": 80, "pending_at_end": 0, "pending_share": 0.0,
            "wait_p50_s": 0.0, "wait_p99_s": 2707.0, "wait_p50_at_least_s": 0.0, "wait_p99_at_least_s": 2707.0,
            "pending_waited_min_s": None,
        },
    }  # fmt: skip
    s = _waits_sentence(wc)
    assert s.index("asking 2 GPUs") < s.index("asking a share of 1 GPU")


def test_offered_load_headline_names_its_window_and_the_whole_runs_load(run):
    """The headline's load is over the arrival window; it must say so and give the same requests against the
    whole run's capacity, both derived from summary.json (small-cluster: 3.19 over 60 minutes, 0.13 over 24 h)."""
    out, html = run
    s = out.summary
    c, g = s["contention"], s["gpu_time"]
    first = re.findall(r'<p class="finding">(.*?)</p>', html)[0]
    m = re.match(
        r"Offered load ([0-9.]+) over the ([0-9.,]+) (minutes|hours|days) in which pods arrived: .*?"
        r"against the whole run \(([0-9.,]+) (minutes|hours|days), ([0-9,]+) GPU-hours\) the same requests are a "
        r"load of ([0-9.]+)\. Pods were allocated ([0-9.]+)%",
        first,
    )
    assert m, first
    rho, win, win_unit, dur, dur_unit, cap, whole, alloc = m.groups()
    scale = {"minutes": 60, "hours": 3600, "days": 86400}
    assert float(rho) == pytest.approx(c["offered_load"], abs=0.005)
    assert float(win.replace(",", "")) * scale[win_unit] == pytest.approx(c["arrival_window_s"], rel=0.05)
    assert float(dur.replace(",", "")) * scale[dur_unit] == pytest.approx(s["horizon"]["duration_s"], rel=0.05)
    assert int(cap.replace(",", "")) == pytest.approx(g["capacity_gpu_hours"], abs=0.5)
    assert float(whole) == pytest.approx(c["requested_gpu_hours"] / g["capacity_gpu_hours"], abs=0.005)
    assert float(alloc) == pytest.approx(100 * g["allocation_ratio"], abs=0.05)


def test_pods_row_counts_shared_pods_as_a_subset_of_gpu_pods(run):
    from gpuinfra.report.tables import pods_breakdown, run_summary_rows

    out, _ = run
    w = out.summary["workload"]
    row = dict(run_summary_rows(out.summary, 1.0))["pods"]
    m = re.match(
        r"([0-9,]+) \(([0-9,]+) ask for GPUs(?:, ([0-9,]+) of them a share of one)?(?:; ([0-9,]+) CPU only)?\)", row
    )
    assert m, row
    n, gpu, shared, cpu = (int(x.replace(",", "")) if x else 0 for x in m.groups())
    assert (n, gpu, shared) == (w["pods"], w["gpu_pods"], w["shared_gpu_pods"])
    assert gpu + cpu == n  # the parts add up to the total: shared pods are inside the GPU pods, not beside them
    assert pods_breakdown({"pods": 9, "gpu_pods": 8, "shared_gpu_pods": 3}) == (
        "9 (8 ask for GPUs, 3 of them a share of one; 1 CPU only)"
    )


def _num(x: str) -> float:
    return float(x.replace(",", "").replace("&ge;", "").strip())


def test_prose_and_table_count_the_same_arrived_pods_and_longest_wait_counts_pending_ones(run):
    """The newcomer's openb case: prose counted 198 arrived 8-GPU pods and the table 202 drawn ones; the prose's
    p99 (at least 3,210 s, pending pods included) exceeded the table's longest wait (2,930 s, started only).
    Every class's row and sentence now count the arrived pods, and the longest wait is the largest of the started
    pods' waits and the pending pods' waits so far (a lower bound, marked >=), computed here from the ledger."""
    out, html = run
    led, wc = out.ledger, out.summary["contention"]["waits_by_class"]
    end = out.summary["horizon"]["end_s"]
    p = out.built.pods
    cls = np.array([request_class(int(n), int(k)) for n, k in zip(p.num_gpu, p.gpu_milli)])
    outcome = led["outcome"].to_numpy()
    table = html[html.index("<h2>Waits by request class") : html.index("</table>", html.index("<h2>Waits by request"))]
    rows = {
        m.group(1): [_num(c) for c in re.findall(r'<td class="num">([^<]*)</td>', m.group(2))]
        for m in re.finditer(r"<tr><td>([^<]+)</td>(.*?)</tr>", table, re.S)
    }
    assert set(rows) == set(wc)
    some_pending = False
    for name, (arrived, started, pending, p50, p99, longest) in rows.items():
        sel = cls == name
        assert arrived == int((sel & (outcome != "not_arrived")).sum())
        assert started + pending <= arrived
        w = led["wait_s"].to_numpy()[sel]
        so_far = end - p.submit_s[sel & (outcome == "pending_at_horizon")]
        both = np.concatenate([w[~np.isnan(w)], so_far])
        if len(so_far):  # a lower bound: floored, never rounded up past the waits it bounds
            assert 0 <= float(both.max()) - longest < 1
        else:
            assert longest == pytest.approx(float(both.max()), abs=0.5)
        assert p50 <= p99 <= longest
        some_pending |= len(so_far) > 0
    # the sentence's "N of the M pods asking C that arrived" uses the table's M
    for p50_lb, p99_lb in re.findall(
        r"median wait was at least ([0-9,]+) s and the 99th percentile at least ([0-9,]+) s", html
    ):
        assert any(
            _num(p50_lb) <= v["wait_p50_at_least_s"] < _num(p50_lb) + 1
            and _num(p99_lb) <= v["wait_p99_at_least_s"] < _num(p99_lb) + 1
            for v in wc.values()
        )
    said = re.findall(r"([0-9,]+) of the ([0-9,]+) pods asking (.+?) that arrived", html)
    assert said
    for pend, total, what in said:
        name = next(n for n in wc if what in (n, "a " + n))
        assert _num(total) == rows[name][0] and _num(pend) == rows[name][2]
    assert some_pending, "the fixture run leaves some pods pending, so the lower bounds are exercised"


def test_counts_of_one_read_in_the_singular(run):
    """A summary whose counts are 1 (one pending pod, one deleted, one preemption of one pod, a queue of one)
    gives findings with "1 pod", never "1 pods" or "1 pending pods"."""
    import copy

    from gpuinfra.report.html import findings

    out, _ = run
    s = copy.deepcopy(out.summary)
    s["pending"]["at_end"] = 1
    s["pending"]["reasons"] = {"0/3 nodes are available": 1}
    s["pods"]["outcomes"]["withdrawn"] = 1
    s["preemption"] = {"preemptions": 1, "victims": 1, "lost_gpu_hours": 0.5}
    s["contention"]["pending_peak"] = {"pods": 1, "at_s": 600.0}
    text = " ".join(findings(s, out.metrics))
    for wrong in ("1 pods", "1 pending pods", "1 preemptions"):
        assert not re.search(rf"(?<![0-9,.]){wrong}\b", text), wrong
    assert "1 pod was still pending" in text and "1 pending pod," in text and "1 preemption evicted 1 pod;" in text


def test_shared_gpu_sentence_only_when_the_difference_shows(run):
    """small-cluster printed "1.00x the milli-GPU sum ... while 0 GPU-hours on them were not allocated": the
    sentence appears only when its own rounded numbers show a difference."""
    import copy

    from gpuinfra.report.html import findings

    out, _ = run
    s = copy.deepcopy(out.summary)
    alloc = s["gpu_time"]["allocated_gpu_hours"]
    for busy, shown in ((alloc + 0.3, False), (alloc * 1.004, False), (alloc * 1.2, True)):
        s["gpu_time"]["busy_device_hours"] = busy
        text = " ".join(findings(s, out.metrics))
        m = re.search(r"gives ([0-9,]+) GPU-hours, ([0-9.]+)x the milli-GPU sum.*?while ([0-9,]+) GPU-hours", text)
        assert bool(m) == shown, (busy, alloc)
        if m:
            assert float(m.group(2)) > 1.0 and _num(m.group(3)) > 0
