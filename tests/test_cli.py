"""The CLI as a user meets it: exit codes, one-line errors, no tracebacks, files written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirunner import gi

SMALL = """\
name: small
seed: 5
cluster:
  pools:
    - {name: t4, gpu_model: T4, gpus_per_node: 4, cpu_milli: 32000, memory_mib: 131072, count: 3}
workload:
  generator: {jobs: 200, arrival_rate_per_hour: 40, duration_median_s: 900,
              gpus: {1: 0.7, 2: 0.2, 4: 0.1}, shared_gpu_fraction: 0.3}
"""


def test_the_module_and_console_script_entry_points_run():
    # one real subprocess: `python -m gpuinfra.cli` (the console script calls the same main)
    r = subprocess.run([sys.executable, "-m", "gpuinfra.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("gpuinfra ")
    r = subprocess.run([sys.executable, "-m", "gpuinfra.cli", "lab", "99"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "there is no lab 99" in r.stderr and "Traceback" not in r.stderr


def test_version_and_help_for_every_command():
    r = gi("--version")
    assert r.returncode == 0 and r.stdout.startswith("gpuinfra ")
    for cmd in (
        ["simulate"],
        ["schema"],
        ["scenarios"],
        ["plugins"],
        ["catalog", "gpus"],
        ["catalog", "shapes"],
        ["catalog", "prices"],
        ["topo", "list"],
        ["collective"],
        ["scale"],
        ["memory", "run"],
        ["probe"],
        ["metrics", "export"],
        ["metrics", "serve"],
        ["alerts", "export"],
        ["alerts", "evaluate"],
        ["reliability"],
        ["incident"],
        ["trace", "check"],
        ["trace", "convert"],
    ):
        r = gi(*cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        assert "Usage" in r.stdout


def test_simulate_writes_the_run_directory(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SMALL)
    r = gi("simulate", str(f), "--out", str(tmp_path / "run"), "-q")
    assert r.returncode == 0, r.stderr
    for name in ("summary.json", "metrics.parquet", "pods.parquet", "events.jsonl", "scenario.yaml", "report.html"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["invariants"]["gpu_time_balance"]["ok"] and s["invariants"]["no_overcommit"]["ok"]
    assert s["workload"]["pods"] == 200 and s["cluster"]["gpus"] == 12
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<script" in html and "https://" not in html.split("<body>")[1].split("<pre>")[0]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("name: x\ncluster: {pools: []}\nworkload: {trace: openb:default}\n", "exactly one of 'openb' or 'pools'"),
        (SMALL.replace("gpu_model: T4", "gpu_model: T5"), "unknown GPU model 'T5'"),
        ("name: [unclosed\n", "YAML syntax error"),
    ],
)
def test_bad_scenario_exit_2_one_message_no_traceback(tmp_path, content, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    r = gi("simulate", str(f), "--out", str(tmp_path / "run"), "-q")
    assert r.returncode == 2
    assert needle in r.stderr and str(f) in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip().startswith("error:")


def test_bad_trace_and_missing_file_exit_2(tmp_path):
    t = tmp_path / "jobs.csv"
    t.write_text("job_id,submit_time_s,duration_s,num_gpu\na,0,10,1\nb,5,ten,1\n")
    r = gi("trace", "check", str(t))
    assert r.returncode == 2 and f"{t}:3: duration_s='ten' is not a number" in r.stderr
    r = gi("simulate", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "scenario file not found" in r.stderr
    r = gi("catalog", "prices", "G2")
    assert r.returncode == 2 and "no price" in r.stderr


def test_trace_convert_round_trip(tmp_path):
    out = tmp_path / "d.parquet"
    r = gi("trace", "convert", "openb:gpushare40", str(out))
    assert r.returncode == 0, r.stderr
    r = gi("trace", "check", str(out))
    assert r.returncode == 0 and "8,152 rows read" in r.stdout


def test_fill_writes_csv_with_the_documented_columns(tmp_path):
    r = gi(
        "fill",
        "--workload",
        "gpushare40",
        "--policy",
        "fgd,bestfit",
        "--seeds",
        "1-2",
        "--load",
        "0.5",
        "--out",
        str(tmp_path / "f"),
        "-q",
        "--workers",
        "1",
    )
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "f" / "fill.csv").read_text().splitlines()
    assert lines[0] == "workload,policy,seed,arrived_pct,alloc_pct,unalloc_pct,frag_amount_pct,frag_ratio_pct"
    assert len(lines) == 1 + 2 * 2 * 50
    s = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert set(s["by_workload"]["gpushare40"]) == {"fgd", "bestfit"}
    assert (tmp_path / "f" / "report.html").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--policy", "fdg"], "unknown policy 'fdg'"),
        (["--seeds", "9-3"], "bad --seeds"),
        (["--workload", "gpushare45"], "Did you mean 'gpushare40'"),
        (["--load", "0"], "--load: 0.0 is out of range"),
    ],
)
def test_fill_bad_options_exit_2(tmp_path, args, needle):
    r = gi("fill", *args, "--out", str(tmp_path / "f"), "-q")
    assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_compare_replay_and_fill(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SMALL)
    r = gi("compare", str(f), "--policies", "scenario,fgd,spread", "--out", str(tmp_path / "c"), "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert set(s["policies"]) == {"scenario", "fgd", "spread"}
    assert all(v["invariants_ok"] for v in s["policies"].values())
    # every pod completes in this replay, so all policies deliver the same GPU-time (work is conserved)
    hours = [v["allocated_gpu_hours"] for v in s["policies"].values()]
    assert max(hours) - min(hours) <= 1e-9 * max(hours)
    assert "Every policy delivered the same allocated GPU-time" in (tmp_path / "c" / "report.html").read_text()
    r = gi("compare", str(f), "--policies", "fgd,bestfit", "--mode", "fill", "--out", str(tmp_path / "d"), "-q")
    assert r.returncode == 0, r.stderr
    r = gi("compare", str(f), "--policies", "fgd,best", "--out", str(tmp_path / "e"), "-q")
    assert r.returncode == 2 and "unknown policy 'best'" in r.stderr


def test_topo_show_and_bad_matrix(tmp_path):
    fix = Path(__file__).parent / "fixtures" / "topology" / "8xA100-pcie-nv12-bridge-pairs-node-sys.txt"
    r = gi("topo", "show", str(fix), "--render")
    assert r.returncode == 0, r.stderr
    assert "8 GPUs" in r.stdout and "NV12" in r.stdout
    bad = tmp_path / "t.txt"
    bad.write_text("\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV4\t X\n")
    r = gi("topo", "show", str(bad))
    assert r.returncode == 2 and "not symmetric" in r.stderr and "Traceback" not in r.stderr


def test_roofline_cli():
    r = gi("roofline", "--op", "gemm:4096,4096,4096", "--devices", "H100,T4", "--dtype", "fp16")
    assert r.returncode == 0, r.stderr
    assert "compute" in r.stdout and "H100-SXM" in r.stdout
    r = gi("roofline", "--op", "conv:3")
    assert r.returncode == 2 and "bad --op" in r.stderr


def test_topo_builtin_paths_picture_and_json(tmp_path):
    r = gi("topo", "list")
    assert r.returncode == 0 and "dgx-h100" in r.stdout and "pcie-4x-a100-nvbridge" in r.stdout
    html = tmp_path / "t.html"
    r = gi("topo", "show", "pcie-4x-a100-nvbridge", "--paths", "--render", "--html", str(html))
    assert r.returncode == 0, r.stderr
    assert "NV12" in r.stdout and "SYS" in r.stdout and "GPUDirect" in r.stdout
    assert html.exists() and "https://" not in html.read_text().split("<script")[0]
    r = gi("topo", "show", "dgx-h100", "--json")
    d = json.loads(r.stdout)
    assert len(d["pairs"]) == 28 and all(p["nvidia_smi"] == "NV18" for p in d["pairs"])
    assert all(p["p2p"] for p in d["nic_paths"])  # one NIC per GPU on its PCIe switch: GPUDirect RDMA
    fix = Path(__file__).parent / "fixtures" / "topology" / "4xL40S-pcie-node-sys-2nic.txt"
    r = gi("topo", "show", str(fix), "--gpu", "L40S", "--json")
    assert r.returncode == 0 and {p["nvidia_smi"] for p in json.loads(r.stdout)["pairs"]} == {"NODE", "SYS"}
    r = gi("topo", "show", "dgx-h1000")
    assert r.returncode == 2 and "dgx-h100" in r.stderr and "Traceback" not in r.stderr


def test_collective_cli_prints_nccl_tests_rows():
    r = gi("collective", "all_reduce", "--node", "dgx-h100", "--gpus", "8", "--bytes", "8G")
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(rows) == 1 and rows[0][0] == str(8 * 1024**3)
    r = gi(
        "collective", "all_gather", "--node", "dgx-a100", "--nodes", "2", "-b", "1K", "-e", "1M", "-f", "4", "--json"
    )
    rows = json.loads(r.stdout)
    assert [x["size"] for x in rows] == [1024, 4096, 16384, 65536, 262144, 1048576]
    assert all(x["busbw"] == pytest.approx(x["algbw"] * 15 / 16) for x in rows)
    for bad, msg in (
        (["collective", "all_reduce", "--bytes", "lots"], "bad size"),
        (["collective", "all_reduce", "--algo", "nvls", "--node", "dgx-a100"], "cannot run"),
        (["collective", "all_reduce", "--gpus", "9"], "has 8 GPUs"),
    ):
        r = gi(*bad)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, bad


def test_scale_cli():
    r = gi(
        "scale",
        "--model",
        "gpt3-1.3b",
        "--node",
        "pcie-8x-l40s",
        "--max-gpus",
        "16",
        "--micro-batch",
        "1",
        "--microbatches",
        "1",
        "--seq",
        "2048",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    curve = json.loads(r.stdout)
    assert [c["gpus"] for c in curve] == [1, 2, 4, 8, 16]
    r = gi("scale", "--model", "llama2-7b", "--node", "pcie-8x-l40s", "--max-gpus", "2")
    assert r.returncode == 0 and "does not fit" in r.stdout
    r = gi("scale", "--model", "gpt5")
    assert r.returncode == 2 and "unknown model" in r.stderr


def test_observability_cli(tmp_path):
    r = gi("alerts", "export", "--set", "designed")
    assert r.returncode == 0 and "GpuXidCritical" in r.stdout and "for: 5m" in r.stdout
    r = gi("alerts", "export", "--set", "clever")
    assert r.returncode == 2 and "designed, naive" in r.stderr.replace("naive, designed", "designed, naive")
    r = gi("metrics", "export", "--out", str(tmp_path / "m"), "--nodes", "1", "--hours", "1")
    assert r.returncode == 0 and (tmp_path / "m" / "metrics.om").read_text().endswith("# EOF\n")
    assert json.loads((tmp_path / "m" / "truth.json").read_text())["incidents"]
    r = gi("alerts", "evaluate", "--nodes", "1", "--hours", "2", "--json")
    d = json.loads(r.stdout)
    assert set(d) >= {"naive", "designed"} and d["designed"]["pages_per_day"] < d["naive"]["pages_per_day"]
    r = gi("reliability", "--nodes", "16", "--days", "5", "--seeds", "2", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 2
    r = gi("incident", "oom-crash-loop", "--action", "backoff-and-alert")
    assert r.returncode == 0 and "# Postmortem" in r.stdout


def test_flags_show_no_value_in_any_help():
    """--version, --help and every other boolean flag take no value: no "<bool>" beside them in any command's
    help (typer 0.29 prints one by default), while options that take a value still show their type."""
    import re

    import typer

    from gpuinfra.cli import app

    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd, path: list[str]) -> None:
        if hasattr(cmd, "commands"):  # a group (typer vendors its click)
            for name, sub in cmd.commands.items():
                paths.append([*path, name])
                walk(sub, [*path, name])

    walk(root, [])
    flags_seen = 0
    for path in paths:
        r = gi(*path, "--help")
        assert r.returncode == 0, (path, r.output)
        assert "<bool>" not in r.stdout, path
        flags_seen += r.stdout.count("--help")
    assert flags_seen >= len(paths)
    assert "<int>" in gi("simulate", "--help").stdout  # a valued option keeps its type
    version = gi("--help").stdout
    assert re.search(r"--version\s+Print the version", version), version
