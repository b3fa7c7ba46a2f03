"""Probes of real GPUs: through NVML (nvidia-ml-py, the ``nvml`` extra), or from a saved probe
(JSON written by ``gpuinfra probe --save``) or a saved ``nvidia-smi -q`` output.

Every field that the device or driver does not support is ``None``, never a guess. Without an
NVIDIA driver (or without nvidia-ml-py) :func:`probe_nvml` raises :class:`ProbeUnavailable`,
which the CLI prints as one line and exits with :data:`EXIT_NO_GPU` (3): distinct from a user's
mistake (2), so scripts can tell "no GPU here" from "bad input".
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpuinfra.errors import UserError

EXIT_NO_GPU = 3
SCHEMA = "gpuinfra.probe/1"

# NVML nvmlGpuTopologyLevel_t -> nvidia-smi topo -m codes (facts/gpu.md 6.2) [P]
TOPO_LEVEL = {0: "PIX", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}


class ProbeUnavailable(Exception):
    """No NVIDIA driver / NVML / GPU reachable on this machine."""


@dataclass
class Process:
    pid: int
    used_mib: int | None


@dataclass
class DeviceProbe:
    index: int
    name: str
    uuid: str | None = None
    pci_bus_id: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    memory_free_mib: int | None = None
    memory_reserved_mib: int | None = None
    gpu_util_pct: int | None = None
    mem_util_pct: int | None = None
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    max_sm_clock_mhz: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    temperature_c: int | None = None
    ecc_enabled: bool | None = None
    ecc_volatile_corrected: int | None = None
    ecc_volatile_uncorrected: int | None = None
    ecc_aggregate_corrected: int | None = None
    ecc_aggregate_uncorrected: int | None = None
    sram_volatile_uncorrected: int | None = None
    """Uncorrectable SRAM ECC errors since the last reset (Parity + SEC-DED on drivers that split them)."""
    sram_aggregate_uncorrected: int | None = None
    sram_threshold_exceeded: bool | None = None
    """The driver's SRAM error-threshold flag (550+): set means field diagnostics / RMA (catalog WORKFLOW_XID_48)."""
    recovery_action: str | None = None
    """'GPU Recovery Action' as nvidia-smi prints it (None, Reset, Reboot, Drain P2P, Drain and Reset)."""
    retired_pages_sbe: int | None = None
    retired_pages_dbe: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    mig_mode_current: bool | None = None
    mig_mode_pending: bool | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    nvlinks_active: int | None = None
    clock_event_reasons: list[str] = field(default_factory=list)
    unread: list[tuple[str, str]] = field(default_factory=list)
    """(field, value) of health fields whose value gpuinfra does not know (a yes/no field reading neither,
    nor N/A): reported as ``investigate``, never taken as "no"."""
    processes: list[Process] = field(default_factory=list)
    not_reported: dict[str, str] = field(default_factory=dict)
    """Fields the tool printed with a placeholder instead of a value (``'ECC Errors/Volatile/DRAM
    Uncorrectable': '[Not Supported]'``): not reported, so not judged; listed by ``health``."""
    catalog_model: str | None = None
    """The gpuinfra catalog model this device matches (None: not in the catalog)."""


@dataclass
class NodeProbe:
    source: str
    """'nvml', 'nvidia-smi -q' or the file it was read from."""
    captured: str
    host: str | None
    driver_version: str | None
    cuda_version: str | None
    devices: list[DeviceProbe]
    topology: dict[str, dict[str, str]] | None = None
    """GPUi -> GPUj -> nvidia-smi topo code (NV#, PIX, PXB, PHB, NODE, SYS), from NVML."""
    schema: str = SCHEMA

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        """Write the probe as JSON, atomically (:func:`gpuinfra.io.atomic.write_text`: never onto a
        device, FIFO or directory)."""
        from gpuinfra.io.atomic import write_text

        write_text(Path(path), json.dumps(self.as_json(), indent=1) + "\n")


def match_catalog(name: str) -> str | None:
    """'NVIDIA H100 80GB HBM3' -> 'H100-SXM' by the catalog's names and aliases."""
    from gpuinfra.catalog.gpus import gpu_models

    n = name.upper().replace("NVIDIA ", "").replace("TESLA ", "").strip()
    best = None
    for m in gpu_models():
        for a in m.names:
            if a.upper() == n or a.upper().replace("-", " ") == n.replace("-", " "):
                return m.name
            if a.upper() in n and (best is None or len(a) > len(best[1])):
                best = (m.name, a)
    return best[0] if best else None


# -- NVML ------------------------------------------------------------------------------------


def _nvml():
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        raise ProbeUnavailable(
            "nvidia-ml-py is not installed (pip install 'gpuinfra[nvml]'); no NVML probe possible"
        ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        raise ProbeUnavailable(f"no NVIDIA driver reachable: NVML could not start ({e})") from None
    return pynvml


def _try(fn, *args, default=None):
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return default


def _s(v) -> str | None:
    if v is None:
        return None
    return v.decode() if isinstance(v, bytes) else str(v)


def probe_nvml() -> NodeProbe:
    nv = _nvml()
    try:
        n = nv.nvmlDeviceGetCount()
        if n == 0:
            raise ProbeUnavailable("NVML started but sees no GPU")
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
        devices = [_device(nv, i, h) for i, h in enumerate(handles)]
        topo = _topology(nv, handles, devices)
        cuda = _try(nv.nvmlSystemGetCudaDriverVersion)
        return NodeProbe(
            "nvml",
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            socket.gethostname(),
            _s(_try(nv.nvmlSystemGetDriverVersion)),
            f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None,
            devices,
            topo,
        )
    finally:
        _try(nv.nvmlShutdown)


def _device(nv, i: int, h) -> DeviceProbe:
    name = _s(_try(nv.nvmlDeviceGetName, h)) or f"GPU {i}"
    d = DeviceProbe(i, name, catalog_model=match_catalog(name))
    d.uuid = _s(_try(nv.nvmlDeviceGetUUID, h))
    pci = _try(nv.nvmlDeviceGetPciInfo, h)
    d.pci_bus_id = _s(getattr(pci, "busId", None)) if pci is not None else None
    mem = _try(nv.nvmlDeviceGetMemoryInfo, h)
    if mem is not None:
        d.memory_total_mib, d.memory_used_mib, d.memory_free_mib = (
            int(x // 2**20) for x in (mem.total, mem.used, mem.free)
        )
        reserved = getattr(mem, "reserved", None)
        d.memory_reserved_mib = int(reserved // 2**20) if isinstance(reserved, int) else None
    util = _try(nv.nvmlDeviceGetUtilizationRates, h)
    if util is not None:
        d.gpu_util_pct, d.mem_util_pct = int(util.gpu), int(util.memory)
    d.sm_clock_mhz = _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)
    d.mem_clock_mhz = _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM)
    d.max_sm_clock_mhz = _try(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM)
    p = _try(nv.nvmlDeviceGetPowerUsage, h)
    d.power_w = p / 1000 if p is not None else None
    pl = _try(nv.nvmlDeviceGetEnforcedPowerLimit, h)
    d.power_limit_w = pl / 1000 if pl is not None else None
    d.temperature_c = _try(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
    ecc = _try(nv.nvmlDeviceGetEccMode, h)
    if ecc is not None:
        d.ecc_enabled = bool(ecc[0])
        for attr, err, counter in (
            ("ecc_volatile_corrected", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED, nv.NVML_VOLATILE_ECC),
            ("ecc_volatile_uncorrected", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_VOLATILE_ECC),
            ("ecc_aggregate_corrected", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED, nv.NVML_AGGREGATE_ECC),
            ("ecc_aggregate_uncorrected", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_AGGREGATE_ECC),
        ):
            setattr(d, attr, _try(nv.nvmlDeviceGetTotalEccErrors, h, err, counter))
    sbe = _try(nv.nvmlDeviceGetRetiredPages, h, nv.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
    dbe = _try(nv.nvmlDeviceGetRetiredPages, h, nv.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
    d.retired_pages_sbe = len(sbe) if sbe is not None else None
    d.retired_pages_dbe = len(dbe) if dbe is not None else None
    pend = _try(nv.nvmlDeviceGetRetiredPagesPendingStatus, h)
    d.retired_pages_pending = bool(pend) if pend is not None else None
    rr = _try(nv.nvmlDeviceGetRemappedRows, h)
    if rr is not None:
        d.remapped_rows_correctable, d.remapped_rows_uncorrectable = int(rr[0]), int(rr[1])
        d.remap_pending, d.remap_failure = bool(rr[2]), bool(rr[3])
    mig = _try(nv.nvmlDeviceGetMigMode, h)
    if mig is not None:
        d.mig_mode_current, d.mig_mode_pending = bool(mig[0]), bool(mig[1])
    d.pcie_gen = _try(nv.nvmlDeviceGetCurrPcieLinkGeneration, h)
    d.pcie_width = _try(nv.nvmlDeviceGetCurrPcieLinkWidth, h)
    links = 0
    for link in range(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18)):
        st = _try(nv.nvmlDeviceGetNvLinkState, h, link)
        if st is None:
            break
        links += int(bool(st))
    d.nvlinks_active = links if links or _try(nv.nvmlDeviceGetNvLinkState, h, 0) is not None else None
    reasons = _try(nv.nvmlDeviceGetCurrentClocksEventReasons, h)
    if reasons is None:
        reasons = _try(nv.nvmlDeviceGetCurrentClocksThrottleReasons, h)
    if reasons is not None:
        names = {
            "clocksEventReasonGpuIdle": "Idle",
            "clocksEventReasonSwPowerCap": "SW Power Cap",
            "clocksEventReasonHwSlowdown": "HW Slowdown",
            "clocksEventReasonSwThermalSlowdown": "SW Thermal Slowdown",
            "clocksEventReasonHwThermalSlowdown": "HW Thermal Slowdown",
            "clocksEventReasonHwPowerBrakeSlowdown": "HW Power Brake Slowdown",
        }
        d.clock_event_reasons = [
            label
            for attr, label in names.items()
            if reasons & int(getattr(nv, f"nvml{attr[0].upper()}{attr[1:]}", 0) or 0)
        ]
    procs = _try(nv.nvmlDeviceGetComputeRunningProcesses, h) or []
    d.processes = [
        Process(
            int(p.pid), int(p.usedGpuMemory // 2**20) if isinstance(getattr(p, "usedGpuMemory", None), int) else None
        )
        for p in procs
    ]
    return d


def _topology(nv, handles, devices) -> dict[str, dict[str, str]] | None:
    n = len(handles)
    out: dict[str, dict[str, str]] = {f"GPU{i}": {f"GPU{i}": "X"} for i in range(n)}
    # NVLink: count active links whose remote PCI bus id is another GPU's
    bus_to_gpu = {(d.pci_bus_id or "").upper(): f"GPU{d.index}" for d in devices}
    nvl: dict[tuple[str, str], int] = {}
    for i, h in enumerate(handles):
        for link in range(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18)):
            st = _try(nv.nvmlDeviceGetNvLinkState, h, link)
            if st is None:
                break
            if not st:
                continue
            rp = _try(nv.nvmlDeviceGetNvLinkRemotePciInfo, h, link)
            peer = bus_to_gpu.get((_s(getattr(rp, "busId", None)) or "").upper()) if rp is not None else None
            if peer is None:
                # an NVSwitch on the other end: every GPU behind the fabric is reachable
                for j in range(n):
                    if j != i:
                        nvl[(f"GPU{i}", f"GPU{j}")] = nvl.get((f"GPU{i}", f"GPU{j}"), 0) + 1
            else:
                nvl[(f"GPU{i}", peer)] = nvl.get((f"GPU{i}", peer), 0) + 1
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            a, b = f"GPU{i}", f"GPU{j}"
            if nvl.get((a, b)):
                out[a][b] = f"NV{nvl[(a, b)]}"
                continue
            lvl = _try(nv.nvmlDeviceGetTopologyCommonAncestor, handles[i], handles[j])
            if lvl is None:
                return None
            out[a][b] = TOPO_LEVEL.get(int(lvl), "SYS")
    return out


# -- saved probes -------------------------------------------------------------------------------


def load_probe(path: Path) -> NodeProbe:
    """A saved probe: gpuinfra's JSON, or an ``nvidia-smi -q`` text output."""
    from gpuinfra.textfile import read_text

    text = read_text(path)
    if text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(
                f"not valid JSON: {e.msg}",
                where=f"{path}:{e.lineno}",
                expected="a file written by `gpuinfra probe --save`",
            ) from None
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
            raise UserError(
                f"schema is {raw.get('schema') if isinstance(raw, dict) else type(raw).__name__!r}",
                where=str(path),
                expected=f"'{SCHEMA}' (a file written by `gpuinfra probe --save`)",
            )
        return _probe_from_json(raw, str(path))
    return parse_nvidia_smi_probe(text, str(path))


def _probe_from_json(raw: dict[str, Any], label: str) -> NodeProbe:
    """A :class:`NodeProbe` from saved JSON, every field type-checked (pydantic over the dataclasses).

    Raises :class:`UserError` naming the first wrong field (``devices[0].memory_total_mib``) and
    how many more there are.
    """
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(NodeProbe).validate_python(raw)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in errs[0]["loc"]).lstrip(".")
        got = errs[0].get("input")
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise UserError(
            errs[0]["msg"] + (f" (got {str(got)[:40]!r})" if got is not None else "") + more,
            where=f"{label} ({loc})" if loc else label,
            expected="a file written by `gpuinfra probe --save`",
        ) from None


NOT_AVAILABLE = ("n/a", "[n/a]", "not supported", "[not supported]", "unknown error", "[unknown error]")
"""Values nvidia-smi prints for a field the GPU does not report (kept as absent, not as unknown)."""


NVSMI_PLACEHOLDER = re.compile(r"^(N/A|\[[A-Za-z][A-Za-z0-9 /',.-]{0,60}\])$")
"""What nvidia-smi prints instead of a value: 'N/A' (not applicable to this GPU) or an NVML status
in brackets, nvmlErrorString's text: '[N/A]', '[Not Supported]', '[Insufficient Permissions]',
'[Unknown Error]', '[GPU is lost]', '[GPU requires reset]' (NVML API reference, nvmlReturn_t).
Such a field is *not reported*: None, and listed in :attr:`DeviceProbe.not_reported`."""

_NUMBER = re.compile(r"^(-?\d+(?:\.\d+)?)(?:\s*[A-Za-z%]+)?$")
_FLAGS = {"yes": True, "no": False, "enabled": True, "disabled": False}


class _Reader:
    """Typed values of one GPU block. A counter that is neither a number nor one of nvidia-smi's
    placeholders (:data:`NVSMI_PLACEHOLDER`, :data:`NOT_AVAILABLE`) is a :class:`UserError` naming
    the file, line and field; a placeholder is None and recorded in ``unreported``. A yes/no field
    with another value is recorded in ``unread`` (reported as ``investigate`` by
    :func:`probe_findings`: a newer driver may print a value gpuinfra does not know), or is a
    UserError when no ``unread`` list is given."""

    def __init__(self, get, where_of, unreported: dict[str, str], unread: list | None = None) -> None:
        self.get, self.where_of, self.unreported, self.unread = get, where_of, unreported, unread

    def _raw(self, key: str) -> str | None:
        v = self.get(key)
        if v is None:
            return None
        v = v.strip()
        if NVSMI_PLACEHOLDER.match(v) or v.lower() in NOT_AVAILABLE:
            self.unreported[key] = v
            return None
        return v

    def _bad(self, key: str, v: str, expected: str) -> UserError:
        return UserError(
            f"field '{key}' is '{v}'",
            where=self.where_of(key),
            expected=f"{expected}, or one of nvidia-smi's placeholders (N/A, [N/A], [Not Supported], [Unknown Error])",
            fix="give the tool's unedited output",
        )

    def num(self, key: str, *, integer: bool = True) -> float | int | None:
        """A count, size or reading as nvidia-smi prints it ('81559 MiB', '0', '35 C', '16x')."""
        v = self._raw(key)
        if v is None:
            return None
        m = _NUMBER.match(v)
        if not m or (integer and "." in m.group(1)):
            raise self._bad(key, v, "a whole number" if integer else "a number")
        if m.group(1).startswith("-"):
            raise UserError(
                f"field '{key}' is '{v}', not a count: nvidia-smi never prints a negative value here",
                where=self.where_of(key),
                fix="give the tool's unedited output",
            )
        return int(m.group(1)) if integer else float(m.group(1))

    def flag(self, key: str) -> bool | None:
        """A yes/no field ('Yes', 'No', 'Enabled', 'Disabled')."""
        v = self._raw(key)
        if v is None:
            return None
        if v.lower() not in _FLAGS:
            if self.unread is not None:
                self.unread.append((key, v))
                return None
            raise self._bad(key, v, "Yes, No, Enabled or Disabled")
        return _FLAGS[v.lower()]


def _first(*vals: float | int | None):
    return next((v for v in vals if v is not None), None)


def _sram_unc(R: _Reader, scope: str) -> int | None:
    """Uncorrectable SRAM errors of a scope: 'SRAM Uncorrectable' (before 550) or the sum of
    'SRAM Uncorrectable Parity' and 'SRAM Uncorrectable SEC-DED' (550 and later)."""
    old = R.num(f"ECC Errors/{scope}/SRAM Uncorrectable")
    parts = [R.num(f"ECC Errors/{scope}/SRAM Uncorrectable {k}") for k in ("Parity", "SEC-DED")]
    if old is not None:
        return old
    if any(v is not None for v in parts):
        return sum(v or 0 for v in parts)
    return None


def _processes(kv: dict[str, str], R: _Reader) -> list[Process]:
    """Every process of a GPU block, in order: each 'Process ID' opens one, the 'Used GPU Memory'
    after it belongs to it (repeated keys carry '#n', see io.health._sections)."""
    out: list[Process] = []
    cur: Process | None = None
    for k in kv:
        base = k.split("#", 1)[0]
        if not base.startswith("Processes/"):
            continue
        leaf = base.rsplit("/", 1)[1]
        if leaf == "Process ID":
            pid = R.num(k)
            cur = Process(pid, None) if pid is not None else None
            if cur is not None:
                out.append(cur)
        elif leaf == "Used GPU Memory" and cur is not None:
            cur.used_mib = R.num(k)
    return out


def parse_nvidia_smi_probe(text: str, label: str) -> NodeProbe:
    """A probe record from ``nvidia-smi -q`` output (the fields it prints; the rest None), or
    from ``nvidia-smi -q -x`` (XML, :func:`parse_nvidia_smi_xml`).

    Field names of drivers before and after 550 are both read: 'Power Draw' or 'Instantaneous /
    Average Power Draw'; 'SRAM Uncorrectable' or 'SRAM Uncorrectable Parity / SEC-DED' with
    'SRAM Threshold Exceeded'; every 'Process ID' of a GPU. Raises UserError when no GPU block
    is found."""
    from gpuinfra.io.health import _sections

    if text.lstrip().startswith("<"):
        return parse_nvidia_smi_xml(text, label)
    blocks = _sections(text)
    if not blocks:
        raise UserError(
            "no GPU sections found",
            where=label,
            expected="`nvidia-smi -q` output, `nvidia-smi -q -x` XML or a `gpuinfra probe --save` JSON file",
        )
    head = dict(re.findall(r"^(Driver Version|CUDA Version|Timestamp)\s*:\s*(.+?)\s*$", text, flags=re.M))
    devices = []
    for i, (bus, kv, start) in enumerate(blocks):
        name = kv.get("Product Name", f"GPU {i}")
        d = DeviceProbe(i, name, catalog_model=match_catalog(name), pci_bus_id=bus)
        lines = getattr(kv, "lines", {})
        R = _Reader(
            kv.get, lambda k, lines=lines, start=start: f"{label}:{lines.get(k, start)}", d.not_reported, d.unread
        )
        d.uuid = kv.get("GPU UUID")
        d.memory_total_mib = R.num("FB Memory Usage/Total")
        d.memory_used_mib = R.num("FB Memory Usage/Used")
        d.memory_free_mib = R.num("FB Memory Usage/Free")
        d.memory_reserved_mib = R.num("FB Memory Usage/Reserved")
        d.gpu_util_pct = R.num("Utilization/Gpu")
        d.mem_util_pct = R.num("Utilization/Memory")
        d.sm_clock_mhz = R.num("Clocks/SM")
        d.mem_clock_mhz = R.num("Clocks/Memory")
        d.max_sm_clock_mhz = R.num("Max Clocks/SM")
        d.power_w = _first(
            *(
                R.num(f"{sec}/{k}", integer=False)
                for sec in ("GPU Power Readings", "Power Readings")
                for k in ("Power Draw", "Instantaneous Power Draw", "Average Power Draw")
            )
        )
        d.power_limit_w = _first(
            R.num("GPU Power Readings/Current Power Limit", integer=False),
            R.num("Power Readings/Power Limit", integer=False),
        )
        d.temperature_c = R.num("Temperature/GPU Current Temp")
        d.ecc_enabled = R.flag("ECC Mode/Current")
        d.ecc_volatile_corrected = _first(
            R.num("ECC Errors/Volatile/DRAM Correctable"), R.num("ECC Errors/Volatile/Single Bit/Total")
        )
        d.ecc_volatile_uncorrected = _first(
            R.num("ECC Errors/Volatile/DRAM Uncorrectable"), R.num("ECC Errors/Volatile/Double Bit/Total")
        )
        d.ecc_aggregate_corrected = _first(
            R.num("ECC Errors/Aggregate/DRAM Correctable"), R.num("ECC Errors/Aggregate/Single Bit/Total")
        )
        d.ecc_aggregate_uncorrected = _first(
            R.num("ECC Errors/Aggregate/DRAM Uncorrectable"),
            R.num("ECC Errors/Aggregate/Double Bit/Total"),
        )
        d.sram_volatile_uncorrected = _sram_unc(R, "Volatile")
        d.sram_aggregate_uncorrected = _sram_unc(R, "Aggregate")
        d.sram_threshold_exceeded = R.flag("ECC Errors/Aggregate/SRAM Threshold Exceeded")
        d.recovery_action = kv.get("GPU Recovery Action")
        d.retired_pages_sbe = R.num("Retired Pages/Single Bit ECC")
        d.retired_pages_dbe = R.num("Retired Pages/Double Bit ECC")
        d.retired_pages_pending = R.flag("Retired Pages/Pending Page Blacklist")
        d.remapped_rows_correctable = R.num("Remapped Rows/Correctable Error")
        d.remapped_rows_uncorrectable = R.num("Remapped Rows/Uncorrectable Error")
        d.remap_pending = R.flag("Remapped Rows/Pending")
        d.remap_failure = R.flag("Remapped Rows/Remapping Failure Occurred")
        d.mig_mode_current = R.flag("MIG Mode/Current")
        d.mig_mode_pending = R.flag("MIG Mode/Pending")
        d.pcie_gen = R.num("PCI/GPU Link Info/PCIe Generation/Current")
        d.pcie_width = R.num("PCI/GPU Link Info/Link Width/Current")
        d.clock_event_reasons = [
            k.split("#", 1)[0].rsplit("/", 1)[1]
            for k, v in kv.items()
            if re.match(r"^Clocks (Event|Throttle) Reasons/", k) and v.strip().lower() == "active"
        ]
        d.processes = _processes(kv, R)
        devices.append(d)
    return NodeProbe(
        f"nvidia-smi -q ({label})",
        head.get("Timestamp", ""),
        None,
        head.get("Driver Version"),
        head.get("CUDA Version"),
        devices,
        None,
    )


# `nvidia-smi -q -x` element -> clock-event reason as the text form names it
_XML_REASONS = {
    "gpu_idle": "Idle",
    "applications_clocks_setting": "Applications Clocks Setting",
    "sw_power_cap": "SW Power Cap",
    "hw_slowdown": "HW Slowdown",
    "hw_thermal_slowdown": "HW Thermal Slowdown",
    "hw_power_brake_slowdown": "HW Power Brake Slowdown",
    "sync_boost": "Sync Boost",
    "sw_thermal_slowdown": "SW Thermal Slowdown",
    "display_clocks_setting": "Display Clock Setting",
}


def parse_nvidia_smi_xml(text: str, label: str) -> NodeProbe:
    """A probe record from ``nvidia-smi -q -x`` (the stable, DTD-described form: nvsmi_device_v12.dtd):
    the same fields as the text form, by element name (``fb_memory_usage/total``,
    ``gpu_power_readings/power_draw`` or ``instant_power_draw`` / ``average_power_draw``,
    ``ecc_errors/aggregate/sram_uncorrectable_parity`` + ``_secded``, ``sram_threshold_exceeded``,
    ``remapped_rows/...``, ``clocks_event_reasons`` or ``clocks_throttle_reasons``,
    ``processes/process_info``). Parsed with the standard library (expat 2.4.1+ refuses entity
    expansion bombs); documents that declare entities are refused outright. Raises UserError for
    XML that does not parse or holds no ``<gpu>``."""
    import xml.etree.ElementTree as ET

    if "<!ENTITY" in text:
        raise UserError(
            "the XML declares entities", where=label, expected="the output of `nvidia-smi -q -x` (it declares none)"
        )
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        line, col = e.position
        raise UserError(
            f"not well-formed XML ({e.msg if hasattr(e, 'msg') else e})".split(": line")[0] + ")",
            where=f"{label}:{line}:{col}",
            expected="the complete output of `nvidia-smi -q -x`",
        ) from None
    gpus = root.findall("gpu")
    if root.tag != "nvidia_smi_log" or not gpus:
        raise UserError(
            f"no <gpu> element under <{root.tag}>",
            where=label,
            expected="the output of `nvidia-smi -q -x` (<nvidia_smi_log> with <gpu id=...> elements)",
        )

    def t(el, path: str) -> str | None:
        v = el.findtext(path)
        return v.strip() if v is not None else None

    devices = []
    for i, g in enumerate(gpus):
        name = t(g, "product_name") or f"GPU {i}"
        d = DeviceProbe(i, name, catalog_model=match_catalog(name), pci_bus_id=g.get("id") or t(g, "pci/pci_bus_id"))
        d.uuid = t(g, "uuid")
        R = _Reader(
            lambda path, g=g: t(g, path), lambda path, i=i: f"{label} GPU{i} <{path}>", d.not_reported, d.unread
        )
        d.memory_total_mib = R.num("fb_memory_usage/total")
        d.memory_used_mib = R.num("fb_memory_usage/used")
        d.memory_free_mib = R.num("fb_memory_usage/free")
        d.memory_reserved_mib = R.num("fb_memory_usage/reserved")
        d.gpu_util_pct = R.num("utilization/gpu_util")
        d.mem_util_pct = R.num("utilization/memory_util")
        d.sm_clock_mhz = R.num("clocks/sm_clock")
        d.mem_clock_mhz = R.num("clocks/mem_clock")
        d.max_sm_clock_mhz = R.num("max_clocks/sm_clock")
        d.power_w = _first(
            *(
                R.num(f"{sec}/{k}", integer=False)
                for sec in ("gpu_power_readings", "power_readings")
                for k in ("power_draw", "instant_power_draw", "average_power_draw")
            )
        )
        d.power_limit_w = _first(
            R.num("gpu_power_readings/current_power_limit", integer=False),
            R.num("power_readings/power_limit", integer=False),
        )
        d.temperature_c = R.num("temperature/gpu_temp")
        d.ecc_enabled = R.flag("ecc_mode/current_ecc")
        for scope in ("volatile", "aggregate"):
            e = f"ecc_errors/{scope}"
            corr = _first(R.num(f"{e}/dram_correctable"), R.num(f"{e}/single_bit/total"))
            unc = _first(R.num(f"{e}/dram_uncorrectable"), R.num(f"{e}/double_bit/total"))
            parts = [R.num(f"{e}/sram_uncorrectable_{k}") for k in ("parity", "secded")]
            sram = R.num(f"{e}/sram_uncorrectable")
            if sram is None and any(v is not None for v in parts):
                sram = sum(v or 0 for v in parts)
            setattr(d, f"ecc_{scope}_corrected", corr)
            setattr(d, f"ecc_{scope}_uncorrected", unc)
            setattr(d, f"sram_{scope}_uncorrected", sram)
        d.sram_threshold_exceeded = R.flag("ecc_errors/aggregate/sram_threshold_exceeded")
        d.recovery_action = t(g, "gpu_recovery_action")
        d.retired_pages_sbe = R.num("retired_pages/multiple_single_bit_retirement/retired_count")
        d.retired_pages_dbe = R.num("retired_pages/double_bit_retirement/retired_count")
        d.retired_pages_pending = R.flag(
            "retired_pages/pending_blacklist"
            if t(g, "retired_pages/pending_blacklist")
            else "retired_pages/pending_retirement"
        )
        d.remapped_rows_correctable = R.num("remapped_rows/remapped_row_corr")
        d.remapped_rows_uncorrectable = R.num("remapped_rows/remapped_row_unc")
        d.remap_pending = R.flag("remapped_rows/remapped_row_pending")
        d.remap_failure = R.flag("remapped_rows/remapped_row_failure")
        d.mig_mode_current = R.flag("mig_mode/current_mig")
        d.mig_mode_pending = R.flag("mig_mode/pending_mig")
        d.pcie_gen = R.num("pci/pci_gpu_link_info/pcie_gen/current_link_gen")
        d.pcie_width = R.num("pci/pci_gpu_link_info/link_widths/current_link_width")
        for sec in ("clocks_event_reasons", "clocks_throttle_reasons"):
            el = g.find(sec)
            if el is None:
                continue
            for child in el:
                key = re.sub(r"^clocks_(event|throttle)_reason_", "", child.tag)
                if (child.text or "").strip().lower() == "active":
                    d.clock_event_reasons.append(_XML_REASONS.get(key, key))
        for k, pi in enumerate(g.findall("processes/process_info")):
            P = _Reader(
                lambda path, pi=pi: t(pi, path), lambda path, i=i, k=k: f"{label} GPU{i} process {k + 1} <{path}>", {}
            )
            pid = P.num("pid")
            if pid is not None:
                d.processes.append(Process(pid, P.num("used_memory")))
        devices.append(d)
    return NodeProbe(
        f"nvidia-smi -q -x ({label})",
        t(root, "timestamp") or "",
        None,
        t(root, "driver_version"),
        t(root, "cuda_version"),
        devices,
        None,
    )


def probe_findings(p: NodeProbe, where_of: dict[int, str] | None = None):
    """Health findings from a probe's ECC, row-remap, retired-page, SRAM, recovery-action and
    clock-event fields (the rules ``gpuinfra health --nvidia-smi`` applies). ``where_of`` maps a
    device index to the file:line its block starts at."""
    from gpuinfra.catalog.xid import recovery_action
    from gpuinfra.models.faults import Finding

    out = []
    for d in p.devices:
        where = (where_of or {}).get(d.index, f"{p.source} GPU{d.index}")

        def add(src: str, cls: str, action: str, reason: str, d=d, where=where) -> None:
            out.append(Finding(src, d.pci_bus_id, None, cls, action, reason, where))

        if d.remap_failure:
            add(
                "remap_failure",
                "memory",
                "drain_and_replace",
                "row remapping failed: no spare rows left; NVIDIA's practice is RMA",
            )
        if d.remap_pending:
            add(
                "remap_pending", "memory", "reset_gpu", "a row remap is pending: it takes effect only after a GPU reset"
            )
        if d.retired_pages_pending:
            add("retired_pages_pending", "memory", "reset_gpu", "pages are pending retirement until the next GPU reset")
        if d.ecc_volatile_uncorrected:
            add(
                "ecc_volatile_uncorrected",
                "memory",
                "reset_gpu",
                f"{d.ecc_volatile_uncorrected} uncorrectable ECC error(s) since the last reset",
            )
        for src, cls, action, reason in sram_rules(d.sram_threshold_exceeded, d.sram_aggregate_uncorrected):
            add(src, cls, action, reason)
        for key, val in d.unread:
            add(
                f"{key}: {val}",
                "unknown",
                "investigate",
                f"'{key}' reads '{val}', a value gpuinfra does not know (expected Yes or No): check it by hand",
            )
        ra = recovery_action(None, d.recovery_action) if d.recovery_action else None
        if ra is None and d.recovery_action and d.recovery_action.strip().lower() not in NOT_AVAILABLE:
            add(
                f"GPU Recovery Action: {d.recovery_action}",
                "unknown",
                "investigate",
                f"the driver's recovery action is '{d.recovery_action}', which is not one of NVML's "
                "nvmlDeviceGpuRecoveryAction_t values gpuinfra knows: look it up before acting (no action guessed)",
            )
        if ra is not None and ra.action != "none":
            add(
                f"GPU Recovery Action: {d.recovery_action}",
                "system",
                ra.action,
                f"the driver's recovery action is '{d.recovery_action}' ({ra.nvml_name}): {ra.meaning}",
            )
        for r in d.clock_event_reasons:
            kind = slowdown_kind(r)
            if kind:
                add(
                    f"clock_event_reasons: {r}",
                    kind,
                    "none",
                    f"{r} is active: the GPU runs below its clocks ({SLOWDOWN_HINT[kind]}); no reset fixes it",
                )
    return out


SLOWDOWN_HINT = {
    "thermal": "check cooling: inlet temperature, fans, airflow",
    "power": "check power delivery: PSU, power-brake signal from the chassis",
    "slowdown": "hardware slowdown: thermal or power brake, see which of the two is active",
}


def slowdown_kind(reason: str) -> str | None:
    """The class of a clock-event reason: thermal, power (HW Power Brake), slowdown (HW Slowdown,
    either of the two), or None for reasons that are not trouble (Idle, SW Power Cap, ...)."""
    if "Thermal" in reason:
        return "thermal"
    if reason == "HW Power Brake Slowdown":
        return "power"
    if reason == "HW Slowdown":
        return "slowdown"
    return None


SRAM_RMA_AGGREGATE = 4
"""More than 4 aggregate uncorrectable SRAM errors: an RMA heuristic (stas00/ml-engineering,
facts/gpu.md 4.2) [S], used where the driver has no threshold flag."""


def sram_rules(threshold: bool | None, aggregate: int | None) -> list[tuple[str, str, str, str]]:
    """(source, class, action, reason) for the SRAM retirement rule: the driver's SRAM threshold
    flag (NVIDIA's Xid catalog, WORKFLOW_XID_48: 'check the SRAM threshold flag; if set
    RUN_FIELDDIAG'), or more than :data:`SRAM_RMA_AGGREGATE` aggregate uncorrectable SRAM errors."""
    out = []
    if threshold:
        out.append(
            (
                "ECC Errors/Aggregate/SRAM Threshold Exceeded: Yes",
                "memory",
                "drain_and_replace",
                "the driver's SRAM error threshold is exceeded: run field diagnostics, RMA path "
                "(NVIDIA Xid catalog, WORKFLOW_XID_48)",
            )
        )
    if aggregate is not None and aggregate > SRAM_RMA_AGGREGATE:
        out.append(
            (
                f"ECC Errors/Aggregate/SRAM Uncorrectable: {aggregate}",
                "memory",
                "drain_and_replace",
                f"{aggregate} aggregate uncorrectable SRAM errors (> {SRAM_RMA_AGGREGATE}: an RMA heuristic, "
                "stas00/ml-engineering)",
            )
        )
    return out
