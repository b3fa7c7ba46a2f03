"""Every report escapes what a user wrote: scenario, pool and owner names, descriptions, file
names. A payload that would run script in a browser must never reach the HTML as markup."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpuinfra.catalog._data import data_path
from gpuinfra.io.scenario import parse_scenario
from gpuinfra.report.html import script_json
from gpuinfra.report.page import Section, render_page, table_html
from tests.labs.report_checks import figure_problems

PAYLOAD = "</script><img src=x onerror=alert(1)>"
FILE_PAYLOAD = "<img src=x onerror=alert(1)>"  # no '/' so it can be a file name

HOSTILE = f"""
name: '{PAYLOAD}'
description: 'desc {PAYLOAD} &amp; "quoted"'
seed: 3
sample_interval_s: 600
cluster:
  pools:
    - {{name: '{PAYLOAD}', gpu_model: A100-80GB, gpus_per_node: 8, cpu_milli: 96000, memory_mib: 1048576, count: 2}}
workload:
  generator:
    jobs: 120
    arrival_rate_per_hour: 60
    duration_median_s: 1800
    gpus: {{1: 0.7, 8: 0.3}}
    owners: {{'{PAYLOAD}': 0.5, 'team "b" & co': 0.5}}
scheduler:
  queue_sort: PrioritySort
  filters: [NodeResourcesFit, GpuModel]
  scores: [{{name: MostAllocated}}]
  reserve: FirstFitDevices
"""


def assert_no_payload(html: str) -> None:
    low = html.lower()
    assert "<img" not in low, "an <img> tag reached the HTML unescaped"
    assert PAYLOAD.lower() not in low, "a </script> from user text ended a script block"
    assert "onerror=alert(1)>" not in low.replace("onerror=alert(1)&gt;", ""), "raw payload present"
    # every figure's data block parses as JSON and carries no raw '<'
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, flags=re.S):
        assert "<" not in block and "&" not in block
        json.loads(block)


def test_script_json_escapes_and_round_trips():
    obj = {"a": PAYLOAD, "b": "x & y \u2028 \u2029 >"}
    s = script_json(obj)
    assert not set("<>&\u2028\u2029") & set(s)
    assert json.loads(s) == obj


@pytest.fixture(scope="module")
def hostile_sim(tmp_path_factory):
    from gpuinfra.run import simulate, write_run_dir

    sc = parse_scenario(HOSTILE, "hostile.yaml")
    out = simulate(sc, None, log_events=False)
    d = tmp_path_factory.mktemp("sim")
    write_run_dir(out, d)
    return sc, out, d


def test_simulate_report_escapes_names_and_description(hostile_sim):
    sc, out, d = hostile_sim
    html = (d / "report.html").read_text()
    assert_no_payload(html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text
    assert out.summary["invariants"]["gpu_time_balance"]["ok"]


def test_compare_and_fill_reports_escape_the_scenario(hostile_sim):
    from gpuinfra.compare import compare_fill, compare_replay, replay_table
    from gpuinfra.fill import summarize_results
    from gpuinfra.io.scenario import build
    from gpuinfra.report.compare_report import render_compare_report
    from gpuinfra.report.fill_report import render_fill_report

    sc = hostile_sim[0]
    runs = compare_replay(sc, None, ["firstfit", "bestfit"], None)
    html = render_compare_report(sc.name, replay_table(runs), runs)
    assert_no_payload(html)
    assert figure_problems(html) == []
    b = build(sc, None)
    results = compare_fill(b, ["bestfit", "fgd"], 1.0)
    cluster = {"node_list": f"scenario {sc.name}", "nodes": b.cluster.n_nodes, "gpus": b.cluster.n_gpus}
    summ = summarize_results(results, load=1.0, cluster=cluster)
    assert_no_payload(render_fill_report(summ, results))


def test_page_escapes_title_findings_tables():
    html = render_page(
        PAYLOAD,
        [Section(PAYLOAD, table_html([PAYLOAD], [[PAYLOAD]]), claim=PAYLOAD, text=PAYLOAD)],
        findings=[PAYLOAD],
        subtitle=PAYLOAD,
    )
    assert_no_payload(html)


def test_lab3_report_escapes_the_design_file_name(tmp_path):
    from gpuinfra.labs import registry

    design = tmp_path / f"{FILE_PAYLOAD}.txt"
    shutil.copy(data_path("topology") / "4xL40S-pcie-node-sys-2nic.txt", design)
    report = registry()[3].run(tmp_path / "lab3", design=design, quick=True)
    assert_no_payload(report.read_text())


def test_topology_page_escapes_the_file_name(tmp_path):
    src = tmp_path / f"{FILE_PAYLOAD}.txt"
    shutil.copy(data_path("topology") / "4xL40S-pcie-node-sys-2nic.txt", src)
    out = tmp_path / "topo.html"
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "topo", "show", str(src), "--gpu", "L40S", "--html", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert_no_payload(out.read_text())


def test_templates_autoescape():
    from gpuinfra.report.html import _env

    env = _env()
    for name in env.list_templates():
        on = env.autoescape(name) if callable(env.autoescape) else env.autoescape
        assert on, f"autoescape is off for {name}"


def test_every_packaged_template_is_html(tmp_path):
    # the autoescape decision must cover every template file shipped
    root = Path(__file__).resolve().parents[2] / "src" / "gpuinfra" / "report" / "templates"
    assert all(p.name.endswith(".html.j2") for p in root.iterdir() if p.is_file())
