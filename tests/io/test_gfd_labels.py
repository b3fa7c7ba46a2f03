"""Node labels as NVIDIA GPU Feature Discovery writes them, from NVML product names.

Expected values are derived by hand from GFD's rule (NVIDIA/k8s-device-plugin
``internal/lm/resource.go``: blanks -> ``-``, parts joined by ``-``, ``-SHARED`` when replicated)
and from GFD's own README examples, never from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gpuinfra.catalog.gpus import gpu_by_nvml_name, gpu_model, gpu_models
from gpuinfra.errors import UserError
from gpuinfra.io.probe import load_probe, match_catalog
from gpuinfra.io.sharing_export import export_sharing, gfd_product_label
from tests.clirunner import gi

FIX = Path(__file__).resolve().parents[1] / "fixtures"
PUBLISHED_H100 = FIX / "smi" / "h100-sxm-565-published.txt"


def _labels(path: Path) -> dict[str, str]:
    return yaml.safe_load(path.read_text())["metadata"]["labels"]


def test_h100_label_from_a_published_nvidia_smi_round_trips_through_the_catalog(tmp_path):
    name = load_probe(PUBLISHED_H100).devices[0].name
    assert name == "NVIDIA H100 80GB HBM3"
    model = gpu_by_nvml_name(name)
    assert model is not None and model.name == "H100-SXM" and gpu_model("H100-SXM").nvml_name == name
    assert "H100SXMx8_smi.py" in model.nvml_name_source
    export_sharing("whole", "H100-SXM", tmp_path, force=True)
    assert _labels(tmp_path / "node-labels.yaml")["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"


def test_shared_and_mig_labels(tmp_path):
    export_sharing("whole", "H100-SXM", tmp_path / "whole")
    lab = _labels(tmp_path / "whole" / "node-labels.yaml")
    assert (lab["nvidia.com/gpu.replicas"], lab["nvidia.com/gpu.sharing-strategy"]) == ("1", "none")
    export_sharing("timeslice", "H100-SXM", tmp_path / "ts", replicas=4)
    lab = _labels(tmp_path / "ts" / "node-labels.yaml")
    assert lab["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3-SHARED"
    assert (lab["nvidia.com/gpu.replicas"], lab["nvidia.com/gpu.sharing-strategy"]) == ("4", "time-slicing")
    export_sharing("mps", "H100-SXM", tmp_path / "mps", replicas=4)
    lab = _labels(tmp_path / "mps" / "node-labels.yaml")
    assert lab["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3-SHARED"
    assert (lab["nvidia.com/gpu.replicas"], lab["nvidia.com/gpu.sharing-strategy"]) == ("4", "mps")
    export_sharing("mig", "H100-SXM", tmp_path / "mig")
    lab = _labels(tmp_path / "mig" / "node-labels.yaml")
    # mixed strategy: the MIG-enabled GPU keeps its plain product, unshared (replicas 0);
    # each profile is its own resource
    assert lab["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert lab["nvidia.com/gpu.replicas"] == "0"
    assert lab["nvidia.com/mig-1g.10gb.product"] == "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"
    assert lab["nvidia.com/mig-3g.40gb.product"] == "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"
    assert (lab["nvidia.com/mig-2g.20gb.replicas"], lab["nvidia.com/mig-2g.20gb.sharing-strategy"]) == ("1", "none")
    export_sharing("mixed", "H100-SXM", tmp_path / "mixed")
    train = _labels(tmp_path / "mixed" / "node-labels-training.yaml")
    assert train["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3" and train["nvidia.com/gpu.replicas"] == "1"
    assert not any(k.startswith("nvidia.com/mig-") for k in train)


@pytest.mark.parametrize(
    ("nvml", "parts", "shared", "want"),
    [
        # GFD README (single strategy, driver of the A100 era printed no NVIDIA prefix)
        ("A100-SXM4-40GB", ("MIG", "1g.5gb"), False, "A100-SXM4-40GB-MIG-1g.5gb"),
        # k8s-device-plugin README, time-slicing with renameByDefault=false
        ("A100-SXM4-40GB", ("MIG", "1g.5gb"), True, "A100-SXM4-40GB-MIG-1g.5gb-SHARED"),
        ("Tesla V100-SXM2-16GB", (), False, "Tesla-V100-SXM2-16GB"),
        ("NVIDIA  H200 ", (), False, "NVIDIA-H200"),  # runs of blanks are one dash
        ("NVIDIA H100 80GB HBM3", ("MIG", "1g.10gb+me"), False, "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb.me"),
        ("NVIDIA RTX (beta)", (), False, "NVIDIA-RTX-beta"),  # characters outside the set are dropped
    ],
)
def test_gfd_rule_by_hand(nvml, parts, shared, want):
    parts = tuple(p.replace("+", ".") for p in parts)
    assert gfd_product_label(nvml, *parts, shared=shared) == want


@given(st.text(max_size=80))
def test_label_is_a_valid_kubernetes_value_or_refused(text):
    try:
        v = gfd_product_label(text)
    except UserError:
        return
    assert 0 < len(v) <= 63 and " " not in v
    assert v[0].isalnum() and v[-1].isalnum() and all(c.isalnum() or c in "-_." for c in v)


def test_catalog_nvml_names_are_sourced_unique_and_agree_with_the_probe_matcher():
    named = [m for m in gpu_models() if m.nvml_name]
    assert len(named) >= 5
    assert len({m.nvml_name for m in named}) == len(named)
    for m in named:
        assert m.nvml_name_source.strip(), m.name
        assert gpu_by_nvml_name(m.nvml_name) is m
        assert match_catalog(m.nvml_name) == m.name


@pytest.mark.parametrize(
    ("gpu", "nvml", "want"),
    [
        # names as published nvidia-smi / CUDA outputs print them (sources in gpus.csv), labels by
        # GFD's rule by hand: blanks -> '-', nothing else changes
        ("P100", "Tesla P100-PCIE-16GB", "Tesla-P100-PCIE-16GB"),
        ("A10G", "NVIDIA A10G", "NVIDIA-A10G"),
        ("H100-PCIe", "NVIDIA H100 PCIe", "NVIDIA-H100-PCIe"),
        ("B200", "NVIDIA B200", "NVIDIA-B200"),
    ],
)
def test_newly_sourced_names_give_gfd_labels(tmp_path, gpu, nvml, want):
    m = gpu_model(gpu)
    assert m.nvml_name == nvml and "github.com/" in m.nvml_name_source
    export_sharing("whole", gpu, tmp_path, force=True)
    assert _labels(tmp_path / "node-labels.yaml")["nvidia.com/gpu.product"] == want
    export_sharing("timeslice", gpu, tmp_path / "ts", replicas=2, force=True)
    assert _labels(tmp_path / "ts" / "node-labels.yaml")["nvidia.com/gpu.product"] == want + "-SHARED"


def test_gpu_without_a_sourced_name_is_refused_unless_named(tmp_path, monkeypatch):
    import dataclasses

    import gpuinfra.io.sharing_export as se

    # every MIG GPU of the catalog now has a sourced name: refuse one stripped of it
    unsourced = dataclasses.replace(gpu_model("H100-PCIe"), nvml_name=None, nvml_name_source="")
    monkeypatch.setattr(se, "gpu_model", lambda name, **kw: unsourced)
    with pytest.raises(UserError, match="no sourced NVML product name"):
        export_sharing("whole", unsourced.name, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    r = gi("export", "sharing", "--gpu", unsourced.name, "--policy", "whole", "-o", str(tmp_path / "b"))
    assert r.returncode == 2 and "--product-name" in r.output and "Traceback" not in r.output
    r = gi(
        "export",
        "sharing",
        "--gpu",
        unsourced.name,
        "--policy",
        "whole",
        "--product-name",
        "NVIDIA [X] 1",
        "-o",
        str(tmp_path / "c"),
    )
    assert r.returncode == 0, r.output
    assert _labels(tmp_path / "c" / "node-labels.yaml")["nvidia.com/gpu.product"] == "NVIDIA-X-1"
    assert (
        "NVIDIA [X] 1" in " ".join(r.stdout.split()) and "\\[" not in r.stdout
    )  # printed as given (no markup, no escapes)
