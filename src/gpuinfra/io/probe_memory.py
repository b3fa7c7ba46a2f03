"""Run an allocator scenario on a real GPU with PyTorch, and the model beside it.

The scenario's GPU is emulated on the real device with
``torch.cuda.set_per_process_memory_fraction(scenario_total / device_total)``, and the model is
run with the same device total and fraction, so both meet the same limit. Each alloc is
``torch.empty(size, dtype=torch.uint8, device=...)``, each free drops the tensor, empty_cache is
``torch.cuda.empty_cache()``. After every operation ``torch.cuda.memory_stats()`` is read and put
beside the model's. Only single-process scenarios without ``other`` processes can run this way.
"""

from __future__ import annotations

from typing import Any

from gpuinfra.errors import UserError
from gpuinfra.io.probe import ProbeUnavailable
from gpuinfra.models.memory_trace import Trace, run_trace, scenario


def _torch():
    try:
        import torch
    except ImportError:
        raise ProbeUnavailable("PyTorch is not installed; `gpuinfra probe memory` needs torch with CUDA") from None
    if not torch.cuda.is_available():
        raise ProbeUnavailable("PyTorch sees no CUDA device")
    return torch


def real_run(
    trace: Trace, config: str, device: int, fraction: float, backend=None
) -> tuple[list[dict], int | None, str]:
    """Replay on a real device (``backend`` = torch; tests may pass a stand-in)."""
    import os

    torch = backend or _torch()
    if config:
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = config  # read when the allocator first initialises
    dev = f"cuda:{device}"
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    live: dict[str, Any] = {}
    rows, oom_step, msg = [], None, ""
    for i, op in enumerate(trace.ops):
        try:
            if op.kind == "alloc":
                live[op.name] = torch.empty(op.size, dtype=torch.uint8, device=dev)
            elif op.kind == "free":
                del live[op.name]
            else:
                torch.cuda.empty_cache()
        except torch.OutOfMemoryError as e:
            oom_step, msg = i, str(e)
        st = torch.cuda.memory_stats(device)
        rows.append(
            {
                "step": i,
                "allocated": st.get("allocated_bytes.all.current", 0),
                "reserved": st.get("reserved_bytes.all.current", 0),
                "inactive_split": st.get("inactive_split_bytes.all.current", 0),
                "ok": oom_step != i,
            }
        )
        if oom_step is not None:
            break
    live.clear()
    torch.cuda.empty_cache()
    return rows, oom_step, msg


def compare_real(name: str, config: str, device: int = 0, backend=None) -> dict[str, Any]:
    tr = scenario(name)
    if tr.others or any(op.proc != "main" for op in tr.ops):
        raise UserError(
            f"scenario '{name}' needs several processes", where="--scenario", expected="variable-batch or interleaved"
        )
    torch = backend or _torch()
    total = int(torch.cuda.get_device_properties(device).total_memory)
    if tr.total > total:
        raise UserError(
            f"the scenario's GPU ({tr.total} B) is larger than device {device} ({total} B)", where="--scenario"
        )
    frac = tr.total / total
    real_rows, real_oom, real_msg = real_run(tr, config, device, frac, torch)
    sim_trace = Trace(tr.label, total, tr.gpu_name, tr.ops, config, frac, 0, {})
    sim = run_trace(sim_trace)
    n = min(len(real_rows), len(sim.rows))
    alloc_eq = all(real_rows[i]["allocated"] == sim.rows[i]["allocated"] for i in range(n))
    res_eq = sum(real_rows[i]["reserved"] == sim.rows[i]["reserved"] for i in range(n))
    return {
        "scenario": name,
        "config": config,
        "device": torch.cuda.get_device_name(device),
        "device_total_mib": total // 2**20,
        "fraction": frac,
        "real_ops": len(real_rows),
        "model_ops": len(sim.rows),
        "compared_ops": n,
        "allocated_equal": alloc_eq,
        "reserved_equal_ops": res_eq,
        "real_oom_step": real_oom,
        "model_oom_step": sim.oom["step"] if sim.oom else None,
        "real_oom_message": real_msg,
        "model_oom_message": sim.oom["message"] if sim.oom else "",
        "real": real_rows,
        "model": [{k: r[k] for k in ("step", "allocated", "reserved", "inactive_split", "ok")} for r in sim.rows],
    }
