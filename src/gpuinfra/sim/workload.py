"""Pods (the unit a scheduler places) as a struct of arrays, with a frozen per-pod view.

A pod asks for CPU millicores, memory MiB, ``num_gpu`` devices and ``gpu_milli`` of each (1000 =
whole GPU; less means a shared GPU, as in the Alibaba trace), optionally restricted to some GPU
models. It arrives at ``submit_s`` and, once started, runs ``duration_s`` seconds. If its owner
deletes it at ``delete_s`` (absolute time) it leaves then, whether it was pending (withdrawn) or
running (ended early).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpuinfra.sim.cluster import MILLI_PER_GPU


@dataclass(frozen=True, slots=True)
class Toleration:
    """A Kubernetes toleration. ``operator`` Exists ignores ``value``; an empty ``effect`` matches all."""

    key: str
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if self.operator == "Exists":
            return self.key in ("", key)
        return self.key == key and self.value == value


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    submit_s: float
    duration_s: float
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_models: tuple[str, ...] = ()
    priority: int = 0
    qos: str = ""
    owner: str = "unknown"
    delete_s: float = math.nan
    job: str = ""
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    gang_size: int = 0
    mig_profile: str = ""
    """A MIG instance request (``nvidia.com/mig-<profile>``, mixed strategy); then num_gpu is 1 and
    gpu_milli the instance's compute share (see sim/plugins/mig.py)."""
    """Pods of ``job`` that must start together (all or none); 0 or 1 means no gang."""

    @property
    def gpu_milli_total(self) -> int:
        return self.num_gpu * self.gpu_milli


class PodTable:
    """All pods of a run, columnar. Index = pod id. Sorted by (submit_s, input order)."""

    def __init__(self, pods: list[Pod]) -> None:
        order = sorted(range(len(pods)), key=lambda i: (pods[i].submit_s, i))
        pods = [pods[i] for i in order]
        self.names = [p.name for p in pods]
        self.owners = [p.owner for p in pods]
        self.qos = [p.qos for p in pods]
        self.jobs = [p.job or p.name for p in pods]
        self.gpu_models = [p.gpu_models for p in pods]
        self.node_selector = [p.node_selector for p in pods]
        self.tolerations = [p.tolerations for p in pods]
        self.submit_s = np.array([p.submit_s for p in pods], dtype=np.float64)
        self.duration_s = np.array([p.duration_s for p in pods], dtype=np.float64)
        self.delete_s = np.array([p.delete_s for p in pods], dtype=np.float64)
        self.cpu_milli = np.array([p.cpu_milli for p in pods], dtype=np.int64)
        self.memory_mib = np.array([p.memory_mib for p in pods], dtype=np.int64)
        self.num_gpu = np.array([p.num_gpu for p in pods], dtype=np.int32)
        self.gpu_milli = np.array([p.gpu_milli if p.num_gpu else 0 for p in pods], dtype=np.int32)
        self.priority = np.array([p.priority for p in pods], dtype=np.int64)
        self.gang_size = np.array([p.gang_size for p in pods], dtype=np.int32)
        self.mig_profile = [p.mig_profile for p in pods]

    def __len__(self) -> int:
        return len(self.names)

    def pod(self, i: int) -> Pod:
        return Pod(
            name=self.names[i],
            submit_s=float(self.submit_s[i]),
            duration_s=float(self.duration_s[i]),
            cpu_milli=int(self.cpu_milli[i]),
            memory_mib=int(self.memory_mib[i]),
            num_gpu=int(self.num_gpu[i]),
            gpu_milli=int(self.gpu_milli[i]),
            gpu_models=self.gpu_models[i],
            priority=int(self.priority[i]),
            qos=self.qos[i],
            owner=self.owners[i],
            delete_s=float(self.delete_s[i]),
            job=self.jobs[i],
            node_selector=self.node_selector[i],
            tolerations=self.tolerations[i],
            gang_size=int(self.gang_size[i]),
            mig_profile=self.mig_profile[i],
        )

    def signature(self, i: int) -> tuple:
        """What the filters read of a pod: pods with one signature are interchangeable to them."""
        return (
            int(self.cpu_milli[i]),
            int(self.memory_mib[i]),
            int(self.num_gpu[i]),
            int(self.gpu_milli[i]),
            self.gpu_models[i],
            self.node_selector[i],
            self.tolerations[i],
            self.owners[i],  # quota (KueueQuota) reads the pod's queue, named by its owner
            self.mig_profile[i],
        )

    def total_gpu_request(self) -> float:
        """Sum of requested GPUs (milli / 1000)."""
        return float((self.num_gpu.astype(np.int64) * self.gpu_milli).sum()) / MILLI_PER_GPU
