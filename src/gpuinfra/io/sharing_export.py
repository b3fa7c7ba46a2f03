"""Real configuration out for a sharing policy: NVIDIA k8s-device-plugin ConfigMaps (time-slicing,
MPS), a mig-parted configuration (as the GPU operator's ConfigMap), and node labels, each checked
offline: Kubernetes objects against the Kubernetes OpenAPI schemas with kubernetes-validate, the
embedded device-plugin and mig-parted documents against their formats (facts/gpu.md 2.4, 3.1,
3.2 [P]) and the MIG layout against the partition manager's placement rules.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models import mig as migm
from gpuinfra.models.sharing import MPS_MAX_CLIENTS, place_layout

NAMESPACE = "gpu-operator"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def dump(obj) -> str:
    """YAML with multi-line strings (embedded configs) as literal blocks."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False)


DEFAULT_K8S = "1.30"
BALANCED = {
    "A100-40GB": ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"],
    "A100-80GB": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
    "H100-SXM": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
    "H200": ["1g.18gb", "1g.18gb", "2g.35gb", "3g.71gb"],
    "B200": ["1g.23gb", "1g.23gb", "2g.45gb", "3g.90gb"],
}
"""mig-parted's all-balanced per GPU (config-default.yaml, facts/gpu.md 2.4 [P])."""


def device_plugin_config(mode: str, replicas: int, rename: bool = False, fail_gt_one: bool = True) -> dict:
    if mode not in ("timeslice", "mps"):
        raise UserError(f"no device-plugin sharing config for '{mode}'", expected="timeslice or mps")
    if replicas < 2:
        raise UserError("sharing needs replicas >= 2", where="--replicas")
    if mode == "mps" and replicas > MPS_MAX_CLIENTS:
        raise UserError(f"MPS allows at most {MPS_MAX_CLIENTS} clients", where="--replicas")
    key = "timeSlicing" if mode == "timeslice" else "mps"
    body: dict = {"renameByDefault": rename, "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}]}
    if mode == "timeslice":
        body = {"renameByDefault": rename, "failRequestsGreaterThanOne": fail_gt_one, "resources": body["resources"]}
    return {"version": "v1", "sharing": {key: body}}


def mig_config_name(layout: list[str]) -> str:
    """The mig-parted config name gpuinfra gives a per-GPU layout (``gpuinfra-`` + sorted profiles)."""
    return "gpuinfra-" + "-".join(sorted(layout))


def mig_parted_config(gpu: str, name: str, layout: list[str], extra: dict[str, list[str]] | None = None) -> dict:
    """A mig-parted config: ``all-disabled``, ``name`` (``layout`` on every GPU of a node) and any
    ``extra`` named layouts; unknown profiles are a ``UserError``."""

    def counts(lay: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in lay:
            migm.profile(gpu, p)
            out[p] = out.get(p, 0) + 1
        return out

    configs: dict = {"all-disabled": [{"devices": "all", "mig-enabled": False}]}
    for n, lay in {name: layout, **(extra or {})}.items():
        configs[n] = [{"devices": "all", "mig-enabled": True, "mig-devices": counts(lay)}]
    return {"version": "v1", "mig-configs": configs}


def check_layout(gpu: str, layout: list[str]) -> list[migm.Instance]:
    """Place the instances (largest first, as the MIG guide recommends), searching the start slots
    so that, e.g., 3-2-1-1 lands as 0:1, 1:1, 2:2, 4:4; refuse a layout no placement fits."""
    got = place_layout(gpu, layout)
    if got is None:
        profs = sorted(
            (migm.profile(gpu, n) for n in layout), key=lambda p: (-p.memory_slices, -p.compute_slices, p.name)
        )
        why = migm.why_not([], profs[0], profs[0].placements[0]) if profs else "empty layout"
        raise UserError(
            f"MIG layout {','.join(layout)} does not fit one {gpu_model(gpu).name} in any placement",
            where="--layout",
            expected="profiles whose slices and start slots fit together (gpuinfra mig fit)"
            + (f"; first refusal: {why}" if why else ""),
        )
    return got


def _check_device_plugin(doc: dict) -> None:
    assert doc.get("version") == "v1", "device-plugin config version must be v1"
    sharing = doc.get("sharing", {})
    assert len(sharing) == 1 and next(iter(sharing)) in ("timeSlicing", "mps"), (
        "exactly one of sharing.timeSlicing / sharing.mps"
    )
    body = next(iter(sharing.values()))
    for r in body["resources"]:
        assert r["name"].startswith("nvidia.com/") and int(r["replicas"]) >= 2


def _check_mig_parted(doc: dict, gpu: str) -> None:
    assert doc.get("version") == "v1" and isinstance(doc.get("mig-configs"), dict)
    for name, entries in doc["mig-configs"].items():
        for e in entries:
            assert e["devices"] == "all" or isinstance(e["devices"], list), name
            if e.get("mig-enabled"):
                layout = [p for p, n in e["mig-devices"].items() for _ in range(int(n))]
                check_layout(gpu, layout)


def export_sharing(
    policy: str,
    gpu: str,
    out_dir: Path,
    replicas: int = 4,
    layout: list[str] | None = None,
    pool: str = "gpu-pool",
    k8s_version: str = DEFAULT_K8S,
    training_layout: list[str] | None = None,
    force: bool = True,
) -> dict:
    """Validate every document for ``policy``, then write them into ``out_dir`` (each atomically).
    Returns a summary.

    ``layout``: the MIG layout of every MIG GPU of the pool (default mig-parted's all-balanced);
    ``training_layout``: under ``mig``, the layout of the training nodes' GPUs (e.g. the full-GPU
    instance), written as a second mig-parted config with its own node labels. The summary's
    ``mig_layouts`` maps each written config name to its profiles.

    Raises:
        UserError: bad policy/GPU/layout, or (with ``force=False``, as the CLI calls it) a file of
            the export already in ``out_dir`` (nothing is written then).
    """
    import kubernetes_validate

    from gpuinfra.io.atomic import check_new_file, ensure_dir, write_text

    model = gpu_model(gpu)
    docs: list[tuple[str, dict]] = []
    mig_layouts: dict[str, list[str]] = {}
    labels = {"nvidia.com/gpu.product": model.name}
    if policy in ("timeslice", "mps"):
        cfg = device_plugin_config(policy, replicas)
        _check_device_plugin(cfg)
        key = f"{policy}-x{replicas}"
        docs.append(
            (
                "device-plugin-config.yaml",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "nvidia-device-plugin-config", "namespace": NAMESPACE},
                    "data": {key: yaml.safe_dump(cfg, sort_keys=False)},
                },
            )
        )
        labels["nvidia.com/device-plugin.config"] = key
    if policy in ("mig", "mixed"):
        if not model.mig:
            raise UserError(f"{model.name} has no MIG", where="--gpu", expected="A100, H100, H200 or B200")
        lay = layout or BALANCED.get(model.name)
        if not lay:
            raise UserError(
                f"no default MIG layout for {model.name}",
                where="--layout",
                expected="a comma-separated list of profiles",
            )
        check_layout(gpu, lay)
        name = mig_config_name(lay)
        extra: dict[str, list[str]] = {}
        if policy == "mig" and training_layout:
            check_layout(gpu, training_layout)
            if sorted(training_layout) != sorted(lay):
                extra[mig_config_name(training_layout)] = list(training_layout)
        mig_layouts = {name: list(lay), **extra}
        mp = mig_parted_config(gpu, name, lay, extra)
        _check_mig_parted(mp, gpu)
        docs.append(
            (
                "mig-parted-config.yaml",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "gpuinfra-mig-parted-config", "namespace": NAMESPACE},
                    "data": {"config.yaml": yaml.safe_dump(mp, sort_keys=False)},
                },
            )
        )
        labels["nvidia.com/mig.config"] = name
        labels["nvidia.com/mig.strategy"] = "mixed"
    if policy == "whole":
        labels["nvidia.com/device-plugin.config"] = "default"
    if policy not in ("whole", "timeslice", "mps", "mig", "mixed"):
        raise UserError(f"unknown policy '{policy}'", where="--policy", expected="whole, timeslice, mps, mig or mixed")
    # node labels as a Node object (what `kubectl label` would set on each node of the pool)
    docs.append(
        (
            "node-labels.yaml",
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"{pool}-node", "labels": labels}},
        )
    )
    train_cfg = mig_config_name(training_layout) if training_layout else None
    if policy == "mig" and train_cfg in mig_layouts and train_cfg != labels.get("nvidia.com/mig.config"):
        docs.append(
            (
                "node-labels-training.yaml",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": f"{pool}-training-node",
                        "labels": {
                            "nvidia.com/gpu.product": model.name,
                            "nvidia.com/mig.config": mig_config_name(training_layout),
                            "nvidia.com/mig.strategy": "mixed",
                        },
                    },
                },
            )
        )
    if policy == "mixed":
        docs.append(
            (
                "node-labels-training.yaml",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": f"{pool}-training-node",
                        "labels": {"nvidia.com/gpu.product": model.name, "nvidia.com/mig.config": "all-disabled"},
                    },
                },
            )
        )
    from kubernetes_validate.utils import VersionNotSupportedError, all_versions

    for _, obj in docs:
        try:
            kubernetes_validate.validate(obj, k8s_version, strict=True)
        except VersionNotSupportedError:
            known = sorted(
                {".".join(v.split(".")[:2]) for v in all_versions()}, key=lambda v: tuple(map(int, v.split(".")))
            )
            raise UserError(
                f"no Kubernetes schemas for version '{k8s_version}'",
                where="--k8s-version",
                expected="one of " + ", ".join(known),
            ) from None
    for fname, _ in docs:
        check_new_file(out_dir / fname, force=force, where="--out")
    ensure_dir(out_dir, "--out")
    written = []
    for fname, obj in docs:
        write_text(out_dir / fname, dump(obj))
        written.append(fname)
    return {
        "policy": policy,
        "gpu": model.name,
        "files": written,
        "labels": labels,
        "kubernetes_version": k8s_version,
        "validated": True,
        "mig_layouts": mig_layouts,
    }
