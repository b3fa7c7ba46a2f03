"""`gpuinfra upgrade` and `gpuinfra cost`, invoked in-process."""

import json
import subprocess
import sys
from pathlib import Path

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
            "cuda=12.8",
            "--from",
            "driver=535.104.05,cuda=12.1,framework=2.3",
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
