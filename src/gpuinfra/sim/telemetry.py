"""Telemetry of a simulated GPU cluster under dcgm-exporter's and kube-state-metrics' names, with
the ground truth of every incident injected into it.

A cluster of ``nodes`` x ``gpus_per_node`` GPUs runs jobs of several teams for ``hours``; each job
has a workload profile whose counters come from :mod:`gpuinfra.models.counters` (a healthy
trainer, an input-starved trainer, an LLM decode server, a notebook that holds its GPU and does
nothing). Incidents are injected at random times with their targets recorded as truth:

| kind | what happens on the series | truth target |
|---|---|---|
| xid48 | XID_ERRORS = 48 for the exporter's 5-min Xid window, remapped rows +1, the job stops | GPU |
| xid79 | the GPU disappears from the exporter (no samples) until the node reboots; the job stops | GPU |
| nccl_hang | every GPU of the job: util 100, SM_ACTIVE ~1/SMs, no tensor work, steps frozen | job |
| thermal | one GPU: temperature up, SM clock to 60 %, its job's steps slow to 60 % | GPU |
| mem_full | a job's GPUs' framebuffer at 98 % (a leak) | job |
| idle_alloc | a pod holds GPUs with zero activity for its whole life (a forgotten notebook) | job |

and noise that is not an incident: jobs' start-up minutes at 0 % util, a single Xid 13 from an
application bug (the app restarts; no infra action), brief temperature spikes, idle unallocated
GPUs. Values: power = idle + (TDP - idle) x (0.3 SM_ACTIVE + 0.7 tensor/DRAM activity), temperature
= 30 C + 0.07 C/W [assumptions, stated]; memory in MiB of the GPU's visible total.

Sampling follows dcgm-exporter's default 30-s collect interval (facts/gpu.md 5.2) unless set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.models.counters import average, sample, scenarios

MODEL_NAMES = {"H100-SXM": "NVIDIA H100 80GB HBM3", "A100-80GB": "NVIDIA A100-SXM4-80GB", "H200": "NVIDIA H200"}
IDLE_W = 70.0
"""Idle board power, W: an assumption (order of 60-90 W for HGX parts)."""


@dataclass
class TJob:
    pod: str
    namespace: str
    gpus: list[tuple[int, int]]
    start_s: float
    end_s: float
    profile: str
    mem_frac: float
    steps_per_s: float


@dataclass
class TruthIncident:
    kind: str
    start_s: float
    end_s: float
    node: int | None = None
    gpu: int | None = None
    pod: str | None = None
    namespace: str | None = None


@dataclass
class Telemetry:
    times: np.ndarray
    """Sample times, seconds from the start (unix time = start_unix + t)."""
    series: dict[str, dict[tuple[tuple[str, str], ...], np.ndarray]]
    """metric -> label set (sorted tuples) -> values (NaN = no sample)."""
    types: dict[str, str]
    helps: dict[str, str]
    truth: list[TruthIncident]
    jobs: list[TJob]
    nodes: list[str]
    gpus_per_node: int
    gpu: str
    start_unix: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    noise: list[dict] = field(default_factory=list)

    @property
    def interval_s(self) -> float:
        return float(self.times[1] - self.times[0]) if len(self.times) > 1 else 0.0

    def n_samples(self) -> int:
        return int(sum(np.count_nonzero(~np.isnan(v)) for m in self.series.values() for v in m.values()))


PROFILE_STREAM = {"training": "healthy training", "starved": "data-starved", "decode": "memory-bound decode"}


def _profile_counters(gpu: str) -> dict[str, dict[str, float]]:
    sc = scenarios(gpu)
    out = {}
    for prof, name in PROFILE_STREAM.items():
        c = average(sample(sc[name][1], gpu, 10.0))
        out[prof] = {"util": c.gpu_util_pct, "sm": c.sm_active, "tensor": c.tensor_active, "dram": c.dram_active}
    out["idle"] = {"util": 0.0, "sm": 0.0, "tensor": 0.0, "dram": 0.0}
    out["hang"] = {"util": 100.0, "sm": 1.0 / (gpu_model(gpu).sm_count or 100), "tensor": 0.0, "dram": 0.0}
    return out


def simulate_telemetry(
    nodes: int = 4,
    gpus_per_node: int = 8,
    hours: float = 6.0,
    interval_s: float = 30.0,
    seed: int = 0,
    gpu: str = "H100-SXM",
    incidents_per_kind: int = 1,
) -> Telemetry:
    rng = np.random.default_rng(seed)
    m = gpu_model(gpu)
    total_mib = float(m.memory_visible_mib or (m.memory_gib or 80) * 1024)
    tdp = float(m.tdp_w or 700)
    prof = _profile_counters(gpu)
    T = int(hours * 3600 / interval_s)
    times = np.arange(T) * interval_s
    node_names = [f"gpu-node-{k:02d}" for k in range(nodes)]
    G = nodes * gpus_per_node
    # per GPU per time arrays
    util = np.zeros((G, T))
    sm = np.zeros((G, T))
    tensor = np.zeros((G, T))
    dram = np.zeros((G, T))
    fb = np.full((G, T), 0.0)
    temp_extra = np.zeros((G, T))
    clock_frac = np.ones((G, T))
    xid = np.zeros((G, T))
    remapped = np.zeros((G, T))
    present = np.ones((G, T), dtype=bool)
    pod_of = np.full((G, T), -1, dtype=int)
    jobs: list[TJob] = []
    truth: list[TruthIncident] = []
    noise: list[dict] = []
    # jobs: fill each node with a few long jobs back to back
    free_at = np.zeros(G)
    horizon = hours * 3600
    k = 0
    while True:
        g0 = int(np.argmin(free_at))
        if free_at[g0] >= horizon * 0.9:
            break
        node = g0 // gpus_per_node
        width = int(rng.choice([1, 2, 4, 8], p=[0.2, 0.2, 0.3, 0.3]))
        first = (g0 % gpus_per_node) // width * width
        gids = [node * gpus_per_node + first + j for j in range(width)]
        start = float(max(free_at[gids]))
        dur = float(rng.uniform(1.0, 3.0) * 3600)
        profile = str(rng.choice(["training", "training", "starved", "decode"]))
        team = "inference" if profile == "decode" else "research"
        job = TJob(
            f"{team}-job-{k:03d}",
            team,
            [(node, (g - node * gpus_per_node)) for g in gids],
            start,
            min(start + dur, horizon),
            profile,
            float(rng.uniform(0.5, 0.85)),
            1.0,
        )
        jobs.append(job)
        free_at[gids] = start + dur + float(rng.uniform(60, 900))
        k += 1

    # incidents: one or more of each kind, on random jobs/GPUs away from the edges
    def pick_job(min_len=1800.0):
        cands = [j for j in jobs if j.end_s - j.start_s > min_len + 1200 and j.profile != "decode"]
        return cands[int(rng.integers(len(cands)))]

    used: set[str] = set()
    for _ in range(incidents_per_kind):
        for kind in ("xid48", "xid79", "nccl_hang", "thermal", "mem_full"):
            for _try in range(50):
                j = pick_job()
                if j.pod not in used:
                    break
            used.add(j.pod)
            t0 = float(rng.uniform(j.start_s + 900, j.end_s - 1200))
            node, g = j.gpus[int(rng.integers(len(j.gpus)))]
            if kind == "xid48":
                truth.append(TruthIncident(kind, t0, min(t0 + 1800, j.end_s), node, g, j.pod, j.namespace))
            elif kind == "xid79":
                truth.append(TruthIncident(kind, t0, min(t0 + 2400, horizon), node, g, j.pod, j.namespace))
            elif kind == "nccl_hang":
                truth.append(TruthIncident(kind, t0, min(t0 + 1500, j.end_s), None, None, j.pod, j.namespace))
            elif kind == "thermal":
                truth.append(TruthIncident(kind, t0, min(t0 + 2700, j.end_s), node, g, j.pod, j.namespace))
            else:
                truth.append(TruthIncident(kind, t0, j.end_s, None, None, j.pod, j.namespace))
        # a forgotten notebook holding one GPU
        free_g = int(np.argmin(free_at))
        t0 = float(min(free_at[free_g], horizon * 0.5))
        nb = TJob(
            f"notebooks-nb-{len(truth):03d}",
            "notebooks",
            [(free_g // gpus_per_node, free_g % gpus_per_node)],
            t0,
            min(t0 + 3 * 3600, horizon),
            "idle",
            0.3,
            0.0,
        )
        jobs.append(nb)
        free_at[free_g] = nb.end_s
        truth.append(TruthIncident("idle_alloc", t0, nb.end_s, None, None, nb.pod, nb.namespace))
    by_pod = {j.pod: j for j in jobs}
    steps: dict[str, np.ndarray] = {}
    for ji, j in enumerate(jobs):
        run = (times >= j.start_s) & (times < j.end_s)
        startup = run & (times < j.start_s + 300)  # loading: allocated, not computing yet
        rate = np.where(run & ~startup, j.steps_per_s, 0.0)
        p = prof[j.profile]
        for node, g in j.gpus:
            gi = node * gpus_per_node + g
            pod_of[gi, run] = ji
            active = run & ~startup
            util[gi, active], sm[gi, active], tensor[gi, active], dram[gi, active] = (
                p["util"],
                p["sm"],
                p["tensor"],
                p["dram"],
            )
            fb[gi, run] = j.mem_frac * total_mib
            fb[gi, startup] = 0.2 * total_mib
        steps[j.pod] = rate
        if j.profile != "idle" and j.end_s - j.start_s > 600:
            # noise: startup at 0 % util is normal
            noise.append({"kind": "startup", "pod": j.pod, "start_s": j.start_s, "end_s": j.start_s + 300})
    for inc in truth:
        j = by_pod[inc.pod]
        w = (times >= inc.start_s) & (times < inc.end_s)
        gis = [n * gpus_per_node + g for n, g in j.gpus]
        if inc.kind in ("xid48", "xid79"):
            gi = inc.node * gpus_per_node + inc.gpu
            win = (times >= inc.start_s) & (times < inc.start_s + 300)
            xid[gi, win] = 48 if inc.kind == "xid48" else 79
            if inc.kind == "xid48":
                remapped[gi, times >= inc.start_s] += 1
            else:
                present[gi, w] = False
            for g2 in gis:  # the whole job stops: its other ranks wait, then die
                util[g2, w] = sm[g2, w] = tensor[g2, w] = dram[g2, w] = 0.0
            steps[j.pod][w] = 0.0
        elif inc.kind == "nccl_hang":
            for g2 in gis:
                util[g2, w], sm[g2, w], tensor[g2, w], dram[g2, w] = prof["hang"]["util"], prof["hang"]["sm"], 0.0, 0.0
            steps[j.pod][w] = 0.0
        elif inc.kind == "thermal":
            gi = inc.node * gpus_per_node + inc.gpu
            temp_extra[gi, w] = 25.0
            clock_frac[gi, w] = 0.6
            steps[j.pod][w] *= 0.6
            for g2 in gis:
                tensor[g2, w] *= 0.6
        elif inc.kind == "mem_full":
            ramp = np.clip((times - inc.start_s) / 900.0, 0, 1)
            for g2 in gis:
                fb[g2, w] = np.maximum(fb[g2, w], (j.mem_frac + (0.98 - j.mem_frac) * ramp[w]) * total_mib)
    # noise: an application Xid 13 on a healthy job, and short temperature spikes
    jn = jobs[int(rng.integers(len(jobs)))]
    tn = float(rng.uniform(jn.start_s, max(jn.start_s + 1, jn.end_s - 600)))
    n13, g13 = jn.gpus[0]
    xid[n13 * gpus_per_node + g13, (times >= tn) & (times < tn + 300)] = 13
    noise.append({"kind": "xid13-app-error", "pod": jn.pod, "start_s": tn, "end_s": tn + 300})
    for _ in range(3):
        gi = int(rng.integers(G))
        ts = float(rng.uniform(0, horizon - 120))
        temp_extra[gi, (times >= ts) & (times < ts + 90)] += 22.0
        noise.append(
            {
                "kind": "temperature-spike",
                "node": gi // gpus_per_node,
                "gpu": gi % gpus_per_node,
                "start_s": ts,
                "end_s": ts + 90,
            }
        )
    power = IDLE_W + (tdp - IDLE_W) * (0.3 * sm + 0.7 * np.maximum(tensor, dram))
    temp = 30.0 + 0.07 * power + temp_extra + rng.normal(0, 0.5, size=power.shape)
    clock = 1980.0 * clock_frac * np.where(util > 0, 1.0, 0.2)
    # series
    series: dict[str, dict] = {}
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    from gpuinfra.catalog.dcgm import dcgm_fields

    fields = dcgm_fields()
    model_name = MODEL_NAMES.get(m.name, m.name)

    def put(metric, labels, values, typ=None, help_=None):
        series.setdefault(metric, {})[tuple(sorted(labels.items()))] = values
        f = fields.get(metric)
        types[metric] = typ or (f.type if f else "gauge")
        helps[metric] = help_ or (f.help if f else metric)

    pods = [j.pod for j in jobs]
    for gi in range(G):
        node, g = divmod(gi, gpus_per_node)
        # the exporter attaches pod labels while a pod holds the GPU: one series per (GPU, pod) episode
        owners = pod_of[gi]
        for owner in np.unique(owners):
            mask = (owners == owner) & present[gi]
            if not mask.any():
                continue
            lab = {
                "gpu": str(g),
                "UUID": f"GPU-{seed:04x}{gi:04x}-0000-0000-0000-00000000{gi:04x}",
                "pci_bus_id": f"00000000:{0x18 + g * 16:02X}:00.0",
                "device": f"nvidia{g}",
                "modelName": model_name,
                "Hostname": node_names[node],
            }
            if owner >= 0:
                j = jobs[owner]
                lab.update({"namespace": j.namespace, "pod": j.pod, "container": "main"})

            def vals(a, mask=mask):
                return np.where(mask, a, np.nan)

            put("DCGM_FI_DEV_GPU_UTIL", lab, vals(np.round(util[gi])))
            put(
                "DCGM_FI_PROF_SM_ACTIVE",
                lab,
                vals(np.round(sm[gi], 4)),
                "gauge",
                "The ratio of cycles an SM has at least 1 warp assigned.",
            )
            put("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", lab, vals(np.round(tensor[gi], 4)))
            put("DCGM_FI_PROF_DRAM_ACTIVE", lab, vals(np.round(dram[gi], 4)))
            put("DCGM_FI_DEV_FB_USED", lab, vals(np.round(fb[gi])))
            put("DCGM_FI_DEV_FB_FREE", lab, vals(np.round(total_mib - fb[gi])))
            put("DCGM_FI_DEV_GPU_TEMP", lab, vals(np.round(temp[gi])))
            put("DCGM_FI_DEV_POWER_USAGE", lab, vals(np.round(power[gi], 1)))
            put("DCGM_FI_DEV_SM_CLOCK", lab, vals(np.round(clock[gi])))
            put("DCGM_FI_DEV_XID_ERRORS", lab, vals(xid[gi]))
            put("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", lab, vals(remapped[gi]))
    for j in jobs:
        run = (times >= j.start_s) & (times < j.end_s)
        put(
            "kube_pod_container_resource_requests",
            {
                "namespace": j.namespace,
                "pod": j.pod,
                "container": "main",
                "node": node_names[j.gpus[0][0]],
                "resource": "nvidia_com_gpu",
                "unit": "integer",
            },
            np.where(run, float(len(j.gpus)), np.nan),
            "gauge",
            "The number of requested request resource by a container (kube-state-metrics).",
        )
        if j.steps_per_s > 0:
            cum = np.cumsum(steps[j.pod] * interval_s)
            put(
                "gpuinfra_job_steps_total",
                {"namespace": j.namespace, "pod": j.pod},
                np.where(run, np.floor(cum), np.nan),
                "counter",
                "Training or serving steps the job has completed (the job's own progress metric).",
            )
    for name in node_names:
        put(
            "kube_node_status_capacity",
            {"node": name, "resource": "nvidia_com_gpu", "unit": "integer"},
            np.full(T, float(gpus_per_node)),
            "gauge",
            "The capacity for different resources of a node (kube-state-metrics).",
        )
    del pods
    return Telemetry(times, series, types, helps, truth, jobs, node_names, gpus_per_node, m.name, noise=noise)
