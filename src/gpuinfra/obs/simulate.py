"""Simulated telemetry of a GPU cluster under dcgm-exporter's and kube-state-metrics' names, with
the ground truth of every incident injected into it.

The workload is a scenario replayed by the one simulator (:class:`~gpuinfra.sim.engine.ReplayEngine`)
on a :class:`~gpuinfra.sim.cluster.ClusterState` of ``nodes`` x ``gpus_per_node`` GPUs for
``hours``: training, input-starved training and LLM decode jobs of 1-8 GPUs (and a forgotten
notebook per round of incidents) that the scheduler places, so no GPU is ever held twice and the
run's invariants are checked (``sim/invariants``). Two registered subsystems (``sim/incidents.py``)
inject the incidents and sample which pod holds which GPU every ``interval_s``; this module turns
the samples into series, with each job's counters from :mod:`gpuinfra.models.counters`:

| kind | what happens on the series | truth target |
|---|---|---|
| xid48 | XID_ERRORS = 48 for the exporter's 5-min Xid window, remapped rows +1, the job stops | GPU |
| xid79 | the GPU disappears from the exporter (no samples) until the node reboots; its job is requeued | GPU |
| nccl_hang | every GPU of the job: util 100, SM_ACTIVE ~1/SMs, no tensor work, steps frozen | job |
| thermal | one GPU: temperature up, SM clock to 60 %, its job's steps slow to 60 % | GPU |
| mem_full | a job's GPUs' framebuffer ramps to 98 % (a leak) | job |
| idle_alloc | a pod holds a GPU with zero activity for its whole life (a forgotten notebook) | job |

and noise that is not an incident: jobs' start-up minutes at 0 % util, a single Xid 13 from an
application bug (the app restarts; no infra action), brief temperature spikes, idle unallocated
GPUs. Values: power = idle + (TDP - idle) x (0.3 SM_ACTIVE + 0.7 tensor/DRAM activity), temperature
= 30 C + 0.07 C/W [assumptions, stated]; memory in MiB of the GPU's visible total.

Sampling follows dcgm-exporter's default 30-s collect interval (facts/gpu.md 5.2) unless set.
Randomness: the run's ``Rngs(seed)`` streams only (``workload`` for the jobs, ``incidents``,
``telemetry`` for the noise).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.rng import Rngs
from gpuinfra.sim.cluster import ClusterState, NodePool
from gpuinfra.sim.engine import ReplayEngine
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.incidents import TelemetryPlan
from gpuinfra.sim.telemetry import IDLE_W, MODEL_NAMES, Telemetry, TJob, _profile_counters
from gpuinfra.sim.workload import PodTable, TelemetryMix, telemetry_mix

NODE_CPU_MILLI = 224_000
NODE_MEM_MIB = 2 * 1024 * 1024
"""An HGX/DGX H100 node: 2 x 56-core Xeon 8480C (224 threads) and 2 TB of memory (NVIDIA DGX H100 datasheet)."""
POD_CPU_MILLI_PER_GPU = 16_000
POD_MEM_MIB_PER_GPU = 128 * 1024
"""What a job asks per GPU besides the GPU: 16 CPUs and 128 GiB [assumption]."""
OFFERED_LOAD = 0.9
"""Arrivals after the initial fill keep 90 % of the GPUs requested on average: a busy training
cluster (a scenario choice, stated)."""
STARTUP_S = 300.0
"""A job's first 5 minutes: loading, allocated but not computing yet [assumption]."""


WIDTHS = (1, 2, 4, 8)
WIDTH_P = (0.2, 0.2, 0.3, 0.3)
PROFILES = ("training", "training", "starved", "decode")
INCIDENT_KINDS = ("xid48", "xid79", "nccl_hang", "thermal", "mem_full")


def simulate_telemetry(
    nodes: int = 4,
    gpus_per_node: int = 8,
    hours: float = 6.0,
    interval_s: float = 30.0,
    seed: int = 0,
    gpu: str = "H100-SXM",
    incidents_per_kind: int = 1,
) -> Telemetry:
    """Replay a busy GPU cluster and return its telemetry with the injected incidents as truth.

    ``nodes`` x ``gpus_per_node`` GPUs of model ``gpu`` for ``hours``, sampled every
    ``interval_s`` seconds; ``incidents_per_kind`` rounds of the five incident kinds plus one
    forgotten notebook each. Same arguments, same series (bytes). Raises ``InvariantError`` if the
    run broke a cluster invariant (a bug).
    """
    m = gpu_model(gpu)
    total_mib = float(m.memory_visible_mib or (m.memory_gib or 80) * 1024)
    tdp = float(m.tdp_w or 700)
    prof = _profile_counters(gpu)
    horizon = hours * 3600
    rngs = Rngs(seed)
    wl = rngs.stream("workload")
    node_names = [f"gpu-node-{k:02d}" for k in range(nodes)]
    G = nodes * gpus_per_node
    pod_list, profiles_in, mem_in = telemetry_mix(
        wl,
        G,
        gpus_per_node,
        horizon,
        incidents_per_kind,
        TelemetryMix(WIDTHS, WIDTH_P, PROFILES, OFFERED_LOAD, POD_CPU_MILLI_PER_GPU, POD_MEM_MIB_PER_GPU),
    )
    table = PodTable(pod_list)
    order = {p.name: k for k, p in enumerate(pod_list)}
    profiles = [profiles_in[order[n]] for n in table.names]
    mem_frac = [mem_in[order[n]] for n in table.names]
    planned = [
        (kind, float(wl.uniform(0.1, 0.7) * horizon)) for _ in range(incidents_per_kind) for kind in INCIDENT_KINDS
    ]
    plan = TelemetryPlan(horizon, interval_s, gpus_per_node, nodes, profiles, planned)
    cluster = ClusterState.from_pools(
        [NodePool("gpu-node", m.name, gpus_per_node, NODE_CPU_MILLI, NODE_MEM_MIB, nodes, node_names=tuple(node_names))]
    )
    # kube's default queue order (priority, then arrival); no preemption: the notebook just waits
    res = ReplayEngine(
        cluster,
        table,
        Profile(preemption=False),
        seed,
        sample_interval_s=interval_s * 120,
        horizon_s=horizon,
        start_s=0.0,
        log_events=False,
        subsystem_options={"incidents": plan, "telemetry": plan},
    ).run()
    T = plan.n_samples
    times = np.arange(T) * interval_s
    owner, present, started = plan.owner, plan.present, plan.started
    truth = plan.truth
    noise: list[dict] = []
    rng = rngs.stream("telemetry")
    # jobs as the exporter saw them: every GPU each pod held, from its first start to its end
    jobs: list[TJob] = []
    job_of: dict[int, int] = {}
    for i in sorted({int(x) for x in np.unique(owner) if x >= 0}):
        rows = np.flatnonzero((owner == i).any(axis=1))
        end = float(res.end_s[i]) if np.isfinite(res.end_s[i]) else horizon
        job_of[i] = len(jobs)
        jobs.append(
            TJob(
                table.names[i],
                table.owners[i],
                [(int(g) // gpus_per_node, int(g) % gpus_per_node) for g in rows],
                float(np.nanmin(started[owner == i])),
                min(end, horizon),
                profiles[i],
                mem_frac[i],
                0.0 if profiles[i] == "idle" else 1.0,
            )
        )
    pod_of = np.where(owner >= 0, np.vectorize(lambda x: job_of.get(int(x), -1))(owner), -1) if owner.size else owner
    util = np.zeros((G, T))
    sm = np.zeros((G, T))
    tensor = np.zeros((G, T))
    dram = np.zeros((G, T))
    fb = np.zeros((G, T))
    temp_extra = np.zeros((G, T))
    clock_frac = np.ones((G, T))
    xid = np.zeros((G, T))
    remapped = np.zeros((G, T))
    steps: dict[str, np.ndarray] = {}
    running_any: dict[str, np.ndarray] = {}
    for ji, j in enumerate(jobs):
        held = pod_of == ji
        startup = held & (times[None, :] < started + STARTUP_S)
        active = held & ~startup
        p = prof[j.profile]
        util[active], sm[active], tensor[active], dram[active] = p["util"], p["sm"], p["tensor"], p["dram"]
        fb[held] = j.mem_frac * total_mib
        fb[startup] = 0.2 * total_mib
        run = held.any(axis=0)
        running_any[j.pod] = run
        steps[j.pod] = np.where(active.any(axis=0), j.steps_per_s, 0.0)
        if j.profile != "idle":
            noise.append({"kind": "startup", "pod": j.pod, "start_s": j.start_s, "end_s": j.start_s + STARTUP_S})
    by_pod = {j.pod: ji for ji, j in enumerate(jobs)}
    for inc in truth:
        ji = by_pod[inc.pod]
        w = (times >= inc.start_s) & (times < inc.end_s)
        gis = np.flatnonzero((pod_of == ji).any(axis=1))
        if inc.kind in ("xid48", "xid79"):
            gi = inc.node * gpus_per_node + inc.gpu
            win = (times >= inc.start_s) & (times < inc.start_s + 300)
            xid[gi, win] = 48 if inc.kind == "xid48" else 79
            if inc.kind == "xid48":
                remapped[gi, times >= inc.start_s] += 1
                for g2 in gis:  # the whole job stops: its other ranks wait
                    m2 = w & (pod_of[g2] == ji)
                    util[g2, m2] = sm[g2, m2] = tensor[g2, m2] = dram[g2, m2] = 0.0
                steps[inc.pod][w] = 0.0
        elif inc.kind == "nccl_hang":
            for g2 in gis:
                m2 = w & (pod_of[g2] == ji)
                util[g2, m2], sm[g2, m2], tensor[g2, m2], dram[g2, m2] = (
                    prof["hang"]["util"],
                    prof["hang"]["sm"],
                    0.0,
                    0.0,
                )
            steps[inc.pod][w] = 0.0
        elif inc.kind == "thermal":
            gi = inc.node * gpus_per_node + inc.gpu
            temp_extra[gi, w] = 25.0
            clock_frac[gi, w] = 0.6
            steps[inc.pod][w] *= 0.6
            for g2 in gis:
                m2 = w & (pod_of[g2] == ji)
                tensor[g2, m2] *= 0.6
        elif inc.kind == "mem_full":
            ramp = np.clip((times - inc.start_s) / 900.0, 0, 1)
            for g2 in gis:
                m2 = w & (pod_of[g2] == ji)
                fb[g2, m2] = np.maximum(
                    fb[g2, m2], (jobs[ji].mem_frac + (0.98 - jobs[ji].mem_frac) * ramp[m2]) * total_mib
                )
    # noise: an application Xid 13 on a healthy job, and short temperature spikes
    busy_jobs = [j for j in jobs if j.profile != "idle"]
    jn = busy_jobs[int(rng.integers(len(busy_jobs)))]
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
    for ji, j in enumerate(jobs):
        held = pod_of == ji
        for n in sorted({n for n, _ in j.gpus}):
            count = held[n * gpus_per_node : (n + 1) * gpus_per_node].sum(axis=0).astype(float)
            put(
                "kube_pod_container_resource_requests",
                {
                    "namespace": j.namespace,
                    "pod": j.pod,
                    "container": "main",
                    "node": node_names[n],
                    "resource": "nvidia_com_gpu",
                    "unit": "integer",
                },
                np.where(count > 0, count, np.nan),
                "gauge",
                "The number of requested request resource by a container (kube-state-metrics).",
            )
        if j.steps_per_s > 0:
            cum = np.cumsum(steps[j.pod] * interval_s)
            put(
                "gpuinfra_job_steps_total",
                {"namespace": j.namespace, "pod": j.pod},
                np.where(running_any[j.pod], np.floor(cum), np.nan),
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
    return Telemetry(
        times,
        series,
        types,
        helps,
        truth,
        jobs,
        node_names,
        gpus_per_node,
        m.name,
        noise=noise,
        invariants=res.invariants.as_dict() if res.invariants else None,
    )
