"""node check on hand-written /proc, /sys, /dev trees; every verdict below is checked by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpuinfra.cli import app
from gpuinfra.errors import UserError
from gpuinfra.io.nodecheck import _cpulist_count, _parse_limits, loopback_probe, node_check

# A two-socket GPU node seen from inside a Kubernetes pod (cgroup v2, cgroup namespace).
# The driver line has the layout of a real /proc/driver/nvidia/version (535 branch).
GPU_POD = {
    "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
    "sys/fs/cgroup/cpu.max": "800000 100000\n",
    "sys/fs/cgroup/memory.max": str(64 * 2**30) + "\n",
    "proc/self/cgroup": "0::/\n",
    "proc/1/cgroup": "0::/kubepods.slice/kubepods-pod1234.slice/cri-containerd-abc.scope\n",
    "proc/self/limits": (
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max open files            1048576              1048576              files     \n"
        "Max locked memory         unlimited            unlimited            bytes     \n"
    ),
    "proc/meminfo": (
        "MemTotal:  2113389568 kB\nHugePages_Total:    1024\nHugePages_Free:      512\nHugepagesize:       2048 kB\n"
    ),
    "sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never\n",
    "sys/devices/system/node/node0/cpulist": "0-55,112-167\n",
    "sys/devices/system/node/node1/cpulist": "56-111,168-223\n",
    # GPU on node 1, the only NIC (InfiniBand, class 0x0207) on node 0
    "sys/bus/pci/devices/0000:18:00.0/vendor": "0x10de\n",
    "sys/bus/pci/devices/0000:18:00.0/class": "0x030200\n",
    "sys/bus/pci/devices/0000:18:00.0/numa_node": "1\n",
    "sys/bus/pci/devices/0000:0c:00.0/vendor": "0x15b3\n",
    "sys/bus/pci/devices/0000:0c:00.0/class": "0x020700\n",
    "sys/bus/pci/devices/0000:0c:00.0/numa_node": "0\n",
    "dev/nvidia0": "",
    "dev/nvidiactl": "",
    "dev/nvidia-uvm": "",
    "proc/driver/nvidia/version": (
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 18:56:32 UTC 2023\n"
        "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
    ),
    "var/run/secrets/kubernetes.io/serviceaccount/namespace": "training",
    "var/lib/kubelet/device-plugins/kubelet.sock": "",
    "var/lib/kubelet/device-plugins/nvidia-gpu.sock": "",
    "usr/bin/nvidia-container-cli": "",
    "etc/resolv.conf": (
        "search training.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    ),
    "etc/hosts": "127.0.0.1 localhost\n",
}
POD_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "NODE_NAME": "gpu-node-7"}

# A cgroup v1 host with an NVIDIA GPU on the PCI bus but no driver loaded, one NUMA node.
NO_DRIVER_HOST = {
    "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
    "sys/fs/cgroup/devices/devices.list": "a *:* rwm\n",
    "proc/self/limits": (
        "Max open files            1024                 4096                 files     \n"
        "Max locked memory         65536                65536                bytes     \n"
    ),
    "sys/devices/system/node/node0/cpulist": "0-7\n",
    "sys/bus/pci/devices/0000:01:00.0/vendor": "0x10de\n",
    "sys/bus/pci/devices/0000:01:00.0/class": "0x030000\n",
    "sys/bus/pci/devices/0000:01:00.0/numa_node": "-1\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/resolv.conf": "nameserver 1.1.1.1\n",
}


def _tree(tmp: Path, files: dict[str, str], ns: dict[str, int] | None = None) -> Path:
    for rel, text in files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    if ns:
        (tmp / "proc/self/ns").mkdir(parents=True, exist_ok=True)
        for name, ino in ns.items():
            os.symlink(f"{name}:[{ino}]", tmp / "proc/self/ns" / name)
    return tmp


def _by_name(rep):
    return {c.name: c for c in rep.checks}


def test_gpu_pod(tmp_path):
    # pid namespace 4026532201 != PROC_PID_INIT_INO (0xEFFFFFFC = 4026531836): a container
    root = _tree(tmp_path, GPU_POD, ns={"pid": 4026532201, "uts": 4026531838, "net": 4026532300})
    c = _by_name(node_check(root, env=POD_ENV))
    assert c["cgroup version"].verdict == "ok" and "rdma" in c["cgroup version"].data["controllers"]
    assert c["cpu.max"].data["cpus"] == 8.0 and c["cpu.max"].verdict == "ok"  # 800000/100000
    assert c["memory.max"].data["gib"] == 64.0
    assert c["namespaces"].data["in_container"] and c["namespaces"].data["non_initial"] == ["pid"]
    assert c["NUMA nodes"].data["cpus_per_node"] == {"0": 112, "1": 112}  # 56+56 each
    assert c["GPU and NIC NUMA affinity"].verdict == "warn"  # GPU on node 1, NIC only on node 0
    assert c["open files (RLIMIT_NOFILE)"].verdict == "ok"
    assert c["locked memory (RLIMIT_MEMLOCK)"].verdict == "ok"
    assert c["huge pages"].data["HugePages_Total"] == 1024 and c["huge pages"].data["thp"] == "madvise"
    assert c["NVIDIA devices"].verdict == "ok" and c["NVIDIA devices"].data["gpus"] == 1
    assert c["NVIDIA driver"].data["version"] == "535.129.03"
    assert c["container runtime"].data["in_container"]
    assert c["NVIDIA container toolkit"].verdict == "ok"
    assert c["pod"].data["namespace"] == "training" and c["pod"].data["downward"] == {"NODE_NAME": "gpu-node-7"}
    assert c["device plugin socket"].verdict == "ok"
    assert c["DNS"].verdict == "warn" and c["DNS"].data["ndots"] == 5
    assert c["loopback latency vs throughput"].value == "not run"  # never probes a fake root
    assert node_check(root, env=POD_ENV).has_gpu


def test_gpu_without_driver_and_cgroup_v1(tmp_path):
    root = _tree(tmp_path, NO_DRIVER_HOST, ns={"pid": 0xEFFFFFFC})
    rep = node_check(root, env={})
    c = _by_name(rep)
    assert c["cgroup version"].verdict == "warn" and c["cgroup version"].value == "v1"
    assert c["device controller"].value == "a *:* rwm"
    assert not c["namespaces"].data["in_container"]
    assert c["NVIDIA devices"].verdict == "fail"  # on the PCI bus, no /dev/nvidia0
    assert c["NVIDIA driver"].verdict == "fail"
    assert c["open files (RLIMIT_NOFILE)"].data == {"soft": 1024, "hard": 4096}
    assert c["open files (RLIMIT_NOFILE)"].verdict == "warn"
    assert c["locked memory (RLIMIT_MEMLOCK)"].verdict == "warn"
    assert c["GPU and NIC NUMA affinity"].verdict == "info"  # one NUMA node: nothing to cross
    assert c["pod"].verdict == "absent" and c["device plugin socket"].verdict == "absent"
    assert c["DNS"].verdict == "ok"
    assert not rep.has_gpu and rep.counts()["fail"] == 2


def test_empty_root_reads_and_says_absent(tmp_path):
    rep = node_check(tmp_path, env={})
    c = _by_name(rep)
    assert c["cgroup version"].verdict == "fail"
    assert c["NVIDIA devices"].verdict == "absent" and "no NVIDIA GPU" in c["NVIDIA devices"].value
    assert c["NVIDIA driver"].verdict == "absent"
    json.dumps(rep.as_json())  # serialisable


def test_parsers():
    assert _cpulist_count("0-3,8-11") == 8 and _cpulist_count("5") == 1 and _cpulist_count("\n") == 0
    lim = _parse_limits("Max open files            1024                 unlimited            files\n")
    assert lim == {"nofile": (1024, None)}


def test_loopback_probe_bounded():
    m = loopback_probe(rounds=20, bulk_bytes=1 << 20)
    assert m["rtt_us_median"] > 0 and m["throughput_gb_s"] > 0 and m["crossover_bytes"] > 0


def test_bad_root(tmp_path):
    with pytest.raises(UserError):
        node_check(tmp_path / "nope")


def test_cli_json_on_fake_root(tmp_path):
    root = _tree(tmp_path, GPU_POD)
    r = CliRunner().invoke(app, ["node", "check", "--root", str(root), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["has_gpu"] and {c["name"] for c in data["checks"]} >= {"DNS", "NVIDIA driver", "cpu.max"}


def test_cli_this_machine_runs():
    r = CliRunner().invoke(app, ["node", "check", "--no-probe"])
    assert r.exit_code == 0, r.output


@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 40)), min_size=1, max_size=8))
def test_cpulist_count_matches_the_cpus_listed(ranges):
    # disjoint ascending ranges, written the kernel's way ("a-b" or "a" for one CPU)
    parts, cpus, start = [], set(), 0
    for gap, width in ranges:
        a = start + gap
        b = a + width
        parts.append(f"{a}-{b}" if b > a else str(a))
        cpus.update(range(a, b + 1))
        start = b + 2
    assert _cpulist_count(",".join(parts) + "\n") == len(cpus)
