"""Real configuration out for a sharing policy: NVIDIA k8s-device-plugin ConfigMaps (time-slicing,
MPS), a mig-parted configuration (as the GPU operator's ConfigMap), and node labels, each checked
offline: Kubernetes objects against the Kubernetes OpenAPI schemas with kubernetes-validate, the
embedded device-plugin and mig-parted documents against their formats (facts/gpu.md 2.4, 3.1,
3.2 [P]) and the MIG layout against the partition manager's placement rules.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gpuinfra.catalog.gpus import gpu_model, gpu_models
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


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
"""A Kubernetes label value: at most 63 characters, alphanumerics with ``-``, ``_`` and ``.``
inside (Kubernetes 'Labels and Selectors', syntax and character set)."""


def gfd_product_label(product_name: str, *parts: str, shared: bool = False, where: str = "--product-name") -> str:
    """The value GPU Feature Discovery writes into ``nvidia.com/<resource>.product``.

    ``product_name`` is the NVML name (``nvmlDeviceGetName``, nvidia-smi's 'Product Name'),
    ``parts`` what GFD appends (``"MIG", "<profile>"`` for a MIG resource). GFD's rule
    (NVIDIA/k8s-device-plugin ``internal/lm/resource.go``, ``getProductName``/``sanitise``):
    each non-empty part loses every character outside ``[A-Za-z0-9-_. ]``, its runs of blanks
    become one ``-``; the parts are joined with ``-``; ``-SHARED`` is appended when the resource
    is replicated (time-slicing or MPS, replicas > 1) and not renamed. A MIG profile name has
    its ``+`` replaced by ``.`` first (``internal/resource/nvml-mig-device.go``, ``GetName``).

    E.g. ``NVIDIA H100 80GB HBM3`` -> ``NVIDIA-H100-80GB-HBM3``; with ``"MIG", "1g.10gb"`` ->
    ``NVIDIA-H100-80GB-HBM3-MIG-1g.10gb``.

    Raises:
        UserError: the result is not a valid Kubernetes label value (empty or over 63 characters).
    """

    def sanitise(p: str) -> str:
        return "-".join(re.sub(r"[^A-Za-z0-9\-_. ]", "", p).split())

    out = [q for q in (sanitise(p) for p in (product_name, *parts) if p) if q]
    if shared and out:
        out.append("SHARED")
    value = "-".join(out)
    if not value or not _LABEL_VALUE.match(value) or len(value) > 63:
        raise UserError(
            f"GPU Feature Discovery's product label for '{product_name}' would be '{value}', "
            "not a Kubernetes label value",
            where=where,
            expected="a product name as nvidia-smi prints it, giving at most 63 letters, digits, '-', '_' or '.'",
        )
    return value


MAX_PRODUCT_NAME = 95
"""Longest NVML product name: nvml.h sizes the name buffer NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96
bytes, including the terminating NUL."""


def nvml_product_name(model, product_name: str | None = None) -> str:
    """The NVML product name of catalog GPU ``model``: ``product_name`` when given (what
    ``nvidia-smi --query-gpu=name --format=csv,noheader`` prints on the node), else the catalog's
    sourced ``nvml_name``.

    Raises:
        UserError: neither is known; a guessed label would select no node.
    """
    if product_name is not None:
        if not product_name.strip():
            raise UserError("empty --product-name", where="--product-name", expected="the name nvidia-smi prints")
        bad = next((c for c in product_name if not c.isprintable()), None)
        if bad is not None:
            raise UserError(
                f"the name has a control or non-printing character (U+{ord(bad):04X})",
                where="--product-name",
                expected="one line of printable text: NVML names (nvmlDeviceGetName) such as 'NVIDIA H100 80GB HBM3' "
                "contain no control characters",
                fix="paste the name `nvidia-smi --query-gpu=name --format=csv,noheader` prints",
            )
        if len(product_name) > MAX_PRODUCT_NAME:
            raise UserError(
                f"the name is {len(product_name):,} characters long",
                where="--product-name",
                expected=f"at most {MAX_PRODUCT_NAME} chars (nvml.h: NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96 with NUL)",
                fix="paste the name `nvidia-smi --query-gpu=name --format=csv,noheader` prints",
            )
        return product_name.strip()
    if model.nvml_name:
        return model.nvml_name
    sourced = ", ".join(f"{m.name} ({m.nvml_name})" for m in gpu_models() if m.nvml_name)
    raise UserError(
        f"no sourced NVML product name for {model.name} in the catalog, so its nvidia.com/gpu.product label is unknown",
        where="--gpu",
        expected=f"a GPU with a published product name: {sourced}",
        fix="pass --product-name with the name `nvidia-smi --query-gpu=name --format=csv,noheader` prints "
        f"on a {model.name} node",
    )


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


def _gfd_resource(resource: str, product: str, replicas: int, strategy: str) -> dict[str, str]:
    """GFD's base labels of one resource (``baseLabeler`` in ``internal/lm/resource.go``):
    ``<resource>.product``, ``.replicas`` (0 when the labeler has no sharing config, as for a
    MIG-enabled GPU; 1 unreplicated; N replicated) and ``.sharing-strategy`` (``none``,
    ``time-slicing`` or ``mps``, ``api/config/v1/sharing.go``). GFD's count, memory and
    architecture labels depend on the node and are not written here."""
    return {
        f"{resource}.product": product,
        f"{resource}.replicas": str(replicas),
        f"{resource}.sharing-strategy": strategy,
    }


def _mig_product_labels(nvml: str, layout: list[str]) -> dict[str, str]:
    """GFD's labels of a MIG-enabled node under the mixed MIG strategy: the GPU itself without
    sharing (replicas 0), and per profile the resource ``nvidia.com/mig-<profile>`` (``+`` ->
    ``.``) with product ``<product>-MIG-<profile>``, replicas 1, strategy none."""
    out = _gfd_resource("nvidia.com/gpu", gfd_product_label(nvml), 0, "none")
    for p in sorted(set(layout)):
        prof = p.replace("+", ".")
        out.update(_gfd_resource(f"nvidia.com/mig-{prof}", gfd_product_label(nvml, "MIG", prof), 1, "none"))
    return out


def check_layout(gpu: str, layout: list[str], where: str = "--layout") -> list[migm.Instance]:
    """Place the instances (largest first, as the MIG guide recommends), searching the start slots
    so that, e.g., 3-2-1-1 lands as 0:1, 1:1, 2:2, 4:4; refuse a layout no placement fits, naming
    why (:func:`gpuinfra.models.mig.layout_trouble`) and the closest valid layouts of the GPU.

    Raises:
        UserError: at ``where``: an unknown profile (the GPU's valid profiles listed) or a layout
            that does not fit one GPU.
    """
    name = gpu_model(gpu).name
    try:
        got = place_layout(gpu, layout)
    except UserError as e:
        raise UserError(e.what, where=where, expected=e.expected, fix=e.fix) from None
    if got is None:
        near = migm.suggest_layouts(gpu, layout)
        raise UserError(
            f"MIG layout {','.join(layout)} does not fit one {name}: {migm.layout_trouble(gpu, layout)}",
            where=where,
            expected=f"instances that fit one {name} together, e.g. " + " or ".join(f"[{x}]" for x in near)
            if near
            else f"instances that fit one {name} together",
            fix=f"edit {where}; `gpuinfra mig profiles {name}` lists each profile's slices, count and start "
            "slots, `gpuinfra mig fit` checks one more instance",
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
    product_name: str | None = None,
) -> dict:
    """Validate every document for ``policy``, then write them into ``out_dir`` (each atomically).
    Returns a summary.

    ``layout``: the MIG layout of every MIG GPU of the pool (default mig-parted's all-balanced);
    ``training_layout``: under ``mig``, the layout of the training nodes' GPUs (e.g. the full-GPU
    instance), written as a second mig-parted config with its own node labels. The summary's
    ``mig_layouts`` maps each written config name to its profiles.

    Node labels carry GPU Feature Discovery's ``nvidia.com/gpu.{product,replicas,sharing-strategy}``
    exactly as GFD writes them (:func:`gfd_product_label`), from the GPU's NVML product name
    (``product_name``, else the catalog's sourced ``nvml_name``): ``-SHARED``, the replicas and
    ``time-slicing``/``mps`` under those policies; under ``mig``/``mixed`` (GFD's ``mixed`` MIG
    strategy) the GPU's product without suffix and replicas 0, plus
    ``nvidia.com/mig-<profile>.{product,replicas,sharing-strategy}`` per profile of the layout.

    Raises:
        UserError: bad policy/GPU/layout, a GPU with no sourced NVML name and no
            ``product_name``, or (with ``force=False``, as the CLI calls it) a file of
            the export already in ``out_dir`` (nothing is written then).
    """
    import kubernetes_validate

    from gpuinfra.io.atomic import check_new_file, ensure_dir, write_text

    model = gpu_model(gpu)
    if policy not in ("whole", "timeslice", "mps", "mig", "mixed"):
        raise UserError(f"unknown policy '{policy}'", where="--policy", expected="whole, timeslice, mps, mig or mixed")
    nvml = nvml_product_name(model, product_name)
    whole_gpu = _gfd_resource("nvidia.com/gpu", gfd_product_label(nvml), 1, "none")
    docs: list[tuple[str, dict]] = []
    mig_layouts: dict[str, list[str]] = {}
    shared = policy in ("timeslice", "mps")
    labels = (
        _gfd_resource(
            "nvidia.com/gpu",
            gfd_product_label(nvml, shared=True),
            replicas,
            "time-slicing" if policy == "timeslice" else "mps",
        )
        if shared
        else dict(whole_gpu)
    )
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
            check_layout(gpu, training_layout, where="training_layout")
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
        labels.update(_mig_product_labels(nvml, lay))
    if policy == "whole":
        labels["nvidia.com/device-plugin.config"] = "default"
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
                            "nvidia.com/mig.config": mig_config_name(training_layout),
                            "nvidia.com/mig.strategy": "mixed",
                            **_mig_product_labels(nvml, training_layout),
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
                        "labels": {**whole_gpu, "nvidia.com/mig.config": "all-disabled"},
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
        "nvml_name": nvml,
        "files": written,
        "labels": labels,
        "kubernetes_version": k8s_version,
        "validated": True,
        "mig_layouts": mig_layouts,
    }
