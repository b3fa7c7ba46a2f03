"""Section 0 prerequisites read from a real machine: the host facts a GPU workload depends on.

:func:`node_check` reads everything through a root directory (default ``/``), so tests point it
at hand-written ``proc``/``sys``/``dev``/``etc`` trees. Each :class:`Check` carries a verdict
(``ok``, ``warn``, ``fail``, ``info`` or ``absent``), the value read, the file it came from and
why it matters for GPU workloads. Nothing here needs a GPU: on a machine without one the GPU
checks say so (verdict ``absent``) and why.

Sources for the constants used in verdicts:

- initial namespace inode numbers (``PROC_PID_INIT_INO = 0xEFFFFFFC`` ...): Linux
  ``include/linux/proc_ns.h``; a different pid namespace inode means a container.
- PCI vendor 0x10de = NVIDIA, class codes 0x0300/0x0302 (display/3D controller), 0x0200
  (Ethernet), 0x0207 (InfiniBand): PCI-SIG code and ID assignment specification.
- ``memlock unlimited`` for RDMA/GPUDirect: NVIDIA NCCL and MOFED docs (registering memory
  with the NIC pins it; a low ``RLIMIT_MEMLOCK`` makes ``ibv_reg_mr`` fail).
- ``nofile`` threshold 65,536: an assumption (data loaders with many workers, NCCL sockets and
  IPC handles open thousands of descriptors; common container defaults are 1,024 soft).
- ``ndots:5``: the Kubernetes default in a pod's ``resolv.conf``; names with fewer dots go
  through every search domain first (kubernetes.io DNS for Services and Pods).
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gpuinfra.errors import UserError

VERDICTS = ("ok", "warn", "fail", "info", "absent")
NVIDIA_VENDOR = "0x10de"
# include/linux/proc_ns.h: the initial namespaces' fixed inode numbers
INIT_NS_INODES = {"pid": 0xEFFFFFFC, "user": 0xEFFFFFFD, "uts": 0xEFFFFFFE, "ipc": 0xEFFFFFFF, "cgroup": 0xEFFFFFFB}
NOFILE_MIN = 65536  # assumption, see module docstring
_BIN_DIRS = ("usr/bin", "usr/local/bin", "bin", "usr/sbin", "sbin")


@dataclass
class Check:
    """One prerequisite: ``area`` (Linux, Containers, Kubernetes, Networking, GPU), a ``name``,
    the ``verdict``, the ``value`` read (text, numbers in it), where it was read (``source``) and
    ``why`` it matters for GPU workloads."""

    area: str
    name: str
    verdict: str
    value: str
    why: str
    source: str = ""
    data: dict = field(default_factory=dict)


@dataclass
class NodeReport:
    root: str
    checks: list[Check]

    @property
    def has_gpu(self) -> bool:
        return any(c.name == "NVIDIA devices" and c.verdict == "ok" for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {v: sum(c.verdict == v for c in self.checks) for v in VERDICTS}

    def as_json(self) -> dict:
        return {
            "root": self.root,
            "has_gpu": self.has_gpu,
            "counts": self.counts(),
            "checks": [asdict(c) for c in self.checks],
        }


class _Root:
    def __init__(self, root: Path) -> None:
        self.root = root

    def p(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def read(self, rel: str) -> str | None:
        try:
            return self.p(rel).read_text(errors="replace")
        except OSError:
            return None


def _cpulist_count(text: str) -> int:
    """Number of CPUs in a kernel cpulist such as ``0-3,8-11`` (empty string -> 0)."""
    n = 0
    for part in text.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        n += (int(b) - int(a) + 1) if b else 1
    return n


def _cgroup_checks(r: _Root) -> list[Check]:
    out: list[Check] = []
    controllers = r.read("sys/fs/cgroup/cgroup.controllers")
    if controllers is None:
        v1 = r.p("sys/fs/cgroup/devices").is_dir() or r.p("sys/fs/cgroup/memory").is_dir()
        out.append(
            Check(
                "Linux",
                "cgroup version",
                "warn" if v1 else "fail",
                "v1" if v1 else "no cgroup filesystem found",
                "cgroup v1 is in maintenance in Kubernetes (1.31+) and newer runtimes expect v2; GPU "
                "device access and memory limits are enforced through cgroups",
                "sys/fs/cgroup",
            )
        )
        if v1:
            dl = r.read("sys/fs/cgroup/devices/devices.list")
            out.append(
                Check(
                    "Containers",
                    "device controller",
                    "info" if dl is not None else "warn",
                    (dl or "unreadable").strip().replace("\n", "; ")[:200],
                    "the devices cgroup decides whether a container may open /dev/nvidia*",
                    "sys/fs/cgroup/devices/devices.list",
                )
            )
        return out
    ctrl = controllers.split()
    out.append(
        Check(
            "Linux",
            "cgroup version",
            "ok",
            "v2 (" + " ".join(ctrl) + ")",
            "cgroup v2 is what current Kubernetes, containerd and the NVIDIA container toolkit expect",
            "sys/fs/cgroup/cgroup.controllers",
            {"controllers": ctrl},
        )
    )
    # our own cgroup: "0::/path" in /proc/self/cgroup; inside a cgroup namespace it is "/"
    rel = ""
    for line in (r.read("proc/self/cgroup") or "").splitlines():
        if line.startswith("0::"):
            rel = line[3:].strip().lstrip("/")
    base = "sys/fs/cgroup/" + rel if rel and r.p("sys/fs/cgroup/" + rel).is_dir() else "sys/fs/cgroup"
    cpu = r.read(base + "/cpu.max")
    if cpu is None:
        out.append(
            Check(
                "Linux",
                "cpu.max",
                "info",
                "not present (root cgroup or cpu controller not enabled)",
                "a CFS quota throttles data-loader and launch threads that keep the GPU fed",
                base + "/cpu.max",
            )
        )
    else:
        quota, _, period = cpu.strip().partition(" ")
        if quota == "max":
            out.append(
                Check(
                    "Linux",
                    "cpu.max",
                    "ok",
                    "unlimited",
                    "no CFS quota: input pipelines are not throttled",
                    base + "/cpu.max",
                    {"cpus": None},
                )
            )
        else:
            cpus = int(quota) / int(period or 100000)
            out.append(
                Check(
                    "Linux",
                    "cpu.max",
                    "warn" if cpus < 4 else "ok",
                    f"{cpus:g} CPUs ({quota} us per {period} us)",
                    "a CFS quota throttles data-loader and kernel-launch threads; a GPU fed by fewer "
                    "than ~4 CPUs often waits on input (assumption)",
                    base + "/cpu.max",
                    {"cpus": cpus},
                )
            )
    mem = r.read(base + "/memory.max")
    if mem is None:
        out.append(
            Check(
                "Linux",
                "memory.max",
                "info",
                "not present",
                "the memory limit bounds pinned host buffers and data-loader caches; crossing it is an OOM kill",
                base + "/memory.max",
            )
        )
    else:
        m = mem.strip()
        gib = None if m == "max" else int(m) / 2**30
        out.append(
            Check(
                "Linux",
                "memory.max",
                "ok" if gib is None else "info",
                "unlimited" if gib is None else f"{gib:.2f} GiB",
                "the memory limit bounds pinned host buffers and data-loader caches; crossing it is an OOM kill "
                "of the whole training process, not of one GPU kernel",
                base + "/memory.max",
                {"gib": gib},
            )
        )
    out.append(
        Check(
            "Containers",
            "device controller",
            "info",
            "cgroup v2: device access is an eBPF program attached to the cgroup (not readable as a file)",
            "the device program decides whether a container may open /dev/nvidia*; the runtime installs it",
            base,
        )
    )
    return out


def _namespace_check(r: _Root) -> Check:
    ns_dir = r.p("proc/self/ns")
    found: dict[str, int] = {}
    if ns_dir.is_dir():
        for e in sorted(ns_dir.iterdir()):
            try:
                target = os.readlink(e)  # "pid:[4026531836]"
            except OSError:
                continue
            if "[" in target:
                found[e.name] = int(target.split("[", 1)[1].rstrip("]"))
    if not found:
        return Check(
            "Linux",
            "namespaces",
            "info",
            "unreadable",
            "namespaces are what a container is",
            "proc/self/ns",
        )
    differs = [k for k, ino in INIT_NS_INODES.items() if k in found and found[k] != ino]
    in_container = "pid" in differs
    value = f"{len(found)} namespaces; " + (
        "non-initial: " + ", ".join(differs) if differs else "all checked ones are the host's initial namespaces"
    )
    return Check(
        "Linux",
        "namespaces",
        "info",
        value,
        "in a container the pid, mount and cgroup namespaces hide host processes and devices: nvidia-smi "
        "shows no other processes and /dev holds only the GPUs the runtime passed in",
        "proc/self/ns",
        {"inodes": found, "non_initial": differs, "in_container": in_container},
    )


def _pci_devices(r: _Root) -> list[dict]:
    base = r.p("sys/bus/pci/devices")
    devs = []
    if not base.is_dir():
        return devs
    for d in sorted(base.iterdir()):
        cls = (r.read(f"sys/bus/pci/devices/{d.name}/class") or "").strip()
        vendor = (r.read(f"sys/bus/pci/devices/{d.name}/vendor") or "").strip()
        numa = (r.read(f"sys/bus/pci/devices/{d.name}/numa_node") or "-1").strip()
        kind = None
        if vendor == NVIDIA_VENDOR and cls[:6] in ("0x0300", "0x0302"):
            kind = "gpu"
        elif cls[:6] in ("0x0200", "0x0207"):
            kind = "nic"
        if kind:
            devs.append({"address": d.name, "kind": kind, "vendor": vendor, "class": cls, "numa_node": int(numa)})
    return devs


def _numa_checks(r: _Root) -> list[Check]:
    nodes: dict[int, int] = {}
    nd = r.p("sys/devices/system/node")
    if nd.is_dir():
        for d in sorted(nd.glob("node[0-9]*")):
            cl = r.read(f"sys/devices/system/node/{d.name}/cpulist")
            if cl is not None:
                nodes[int(d.name[4:])] = _cpulist_count(cl)
    out = [
        Check(
            "Linux",
            "NUMA nodes",
            "info" if nodes else "absent",
            ", ".join(f"node{n}: {c} CPUs" for n, c in sorted(nodes.items())) or "no NUMA information",
            "a GPU's DMA and its feeding threads should stay on the GPU's socket; crossing the inter-socket "
            "link costs bandwidth and latency",
            "sys/devices/system/node/node*/cpulist",
            {"cpus_per_node": {str(k): v for k, v in nodes.items()}},
        )
    ]
    devs = _pci_devices(r)
    gpus = [d for d in devs if d["kind"] == "gpu"]
    nics = [d for d in devs if d["kind"] == "nic"]
    desc = "; ".join(f"{d['kind']} {d['address']} on node {d['numa_node']}" for d in devs) or "no GPU or NIC found"
    verdict = "info"
    why = "GPUDirect RDMA and NCCL's network traffic go fastest when a GPU and its NIC share a PCIe root on one socket"
    if gpus and nics and len(nodes) > 1:
        gpu_nodes = {d["numa_node"] for d in gpus}
        nic_nodes = {d["numa_node"] for d in nics}
        if -1 in gpu_nodes | nic_nodes:
            verdict = "warn"
            why += "; numa_node -1 means the firmware did not report affinity"
        elif gpu_nodes <= nic_nodes:
            verdict = "ok"
        else:
            verdict = "warn"
            why += f"; GPUs on nodes {sorted(gpu_nodes - nic_nodes)} have no NIC on their own node"
    elif not gpus:
        verdict = "absent" if not nics else "info"
    out.append(
        Check(
            "Linux",
            "GPU and NIC NUMA affinity",
            verdict,
            desc,
            why,
            "sys/bus/pci/devices/*/numa_node",
            {"devices": devs},
        )
    )
    return out


def _parse_limits(text: str) -> dict[str, tuple[int | None, int | None]]:
    """``/proc/<pid>/limits`` -> {"nofile": (soft, hard), "memlock": (soft, hard)}; None = unlimited."""
    names = {"Max open files": "nofile", "Max locked memory": "memlock"}
    out = {}
    for line in text.splitlines():
        for label, key in names.items():
            if line.startswith(label):
                parts = line[len(label) :].split()
                vals = [None if v == "unlimited" else int(v) for v in parts[:2]]
                out[key] = (vals[0], vals[1])
    return out


def _limit_checks(r: _Root, live: bool) -> list[Check]:
    if live:
        lim = {}
        for key, res in (("nofile", resource.RLIMIT_NOFILE), ("memlock", resource.RLIMIT_MEMLOCK)):
            soft, hard = resource.getrlimit(res)
            lim[key] = tuple(None if v == resource.RLIM_INFINITY else v for v in (soft, hard))
        source = "resource.getrlimit"
    else:
        lim = _parse_limits(r.read("proc/self/limits") or "")
        source = "proc/self/limits"

    def fmt(v: int | None, unit: str = "") -> str:
        return "unlimited" if v is None else f"{v:,}{unit}"

    out = []
    if "nofile" in lim:
        soft, hard = lim["nofile"]
        low = soft is not None and soft < NOFILE_MIN
        out.append(
            Check(
                "Linux",
                "open files (RLIMIT_NOFILE)",
                "warn" if low else "ok",
                f"soft {fmt(soft)}, hard {fmt(hard)}",
                f"data loaders with many workers, NCCL sockets and CUDA IPC handles open thousands of descriptors; "
                f"below {NOFILE_MIN:,} (assumption) jobs fail with 'Too many open files'",
                source,
                {"soft": soft, "hard": hard},
            )
        )
    if "memlock" in lim:
        soft, hard = lim["memlock"]
        out.append(
            Check(
                "Linux",
                "locked memory (RLIMIT_MEMLOCK)",
                "ok" if soft is None else "warn",
                f"soft {fmt(soft, ' B')}, hard {fmt(hard, ' B')}",
                "RDMA and GPUDirect register (pin) host memory with the NIC; NCCL over InfiniBand needs "
                "memlock unlimited or memory registration fails",
                source,
                {"soft": soft, "hard": hard},
            )
        )
    return out


def _hugepage_check(r: _Root) -> Check:
    info = {}
    for line in (r.read("proc/meminfo") or "").splitlines():
        k, _, v = line.partition(":")
        if k in ("HugePages_Total", "HugePages_Free", "Hugepagesize"):
            info[k] = int(v.split()[0])
    thp = (r.read("sys/kernel/mm/transparent_hugepage/enabled") or "").strip()
    thp_mode = thp[thp.find("[") + 1 : thp.find("]")] if "[" in thp else (thp or "unknown")
    if not info:
        value = "no huge page information"
    else:
        value = (
            f"{info.get('HugePages_Total', 0)} pages of {info.get('Hugepagesize', 0)} kB "
            f"({info.get('HugePages_Free', 0)} free); transparent huge pages: {thp_mode}"
        )
    return Check(
        "Linux",
        "huge pages",
        "info" if info else "absent",
        value,
        "huge pages cut TLB misses for large pinned staging buffers and DPDK/RDMA rings; THP 'always' can "
        "add latency spikes from compaction",
        "proc/meminfo, sys/kernel/mm/transparent_hugepage/enabled",
        {**info, "thp": thp_mode},
    )


def _gpu_checks(r: _Root) -> list[Check]:
    dev = r.p("dev")
    nodes = sorted(p.name for p in dev.glob("nvidia*")) if dev.is_dir() else []
    gpus = [n for n in nodes if n[6:].isdigit()]
    version = r.read("proc/driver/nvidia/version")
    mod = r.read("sys/module/nvidia/version")
    pci_gpus = [d for d in _pci_devices(r) if d["kind"] == "gpu"]
    if gpus:
        verdict, value = "ok", f"{len(gpus)} GPU device nodes: " + ", ".join(nodes)
    elif pci_gpus:
        verdict = "fail"
        value = f"{len(pci_gpus)} NVIDIA GPUs on the PCI bus but no /dev/nvidia[0-9]* nodes"
    else:
        verdict = "absent"
        value = "no NVIDIA GPU: no /dev/nvidia* device nodes and no NVIDIA device on the PCI bus"
    out = [
        Check(
            "GPU",
            "NVIDIA devices",
            verdict,
            value,
            "CUDA opens /dev/nvidiactl, /dev/nvidia-uvm and /dev/nvidiaN; a container sees a GPU only "
            "when its device node is passed in",
            "dev/nvidia*, sys/bus/pci/devices",
            {"device_nodes": nodes, "gpus": len(gpus), "pci_gpus": len(pci_gpus)},
        )
    ]
    if version:
        first = version.splitlines()[0]
        words = first.split()
        ver = next((w for w in words if w.count(".") >= 1 and w.replace(".", "").isdigit()), first)
        dv, dval = "ok", f"driver {ver}"
    elif mod:
        dv, dval, ver = "ok", f"driver {mod.strip()} (module version)", mod.strip()
    else:
        ver = None
        dv = "fail" if pci_gpus or gpus else "absent"
        dval = (
            "GPU present but no nvidia kernel module loaded (no /proc/driver/nvidia/version)"
            if dv == "fail"
            else "no nvidia kernel module loaded (no /proc/driver/nvidia/version): this machine has no NVIDIA GPU"
        )
    out.append(
        Check(
            "GPU",
            "NVIDIA driver",
            dv,
            dval,
            "the kernel driver's version bounds the CUDA versions containers may use (forward compatibility "
            "needs the compat package)",
            "proc/driver/nvidia/version",
            {"version": ver},
        )
    )
    return out


def _find_bin(r: _Root, name: str) -> str | None:
    for d in _BIN_DIRS:
        if r.p(f"{d}/{name}").exists():
            return f"/{d}/{name}"
    return None


def _container_checks(r: _Root, env: Mapping[str, str]) -> list[Check]:
    signs = []
    if r.p(".dockerenv").exists():
        signs.append("/.dockerenv")
    if r.p("run/.containerenv").exists():
        signs.append("/run/.containerenv (podman)")
    if env.get("container"):
        signs.append(f"container={env['container']}")
    cg1 = r.read("proc/1/cgroup") or ""
    for word in ("kubepods", "docker", "containerd", "crio", "libpod"):
        if word in cg1:
            signs.append(f"/proc/1/cgroup mentions {word}")
    runtimes = [b for b in ("containerd", "dockerd", "docker", "crio", "podman", "runc", "crun") if _find_bin(r, b)]
    out = [
        Check(
            "Containers",
            "container runtime",
            "info",
            ("inside a container: " + "; ".join(signs) if signs else "not inside a container (no sign found)")
            + ("; runtimes on this root: " + ", ".join(runtimes) if runtimes else "; no runtime binary found"),
            "a GPU container needs a runtime that injects the driver libraries and device nodes",
            "/.dockerenv, /run/.containerenv, proc/1/cgroup, usr/bin",
            {"in_container": bool(signs), "signs": signs, "runtimes": runtimes},
        )
    ]
    tk = [b for b in ("nvidia-ctk", "nvidia-container-runtime", "nvidia-container-cli") if _find_bin(r, b)]
    cdi = [str(p.relative_to(r.root)) for d in ("etc/cdi", "var/run/cdi") for p in sorted(r.p(d).glob("nvidia*"))]
    out.append(
        Check(
            "Containers",
            "NVIDIA container toolkit",
            "ok" if tk or cdi else "absent",
            (", ".join(tk) if tk else "no toolkit binary") + ("; CDI specs: " + ", ".join(cdi) if cdi else ""),
            "the toolkit (or a CDI spec) is how a container runtime gets /dev/nvidia* and libcuda into a container",
            "usr/bin/nvidia-ctk, etc/cdi",
            {"binaries": tk, "cdi": cdi},
        )
    )
    return out


def _kube_checks(r: _Root, env: Mapping[str, str]) -> list[Check]:
    in_pod = "KUBERNETES_SERVICE_HOST" in env
    ns = (r.read("var/run/secrets/kubernetes.io/serviceaccount/namespace") or "").strip()
    downward = {k: env[k] for k in ("NODE_NAME", "POD_NAME", "POD_NAMESPACE", "POD_IP", "HOST_IP") if k in env}
    out = [
        Check(
            "Kubernetes",
            "pod",
            "info" if in_pod else "absent",
            (
                f"in a pod (API at {env['KUBERNETES_SERVICE_HOST']}"
                + (f", namespace {ns}" if ns else "")
                + (", downward API: " + ", ".join(f"{k}={v}" for k, v in downward.items()) if downward else "")
                + ")"
            )
            if in_pod
            else "not in a Kubernetes pod (no KUBERNETES_SERVICE_HOST)",
            "the downward API tells a pod which node it runs on; GPU placement and topology questions start there",
            "environment, var/run/secrets/kubernetes.io/serviceaccount/namespace",
            {"in_pod": in_pod, "namespace": ns or None, "downward": downward},
        )
    ]
    dp = r.p("var/lib/kubelet/device-plugins")
    socks = sorted(p.name for p in dp.glob("*.sock")) if dp.is_dir() else []
    nvidia = [s for s in socks if "nvidia" in s]
    out.append(
        Check(
            "Kubernetes",
            "device plugin socket",
            "ok" if nvidia else ("info" if socks else "absent"),
            ", ".join(socks) if socks else "no /var/lib/kubelet/device-plugins (not a kubelet node, or not mounted)",
            "GPUs enter Kubernetes through a device plugin registered on kubelet.sock; without it no pod can "
            "request nvidia.com/gpu",
            "var/lib/kubelet/device-plugins",
            {"sockets": socks},
        )
    )
    return out


def _dns_check(r: _Root, live: bool) -> Check:
    resolv = r.read("etc/resolv.conf") or ""
    ns = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver") and len(line.split()) > 1]
    ndots = 1  # resolv.conf(5) default
    for line in resolv.splitlines():
        if line.startswith("options"):
            for opt in line.split()[1:]:
                if opt.startswith("ndots:"):
                    ndots = int(opt[6:])
    hosts = r.read("etc/hosts") or ""
    in_hosts = any("localhost" in line.split()[1:] for line in hosts.splitlines() if not line.startswith("#"))
    resolved: list[str] = []
    ms = None
    if live:
        t0 = time.perf_counter()
        try:
            resolved = sorted({a[4][0] for a in socket.getaddrinfo("localhost", None)})
        except OSError:
            resolved = []
        ms = (time.perf_counter() - t0) * 1e3
    loopback = all(a in ("127.0.0.1", "::1") for a in resolved) if resolved else in_hosts
    value = (
        f"localhost -> {', '.join(resolved) if resolved else ('/etc/hosts entry' if in_hosts else 'unresolved')}"
        + (f" in {ms:.2f} ms" if ms is not None else "")
        + f"; nameservers: {', '.join(ns) or 'none'}; ndots {ndots}"
    )
    return Check(
        "Networking",
        "DNS",
        "ok" if loopback and ndots < 5 else ("warn" if loopback else "fail"),
        value,
        "rendezvous (MASTER_ADDR, torchrun's c10d store) and object-store clients resolve names at start-up; "
        "ndots:5 (the Kubernetes default) sends external names through every search domain first",
        "etc/resolv.conf, etc/hosts, getaddrinfo",
        {"nameservers": ns, "ndots": ndots, "localhost": resolved, "resolve_ms": ms},
    )


def loopback_probe(rounds: int = 200, bulk_bytes: int = 32 * 2**20, timeout_s: float = 5.0) -> dict:
    """Ping-pong ``rounds`` 1-byte messages and send ``bulk_bytes`` over TCP on 127.0.0.1 only.

    Returns ``{"rtt_us_median", "throughput_gb_s", "crossover_bytes"}``: the median round trip
    in microseconds, the bulk throughput in GB/s (1e9 bytes/s), and the message size at which
    sending takes as long as the one-way latency (latency-bound below, bandwidth-bound above).
    Every socket has ``timeout_s``; the server thread ends with the transfer.
    """
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.settimeout(timeout_s)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(timeout_s)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for _ in range(rounds):
                    conn.sendall(conn.recv(1))
                left = bulk_bytes
                while left > 0:
                    chunk = conn.recv(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
                conn.sendall(b"k")
        except OSError as e:
            errors.append(e)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    rtts = []
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(rounds):
                t0 = time.perf_counter()
                c.sendall(b"x")
                c.recv(1)
                rtts.append(time.perf_counter() - t0)
            buf = b"\0" * (1 << 20)
            t0 = time.perf_counter()
            left = bulk_bytes
            while left > 0:
                n = min(left, len(buf))
                c.sendall(buf[:n])
                left -= n
            c.recv(1)
            dt = time.perf_counter() - t0
    finally:
        th.join(timeout_s)
        srv.close()
    if errors:
        raise errors[0]
    rtt = statistics.median(rtts)
    gbs = bulk_bytes / dt / 1e9
    return {"rtt_us_median": rtt * 1e6, "throughput_gb_s": gbs, "crossover_bytes": rtt / 2 * gbs * 1e9}


def _loopback_check(run: bool) -> Check:
    why = (
        "small messages (a small all-reduce, a token's response) are latency-bound, large ones "
        "(checkpoint shards, gradients) bandwidth-bound; the crossover size says which one a message is"
    )
    if not run:
        return Check("Networking", "loopback latency vs throughput", "info", "not run", why, "127.0.0.1")
    try:
        m = loopback_probe()
    except OSError as e:
        return Check("Networking", "loopback latency vs throughput", "fail", f"probe failed: {e}", why, "127.0.0.1")
    return Check(
        "Networking",
        "loopback latency vs throughput",
        "info",
        f"round trip {m['rtt_us_median']:.1f} us (median of 200), bulk {m['throughput_gb_s']:.2f} GB/s; "
        f"crossover ~{m['crossover_bytes'] / 1e3:.0f} kB",
        why,
        "TCP on 127.0.0.1",
        m,
    )


def node_check(
    root: Path | str = "/", *, env: Mapping[str, str] | None = None, probe: bool | None = None
) -> NodeReport:
    """Read the section 0 prerequisites under ``root``.

    ``env`` defaults to ``os.environ`` (Kubernetes downward-API variables); ``probe`` (loopback
    socket probe and live DNS/rlimits) defaults to True only when ``root`` is ``/``.
    Raises :class:`UserError` when ``root`` is not a directory.
    """
    rp = Path(root)
    if not rp.is_dir():
        raise UserError(
            f"{root}: not a directory",
            where="--root",
            expected="a directory holding proc/, sys/, dev/ (the real machine is /)",
            fix="pass --root / or a saved tree",
        )
    live = rp.resolve() == Path("/")
    run_probe = live if probe is None else probe
    r = _Root(rp)
    environ = os.environ if env is None else env
    checks = [
        *_cgroup_checks(r),
        _namespace_check(r),
        *_numa_checks(r),
        *_limit_checks(r, live),
        _hugepage_check(r),
        *_gpu_checks(r),
        *_container_checks(r, environ),
        *_kube_checks(r, environ),
        _dns_check(r, live),
        _loopback_check(run_probe),
    ]
    return NodeReport(str(root), checks)
