"""Every command group run for real, in-process: the commands the README shows, with their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirunner import gi

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"


def ok(*args: str, **kw):
    r = gi(*args, **kw)
    assert r.returncode == 0, (args, r.output)
    assert "Traceback" not in r.output
    return r


def test_examples_directory_simulates_and_compares(tmp_path):
    r = ok("simulate", str(ROOT / "examples" / "small-cluster.yaml"), "--out", str(tmp_path / "run"), "-q")
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["invariants"]["gpu_time_balance"]["ok"] and s["invariants"]["no_overcommit"]["ok"]
    # examples/jobs.csv has one row per job (header excluded); each becomes one pod
    jobs = len((ROOT / "examples" / "jobs.csv").read_text().strip().splitlines()) - 1
    assert s["workload"]["pods"] == jobs and "small-cluster" in r.stdout
    ok(
        "compare",
        str(ROOT / "examples" / "small-cluster.yaml"),
        "--policies",
        "scenario,bestfit",
        "-o",
        str(tmp_path / "c"),
        "-q",
    )
    assert set(json.loads((tmp_path / "c" / "summary.json").read_text())["policies"]) == {"scenario", "bestfit"}


def test_scenarios_and_schema(tmp_path):
    assert "synthetic-small" in ok("scenarios").stdout
    sch = json.loads(ok("schema").stdout)
    assert "cluster" in sch["properties"] and "workload" in sch["properties"]
    ok("schema", "-o", str(tmp_path / "s.json"))
    assert json.loads((tmp_path / "s.json").read_text()) == sch


def test_catalog_every_subcommand():
    r = ok("catalog", "cpus")
    assert "EPYC-9654" in r.stdout and "BF16 TFLOP/s" in r.stdout
    gpus = json.loads(ok("catalog", "gpus", "--json").stdout)
    assert {"H100-SXM", "T4"} <= {g["name"] for g in gpus} and all(g["source"] for g in gpus)
    assert "p5.48xlarge" in ok("catalog", "shapes").stdout
    # the nominal size is labelled as the datasheet's GB; the visible column is nvidia-smi's MiB / 1024
    h200 = next(g for g in gpus if g["name"] == "H200")
    text = ok("catalog", "gpus").stdout
    assert "141 GB" in text and f"{h200['memory_visible_mib'] / 1024:.1f}" in text
    assert "USD/GPU-h" in ok("catalog", "prices", "H100", "--cloud", "aws").stdout


def test_plugins_lists_extension_points():
    r = ok("plugins")
    assert "NodeResourcesFit" in r.stdout and "Filter" in r.stdout


def test_plugin_contracts_are_their_own_and_whole():
    """FIFO shares a module with PrioritySort but has its own contract; a contract that runs over
    one docstring line is shown whole (it wraps instead of being cut)."""
    from gpuinfra.cli.plugins import contract
    from gpuinfra.sim import plugins as _  # noqa: F401
    from gpuinfra.sim.scheduler import REGISTRY

    assert contract(REGISTRY["FIFO"]) != contract(REGISTRY["PrioritySort"])
    assert "priorities ignored" in contract(REGISTRY["FIFO"])
    assert contract(REGISTRY["GpuClusteringByMilli"]).endswith("which is ``GpuClustering``).")
    assert all(c.strip() for c in map(contract, REGISTRY.values()))


def test_scale_sentence():
    from gpuinfra.cli.topology import scale_sentence

    assert scale_sentence(None, 1024) == "Communication stays below compute up to 1,024 GPUs."
    assert scale_sentence(256, 1024).startswith("Communication exceeds compute from 256 GPUs")


def test_mig_profiles_and_fit():
    r = ok("mig", "profiles", "H100")
    # H100 80GB: seven 1g slices of 10 GB, start slots 0..6 (NVIDIA MIG user guide)
    assert "1g.10gb" in r.stdout and "0,1,2,3,4,5,6" in r.stdout
    r = ok("mig", "fit", "A100-40GB", "--have", "3g.20gb@0", "--want", "2g.10gb")
    assert "fits at start slot(s) 4" in r.stdout


def test_roofline_single_op_and_layer():
    r = ok("roofline", "--op", "gemm:1,8192,8192", "--dtype", "fp16", "--devices", "H100")
    assert "memory" in r.stdout  # a GEMV is memory-bound
    r = ok("roofline", "--op", "layer:4096,4096,16384,32,2048", "--devices", "EPYC-9654,H100", "--dtype", "fp16")
    assert "total" in r.stdout and "EPYC-9654" in r.stdout


def test_memory_scenarios_and_run(tmp_path):
    r = ok("memory", "scenarios")
    assert "variable-batch" in r.stdout and "cached-not-free" in r.stdout
    html = tmp_path / "mem.html"
    r = gi("memory", "run", "--scenario", "variable-batch", "--html", str(html))
    assert r.returncode == 1 and "CUDA out of memory" in r.stdout, r.output
    assert html.stat().st_size > 0
    trace = tmp_path / "t.txt"
    # 16 GiB device, 1 GiB allocated and freed, then 2 GiB: fits, no OOM
    trace.write_text("gpu 16GiB\ncontext 0\nalloc a 1GiB\nfree a\nalloc b 2GiB\n")
    d = json.loads(ok("memory", "run", str(trace), "--json").stdout)
    assert d["ooms"] == [] and d["peak_allocated"] == 2 * 1024**3 and d["operations"] == 3
    d = json.loads(ok("memory", "run", str(trace), "--json", "--config", "expandable_segments:True").stdout)
    assert "expandable_segments:True" in d["config"]


def test_probe_without_a_driver_exits_3(monkeypatch):
    import gpuinfra.io.probe as probe_mod
    import gpuinfra.io.probe_memory as pm

    def nope(*a, **k):
        raise probe_mod.ProbeUnavailable("no NVIDIA driver reachable (test)")

    monkeypatch.setattr(probe_mod, "probe_nvml", nope)
    monkeypatch.setattr(pm, "compare_real", nope)
    for cmd in (["probe"], ["probe", "topo"], ["probe", "memory"]):
        r = gi(*cmd)
        assert r.returncode == 3, (cmd, r.output)
        assert "no GPU probe" in r.stderr and "Traceback" not in r.output


def test_probe_from_saved_files(tmp_path):
    r = ok("probe", "--from", str(FIX / "nvidia-smi-q-h100-full.txt"), "--save", str(tmp_path / "p.json"))
    assert "node verdict" in r.stdout
    saved = json.loads((tmp_path / "p.json").read_text())
    # a saved probe without a topology: probe topo names what is missing
    r = gi("probe", "topo", "--from", str(tmp_path / "p.json"))
    assert r.returncode == 2 and "has no topology" in r.stderr
    # the same probe with a 2-GPU NVLink matrix, as NVML's topology query would fill it
    saved["topology"] = {"GPU0": {"GPU0": "X", "GPU1": "NV18"}, "GPU1": {"GPU0": "NV18", "GPU1": "X"}}
    (tmp_path / "t.json").write_text(json.dumps(saved))
    r = ok("probe", "topo", "--from", str(tmp_path / "t.json"), "--gpu", "H100-SXM")
    assert "NV18" in r.stdout and "GPU0-GPU1" in r.stdout


def test_health_reads_a_kernel_log():
    r = gi("health", "--dmesg", str(FIX / "dmesg-xid.log"), "--json")
    assert r.returncode == 1, r.output  # the fixture's verdict is an action
    d = json.loads(r.stdout)
    assert d and all("action" in f for f in d)
    assert "flowchart" in ok("health", "--tree").stdout


def test_topology_group(tmp_path):
    assert "dgx-h100" in ok("topo", "list").stdout
    rows = json.loads(ok("collective", "all_reduce", "--bytes", "1M", "--json").stdout)
    assert rows[0]["size"] == 1024**2
    curve = json.loads(ok("scale", "--model", "gpt3-1.3b", "--max-gpus", "2", "--seq", "1024", "--json").stdout)
    assert [c["gpus"] for c in curve] == [1, 2]


def test_reliability_and_incident(tmp_path):
    r = ok("reliability", "--nodes", "8", "--days", "2", "--seeds", "2")
    assert "ETTR" in r.stdout and "closed form" in r.stdout
    pm = tmp_path / "pm.md"
    r = ok("incident", "nccl-hang", "--postmortem", str(pm))
    assert pm.read_text() == r.stdout and r.stdout.startswith("# ")


def test_metrics_and_alerts(tmp_path):
    ok("metrics", "export", "--out", str(tmp_path / "m"), "--nodes", "1", "--hours", "1")
    assert (tmp_path / "m" / "metrics.om").read_text().endswith("# EOF\n")
    r = ok("alerts", "export", "--set", "naive", "-o", str(tmp_path / "rules.yml"))
    assert "groups:" in (tmp_path / "rules.yml").read_text() and "wrote" in r.stdout


def test_metrics_serve_answers_then_stops():
    r = ok("metrics", "serve", "--port", "0", "--nodes", "1", "--hours", "1", "--duration", "0.3")
    assert "serving http://127.0.0.1:" in r.stdout and "stopped" in r.stdout


def test_sharing_evaluate_and_export(tmp_path):
    d = json.loads(ok("sharing", "evaluate", "--seconds", "5", "--json").stdout)
    assert {x["policy"] for x in d} >= {"whole", "mig"}
    assert all(0 <= x["utilization"] <= 1 for x in d)
    pytest.importorskip("kubernetes_validate")
    r = ok("export", "sharing", "--policy", "timeslice", "--replicas", "4", "-o", str(tmp_path / "cfg"))
    assert "validated against Kubernetes" in r.stdout and any((tmp_path / "cfg").iterdir())


def test_lab_list_and_shortcut():
    assert "  6  Why 'Any Free GPU' Is a Lie" in ok("lab", "list").stdout
    r = gi("lab", "99")
    assert r.returncode == 2 and "there is no lab 99" in r.stderr
