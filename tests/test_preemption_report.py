"""A preempted pod as the user meets it: summary.json, pods.parquet and the `gpuinfra simulate` table.

Hand-computed case: one 1-GPU T4 node; notebook nb-a (priority 0) submitted at 0 runs 10,000 s; batch
b (priority 1) submitted at 3,800 runs 600 s. b preempts nb-a at 3,800 (its 3,800 GPU-seconds are lost),
nb-a binds again at 4,400 and ends at 14,400.
"""

import json

import pandas as pd
import pytest

from tests.clirunner import gi

SCENARIO = """\
name: nb
seed: 1
cluster:
  pools:
    - {name: t4, gpu_model: T4, gpus_per_node: 1, cpu_milli: 8000, memory_mib: 65536, count: 1}
workload:
  trace: jobs.csv
"""
TRACE = "job_id,submit_time_s,duration_s,num_gpu,priority\nnb-a,0,10000,1,0\nb,3800,600,1,1\n"


def _simulate(tmp_path, scenario=SCENARIO):
    (tmp_path / "jobs.csv").write_text(TRACE)
    f = tmp_path / "s.yaml"
    f.write_text(scenario)
    r = gi("simulate", str(f), "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    return r, json.loads((tmp_path / "run" / "summary.json").read_text())


def test_preemption_is_not_a_wait_and_has_its_own_line(tmp_path):
    r, s = _simulate(tmp_path)
    led = pd.read_parquet(tmp_path / "run" / "pods.parquet").set_index("name")
    assert led.loc["nb-a", "wait_s"] == 0.0 and led.loc["b", "wait_s"] == 0.0
    assert led.loc["nb-a", "requeued_wait_s"] == 600.0
    assert s["pods"]["waited"] == 0 and s["pods"]["wait_s"]["max"] == 0.0
    p = s["preemption"]
    assert (p["preemptions"], p["pods_preempted"]) == (1, 1)
    assert p["lost_gpu_hours"] == pytest.approx(3800 / 3600)
    assert p["requeued_wait_s"]["total"] == 600.0
    row = next(line for line in r.stdout.splitlines() if "preemption" in line)
    # 1 preemption, 1 pod, 3,800 s / 3,600 = 1.06 GPU-h, 600 s off a node
    assert "1 preemptions evicted 1 pods" in row and "1.1 GPU-h" in row and "600 s" in row


def test_no_preemption_row_without_preemptions(tmp_path):
    r, s = _simulate(tmp_path, SCENARIO + "scheduler:\n  preemption: false\n")
    assert s["preemption"]["preemptions"] == 0
    # b waits for nb-a: 10,000 - 3,800 = 6,200 s, a real scheduling wait
    assert s["pods"]["wait_s"]["max"] == 6200.0
    assert not any(line.strip().startswith("preemption") for line in r.stdout.splitlines())
