"""Telemetry of a finished ``gpuinfra simulate`` run, under dcgm-exporter's names.

The run directory's ``pods.parquet`` says which pod held which GPUs of which node when, and its
``summary.json`` lists the injected faults. Each pod gets a workload profile (deterministic per
pod name: 60 % healthy training, 25 % LLM decode, 15 % input-starved training [assumption]), whose
counters come from :mod:`gpuinfra.models.counters`; a GPU shared by several pods (milli-GPU) reads
the sum of their activity scaled by their shares, capped at the device. Faults become Xid values
(the number in a fault class's name, e.g. ``xid48``; 0 otherwise) and truth incidents. A window of
``hours`` from the busiest point of the run and the ``max_nodes`` busiest nodes keep the series
small.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.sim.telemetry import IDLE_W, MODEL_NAMES, Telemetry, TJob, TruthIncident, _profile_counters


def telemetry_from_run(run: Path, hours: float = 6.0, interval_s: float = 30.0, max_nodes: int = 8) -> Telemetry:
    pods_file = run / "pods.parquet"
    if not pods_file.exists():
        raise UserError("no pods.parquet", where=str(run), expected="a run directory written by `gpuinfra simulate`")
    pods = pd.read_parquet(pods_file)
    pods = pods[(pods["num_gpu"] > 0) & pods["start_s"].notna() & (pods["node"] != "")]
    if pods.empty:
        raise UserError("the run placed no GPU pods", where=str(pods_file))
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    # the busiest window: start where the most GPU pods were running
    starts = np.sort(pods["start_s"].to_numpy())
    t0 = float(starts[len(starts) // 2])
    t1 = t0 + hours * 3600
    win = pods[(pods["start_s"] < t1) & (pods["end_s"].fillna(t1) > t0)]
    busiest = win.groupby("node")["num_gpu"].sum().sort_values(ascending=False).index[:max_nodes].tolist()
    win = win[win["node"].isin(busiest)]
    model = str(win["gpu_model"].mode().iloc[0]) if not win.empty else "H100-SXM"
    m = gpu_model(model)
    gpn = (
        int(max((max(int(d) for d in str(x).split(",") if d != "") + 1) for x in win["devices"]))
        if not win.empty
        else 8
    )
    T = int(hours * 3600 / interval_s)
    times = np.arange(T) * interval_s
    prof = _profile_counters(m.name if m.sm_count else "H100-SXM")
    total_mib = float(m.memory_visible_mib or (m.memory_gib or 16) * 1024)
    G = len(busiest) * gpn
    util = np.zeros((G, T))
    sm = np.zeros((G, T))
    ten = np.zeros((G, T))
    dram = np.zeros((G, T))
    fb = np.zeros((G, T))
    owner = np.full((G, T), -1, dtype=int)
    jobs: list[TJob] = []
    for _, p in win.iterrows():
        h = zlib.crc32(str(p["name"]).encode()) % 100
        profile = "training" if h < 60 else ("decode" if h < 85 else "starved")
        devs = [int(d) for d in str(p["devices"]).split(",") if d != ""]
        node = busiest.index(p["node"])
        s, e = float(p["start_s"]) - t0, float(p["end_s"] if pd.notna(p["end_s"]) else t1) - t0
        share = float(p["gpu_milli"]) / 1000
        j = TJob(
            str(p["name"]), str(p["owner"]) or "default", [(node, d) for d in devs], s, e, profile, 0.7 * share, 1.0
        )
        jobs.append(j)
        run_mask = (times >= s) & (times < e)
        pr = prof[profile]
        for d in devs:
            gi = node * gpn + d
            util[gi, run_mask] = np.minimum(
                100.0, util[gi, run_mask] + pr["util"] * max(share, 0.01) / max(share, 0.01)
            )
            sm[gi, run_mask] = np.minimum(1.0, sm[gi, run_mask] + pr["sm"] * share)
            ten[gi, run_mask] = np.minimum(1.0, ten[gi, run_mask] + pr["tensor"] * share)
            dram[gi, run_mask] = np.minimum(1.0, dram[gi, run_mask] + pr["dram"] * share)
            fb[gi, run_mask] = np.minimum(total_mib, fb[gi, run_mask] + j.mem_frac * total_mib)
            prev = owner[gi, run_mask]
            owner[gi, run_mask] = np.where(prev < 0, len(jobs) - 1, prev)
    xid = np.zeros((G, T))
    truth = []
    for f in (summary.get("faults") or {}).get("log", []):
        if f.get("node") not in busiest or not t0 <= f["t_s"] < t1:
            continue
        num = re.search(r"(\d+)", f["fault"])
        node = busiest.index(f["node"])
        for d in f["devices"]:
            gi = node * gpn + int(d)
            if gi < G:
                xid[gi, (times >= f["t_s"] - t0) & (times < f["t_s"] - t0 + 300)] = float(num.group(1)) if num else 0.0
                truth.append(TruthIncident(f["fault"], f["t_s"] - t0, f["t_s"] - t0 + 1800, node, int(d)))
    tdp = float(m.tdp_w or 300)
    power = IDLE_W + (tdp - IDLE_W) * (0.3 * sm + 0.7 * np.maximum(ten, dram))
    temp = 30.0 + 0.07 * power
    series: dict[str, dict] = {}
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    from gpuinfra.catalog.dcgm import dcgm_fields

    fields = dcgm_fields()
    for gi in range(G):
        node, g = divmod(gi, gpn)
        for o in np.unique(owner[gi]):
            mask = owner[gi] == o
            lab = {
                "gpu": str(g),
                "UUID": f"GPU-run-{gi:08x}",
                "pci_bus_id": f"00000000:{0x18 + g * 16:02X}:00.0",
                "device": f"nvidia{g}",
                "modelName": MODEL_NAMES.get(m.name, m.name),
                "Hostname": busiest[node],
            }
            if o >= 0:
                lab.update({"namespace": jobs[o].namespace, "pod": jobs[o].pod, "container": "main"})
            key = tuple(sorted(lab.items()))
            for metric, arr in (
                ("DCGM_FI_DEV_GPU_UTIL", np.round(util[gi])),
                ("DCGM_FI_PROF_SM_ACTIVE", np.round(sm[gi], 4)),
                ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", np.round(ten[gi], 4)),
                ("DCGM_FI_PROF_DRAM_ACTIVE", np.round(dram[gi], 4)),
                ("DCGM_FI_DEV_FB_USED", np.round(fb[gi])),
                ("DCGM_FI_DEV_FB_FREE", np.round(total_mib - fb[gi])),
                ("DCGM_FI_DEV_POWER_USAGE", np.round(power[gi], 1)),
                ("DCGM_FI_DEV_GPU_TEMP", np.round(temp[gi])),
                ("DCGM_FI_DEV_XID_ERRORS", xid[gi]),
            ):
                series.setdefault(metric, {})[key] = np.where(mask, arr, np.nan)
                f = fields.get(metric)
                types[metric] = f.type if f else "gauge"
                helps[metric] = f.help if f else metric
    for j in jobs:
        run_mask = (times >= j.start_s) & (times < j.end_s)
        key = tuple(
            sorted(
                {
                    "namespace": j.namespace,
                    "pod": j.pod,
                    "container": "main",
                    "node": busiest[j.gpus[0][0]],
                    "resource": "nvidia_com_gpu",
                    "unit": "integer",
                }.items()
            )
        )
        series.setdefault("kube_pod_container_resource_requests", {})[key] = np.where(
            run_mask, float(len(j.gpus)), np.nan
        )
    types["kube_pod_container_resource_requests"] = "gauge"
    helps["kube_pod_container_resource_requests"] = (
        "The number of requested request resource by a container (kube-state-metrics)."
    )
    return Telemetry(times, series, types, helps, truth, jobs, busiest, gpn, m.name, start_unix=1_767_225_600.0 + t0)
