"""Alert rules as real Prometheus rule files: a naive set (per GPU, no ``for:``, utilization as
the health signal) and a designed set (job-level aggregation, ``for:`` against GPU noise, signals
that mean something: Xid classes, vanished GPUs, progress, SM activity).

Each rule is a :mod:`gpuinfra.obs.promql` expression, so gpuinfra evaluates it itself, writes it
as PromQL for Prometheus, and checks the two agree with ``promtool test rules``.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from gpuinfra.catalog.xid import paging_xids
from gpuinfra.obs.promql import Agg, Arith, Cmp, Expr, Paren, Range, Sel, SetOp

XID_WINDOW_S = 300.0
"""dcgm-exporter's default Xid count window (``--xid-count-window-size``, 5 minutes)."""


def xid_page_expr(xids: tuple[int, ...] | None = None, window_s: float = XID_WINDOW_S) -> Expr:
    """The Xid page, from the catalog: every Xid whose resolution needs an operator
    (:func:`gpuinfra.catalog.xid.paging_xids`), counted over a window so that it neither latches
    after recovery nor misses a repeat of the same Xid:

    - ``DCGM_EXP_XID_ERRORS_COUNT{xid=~"..."} > 0``: dcgm-exporter's count of Xid errors within
      its window, one series per Xid (label ``xid``) (dcgm-exporter etc/default-counters.csv:
      "XID errors observed during the configured time window");
    - or, for exporters without it, ``DCGM_FI_DEV_XID_ERRORS`` (the *last* Xid, held until the
      exporter restarts) only while it changed within the window:
      ``(DCGM_FI_DEV_XID_ERRORS == 48 or ...) and changes(DCGM_FI_DEV_XID_ERRORS[5m]) > 0``.
      That form cannot see a repeat of the same Xid; the windowed count can.
    """
    xids = paging_xids() if xids is None else xids
    counted = Cmp(Sel("DCGM_EXP_XID_ERRORS_COUNT", rx=(("xid", "|".join(str(x) for x in xids)),)), ">", 0)
    last: Expr = Cmp(Sel("DCGM_FI_DEV_XID_ERRORS"), "==", xids[0])
    for x in xids[1:]:
        last = SetOp(last, "or", Cmp(Sel("DCGM_FI_DEV_XID_ERRORS"), "==", x))
    fresh = Cmp(Range("changes", Sel("DCGM_FI_DEV_XID_ERRORS"), window_s), ">", 0)
    return SetOp(counted, "or", Paren(SetOp(Paren(last), "and", fresh)))


@dataclass(frozen=True)
class Rule:
    name: str
    expr: Expr
    for_s: float
    severity: str
    summary: str
    targets: tuple[str, ...]
    """Incident kinds this rule is meant to catch (for recall)."""

    def as_prometheus(self) -> dict:
        r = {"alert": self.name, "expr": self.expr.render()}
        if self.for_s:
            r["for"] = f"{int(self.for_s // 60)}m" if self.for_s % 60 == 0 else f"{int(self.for_s)}s"
        r["labels"] = {"severity": self.severity}
        r["annotations"] = {"summary": self.summary}
        return r


def _fb_frac() -> Expr:
    return Arith(Sel("DCGM_FI_DEV_FB_USED"), "/", Arith(Sel("DCGM_FI_DEV_FB_USED"), "+", Sel("DCGM_FI_DEV_FB_FREE")))


def naive_rules() -> list[Rule]:
    return [
        Rule(
            "NaiveGpuIdle",
            Cmp(Sel("DCGM_FI_DEV_GPU_UTIL"), "==", 0),
            0,
            "page",
            "a GPU reads 0% utilization",
            ("idle_alloc",),
        ),
        Rule(
            "NaiveXid",
            Cmp(Sel("DCGM_FI_DEV_XID_ERRORS"), ">", 0),
            0,
            "page",
            "a GPU reported an Xid",
            ("xid48", "xid79"),
        ),
        Rule("NaiveGpuHot", Cmp(Sel("DCGM_FI_DEV_GPU_TEMP"), ">", 80), 0, "page", "a GPU is above 80 C", ("thermal",)),
        Rule("NaiveMemoryFull", Cmp(_fb_frac(), ">", 0.9), 0, "page", "a GPU's memory is over 90% used", ("mem_full",)),
        Rule(
            "NaiveUtilLow",
            Cmp(Sel("DCGM_FI_DEV_GPU_UTIL"), "<", 50),
            0,
            "page",
            "a GPU is under 50% utilized",
            ("nccl_hang",),
        ),
    ]


def designed_rules() -> list[Rule]:
    xid = xid_page_expr()
    by_job = ("namespace", "pod")
    return [
        Rule(
            "GpuXidCritical",
            xid,
            0,
            "page",
            "an Xid needing an operator (reset, reboot, drain) in the last 5 minutes",
            ("xid48", "xid79"),
        ),
        Rule(
            "GpuFallenOffBus",
            SetOp(
                Range("max_over_time", Sel("DCGM_FI_DEV_GPU_TEMP"), 3600),
                "unless",
                Sel("DCGM_FI_DEV_GPU_TEMP"),
                ("Hostname", "gpu"),
            ),
            60,
            "page",
            "a GPU stopped reporting (fallen off the bus or its exporter is gone)",
            ("xid79",),
        ),
        Rule(
            "GpuRowRemapPending",
            Cmp(Range("changes", Sel("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"), 3600), ">", 0),
            0,
            "ticket",
            "an uncorrectable row remap: the GPU needs a reset (drain it)",
            ("xid48",),
        ),
        Rule(
            "JobStalled",
            Cmp(Range("changes", Sel("gpuinfra_job_steps_total"), 600), "==", 0),
            300,
            "page",
            "a job made no progress for 15 minutes",
            ("xid48", "xid79", "nccl_hang"),
        ),
        Rule(
            "JobBusyButNotWorking",
            SetOp(
                Cmp(Agg("avg", by_job, Sel("DCGM_FI_DEV_GPU_UTIL")), ">", 90),
                "and",
                Cmp(Agg("avg", by_job, Sel("DCGM_FI_PROF_SM_ACTIVE")), "<", 0.05),
                by_job,
            ),
            300,
            "page",
            "GPUs read busy but almost no SM is active: a hang or a spin",
            ("nccl_hang",),
        ),
        Rule(
            "GpuThermal",
            Cmp(Sel("DCGM_FI_DEV_GPU_TEMP"), ">", 85),
            300,
            "ticket",
            "a GPU above 85 C for 5 minutes (throttling)",
            ("thermal",),
        ),
        Rule(
            "JobMemoryNearFull",
            Cmp(Agg("max", by_job, _fb_frac()), ">", 0.95),
            600,
            "ticket",
            "a job's GPU memory above 95% for 10 minutes",
            ("mem_full",),
        ),
        Rule(
            "JobAllocatedButIdle",
            Cmp(Agg("max", by_job, Sel("DCGM_FI_DEV_GPU_UTIL", ne=(("pod", ""),))), "==", 0),
            1800,
            "ticket",
            "a pod holds GPUs at 0% for 30 minutes",
            ("idle_alloc",),
        ),
    ]


RULE_SETS = {"naive": naive_rules, "designed": designed_rules}


def recording_rules() -> list[tuple[str, Expr]]:
    """Per-team and per-node series as recording rules (level:metric:operation naming)."""
    gpu_req = Sel("kube_pod_container_resource_requests", eq=(("resource", "nvidia_com_gpu"),))
    return [
        ("namespace:nvidia_gpu_requests:sum", Agg("sum", ("namespace",), gpu_req)),
        ("namespace:dcgm_gpu_util:avg", Agg("avg", ("namespace",), Sel("DCGM_FI_DEV_GPU_UTIL"))),
        ("namespace:dcgm_tensor_active:avg", Agg("avg", ("namespace",), Sel("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"))),
        ("namespace:dcgm_fb_used_mib:sum", Agg("sum", ("namespace",), Sel("DCGM_FI_DEV_FB_USED"))),
        ("Hostname:dcgm_gpus_reporting:count", Agg("count", ("Hostname",), Sel("DCGM_FI_DEV_GPU_TEMP"))),
        ("Hostname:dcgm_power_watts:sum", Agg("sum", ("Hostname",), Sel("DCGM_FI_DEV_POWER_USAGE"))),
    ]


def rule_file(rules: list[Rule], group: str = "gpuinfra", interval_s: int = 30, recording: bool = True) -> str:
    groups = []
    if recording:
        groups.append(
            {
                "name": f"{group}-recording",
                "interval": f"{interval_s}s",
                "rules": [{"record": n, "expr": e.render()} for n, e in recording_rules()],
            }
        )
    groups.append({"name": group, "interval": f"{interval_s}s", "rules": [r.as_prometheus() for r in rules]})
    return yaml.safe_dump({"groups": groups}, sort_keys=False, width=200)
