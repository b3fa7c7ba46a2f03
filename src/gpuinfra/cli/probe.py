"""``probe`` (and ``probe topo|memory``): real GPUs through NVML, or a saved probe. Exit 3: no GPU here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, check_input_file, err, esc, out
from gpuinfra.errors import UserError
from gpuinfra.units import check_all

probe_app = typer.Typer(
    help="Probe real GPUs through NVML (or read a saved probe). Exit code 3: no NVIDIA driver/GPU here.",
    invoke_without_command=True,
)
FROM_HELP = "Read a saved probe (gpuinfra probe --save JSON, or `nvidia-smi -q` output) instead of NVML."


def _get_probe(from_: Path | None):
    from gpuinfra.io.probe import EXIT_NO_GPU, ProbeUnavailable, load_probe, probe_nvml

    if from_ is not None:
        check_input_file(from_, "--from", "saved probe")
        return load_probe(from_)
    try:
        return probe_nvml()
    except ProbeUnavailable as e:
        err.print(f"no GPU probe: {e}. Use --from FILE for a saved probe.", highlight=False)
        raise typer.Exit(EXIT_NO_GPU) from None


@probe_app.callback()
def probe(
    ctx: typer.Context,
    from_: Annotated[Path | None, typer.Option("--from", help=FROM_HELP)] = None,
    save: Annotated[Path | None, typer.Option(help="Also write the probe as JSON (readable with --from).")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the probe as JSON.")] = False,
) -> None:
    """List the GPUs: memory, utilization, clocks, power, temperature, ECC, row remapping, MIG, PCIe, NVLink."""
    if ctx.invoked_subcommand is not None:
        return
    from gpuinfra.io.atomic import check_output_file, write_with
    from gpuinfra.io.probe import probe_findings
    from gpuinfra.models.faults import verdict

    if save is not None:
        check_output_file(save, force=force, where="--save")
    p = _get_probe(from_)
    if save is not None:
        write_with(save, p.save, "--save")
    if as_json:
        json.dump(p.as_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    out.print(
        f"{p.source}: {len(p.devices)} GPU(s), driver {p.driver_version or '?'}, CUDA {p.cuda_version or '?'}",
        highlight=False,
    )
    t = Table(
        "GPU",
        "model",
        "memory used/total MiB",
        "util %",
        "SM MHz",
        "power W",
        "temp C",
        "ECC unc. (vol/agg)",
        "row remap",
        "MIG",
        "PCIe",
        "NVLinks",
    )

    def v(x, fmt="{}"):
        return "-" if x is None else fmt.format(x)

    for d in p.devices:
        remap = (
            "failed"
            if d.remap_failure
            else ("pending" if d.remap_pending else v(d.remapped_rows_uncorrectable, "{} unc."))
        )
        t.add_row(
            str(d.index),
            f"{d.name}" + (f" ({d.catalog_model})" if d.catalog_model else " (not in catalog)"),
            f"{v(d.memory_used_mib)}/{v(d.memory_total_mib)}",
            v(d.gpu_util_pct),
            f"{v(d.sm_clock_mhz)}/{v(d.max_sm_clock_mhz)}",
            f"{v(d.power_w, '{:.0f}')}/{v(d.power_limit_w, '{:.0f}')}",
            v(d.temperature_c),
            f"{v(d.ecc_volatile_uncorrected)}/{v(d.ecc_aggregate_uncorrected)}",
            remap,
            {True: "on", False: "off", None: "-"}[d.mig_mode_current],
            f"Gen{v(d.pcie_gen)} x{v(d.pcie_width)}",
            v(d.nvlinks_active),
        )
    out.print(t)
    for d in p.devices:
        if d.gpu_util_pct is not None and d.gpu_util_pct >= 90:
            out.print(
                f"GPU{d.index}: {d.gpu_util_pct}% utilization counts time with any kernel running, not how much of the GPU works (gpuinfra lab 2)",
                highlight=False,
            )
        if d.clock_event_reasons:
            out.print(f"GPU{d.index}: clock event reasons active: {', '.join(d.clock_event_reasons)}", highlight=False)
        if d.processes:
            out.print(
                f"GPU{d.index}: processes " + ", ".join(f"{x.pid} ({v(x.used_mib)} MiB)" for x in d.processes),
                highlight=False,
            )
    findings = probe_findings(p)
    worst = verdict(findings)
    why = next((f.reason for f in findings if f.action == worst), "no fault evidence in the probe")
    out.print(f"node verdict: [bold]{esc(worst)}[/] ({esc(why)})", markup=True)


@probe_app.command("topo")
def probe_topo(
    from_: Annotated[Path | None, typer.Option("--from", help="A saved probe JSON with a topology.")] = None,
    gpu: Annotated[
        str | None, typer.Option(help="GPU model for link rates (default: the probe's catalog match).")
    ] = None,
) -> None:
    """The node's GPU topology through NVML, as `nvidia-smi topo -m` would print it, with paths and rates."""
    from gpuinfra.io.topo import TopoMatrix
    from gpuinfra.models.topology import from_matrix

    p = _get_probe(from_)
    if not p.topology:
        raise UserError(
            "the probe has no topology",
            where=str(from_ or "NVML"),
            expected="a probe taken through NVML (gpuinfra probe --save)",
        )
    devs = sorted(p.topology, key=lambda x: int(x[3:]))
    m = TopoMatrix(devices=devs, links={(a, b): p.topology[a][b] for a in devs for b in devs})
    model = gpu or next((d.catalog_model for d in p.devices if d.catalog_model), None)
    sys.stdout.write(m.render())
    if model is None:
        out.print("GPU model not in the catalog: pass --gpu for link rates", highlight=False)
        return
    t = from_matrix(m, model, name=f"probe:{p.host or p.source}")
    tab = Table("pair", "nvidia-smi", "NCCL path", "GB/s (effective)", "P2P")
    for i, a in enumerate(t.gpus):
        for b in t.gpus[i + 1 :]:
            pi = t.path(a, b)
            tab.add_row(f"{a}-{b}", pi.nvidia_smi, pi.nccl, f"{pi.bw / 1e9:.1f}", "yes" if pi.p2p else "no")
    out.print(tab)


@probe_app.command("memory")
def probe_memory(
    scenario: Annotated[
        str, typer.Option(help="Allocator scenario to run on the real GPU (single-process ones).")
    ] = "variable-batch",
    config: Annotated[str, typer.Option(help="PYTORCH_CUDA_ALLOC_CONF for both the real run and the model.")] = "",
    device: Annotated[int, typer.Option(help="CUDA device index.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Run an allocator scenario on a real GPU with PyTorch and put the model's numbers beside it."""
    check_all(
        [
            (device, "--device", dict(lo=0, hi=1024)),
        ]
    )
    from gpuinfra.io.probe import EXIT_NO_GPU, ProbeUnavailable
    from gpuinfra.io.probe_memory import compare_real

    try:
        res = compare_real(scenario, config, device)
    except ProbeUnavailable as e:
        err.print(f"no GPU probe: {e}", highlight=False)
        raise typer.Exit(EXIT_NO_GPU) from None
    if as_json:
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    out.print(
        f"{scenario} on {res['device']} (fraction {res['fraction']:.4f} of {res['device_total_mib']} MiB), config {config or '(defaults)'}",
        highlight=False,
    )
    out.print(
        f"operations: real {res['real_ops']}, model {res['model_ops']}; allocated bytes equal after every op: {res['allocated_equal']}; reserved equal: {res['reserved_equal_ops']}/{res['compared_ops']}",
        highlight=False,
    )
    out.print(f"OOM: real at op {res['real_oom_step']}, model at op {res['model_oom_step']}", highlight=False)
