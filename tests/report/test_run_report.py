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
