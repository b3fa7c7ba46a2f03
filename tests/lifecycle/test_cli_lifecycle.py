"""`gpuinfra upgrade` and `gpuinfra cost`, invoked in-process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuinfra.cli import app

EX = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def test_upgrade_plan_proposes_against_naive_on_the_same_run():
    r = runner.invoke(
        app,
        [
            "upgrade",
            "plan",
            str(EX / "upgrade.yaml"),
            "--to",
            "driver=580.65.06",  # the README's command: the current stack comes from the example's upgrade.stack
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["change"]["needs_node_drain"] is True
    assert d["naive"]["pdb_overridden"] > 0  # the naive drain bypasses the budget
    assert d["proposed"]["pdb_overridden"] == 0 and d["proposed"]["nodes_done"] == 5
    assert d["proposed"]["disruption_usd"] == min(
        c["disruption_usd"] for c in d["candidates"][1:] if c["pdb_overridden"] == 0
    )
    # the strongest other candidate, derived from the table: the cheapest safe one of another
    # strategy or batch size (the naive row is no fair baseline: it bypasses every budget)
    q = d["proposed"]
    shape = ("strategy", "max_surge", "max_unavailable")
    others = [
        c
        for c in d["candidates"][1:]
        if c["pdb_overridden"] == 0 and c["nodes_done"] == 5 and any(c[k] != q[k] for k in shape)
    ]
    assert d["runner_up"]["disruption_usd"] == min(c["disruption_usd"] for c in others)
    assert any(d["runner_up"][k] != q[k] for k in shape)
    for c in d["candidates"]:  # spare-node cost: what the surge/green nodes added to the naive bill
        assert c["spare_node_usd"] == c["bill_usd"] - d["naive"]["bill_usd"]
        # in place: the same nodes, the same bill (to float rounding); surge/green: extra nodes paid
        assert (c["spare_node_usd"] > 1e-9 * d["naive"]["bill_usd"]) == (c["strategy"] != "in_place")
        assert c["disruption_usd"] == pytest.approx(
            c["failure_waste_usd"]
            + c["preemption_waste_usd"]
            + c["unavailable_usd"]
            - c["provisioning_usd"]
            + c["spare_node_usd"],
            rel=1e-12,
        )
    text = runner.invoke(app, ["upgrade", "plan", str(EX / "upgrade.yaml"), "--to", "driver=580.65.06"]).output
    assert f"strongest other safe candidate, {d['runner_up']['candidate']}" in " ".join(text.split())
    assert "maxSurge" in text and "maxUnavailable" in text and "spare-node cost" in text


def test_forbidden_upgrade_path_exits_2_naming_the_rule():
    args = ["upgrade", "layers", "--gpu", "B200", "--from", "driver=570.86.15,cuda=12.8", "--to", "cuda=12.2"]
    r = subprocess.run([sys.executable, "-m", "gpuinfra.cli", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "rule arch-min-cuda" in r.stderr and "Traceback" not in r.stderr


def test_cost_attribute_writes_an_opencost_table(tmp_path):
    out = tmp_path / "alloc.csv"
    r = runner.invoke(app, ["cost", "attribute", str(EX / "upgrade.yaml"), "--csv", str(out)])
    assert r.exit_code == 0, r.output
    head = out.read_text().splitlines()[0].split(",")
    for col in ("name", "namespace", "pod", "gpuHours", "gpuCost", "totalCost"):
        assert col in head
    assert "idle check against the recorder: ok" in r.output


def _service_scenario(tmp_path, load):
    import yaml

    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner\n"
        + "".join(f"serve-{i},0,7200,1,1000,8000,65536,H100-SXM,100,,serving\n" for i in range(4))
    )
    kind = {"owner": "serving", "kind": "service", **({"load": load} if load else {})}
    d = {
        "name": "svc",
        "horizon_s": 7200,
        "cluster": {"pools": [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1}]},
        "workload": {"trace": "jobs.csv"},
        "prices": {"cloud": "aws"},
        "execution": {"kinds": [kind]},
    }
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_cost_attribute_shows_over_provisioned_serving_or_says_why_not(tmp_path):
    load = {"offered_rps": 12, "source": "test", "replica_capacity_rps": 8, "capacity_source": "test",
            "target_utilization": 0.75}  # fmt: skip
    out = tmp_path / "alloc.csv"
    r = runner.invoke(app, ["cost", "attribute", str(_service_scenario(tmp_path, load)), "--csv", str(out)])
    assert r.exit_code == 0, r.output
    assert "2 replicas needed" in r.output and "4.0 GPU-hours over" in r.output
    assert "serving/__over_provisioned__" in out.read_text()
    r = runner.invoke(app, ["cost", "attribute", str(_service_scenario(tmp_path, None)), "--json"])
    assert r.exit_code == 0, r.output
    (sv,) = json.loads(r.output)["over_provisioning"]
    assert sv["status"] == "not computed" and "execution.kinds[owner=serving].load" in sv["why"]


def test_upgrade_layers_framework_only_needs_no_drain():
    args = ["upgrade", "layers", "--gpu", "H100-SXM", "--from", "driver=535.104.05,cuda=12.1,framework=2.3"]
    r = runner.invoke(app, [*args, "--to", "framework=2.7", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["after"]["driver"] == "535.104.05" and d["needs_node_drain"] is False
    assert d["driver_compat"] == "native" and "rolling restart" in d["rollout"]
    r = runner.invoke(app, [*args, "--to", "framework=2.7"])
    assert "rolling restart of the pods" in r.output and "nodes must be drained: False" in r.output


def test_upgrade_plan_reports_what_compat_refuses_in_the_current_stack():
    # an H100 pool on R515 with CUDA 11.7: both predate Hopper, which is why one upgrades; the plan
    # runs (the upgrade moves away from the refused stack) and says what is wrong with today's
    args = ["upgrade", "plan", str(EX / "upgrade.yaml"), "--from", "driver=515.65.01,cuda=11.7,framework=1.13"]
    r = runner.invoke(app, [*args, "--to", "driver=580.65.06", "--json"])
    assert r.exit_code == 0, r.output
    refused = {f["rule"] for f in json.loads(r.output)["current_stack_findings"] if f["verdict"] == "refuse"}
    assert refused == {"arch-min-driver", "arch-min-cuda"}
    text = runner.invoke(app, [*args, "--to", "driver=580.65.06"]).output
    assert "current stack: compat check refuses it (arch-min-driver)" in text
    assert "driver 520.61.05" in text  # NVIDIA's spelling of the Hopper minimum, not 520.61.5
