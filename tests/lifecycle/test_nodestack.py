"""A node as layers: what a change at one layer forces at the others (models/nodestack.py)."""

import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.nodestack import NodeStack, parse_target, plan_change

BASE = NodeStack("H100-SXM", "535.104.05", "12.1", "2.3")


def test_newer_cuda_forces_the_driver_to_the_toolkits_driver():
    p = plan_change(BASE, parse_target("cuda=12.8"))
    rules = {f["layer"]: f["rule"] for f in p.forced}
    assert rules["driver"] == "driver-floor"
    assert p.after.driver.startswith("570.")  # CUDA 12.8 GA shipped with R570 (toolkit table)
    assert p.after.cuda == "12.8" and p.needs_reboot


def test_framework_forces_the_image_cuda_to_one_of_its_wheels():
    p = plan_change(BASE, parse_target("framework=2.7"))
    assert {"layer": "cuda", "from": "12.1", "to": "12.8", "rule": "torch-wheel"} in p.forced
    assert p.report.verdict != "refuse"


def test_slash_form_and_no_forced_change_when_consistent():
    p = plan_change(BASE, parse_target("570.86.15/12.8/2.7"))
    assert p.forced == [] and p.layers_changed == ["driver", "cuda", "framework"]


def test_forbidden_path_names_the_rule():
    with pytest.raises(UserError, match="arch-min-cuda"):
        plan_change(NodeStack("B200", "570.86.15", "12.8"), parse_target("cuda=12.2"))
    with pytest.raises(UserError, match="torch-wheel"):
        plan_change(BASE, parse_target("framework=2.7,cuda=12.1"))


def test_layers_without_data_are_carried_and_flagged():
    p = plan_change(BASE, parse_target("kernel=6.8.0,driver=535.104.05"))
    assert {"layer": "kernel", "from": "", "to": "6.8.0", "rule": "no-data"} in p.forced
    with pytest.raises(UserError, match="LAYER=VERSION"):
        parse_target("bogus=1")
