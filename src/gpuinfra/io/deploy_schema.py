"""Schemas of the deployment and security inputs: a boundaries file (the estate whose blast radius
is computed), lab 10's rollback-strategy design and lab 11's security-model design.

Loaded like scenarios (:func:`gpuinfra.io.scenario_load.validate`): unknown keys refused with
"did you mean", duplicate keys, alias bombs and deep nesting refused, every problem listed with
FILE:LINE and its field path; references (a workload's GPU, secret or service account, a grant's
target) must resolve, or the problem names the unknown name and the closest declared one.

A boundaries file::

    name: shared-inference
    gpus:
      - {name: gpu0, node: node-a, sharing: mps}
    secrets:
      - {name: hf-token, grants: ["model:llama-3-70b"]}
    service_accounts:
      - {name: sa-chat, can_read: ["secret:db-password", "bucket:prompt-logs"]}
    workloads:
      - {name: chat, kind: endpoint, tenant: team-a, node: node-a, gpu: gpu0, model: llama-3-8b,
         service_account: sa-chat, secrets: [hf-token], egress: [vector-db, internet]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from gpuinfra.io.scenario_load import Problem, closest, load_model_file, validate
from gpuinfra.io.scenario_schema import _Model
from gpuinfra.models.blast import Estate, Workload

Name = str


class GpuSpec(_Model):
    name: Name = Field(min_length=1)
    node: Name = Field(min_length=1)
    sharing: Literal["whole", "timeslice", "mps", "mig"] = "whole"


class SecretSpec(_Model):
    name: Name = Field(min_length=1)
    grants: list[str] = Field(default_factory=list, description="model:NAME, bucket:NAME or secret:NAME")


class ServiceAccountSpec(_Model):
    name: Name = Field(min_length=1)
    can_read: list[str] = Field(default_factory=list, description="model:NAME, bucket:NAME or secret:NAME")


class WorkloadSpec(_Model):
    name: Name = Field(min_length=1)
    kind: Literal["endpoint", "training", "batch", "service"] = "endpoint"
    tenant: str = ""
    node: Name = Field(min_length=1)
    gpu: Name | None = None
    model: Name | None = None
    service_account: Name | None = None
    secrets: list[Name] = Field(default_factory=list)
    egress: list[Name] = Field(default_factory=list, description="workload names, or external names such as internet")
    privileged: bool = False
    host_path: bool = False


class EstateSpec(_Model):
    """A scenario's declared boundaries (see module docstring)."""

    name: str = "estate"
    gpus: list[GpuSpec] = Field(default_factory=list)
    secrets: list[SecretSpec] = Field(default_factory=list)
    service_accounts: list[ServiceAccountSpec] = Field(default_factory=list)
    workloads: list[WorkloadSpec] = Field(min_length=1)

    def to_estate(self) -> Estate:
        return Estate(
            self.name,
            tuple(
                Workload(
                    w.name,
                    w.kind,
                    w.tenant,
                    w.node,
                    w.gpu,
                    w.model,
                    w.service_account,
                    tuple(w.secrets),
                    tuple(w.egress),
                    w.privileged,
                    w.host_path,
                )
                for w in self.workloads
            ),
            {g.name: g.sharing for g in self.gpus},
            {s.name: tuple(s.grants) for s in self.secrets},
            {a.name: tuple(a.can_read) for a in self.service_accounts},
        )


GRANT_KINDS = ("model", "bucket", "secret")


def _list(v: Any) -> list:
    """``v`` if it is a list, else [] (the schema reports the wrong type on its own)."""
    return v if isinstance(v, list) else []


def estate_problems(data: Any, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """References that do not resolve, duplicate names, a GPU on two nodes."""
    if not isinstance(data, dict):
        return []
    out: list[Problem] = []

    def names(key: str) -> list[str]:
        items = _list(data.get(key))
        return [x.get("name") for x in items if isinstance(x, dict) and isinstance(x.get("name"), str)]

    gpus, secrets, sas, wls = names("gpus"), names("secrets"), names("service_accounts"), names("workloads")
    for key, ns in (("gpus", gpus), ("secrets", secrets), ("service_accounts", sas), ("workloads", wls)):
        seen: set[str] = set()
        for i, n in enumerate(ns):
            if n in seen:
                out.append(Problem((*prefix, key, i, "name"), f"duplicate name '{n}'", "give each entry its own name"))
            seen.add(n)

    def ref(loc: tuple[Any, ...], what: str, value: Any, choices: list[str]) -> None:
        if isinstance(value, str) and value not in choices:
            near = closest(value, choices)
            out.append(
                Problem(
                    (*prefix, *loc),
                    f"unknown {what} '{value}'",
                    f"did you mean '{near}'?"
                    if near
                    else f"declare it under {what}s, or use one of: " + (", ".join(choices) or "(none declared)"),
                )
            )

    gpu_node = {g["name"]: g.get("node") for g in _list(data.get("gpus")) if isinstance(g, dict) and "name" in g}
    for i, w in enumerate(_list(data.get("workloads"))):
        if not isinstance(w, dict):
            continue
        ref(("workloads", i, "gpu"), "gpu", w.get("gpu"), gpus)
        ref(("workloads", i, "service_account"), "service_account", w.get("service_account"), sas)
        for j, s in enumerate(_list(w.get("secrets"))):
            ref(("workloads", i, "secrets", j), "secret", s, secrets)
        g = w.get("gpu")
        if isinstance(g, str) and g in gpu_node and gpu_node[g] != w.get("node"):
            out.append(
                Problem(
                    (*prefix, "workloads", i, "node"),
                    f"workload on GPU '{g}' of node '{gpu_node[g]}' says node '{w.get('node')}'",
                    f"set node: {gpu_node[g]}",
                )
            )
    sharing = {
        g["name"]: g.get("sharing", "whole") for g in _list(data.get("gpus")) if isinstance(g, dict) and "name" in g
    }
    on_gpu: dict[str, list[int]] = {}
    for i, w in enumerate(_list(data.get("workloads"))):
        if isinstance(w, dict) and isinstance(w.get("gpu"), str):
            on_gpu.setdefault(w["gpu"], []).append(i)
    for gname, idx in on_gpu.items():
        if sharing.get(gname) == "whole" and len(idx) > 1:
            out.append(
                Problem(
                    (*prefix, "workloads", idx[1], "gpu"),
                    f"GPU '{gname}' is a whole GPU (sharing: whole) but {len(idx)} workloads are on it",
                    "give it sharing: timeslice, mps or mig, or move the workload to another GPU",
                )
            )
    for key, field in (("secrets", "grants"), ("service_accounts", "can_read")):
        for i, s in enumerate(_list(data.get(key))):
            if not isinstance(s, dict):
                continue
            for j, gtxt in enumerate(_list(s.get(field))):
                if not isinstance(gtxt, str):
                    continue
                kind, _, nm = gtxt.partition(":")
                if kind not in GRANT_KINDS or not nm:
                    out.append(
                        Problem(
                            (*prefix, key, i, field, j),
                            f"'{gtxt}' is not KIND:NAME",
                            "write model:NAME, bucket:NAME or secret:NAME",
                        )
                    )
                elif kind == "secret":
                    ref((key, i, field, j), "secret", nm, secrets)
    return out


def parse_estate(text: str, label: str) -> Estate:
    """Validate a boundaries file's text; every problem listed with ``label``:line."""
    spec, _ = validate(
        EstateSpec,
        text,
        label,
        extra=estate_problems,
        what="a boundaries file",
        fix="see docs in gpuinfra.io.deploy_schema",
    )
    return spec.to_estate()


def load_estate(path: str | Path) -> Estate:
    return load_model_file(path, EstateSpec, extra=estate_problems, what="a boundaries file").to_estate()


# -- lab designs ---------------------------------------------------------------------------------


class FailureSpec(_Model):
    bad_fraction: float = Field(ge=0, le=1)
    error_fraction: float = Field(0.0, ge=0, le=1)
    length_factor: float = Field(1.0, gt=0, le=100)
    nll_shift: float = Field(0.0, ge=0, le=20)


class Lab10Design(_Model):
    """Lab 10: a rollback strategy for a breaking model change."""

    strategy: Literal["recreate", "rolling", "canary", "bluegreen"] = "canary"
    canary_weight: float = Field(0.10, gt=0, lt=1)
    bake_s: float = Field(1800.0, ge=0, le=86400)
    auto_rollback: bool = True
    rollback_delay_s: float = Field(0.0, ge=0, le=86400)
    drift_z: float = Field(4.0, gt=0, le=50)
    drift_window_s: float = Field(300.0, gt=0, le=86400)
    failure: FailureSpec | None = Field(None, description="a custom silent failure to test the strategy against")


class GuardrailSpec(_Model):
    rate_rps: float | None = Field(None, gt=0, description="token bucket refill, requests per second per key")
    burst: int | None = Field(None, ge=1, description="token bucket capacity (Envoy max_tokens)")
    max_tokens: int | None = Field(None, ge=1, description="cap on output tokens per request")
    daily_token_quota: int | None = Field(None, ge=1, description="output tokens per key per day")


class Lab11Design(_Model):
    """Lab 11: a security model for shared inference: the estate's boundaries and the guardrails."""

    estate: EstateSpec
    compromised: str = Field(min_length=1, description="the workload assumed compromised")
    guardrails: GuardrailSpec = GuardrailSpec()


def lab11_problems(data: Any) -> list[Problem]:
    if not isinstance(data, dict):
        return []
    out = estate_problems(data.get("estate"), ("estate",)) if isinstance(data.get("estate"), dict) else []
    est = data.get("estate") if isinstance(data.get("estate"), dict) else {}
    wls = [w.get("name") for w in _list(est.get("workloads")) if isinstance(w, dict)]
    c = data.get("compromised")
    if isinstance(c, str) and wls and c not in wls:
        near = closest(c, [w for w in wls if isinstance(w, str)])
        out.append(Problem(("compromised",), f"unknown workload '{c}'", f"did you mean '{near}'?" if near else None))
    return out
