"""Checks every lab report of labs 1, 2, 3, 5 and 16 must pass (the kinds of fault a reader
catches first): figures with axis titles, units and legends; physically possible numbers in
summary.json; the --design contract; savings that add up from the shown numbers; headlines
that compare with the strongest baseline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import designs_dir, registry
from tests.labs.report_checks import figure_problems, figures

LABS = (1, 2, 3, 5, 16)
NO_DESIGN = (1, 2, 5, 16)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[int, tuple[dict, str]]:
    out = {}
    labs = registry()
    for n in LABS:
        d = tmp_path_factory.mktemp(f"lab{n}")
        labs[n].run(d, quick=True)
        out[n] = (json.loads((d / "summary.json").read_text()), (d / "report.html").read_text())
    return out


@pytest.mark.parametrize("n", LABS)
def test_every_figure_has_axis_titles_units_and_a_legend(reports, n):
    _, html = reports[n]
    assert figures(html), f"lab {n} drew no figure"
    assert figure_problems(html) == []


# names whose numbers are fractions of a whole, and names whose numbers are durations
FRACTION = re.compile(
    r"(^|_)(ettr|mfu|efficiency|fraction|share|allocation_ratio|tensor_active|sm_active|dram_active|sm_occupancy)$"
)
DURATION = re.compile(r"(_s|_min|_ms|_us|_h|_hours|_days|time_s|seconds|minutes)$")


def _walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, obj


@pytest.mark.parametrize("n", LABS)
def test_no_physically_impossible_number(reports, n):
    s, _ = reports[n]
    bad = []
    for path, v in _walk(s):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        key = re.split(r"[.\[]", path)[-1]
        if FRACTION.search(key) and not (-1e-9 <= v <= 1 + 1e-9):
            bad.append(f"{path} = {v} (a fraction outside [0, 1])")
        if DURATION.search(key) and v < 0:
            bad.append(f"{path} = {v} (a negative duration)")
        if key == "mfu" and v > 0.9:
            bad.append(f"{path} = {v} (MFU near the peak)")
    assert bad == []


# -- the --design contract ---------------------------------------------------------------------


@pytest.mark.parametrize("n", NO_DESIGN)
def test_labs_without_a_design_refuse_one_before_any_work(tmp_path, n):
    with pytest.raises(UserError) as e:
        registry()[n].run(tmp_path / "out", design=tmp_path / "nope.yaml", quick=True)
    assert "takes no design" in str(e.value) and "--design" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_design_with_exit_2():
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "lab", "1", "--design", "nope.yaml", "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "takes no design" in r.stderr


def test_a_lab_that_takes_a_design_refuses_a_missing_file_and_names_the_example(tmp_path):
    info = registry()[3]
    assert info.design and info.example and (designs_dir() / info.example).is_file()
    with pytest.raises(UserError) as e:
        info.run(tmp_path / "out", design=tmp_path / "missing.txt", quick=True)
    assert "no such file" in str(e.value) and info.example in str(e.value)


def test_lab3_design_is_drawn_and_in_the_scaling_comparison(tmp_path):
    info = registry()[3]
    report = info.run(tmp_path, design=designs_dir() / info.example, quick=True)
    html = report.read_text()
    s = json.loads((tmp_path / "summary.json").read_text())
    label = f"your node ({info.example})"
    for per in s["compare"]["workloads"].values():
        assert label in per and per[label]["curve"][0]["gpus"] == 1
    drawn = [fig for div, fig in figures(html) if div.startswith("topo")]
    assert len(drawn) == 4 and label in drawn[0]["layout"]["title"]["text"]
    assert label in html.split("4. Compare scaling")[1]


# -- lab 3 ----------------------------------------------------------------------------------------


def test_lab3_headline_step_includes_the_optimizer(reports):
    s, html = reports[3]
    eight = s["explain"]["in_node_curve"][-1]
    assert eight["step_s"] == pytest.approx(eight["compute_s"] + eight["dp_exposed_s"] + eight["optimizer_s"])
    assert f"{eight['optimizer_s'] * 1e3:.0f} ms optimizer" in html


def test_dp_all_reduce_hides_only_behind_the_last_micro_batch():
    """Gradient accumulation does not widen the overlap window: exposed all-reduce is the same
    for 1 and for 8 micro-batches of the same size (closed form: max(0, comm - overlap x backward))."""
    from gpuinfra.models.scaling import MODELS, Parallelism, step_time
    from gpuinfra.models.topology import builtin

    m, t = MODELS["gpt3-1.3b"], builtin("pcie-8x-l40s", "A100-80GB")
    one = step_time(m, t, Parallelism(dp=16, micro_batch=2, microbatches=1, seq=2048, overlap=0.5))
    many = step_time(m, t, Parallelism(dp=16, micro_batch=2, microbatches=8, seq=2048, overlap=0.5))
    b_mb = one.compute_s * 2 / 3
    assert one.dp_exposed_s == pytest.approx(max(0.0, one.dp_comm_s - 0.5 * b_mb))
    assert many.dp_exposed_s == pytest.approx(one.dp_exposed_s)


def test_lab3_numa_and_bottlenecks(reports):
    s, html = reports[3]
    maps = {m["file"]: m for m in s["map"]["maps"]}
    sys_node = maps["8gpu-pcie-switch-pix-pxb-sys.txt"]
    assert "SYS" in sys_node["pair_codes"] and sys_node["sockets"] >= 2
    two_numa = maps["4xL40S-pcie-node-sys-2nic.txt"]
    assert two_numa["numa_ids"] == ["0", "1"]  # NUMA node 0 counts
    for r in s["analyze"]["multi_node"]:
        assert r["bottleneck"] in html.replace("&#x27;", "'")  # shown whole


# -- lab 2 ----------------------------------------------------------------------------------------


def test_lab2_healthy_training_is_at_a_published_mfu(reports):
    s, _ = reports[2]
    v = {x["scenario"]: x for x in s["monitoring"]["verdicts"]}
    healthy, starved = v["healthy training"], v["data-starved"]
    assert 0.35 <= healthy["counters"]["useful_fraction"] <= 0.55  # Llama 3 38-43 %, MegaScale 55.2 %
    assert healthy["counters"]["tensor_active"] <= 0.55
    assert not starved["truth"].startswith("doing useful compute")
    assert starved["misled"]


# -- lab 16 ---------------------------------------------------------------------------------------


def test_lab16_savings_add_up_from_the_shown_numbers(reports):
    s, html = reports[16]
    text = html.replace(",", "")
    claims = re.findall(r"loses (\d+) GPU-hours [\w-]+ (\d+) \((\d+) saved \$(\d+)\)", text)
    assert len(claims) == 2 * len(s["incidents"])  # in the findings and in each section
    for a, b, saved, usd in claims:
        assert int(a) - int(b) == int(saved)
        assert abs(int(saved) * s["usd_per_gpu_hour"] - int(usd)) <= 1
    m = re.search(r"hurried actions cost (\d+) GPU-hours .*?the safer ones (\d+) .*? (\d+) GPU-hours", text)
    assert m and int(m[1]) - int(m[2]) == int(m[3])
    rows = re.findall(
        r"<td>(?:reset-now|wait-for-watchdog|wait-for-reboot|restart-forever|retry-in-place)</td>"
        r"<td>(\d+)</td>",
        text,
    )
    assert sum(map(int, rows)) == int(m[1])


def test_thermal_incident_never_resets_a_gpu_under_a_running_job():
    from gpuinfra.models.incidents import REHEAT_MIN, thermal_straggler

    inc = thermal_straggler("reset-now")
    events = [(m.t, e) for m in inc.minutes for e in m.events]
    reset = next(t for t, e in events if "GPU reset" in e)
    refused = next(t for t, e in events if "refused" in e)
    assert refused <= reset
    # the job is down (no work) when the reset happens
    assert inc.minutes[reset].step_rate == 0.0 or "stopped" in " ".join(e for t, e in events if t == reset)
    drain = next(t for t, e in events if "drained" in e)
    restart = next(t for t, e in events if "restarted in place" in e)
    # the fault is not fixed until the drain: after it reheats the job never runs at full speed
    assert all(m.step_rate < 1.0 for m in inc.minutes[restart + REHEAT_MIN : drain])
    assert inc.gpu_hours_lost > thermal_straggler("drain-at-checkpoint").gpu_hours_lost
    assert asdict(inc.minutes[0])  # the timeline is plain data


def test_lab5_tables_name_their_units(reports):
    _, html = reports[5]
    assert "cost (USD)" in html and "time (s)" in html and ">cost<" not in html and ">time<" not in html


def test_lab1_log_bars_start_at_one(reports):
    _, html = reports[1]
    bars = [fig for _, fig in figures(html) if fig["data"][0].get("type") == "bar"]
    assert bars and all(
        f["layout"]["yaxis"]["range"][0] == 0.0 for f in bars if f["layout"]["yaxis"].get("type") == "log"
    )


def test_example_designs_exist_for_every_lab_that_takes_one():
    for n, info in registry().items():
        if info.design and info.example:
            assert (designs_dir() / info.example).is_file(), n
    assert Path(designs_dir()).is_dir()


def test_lab3_overlap_is_what_keeps_the_compute_heavy_job_scaling(reports):
    s, html = reports[3]
    heavy, light = list(s["compare"]["workloads"].values())
    for label, v in light.items():
        if v["max_gpus"] == 1:
            continue
        # no wiring scales for free: overlap hides the all-reduce, but NCCL's SMs are taken from
        # compute while it runs (models/scaling.nccl_channels), and what does not hide is exposed
        assert v["efficiency_at_max"] < 1.0, label
        assert v["efficiency_at_max_without_overlap"] < v["efficiency_at_max"], label
    assert "without overlap it would keep" in html
