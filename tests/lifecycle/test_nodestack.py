"""A node as layers: the least disruptive consistent stack for a requested change (models/nodestack.py).

Expected plans are worked by hand from the packaged tables (catalog/data/compat/): PyTorch 2.7 ships
cu118 (stable), cu126 (stable), cu128 (experimental); CUDA 11.8 shipped with driver 520.61.05, 12.6
with 560.28.03, 12.8 with 570.86.10; the 12.x minor-version floor is 525, the 13.x floor 580.
"""

import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.nodestack import NodeStack, parse_target, plan_change

BASE = NodeStack("H100-SXM", "535.104.05", "12.1", "2.3")


def test_framework_only_change_keeps_the_driver_and_needs_no_drain():
    # 535.104.05 >= 520.61.05: the stable cu118 wheel runs natively, so neither driver nor node changes
    p = plan_change(BASE, parse_target("framework=2.7"))
    assert p.after.driver == "535.104.05" and p.after.cuda == "11.8" and p.after.framework == "2.7"
    assert p.forced == [{"layer": "cuda", "from": "12.1", "to": "11.8", "rule": "torch-wheel"}]
    assert p.driver_compat == "native"
    assert not p.needs_reboot and p.as_dict()["needs_node_drain"] is False
    assert "rolling restart" in p.rollout


def test_a_wheel_the_driver_runs_only_under_minor_version_compat_is_said_so():
    # PyTorch 2.8 ships cu126 (stable), cu128 (stable), cu129: all need a driver above 535.104.05, all >= 525
    p = plan_change(BASE, parse_target("framework=2.8"))
    assert p.after.driver == "535.104.05" and p.after.cuda == "12.6"  # the stable wheel nearest 12.1
    assert p.driver_compat == "minor-version" and p.report.verdict == "warn" and not p.needs_reboot


def test_cuda_bump_moves_the_framework_by_the_smallest_step():
    # 2.3 has no cu128; 2.7 is the first minor with a cu128 wheel; 535 >= 525 runs 12.8 under minor-version compat
    p = plan_change(BASE, parse_target("cuda=12.8"))
    assert p.after.framework == "2.7" and p.after.driver == "535.104.05"
    assert p.forced == [{"layer": "framework", "from": "2.3", "to": "2.7", "rule": "torch-wheel"}]
    assert p.driver_compat == "minor-version" and not p.needs_reboot


def test_driver_is_forced_only_when_compat_check_refuses():
    # CUDA 13.0: 535 is below the 13.x floor 580 (forward-compat refuses) -> 13.0's driver 580.65.06;
    # 2.9 is the first PyTorch minor with a cu130 wheel
    p = plan_change(BASE, parse_target("cuda=13.0"))
    assert p.after.driver == "580.65.06" and p.after.framework == "2.9"
    assert {"layer": "driver", "from": "535.104.05", "to": "580.65.06", "rule": "forward-compat"} in p.forced
    assert p.needs_reboot


def test_slash_form_and_no_forced_change_when_consistent():
    p = plan_change(BASE, parse_target("570.86.15/12.8/2.7"))
    assert p.forced == [] and p.layers_changed == ["driver", "cuda", "framework"]


def test_forbidden_path_names_the_rule():
    with pytest.raises(UserError, match="arch-min-cuda"):
        plan_change(NodeStack("B200", "570.86.15", "12.8"), parse_target("cuda=12.2"))
    with pytest.raises(UserError, match="torch-wheel"):
        plan_change(BASE, parse_target("framework=2.7,cuda=12.1"))


def test_a_requested_layer_is_never_forced():
    p = plan_change(BASE, parse_target("kernel=6.8.0,driver=570.86.15"))
    assert p.forced == []
    assert p.unchecked == [{"layer": "kernel", "from": "", "to": "6.8.0", "rule": "no-data"}]
    assert p.needs_reboot  # driver and kernel: the node reboots
    for t in ("framework=2.7", "cuda=12.8", "cuda=13.0", "driver=580.65.06"):
        req = parse_target(t)
        assert not {f["layer"] for f in plan_change(BASE, req).forced} & set(req)
    with pytest.raises(UserError, match="LAYER=VERSION"):
        parse_target("bogus=1")
