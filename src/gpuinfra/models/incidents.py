"""Incidents on a GPU training job (seed section 16): what a responder sees, the debugging path,
recovery actions and their costs, and a postmortem whose numbers come from the simulation.

Each incident runs minute by minute on a synchronous data-parallel job of ``nodes`` x 8 GPUs:
per minute the training step rate (steps per minute, 1.0 = normal), what the GPU counters read
(GPU_UTIL, SM_ACTIVE, SM clock, temperature) on the affected GPU and on a healthy one, and the
events (Xid lines, NCCL watchdog aborts, OOM exits, restarts). Signals fire by rule
(thresholds and delays from catalog/data/detection_signals.csv); the responder's debugging path
follows the decision tree and the evidence actually present; the chosen action changes the
timeline; the postmortem reads its impact off the same timeline:

    GPU-hours lost = sum over minutes of (1 - step rate) x GPUs / 60

so the postmortem equals the simulation's accounting by construction (and the tests check it).
Each incident is run with the action a hurried responder takes and with the safer one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gpuinfra.models.reliability import signals

GPUS_PER_NODE = 8


@dataclass
class Minute:
    t: int
    step_rate: float
    gpu_util: float
    sm_active: float
    sm_clock_mhz: float
    temp_c: float
    events: list[str] = field(default_factory=list)


@dataclass
class Incident:
    name: str
    title: str
    action: str
    nodes: int
    usd_per_gpu_hour: float
    minutes: list[Minute]
    signals_fired: dict[str, int]
    debug_path: list[str]
    root_cause: str
    contributing: list[str]
    action_items: list[str]
    resolved_at: int

    @property
    def gpus(self) -> int:
        return self.nodes * GPUS_PER_NODE

    @property
    def gpu_hours_lost(self) -> float:
        return sum(1.0 - m.step_rate for m in self.minutes) * self.gpus / 60

    @property
    def usd_lost(self) -> float:
        return self.gpu_hours_lost * self.usd_per_gpu_hour

    def timeline(self) -> list[tuple[int, str]]:
        out = [(m.t, e) for m in self.minutes for e in m.events]
        out += [(t, f"signal: {s}") for s, t in self.signals_fired.items()]
        return sorted(out)

    def postmortem(self) -> dict:
        first = min(self.signals_fired.values()) if self.signals_fired else None
        start = next((m.t for m in self.minutes if m.step_rate < 1.0 or m.events), 0)
        return {
            "incident": self.title,
            "action_taken": self.action,
            "impact": {
                "gpus": self.gpus,
                "duration_min": self.resolved_at - start,
                "gpu_hours_lost": round(self.gpu_hours_lost, 3),
                "usd_lost": round(self.usd_lost, 2),
                "time_to_detect_min": None if first is None else first - start,
            },
            "timeline": [{"t_min": t, "what": w} for t, w in self.timeline()],
            "root_cause": self.root_cause,
            "contributing_factors": self.contributing,
            "debugging_path": self.debug_path,
            "action_items": self.action_items,
        }

    def postmortem_markdown(self) -> str:
        p = self.postmortem()
        i = p["impact"]
        lines = [
            f"# Postmortem: {p['incident']}",
            "",
            f"**Impact**: {i['gpus']} GPUs for {i['duration_min']} min; {i['gpu_hours_lost']:.1f} GPU-hours lost (${i['usd_lost']:,.0f}); "
            f"detected after {i['time_to_detect_min']} min. Action taken: {p['action_taken']}.",
            "",
            "## Timeline (minutes)",
            *[f"- t+{x['t_min']}: {x['what']}" for x in p["timeline"]],
            "",
            f"## Root cause\n{p['root_cause']}",
            "",
            "## Contributing factors",
            *[f"- {c}" for c in p["contributing_factors"]],
            "",
            "## How it was debugged",
            *[f"{k + 1}. {s}" for k, s in enumerate(p["debugging_path"])],
            "",
            "## Actions",
            *[f"- {a}" for a in p["action_items"]],
        ]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["gpu_hours_lost"] = self.gpu_hours_lost
        d["usd_lost"] = self.usd_lost
        return d


def _healthy(t: int) -> Minute:
    return Minute(t, 1.0, 100.0, 0.92, 1980.0, 62.0)


def _detect_at(start: int, signal: str) -> int:
    """Minute a signal fires for an event at ``start`` (the mean delay of the signal, rounded up)."""
    s = signals()[signal]
    return start + max(1, -(-int(s.mean_s) // 60))


# -- the incidents ------------------------------------------------------------------------------


REHEAT_MIN = 5
"""ASSUMPTION: minutes of full load after a reset before a GPU whose thermal interface is failing
reaches its slowdown temperature again (a reset clears the clock state, not the cooling fault)."""


def thermal_straggler(action: str = "reset-now", nodes: int = 16, usd: float = 4.0, minutes: int = 180) -> Incident:
    """One GPU throttles (HW thermal slowdown) to 60 % of its clock: the synchronous job runs at
    the straggler's pace.

    'reset-now': the responder runs ``nvidia-smi -r`` on the throttled GPU. The driver refuses to
    reset a GPU that processes hold, so the job has to be stopped first: it dies, the GPU is reset,
    the job restarts in place and redoes the work since its checkpoint; the reset does not fix the
    cooling, so the GPU throttles again after :data:`REHEAT_MIN` minutes and the job runs at the
    straggler's pace until the next checkpoint, where the node is drained after all.
    'drain-at-checkpoint': run slow until the next checkpoint, then drain the node and restart
    on a spare. Work is counted in minutes of full-speed steps; a minute's step rate is the
    useful progress (0 while redoing work lost since the checkpoint)."""
    start, slow, ckpt_every, since_ckpt_at_start, restart = 30, 0.6, 60, 20, 10
    ms = [_healthy(t) for t in range(minutes)]
    fired = {
        "dcgm_health (clock event reason: HW Thermal Slowdown)": _detect_at(start, "dcgm_health"),
        "step_time_alert (+20% for 10 min)": start + 10,
    }
    detect = max(fired.values())

    def throttled(m: Minute, rate: float) -> None:
        m.step_rate, m.sm_clock_mhz, m.temp_c = rate, 1980 * slow, 89

    if action == "reset-now":
        for m in ms[start:detect]:
            throttled(m, slow)
        ms[detect].events += [
            "nvidia-smi -r on the throttled GPU refused: the GPU is in use by the job's processes",
            "job stopped to free the GPU; GPU reset; the job's processes died with it",
        ]
        for m in ms[detect : detect + restart]:
            m.step_rate, m.gpu_util, m.sm_active = 0.0, 0.0, 0.0
        t0 = detect + restart
        ms[t0].events.append("job restarted in place from its checkpoint")
        redo = since_ckpt_at_start + slow * (detect - start)  # full-speed minutes of work to do again
        nxt = t0 + ckpt_every
        for m in ms[t0:nxt]:
            hot = m.t - t0 >= REHEAT_MIN
            rate = slow if hot else 1.0
            if m.t - t0 == REHEAT_MIN:
                m.events.append("GPU 3 of node 5 throttles again: a reset does not fix a cooling fault")
            useful = max(0.0, rate - redo)
            redo = max(0.0, redo - rate)
            if hot:
                throttled(m, useful)
            else:
                m.step_rate = useful
        ms[nxt].events.append("checkpoint written; node drained, spare swapped in")
        for m in ms[nxt : nxt + restart]:
            m.step_rate, m.gpu_util, m.sm_active = 0.0, 0.0, 0.0
        ms[nxt + restart].events.append("job resumed from the fresh checkpoint on the spare")
        resolved = nxt + restart
        items = [
            "never try to reset a GPU under a running job: the driver refuses while processes hold it, and "
            "stopping the job to reset it loses the work since the checkpoint without fixing a cooling fault; "
            "drain at a checkpoint instead"
        ]
    else:
        nxt = start + (ckpt_every - since_ckpt_at_start)
        for m in ms[start:nxt]:
            throttled(m, slow)
        ms[nxt].events.append("checkpoint written; node drained, spare swapped in")
        for m in ms[nxt : nxt + restart]:
            m.step_rate, m.gpu_util, m.sm_active = 0.0, 0.0, 0.0
        ms[nxt + restart].events.append("job resumed from the fresh checkpoint on the spare")
        resolved = nxt + restart
        items = ["alert on clock event reasons and per-rank step time, not on GPU_UTIL (it stayed at 100%)"]
    ms[start].events.append("GPU 3 of node 5: HW Thermal Slowdown active, SM clock 1188 MHz")
    return Incident(
        "thermal-straggler",
        "Slow job from a thermally throttled straggler",
        action,
        nodes,
        usd,
        ms,
        fired,
        [
            "step time up 67% on every rank: a synchronous job runs at its slowest rank",
            "GPU_UTIL reads 100% everywhere: utilization cannot show a slow GPU",
            "per-GPU SM clock: GPU 3 of node 5 at 60% of the others; clock event reason HW Thermal Slowdown",
            "temperature 89 C on that GPU: cooling or thermal interface problem, not the job",
        ],
        "a failing thermal interface on one GPU made it throttle; synchronous training ran at its pace",
        ["no per-rank step-time or clock alert", "the node's cooling had been flagged in a previous maintenance"],
        items + ["add the node to the lemon watch list; schedule thermal-interface repair"],
        resolved,
    )


def nccl_hang(action: str = "wait-for-watchdog", nodes: int = 16, usd: float = 4.0, minutes: int = 120) -> Incident:
    """A NIC on one node dies: every rank blocks in an all-reduce. GPUs read 100% busy (NCCL
    kernels spin) with SM_ACTIVE near zero; nothing progresses until the NCCL watchdog aborts the
    job (10 min default) or a progress alert lets a responder act sooner."""
    start, since_ckpt, restart = 25, 15, 10
    ms = [_healthy(t) for t in range(minutes)]
    watchdog = _detect_at(start, "nccl_watchdog")
    if action == "progress-alert":
        fired = {"step_progress (no step for 5 min)": start + 5}
        stop = start + 5
    else:
        fired = {"nccl_watchdog (collective timeout)": watchdog}
        stop = watchdog
    for m in ms[start:stop]:
        m.step_rate, m.gpu_util, m.sm_active = 0.0, 100.0, 1 / 132
    ms[start].events.append("node 9: mlx5_3 link down (NIC)")
    ms[stop].events.append(
        "job aborted" + (" by the NCCL watchdog" if stop == watchdog else " by the responder after the progress alert")
    )
    for m in ms[stop : stop + restart + since_ckpt]:
        m.step_rate = 0.0
        m.gpu_util = m.sm_active = 0.0
    ms[stop + restart].events.append(f"restarted without node 9 (spare); {since_ckpt} min since the checkpoint redone")
    return Incident(
        "nccl-hang",
        "Stuck job from an NCCL hang",
        action,
        nodes,
        usd,
        ms,
        fired,
        [
            "step counter frozen; GPU_UTIL 100% on all GPUs (spinning NCCL kernels), SM_ACTIVE ~0.01",
            "NCCL flight recorder / watchdog: every rank waits in the same all-reduce; one rank's peer unreachable",
            "that rank's node: kernel log shows mlx5 link down; the NIC counters stopped",
            "cordon the node, restart the job on a spare",
        ],
        "a NIC failed; the collective could not complete and the job hung until it was aborted",
        ["the NCCL timeout was the default 10 min", "the dashboards showed GPUs 100% busy, so the hang looked healthy"],
        [
            "alert on step progress (minutes without a step), not on utilization",
            "shorten the collective timeout for this job size",
        ],
        stop + restart + since_ckpt,
    )


def xid79_storm(
    action: str = "wait-for-reboot", nodes: int = 16, spares: int = 2, usd: float = 4.0, minutes: int = 180
) -> Incident:
    """Four nodes of one rack report Xid 79 (GPU fallen off the bus) within minutes: a power or
    PCIe event on the rack. The job dies; 'wait-for-reboot' waits for the rack's nodes (60 min),
    'spares-then-shrink' takes the spares it has and restarts with fewer data-parallel replicas
    until the rack is back."""
    start, since_ckpt, restart, reboot = 40, 30, 10, 60
    ms = [_healthy(t) for t in range(minutes)]
    for k in range(4):
        ms[start + k].events.append(f"node {20 + k}: NVRM: Xid 79, GPU has fallen off the bus")
    fired = {"xid_log (Xid 79 on 4 nodes of rack 5)": _detect_at(start, "xid_log")}
    det = fired["xid_log (Xid 79 on 4 nodes of rack 5)"]
    if action == "wait-for-reboot":
        for m in ms[start : det + reboot + restart + since_ckpt]:
            m.step_rate, m.gpu_util, m.sm_active = 0.0, 0.0, 0.0
        ms[det + reboot].events.append("rack 5 nodes rebooted and passed health checks")
        resolved = det + reboot + restart + since_ckpt
    else:
        run_frac = (nodes - 4 + spares) / nodes
        for m in ms[start : det + restart + since_ckpt]:
            m.step_rate, m.gpu_util, m.sm_active = 0.0, 0.0, 0.0
        ms[det].events.append(
            f"restart on {nodes - 4} healthy nodes + {spares} spares ({run_frac:.0%} of the replicas)"
        )
        for m in ms[det + restart + since_ckpt : det + reboot + restart]:
            m.step_rate = run_frac
        resolved = det + reboot + restart
        ms[resolved].events.append("rack 5 back: job grows to full size at its next checkpoint")
    return Incident(
        "xid79-storm",
        "Xid 79 storm on one rack",
        action,
        nodes,
        usd,
        ms,
        fired,
        [
            "job died; the launcher reports 4 ranks on 4 nodes lost at once",
            "kernel logs: Xid 79 (fallen off the bus) on all four, within minutes: correlated, so suspect the rack, not the GPUs",
            "rack PDU and BMC logs: a power event on rack 5",
            "Xid 79 needs a node reboot (NVIDIA's catalog: RESTART_BM); cordon the rack until it passes health checks",
        ],
        "a power event on rack 5 dropped the GPUs of four nodes off the PCIe bus",
        [
            "the job's nodes were packed into one rack (one failure domain)",
            f"only {spares} spare nodes for a 4-node failure",
        ],
        [
            "spread large jobs over racks or keep a rack's worth of spares",
            "treat simultaneous Xid 79s as a facility event",
        ],
        resolved,
    )


def oom_crash_loop(action: str = "restart-forever", nodes: int = 4, usd: float = 4.0, minutes: int = 240) -> Incident:
    """A config change raises the micro-batch: every launch OOMs after its 4-minute start-up, and
    the launcher restarts it at once. 'restart-forever' loops until a person notices (manual
    delay); 'backoff-and-alert' alerts after 3 OOM exits in 30 min and stops the loop."""
    start, startup = 10, 4
    ms = [_healthy(t) for t in range(minutes)]
    ms[start].events.append("deploy: micro-batch 8 -> 16")
    stop = start + (-(-int(signals()["manual"].mean_s) // 60) if action == "restart-forever" else 3 * startup)
    stop = min(stop, minutes - 20)
    fired = {
        (
            "manual (someone looks at the job)"
            if action == "restart-forever"
            else "crash_loop_alert (3 OOM exits in 30 min)"
        ): stop
    }
    t = start
    while t < stop:
        for m in ms[t : min(t + startup, stop)]:
            m.step_rate, m.gpu_util, m.sm_active = 0.0, 30.0, 0.2
        if t + startup < stop:
            ms[t + startup].events.append(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB ...; restarted"
            )
        t += startup
    ms[stop].events.append("config rolled back")
    for m in ms[stop : stop + startup]:
        m.step_rate = 0.0
    return Incident(
        "oom-crash-loop",
        "OOM crash loop after a config change",
        action,
        nodes,
        usd,
        ms,
        fired,
        [
            "job restarts every few minutes; each run exits with torch.OutOfMemoryError",
            "the message: 'Tried to allocate 20.00 GiB', little reserved-but-unallocated: not fragmentation, demand",
            "diff the job's config against the last good run: micro-batch doubled",
            "roll back (a GPU OOM is abrupt and fatal: no swap, no partial progress)",
        ],
        "a config change doubled activation memory past the GPU's capacity",
        [
            "the launcher restarted on every failure without back-off",
            "no pre-flight memory estimate for config changes",
        ],
        [
            "back off restarts and alert after repeated OOM exits",
            "estimate memory before launch (gpuinfra scale reports it)",
        ],
        stop + startup,
    )


def poisoned_gpu(action: str = "retry-in-place", nodes: int = 8, usd: float = 4.0, minutes: int = 300) -> Incident:
    """An uncorrectable ECC error (Xid 48) poisons one GPU; the job dies. Retrying in place
    without cordoning the GPU crashes every run after its start-up (the GPU needs a reset); the
    loop lasts until a person looks. 'cordon-on-xid' acts on the Xid alert."""
    start, since_ckpt, startup, restart = 15, 30, 3, 10
    ms = [_healthy(t) for t in range(minutes)]
    ms[start].events.append("node 3 GPU 6: NVRM: Xid 48, DBE (double-bit ECC) error; job dies")
    if action == "retry-in-place":
        stop = start + -(-int(signals()["manual"].mean_s) // 60)
        stop = min(stop, minutes - restart - since_ckpt - 1)
        fired = {"manual (someone reads the job's failures)": stop}
        t = start
        while t < stop:
            for m in ms[t : min(t + startup, stop)]:
                m.step_rate = 0.0
            if t + startup < stop:
                ms[t + startup].events.append("restart on the same GPUs: crashed (GPU needs reset)")
            t += startup
    else:
        stop = _detect_at(start, "xid_log")
        fired = {"xid_log (Xid 48 alert)": stop}
    ms[stop].events.append("GPU cordoned; job moved to a spare node")
    for m in ms[start : stop + restart + since_ckpt]:
        m.step_rate, m.gpu_util, m.sm_active = 0.0, 0.0, 0.0
    return Incident(
        "poisoned-gpu",
        "A poisoned GPU that keeps eating retries",
        action,
        nodes,
        usd,
        ms,
        fired,
        [
            "job fails repeatedly on the same node, a few minutes into each run",
            "kernel log on that node: Xid 48 (DBE) on GPU 6; NVIDIA's action: reset the GPU",
            "nvidia-smi -q: remapped rows pending; the GPU stays poisoned until reset (sticky)",
            "cordon the GPU, move the job, reset and health-check before returning it",
        ],
        "an uncorrectable memory error left one GPU needing a reset; retries landed on it",
        ["the retry policy did not exclude the failed node", "no alert on Xid 48"],
        ["cordon on uncorrectable-ECC Xids automatically", "retry elsewhere, with back-off"],
        stop + restart + since_ckpt,
    )


INCIDENTS = {
    "thermal-straggler": (thermal_straggler, ("reset-now", "drain-at-checkpoint")),
    "nccl-hang": (nccl_hang, ("wait-for-watchdog", "progress-alert")),
    "xid79-storm": (xid79_storm, ("wait-for-reboot", "spares-then-shrink")),
    "oom-crash-loop": (oom_crash_loop, ("restart-forever", "backoff-and-alert")),
    "poisoned-gpu": (poisoned_gpu, ("retry-in-place", "cordon-on-xid")),
}
