"""MIG input errors name the valid profiles/layouts of the pool's GPU (from the catalog's MIG
tables) and the field to fix. Expected layouts checked against the MIG rules by hand: A100 has 7
compute and 8 memory slices, 4g.40gb at most once."""

from __future__ import annotations

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.sharing_export import check_layout
from gpuinfra.models import mig as migm
from tests.clirunner import gi

POOL_A = "    - {name: a, gpu_model: A100-80GB, gpus_per_node: 8, cpu_milli: 64000, memory_mib: 524288, count: 2}\n"


def _scenario(tmp_path, mig_pool: str | None, rows: str) -> str:
    (tmp_path / "j.csv").write_text("job_id,submit_time_s,duration_s,gpu_model,mig_profile\n" + rows)
    text = "name: t\ncluster:\n  pools:\n" + POOL_A + (mig_pool or "") + "workload:\n  trace: j.csv\n"
    (tmp_path / "s.yaml").write_text(text)
    return str(tmp_path / "s.yaml")


def _mig_pool(gpu: str, layout: str) -> str:
    return (
        f"    - {{name: m, gpu_model: {gpu}, gpus_per_node: 8, cpu_milli: 64000, memory_mib: 524288, count: 1,"
        f" mig_layout: [{layout}]}}\n"
    )


def _run(path: str, tmp_path) -> str:
    r = gi("simulate", path, "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.output, r.output[-3000:]
    return " ".join(r.output.split())


def test_layout_that_does_not_fit_says_why_and_offers_valid_layouts(tmp_path):
    msg = _run(_scenario(tmp_path, _mig_pool("A100-80GB", "4g.40gb, 4g.40gb"), "x,0,10,,\n"), tmp_path)
    assert "s.yaml:5 (cluster.pools[1].mig_layout)" in msg
    # by hand: two 4g instances = 8 compute slices of 7, and 4g.40gb is allowed once per GPU
    assert "2 x 4g.40gb, at most 1 per GPU" in msg and "8 compute slices of the 7" in msg
    # 4g + 3g = 7 compute slices and 4 + 4 = 8 memory slices: the full GPU, keeping one 4g
    assert "[4g.40gb,3g.40gb]" in msg
    assert "edit cluster.pools[1].mig_layout" in msg and "gpuinfra mig profiles A100-80GB" in msg


def test_suggested_layouts_are_valid_and_hold_the_largest_profile():
    for gpu in migm.mig_gpus():
        big = max(migm.mig_profiles(gpu), key=lambda p: p.memory_slices).name
        for lay in migm.suggest_layouts(gpu, [big, big]):
            assert lay.split(",")[0] == big
            check_layout(gpu, lay.split(","))  # places without error


def test_unknown_profile_in_a_layout_lists_the_gpus_profiles(tmp_path):
    msg = _run(_scenario(tmp_path, _mig_pool("H100-SXM", "1g.5gb"), "x,0,10,,\n"), tmp_path)
    assert "cluster.pools[1].mig_layout" in msg and "unknown MIG profile '1g.5gb' for H100-SXM" in msg
    assert "1g.10gb" in msg and "7g.80gb" in msg  # H100's own profiles, not A100-40GB's 1g.5gb


def test_layout_on_a_gpu_without_mig_names_the_mig_gpus(tmp_path):
    msg = _run(_scenario(tmp_path, _mig_pool("L4", "1g.10gb"), "x,0,10,,\n"), tmp_path)
    assert "pool 'm' has GPU L4, which has no MIG" in msg
    for g in ("A100-80GB", "H100-SXM", "H100-PCIe", "H200", "B200"):
        assert g in msg
    assert "set cluster.pools[1].gpu_model" in msg and "remove cluster.pools[1].mig_layout" in msg


def test_pod_profile_no_layout_offers(tmp_path):
    mig = _mig_pool("A100-80GB", "3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb")
    msg = _run(_scenario(tmp_path, mig, "m,0,10,A100-80GB,7g.80gb\n"), tmp_path)
    assert "j.csv:2" in msg and "asks for MIG instance 7g.80gb, which no pool's mig_layout has" in msg
    assert "one the layouts offer (1g.10gb, 2g.20gb, 3g.40gb)" in msg  # the pod's field
    assert "pool 'm' (A100-80GB) mig_layout [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb] could be [7g.80gb]" in msg
    assert "MigFit.reconfigure" in msg


def test_pod_profile_without_any_mig_pool_suggests_a_layout(tmp_path):
    msg = _run(_scenario(tmp_path, None, "ok,0,10,,\nm,0,10,A100-80GB,1g.10gb\n"), tmp_path)
    assert "j.csv:3" in msg and "no pool has a mig_layout" in msg
    hint = msg.split("pool 'a' (A100-80GB): mig_layout: [")[1].split("]")[0]
    assert "1g.10gb" in hint.split(",")
    check_layout("A100-80GB", hint.split(","))


def test_export_sharing_layout_error_names_the_flag():
    with pytest.raises(UserError) as e:
        check_layout("H100-SXM", ["7g.80gb", "1g.10gb"])
    # 7 + 1 compute slices, 8 + 1 memory slices
    assert e.value.where == "--layout" and "8 compute slices of the 7" in e.value.what
    assert "9 memory slices of the 8" in e.value.what and "[7g.80gb]" in e.value.expected
