"""Probes: a stand-in NVML exercises the NVML path; saved probes and `nvidia-smi -q` read back;
without a driver the CLI says so in one line and exits 3."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from gpuinfra.io.probe import EXIT_NO_GPU, ProbeUnavailable, load_probe, match_catalog, probe_findings, probe_nvml
from gpuinfra.models.faults import verdict

FIX = Path(__file__).parents[1] / "fixtures"


class FakeNVMLError(Exception):
    pass


class NotSupported(FakeNVMLError):
    pass


def fake_pynvml(n_gpus=2, nvswitch=True, fail_init=False):
    """A minimal stand-in for nvidia-ml-py with the calls the probe makes (values of an HGX H100)."""
    m = types.ModuleType("pynvml")
    m.NVMLError = FakeNVMLError
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 1, 2, 0
    m.NVML_MEMORY_ERROR_TYPE_CORRECTED, m.NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 0, 1
    m.NVML_VOLATILE_ECC, m.NVML_AGGREGATE_ECC = 0, 1
    m.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, m.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = (
        0,
        1,
    )
    m.NVML_NVLINK_MAX_LINKS = 18
    m.nvmlClocksEventReasonHwThermalSlowdown = 0x40

    def init():
        if fail_init:
            raise FakeNVMLError("Driver Not Loaded")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: n_gpus
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    m.nvmlSystemGetCudaDriverVersion = lambda: 12040
    m.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"
    m.nvmlDeviceGetUUID = lambda h: f"GPU-{h:04d}"
    m.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=f"00000000:{0x18 + h:02X}:00.0")
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        total=81559 * 2**20, used=1024 * 2**20, free=80535 * 2**20
    )
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=100, memory=40)
    m.nvmlDeviceGetClockInfo = lambda h, c: 1980 if c == 1 else 2619
    m.nvmlDeviceGetMaxClockInfo = lambda h, c: 1980
    m.nvmlDeviceGetPowerUsage = lambda h: 512_340
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000
    m.nvmlDeviceGetTemperature = lambda h, s: 61

    def ecc_mode(h):
        return (1, 1)

    m.nvmlDeviceGetEccMode = ecc_mode
    m.nvmlDeviceGetTotalEccErrors = lambda h, e, c: 2 if (h == 1 and e == 1 and c == 0) else 0

    def unsupported(*a):
        raise NotSupported("Not Supported")

    m.nvmlDeviceGetRetiredPages = unsupported  # Ampere and later: row remapping instead
    m.nvmlDeviceGetRetiredPagesPendingStatus = unsupported
    m.nvmlDeviceGetRemappedRows = lambda h: (0, 0, h == 1, False)
    m.nvmlDeviceGetMigMode = lambda h: (0, 0)
    m.nvmlDeviceGetCurrPcieLinkGeneration = lambda h: 5
    m.nvmlDeviceGetCurrPcieLinkWidth = lambda h: 16

    def link_state(h, link):
        if link >= 18:
            raise NotSupported("no such link")
        return 1

    m.nvmlDeviceGetNvLinkState = link_state
    m.nvmlDeviceGetNvLinkRemotePciInfo = lambda h, link: types.SimpleNamespace(busId="00000000:99:00.0")  # NVSwitch
    m.nvmlDeviceGetCurrentClocksEventReasons = lambda h: 0x40 if h == 0 else 0
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=4242, usedGpuMemory=1024 * 2**20)]
    m.nvmlDeviceGetTopologyCommonAncestor = lambda a, b: 40
    return m


def test_nvml_probe_with_a_stand_in(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    p = probe_nvml()
    assert p.source == "nvml" and p.driver_version == "550.54.15" and p.cuda_version == "12.4"
    d0, d1 = p.devices
    assert d0.catalog_model == "H100-SXM" and d0.memory_total_mib == 81559 and d0.power_w == pytest.approx(512.34)
    assert d0.retired_pages_sbe is None  # not supported: None, not a guess
    assert d0.nvlinks_active == 18 and d0.clock_event_reasons == ["HW Thermal Slowdown"]
    assert d1.ecc_volatile_uncorrected == 2 and d1.remap_pending
    assert p.topology["GPU0"]["GPU1"] == "NV18"  # 18 links to the NVSwitch
    actions = {f.source_line: f.action for f in probe_findings(p)}
    assert actions["remap_pending"] == "reset_gpu" and verdict(probe_findings(p)) == "reset_gpu"


def test_no_driver_is_probe_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_init=True))
    with pytest.raises(ProbeUnavailable, match="no NVIDIA driver"):
        probe_nvml()


def test_saved_probe_round_trip(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    p = probe_nvml()
    f = tmp_path / "node.json"
    p.save(f)
    q = load_probe(f)
    assert q.as_json() == p.as_json()


def test_nvidia_smi_q_reads_as_a_probe():
    p = load_probe(FIX / "nvidia-smi-q-h100-full.txt")
    d0, d1 = p.devices
    assert p.driver_version == "550.54.15" and d0.catalog_model == "H100-SXM"
    assert (d0.memory_total_mib, d0.memory_used_mib, d0.gpu_util_pct, d0.power_w) == (81559, 61457, 100, 512.34)
    assert d0.processes[0].pid == 48211 and d0.processes[0].used_mib == 61440
    assert d1.mig_mode_current is True and d1.gpu_util_pct is None  # N/A stays unknown
    old = load_probe(FIX / "nvidia-smi-q-a100.txt")
    assert verdict(probe_findings(old)) == "drain_and_replace"  # the remapping failure


def test_catalog_matching():
    assert match_catalog("NVIDIA H100 80GB HBM3") == "H100-SXM"
    assert match_catalog("NVIDIA A100-SXM4-80GB") == "A100-80GB"
    assert match_catalog("Tesla T4") == "T4"
    assert match_catalog("NVIDIA GeForce RTX 4090") is None


def test_cli_without_a_gpu_exits_3_in_one_line(tmp_path):
    import subprocess

    r = subprocess.run([sys.executable, "-m", "gpuinfra.cli", "probe"], capture_output=True, text=True)
    if r.returncode == 0:
        pytest.skip("this machine has an NVIDIA GPU")
    assert r.returncode == EXIT_NO_GPU and "Traceback" not in r.stderr
    assert "no GPU probe" in r.stderr and "--from" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "probe", "--from", str(FIX / "nvidia-smi-q-h100-full.txt"), "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["devices"][0]["catalog_model"] == "H100-SXM"
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other"}')
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "probe", "--from", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "gpuinfra.probe/1" in r.stderr


class FakeTorch:
    """Stands in for torch on a GPU-less machine: its 'real' allocator is gpuinfra's own model
    with a configurable config, so the comparison's plumbing (fraction, per-op stats, OOM step)
    is exercised; agreement with the real PyTorch is checked only on a GPU machine."""

    uint8 = "uint8"

    def __init__(self, total: int, conf: str = ""):
        from gpuinfra.models.memory import AllocatorConfig, CachingAllocator, Gpu, OutOfMemoryError

        self.OutOfMemoryError = OutOfMemoryError
        self._gpu = Gpu(total)
        self._conf = conf
        self._alloc = None
        self._n = 0
        outer = self

        class Cuda:
            def set_per_process_memory_fraction(self, f, device):
                outer._alloc = CachingAllocator(outer._gpu, AllocatorConfig.parse(outer._conf, f), context_bytes=0)

            def memory_stats(self, device):
                return outer._alloc.memory_stats()

            def empty_cache(self):
                outer._alloc.empty_cache()

            def get_device_properties(self, device):
                return types.SimpleNamespace(total_memory=total)

            def get_device_name(self, device):
                return "Fake GPU"

        self.cuda = Cuda()

    def empty(self, size, dtype=None, device=None):
        self._n += 1
        name = f"t{self._n}"
        self._alloc.malloc(size, name)
        alloc = self._alloc

        class T:
            def __del__(self):
                alloc.free(name)

        return T()


def test_probe_memory_comparison_plumbing():
    from gpuinfra.io.probe_memory import compare_real

    same = compare_real("interleaved", "", 0, backend=FakeTorch(80 * 2**30))
    assert same["allocated_equal"] and same["reserved_equal_ops"] == same["compared_ops"]
    assert same["real_oom_step"] == same["model_oom_step"]
    assert same["fraction"] == pytest.approx(15102 / (80 * 1024))  # the T4's visible memory on an 80 GiB device
    differ = compare_real("variable-batch", "", 0, backend=FakeTorch(80 * 2**30, "expandable_segments:True"))
    assert differ["allocated_equal"] or differ["real_oom_step"] != differ["model_oom_step"]
    assert differ["reserved_equal_ops"] < differ["compared_ops"]
