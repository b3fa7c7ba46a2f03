"""CLI: node topologies (`topo list|show`), collectives (`collective`) and scaling (`scale`).

Registered on the main app by gpuinfra.cli."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gpuinfra.errors import UserError

out = Console()
topo_app = typer.Typer(help="Node topology: built-in nodes and `nvidia-smi topo -m` matrices.", no_args_is_help=True)

NIC_HELP = "NIC type between nodes: ndr, hdr, roce400, roce200, eth100 (default: the node's)."


def load_topology(node: str, gpu: str | None = None):
    """A built-in node name, or a saved `nvidia-smi topo -m` file (its GPU model from --gpu)."""
    from gpuinfra.io.health import read_text
    from gpuinfra.io.topo import parse_topo
    from gpuinfra.models.topology import BUILTINS, builtin, from_matrix

    if node in BUILTINS:
        return builtin(node, gpu)
    p = Path(node)
    if not p.exists():
        raise UserError(
            f"'{node}' is neither a built-in node nor a file",
            where="NODE",
            expected="one of " + ", ".join(BUILTINS) + " or a saved `nvidia-smi topo -m` output",
        )
    m = parse_topo(read_text(p), str(p))[0]
    if gpu is None:
        raise UserError(
            f"{p}: a matrix does not name its GPU model, and link rates depend on it",
            where="--gpu",
            fix="pass --gpu, e.g. --gpu H100-SXM (see `gpuinfra catalog gpus`)",
        )
    return from_matrix(m, gpu, name=p.name, source=str(p))


def parse_gpus(text: str | None, topo) -> int | list[str] | None:
    if text is None:
        return None
    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        return [f"GPU{int(x)}" for x in t.split(",") if x.strip()]
    except ValueError:
        raise UserError(
            f"bad --gpus '{text}'", where="--gpus", expected="a count (8) or GPU indices (0,1,4,5)"
        ) from None


@topo_app.command("list")
def topo_list() -> None:
    """The built-in nodes, with their GPUs, NICs and sources."""
    from gpuinfra.models.topology import BUILTINS, builtin

    t = Table("node", "GPUs", "NVLink", "NICs", "source")
    for name in BUILTINS:
        tp = builtin(name)
        nv = "NVSwitch" if tp.has_nvswitch else ("bridges" if tp.nvlinks("GPU0", "GPU1") else "none")
        t.add_row(name, f"{len(tp.gpus)}x {tp.gpu.name}", nv, f"{len(tp.nics)}x {tp.nic}", tp.source)
    out.print(t)


@topo_app.command("show")
def topo_show(
    node: Annotated[
        str, typer.Argument(help="A built-in node (gpuinfra topo list) or a saved `nvidia-smi topo -m` file.")
    ],
    gpu: Annotated[
        str | None, typer.Option(help="GPU model (needed for a file; for a built-in node it swaps the GPU).")
    ] = None,
    render: Annotated[bool, typer.Option(help="Print the matrix in nvidia-smi's layout.")] = False,
    paths: Annotated[bool, typer.Option(help="Print every GPU pair's path: type, bandwidth, latency, P2P.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a picture of the topology (self-contained HTML).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print pairs and NIC paths as JSON.")] = False,
) -> None:
    """Say how a node's GPUs are connected: NVLink, PCIe switches, host bridges, NUMA, NICs."""
    from collections import Counter

    from gpuinfra.io.health import read_text
    from gpuinfra.io.topo import parse_topo, rank

    p = Path(node)
    if p.exists() and gpu is None:
        # a matrix without a GPU model: what the matrix itself says, no rates
        for k, m in enumerate(parse_topo(read_text(p), str(p))):
            gpus = m.gpus
            pairs = Counter(m.link(a, b) for i, a in enumerate(gpus) for b in gpus[i + 1 :])
            nics = [d for d in m.devices if not d.startswith("GPU")]
            out.print(f"[bold]matrix {k + 1}[/]: {len(gpus)} GPUs, {len(nics)} NICs (pass --gpu MODEL for bandwidths)")
            t = Table("GPU pairs", "connection")
            for code, c in sorted(pairs.items(), key=lambda kv: rank(kv[0])):
                t.add_row(str(c), code)
            out.print(t)
            numa = {g: m.affinity.get(g, {}).get("NUMA Affinity", "?") for g in gpus}
            out.print("NUMA: " + ", ".join(f"{g}={v}" for g, v in numa.items()))
            for g in gpus:
                best = sorted((rank(m.link(g, n)), n) for n in nics)
                if best:
                    out.print(f"{g}: closest NIC {best[0][1]} ({m.link(g, best[0][1])})")
            if render:
                sys.stdout.write(m.render())
        return
    topo = load_topology(node, gpu)
    gs = topo.gpus
    pair_rows = [topo.path(a, b) for i, a in enumerate(gs) for b in gs[i + 1 :]]
    nic_rows = [topo.path(g, topo.closest_nic(g)) for g in gs if topo.nics]
    if as_json:

        def d(pi):
            return {
                "a": pi.a,
                "b": pi.b,
                "nvidia_smi": pi.nvidia_smi,
                "nccl_path": pi.nccl,
                "bw_line_gb_s": round(pi.bw_line / 1e9, 3),
                "bw_gb_s": round(pi.bw / 1e9, 3),
                "latency_us": round(pi.latency_s * 1e6, 3),
                "p2p": pi.p2p,
                "why": pi.why,
            }

        json.dump(
            {
                "node": topo.name,
                "gpu": topo.gpu.name,
                "pairs": [d(x) for x in pair_rows],
                "nic_paths": [d(x) for x in nic_rows],
            },
            sys.stdout,
            indent=1,
        )
        sys.stdout.write("\n")
        return
    for line in topo.describe():
        out.print(line, highlight=False)
    groups: dict[tuple, list[str]] = {}
    for pi in pair_rows:
        groups.setdefault((pi.nvidia_smi, pi.nccl, round(pi.bw / 1e9, 1), pi.p2p), []).append(f"{pi.a}-{pi.b}")
    t = Table("GPU pairs", "nvidia-smi", "NCCL path", "GB/s (effective, one way)", "P2P", "example")
    for (smi, nccl, bw, p2p), ps in sorted(groups.items(), key=lambda kv: (-kv[0][2], kv[0][0])):
        t.add_row(str(len(ps)), smi, nccl, f"{bw:.1f}", "yes" if p2p else "no", ps[0])
    out.print(t)
    if nic_rows:
        t = Table("GPU", "closest NIC", "path", "GB/s", "GPUDirect RDMA")
        for pi in nic_rows:
            t.add_row(pi.a, pi.b, pi.nvidia_smi, f"{pi.bw / 1e9:.1f}", "yes" if pi.p2p else "no")
        out.print(t)
    if paths:
        t = Table("pair", "nvidia-smi", "NCCL", "line GB/s", "eff. GB/s", "latency us", "why")
        for pi in pair_rows:
            t.add_row(
                f"{pi.a}-{pi.b}",
                pi.nvidia_smi,
                pi.nccl,
                f"{pi.bw_line / 1e9:.1f}",
                f"{pi.bw / 1e9:.1f}",
                f"{pi.latency_s * 1e6:.1f}",
                pi.why,
            )
        out.print(t)
    if render:
        sys.stdout.write(topo.matrix().render())
    if html is not None:
        from gpuinfra.report.html import fig_html
        from gpuinfra.report.page import Section, render_page
        from gpuinfra.report.topology_fig import topology_figure

        fig = topology_figure(topo)
        sec = Section(
            "Topology",
            fig_html(fig, "topo", height=520),
            claim="",
            text="\n".join(topo.describe()),
        )
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_page(f"Topology: {topo.name}", [sec]))
        out.print(f"wrote {html}")


def collective(
    op: Annotated[
        str, typer.Argument(help="all_reduce, all_gather, reduce_scatter, broadcast, reduce, all_to_all, send_recv")
    ],
    node: Annotated[str, typer.Option(help="Built-in node or `nvidia-smi topo -m` file.")] = "dgx-h100",
    gpu: Annotated[str | None, typer.Option(help="GPU model (for a file, or to swap a built-in's GPU).")] = None,
    gpus: Annotated[
        str | None, typer.Option(help="GPUs per node: a count (8) or indices (0,1,4,5). Default: all.")
    ] = None,
    nodes: Annotated[int, typer.Option(help="Number of nodes.")] = 1,
    size: Annotated[
        str | None, typer.Option("--bytes", help="One message size (8, 128K, 64M, 8G); default: a sweep.")
    ] = None,
    min_bytes: Annotated[str, typer.Option("--min-bytes", "-b", help="Sweep start (nccl-tests -b).")] = "8",
    max_bytes: Annotated[str, typer.Option("--max-bytes", "-e", help="Sweep end (nccl-tests -e).")] = "8G",
    step_factor: Annotated[int, typer.Option("--step-factor", "-f", help="Sweep multiplier (nccl-tests -f).")] = 2,
    algo: Annotated[str, typer.Option(help="auto, ring, tree or nvls.")] = "auto",
    proto: Annotated[str, typer.Option(help="auto, LL, LL128 or Simple.")] = "auto",
    dtype: Annotated[str, typer.Option(help="float, half, bfloat16, double, int8.")] = "float",
    nic: Annotated[str | None, typer.Option(help=NIC_HELP)] = None,
    nodes_per_leaf: Annotated[int, typer.Option(help="Nodes under one leaf switch.")] = 32,
    oversubscription: Annotated[float, typer.Option(help="Leaf downlink:uplink ratio (1 = non-blocking).")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Model a collective like nccl-tests reports it: time, algbw, busbw per message size."""
    from gpuinfra.models import collectives as co

    topo = load_topology(node, gpu)
    fab = co.Fabric(nic=nic, nodes_per_leaf=nodes_per_leaf, oversubscription=oversubscription)
    pl = co.Placement.make(topo, parse_gpus(gpus, topo), nodes=nodes, fabric=fab)
    kw = dict(algo=algo, proto=proto, dtype=dtype)
    if size is not None:
        rows = [co.collective(op, co.parse_size(size), pl, **kw)]
    else:
        rows = co.sweep(
            op, pl, co.parse_size(min_bytes, "--min-bytes"), co.parse_size(max_bytes, "--max-bytes"), step_factor, **kw
        )
    if as_json:
        json.dump([r.as_dict() for r in rows], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    out.print(
        f"# {op} on {nodes} x {topo.name} ({len(pl.gpus)} GPUs each, {pl.ranks} ranks); modelled, not measured",
        highlight=False,
    )
    sys.stdout.write(co.format_table(rows))
    last = rows[-1]
    out.print(f"# bottleneck at {last.size} B: {last.bottleneck}", highlight=False)


def scale(
    model: Annotated[str, typer.Option(help="gpt3-1.3b, llama2-7b, llama2-70b or gpt3-175b.")] = "llama2-7b",
    node: Annotated[str, typer.Option(help="Built-in node or `nvidia-smi topo -m` file.")] = "dgx-h100",
    gpu: Annotated[str | None, typer.Option(help="GPU model (for a file, or to swap a built-in's GPU).")] = None,
    tp: Annotated[int, typer.Option(help="Tensor-parallel degree (inside a node).")] = 1,
    pp: Annotated[int, typer.Option(help="Pipeline-parallel degree.")] = 1,
    micro_batch: Annotated[int, typer.Option(help="Sequences per micro-batch.")] = 1,
    microbatches: Annotated[int, typer.Option(help="Micro-batches per step.")] = 8,
    seq: Annotated[int, typer.Option(help="Sequence length (tokens).")] = 4096,
    overlap: Annotated[float, typer.Option(help="Fraction of backward that hides the gradient all-reduce.")] = 0.5,
    efficiency: Annotated[float, typer.Option(help="Fraction of the roofline the kernels reach (1 = roofline).")] = 1.0,
    max_gpus: Annotated[int, typer.Option(help="Largest GPU count (data parallel doubles up to it).")] = 1024,
    nic: Annotated[str | None, typer.Option(help=NIC_HELP)] = None,
    oversubscription: Annotated[float, typer.Option(help="Leaf downlink:uplink ratio.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the curve as JSON.")] = False,
) -> None:
    """Step time and scaling efficiency of transformer training from 1 GPU up (weak scaling)."""
    from gpuinfra.models import scaling as sc
    from gpuinfra.models.collectives import Fabric

    topo = load_topology(node, gpu)
    spec = sc.model_spec(model)
    par = sc.Parallelism(
        tp=tp,
        pp=pp,
        micro_batch=micro_batch,
        microbatches=microbatches,
        seq=seq,
        overlap=overlap,
        efficiency=efficiency,
    )
    curve = sc.scaling_curve(spec, topo, par, max_gpus, Fabric(nic=nic, oversubscription=oversubscription))
    if as_json:
        json.dump(curve, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    head = f"{spec.name} ({spec.params / 1e9:.2f} B params) on {topo.name}, tp={tp} pp={pp}"
    out.print(f"{head}, {micro_batch}x{seq} tokens x {microbatches} micro-batches per model replica", highlight=False)
    if not curve[0]["fits"]:
        out.print(
            f"[bold red]does not fit[/]: {curve[0]['memory_gib']:.0f} GiB per GPU needed (weights, gradients, Adam, "
            f"activations) on a {topo.gpu.name}; raise --tp/--pp or shrink --micro-batch/--seq",
            highlight=False,
        )
    t = Table(
        "GPUs", "nodes", "step s", "compute s", "comm on path s", "DP all-reduce s", "tokens/s", "MFU", "efficiency"
    )
    for r in curve:
        t.add_row(
            str(r["gpus"]),
            str(r["nodes"]),
            f"{r['step_s']:.3f}",
            f"{r['compute_s']:.3f}",
            f"{r['comm_s']:.3f}",
            f"{r['dp_comm_s']:.3f}",
            f"{r['tokens_per_s']:,.0f}",
            f"{r['mfu']:.0%}",
            f"{r['efficiency']:.0%}",
        )
    out.print(t)
    at = sc.comm_dominates_at(curve)
    out.print(
        "communication exceeds compute from " + (f"{at} GPUs" if at else f"no size up to {curve[-1]['gpus']} GPUs"),
        highlight=False,
    )


# -- memory --------------------------------------------------------------------------------

memory_app = typer.Typer(help="GPU memory: PyTorch's caching allocator, simulated.", no_args_is_help=True)


@memory_app.command("scenarios")
def memory_scenarios() -> None:
    """The built-in allocation scenarios."""
    from gpuinfra.models.memory_trace import SCENARIOS

    t = Table("scenario", "what it shows")
    for name, (_, what) in SCENARIOS.items():
        t.add_row(name, what)
    out.print(t)


@memory_app.command("run")
def memory_run(
    trace: Annotated[
        Path | None, typer.Argument(help="An allocation trace (format: gpuinfra.models.memory_trace).")
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="A built-in scenario instead of a file (gpuinfra memory scenarios).")
    ] = None,
    config: Annotated[
        str | None, typer.Option(help="PYTORCH_CUDA_ALLOC_CONF to use (overrides the trace's config line).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the memory timeline and segment map (self-contained HTML).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Replay allocations through the caching-allocator model: reserved vs allocated, fragmentation, OOMs."""
    from gpuinfra.models.memory import format_size
    from gpuinfra.models.memory_trace import read_trace, run_trace
    from gpuinfra.models.memory_trace import scenario as get_scenario

    if (trace is None) == (scenario is None):
        raise UserError("give a trace file or --scenario NAME (one of them)", where="gpuinfra memory run")
    tr = get_scenario(scenario) if scenario else read_trace(trace)
    r = run_trace(tr, config)
    peak_alloc = max((x["allocated"] for x in r.rows), default=0)
    peak_res = max((x["reserved"] for x in r.rows), default=0)
    peak_split = max((x["inactive_split"] for x in r.rows), default=0)
    if as_json:
        json.dump(
            {
                "trace": tr.label,
                "gpu": tr.gpu_name,
                "config": r.config,
                "operations": len(r.rows),
                "ooms": r.ooms,
                "memory_stats": r.stats,
                "peak_allocated": peak_alloc,
                "peak_reserved": peak_res,
                "peak_inactive_split": peak_split,
                "timeline": r.rows,
            },
            sys.stdout,
            indent=1,
        )
        sys.stdout.write("\n")
    else:
        head = f"{tr.label} on {tr.gpu_name} ({format_size(tr.total)}), PYTORCH_CUDA_ALLOC_CONF={r.config}"
        out.print(f"{head}: {len(r.rows)} of {len(tr.ops)} operations ran", highlight=False)
        t = Table("", "bytes")
        t.add_row("peak allocated", format_size(peak_alloc))
        t.add_row("peak reserved", format_size(peak_res))
        t.add_row("peak inactive split (fragmentation)", format_size(peak_split))
        for k in (
            "allocated_bytes.all.current",
            "reserved_bytes.all.current",
            "inactive_split_bytes.all.current",
            "num_alloc_retries",
            "num_ooms",
        ):
            v = r.stats[k]
            t.add_row(k, format_size(v) if "bytes" in k else str(v))
        out.print(t)
        for o in r.ooms:
            what = f"line {o['line']} ({o['proc']}: alloc {o['name']} {format_size(o['size'])})"
            out.print(f"[bold red]{what}:[/] {o['message']}", highlight=False)
        if not r.ooms:
            out.print("no OOM", highlight=False)
    if html is not None:
        from gpuinfra.report.html import fig_html
        from gpuinfra.report.memory_fig import segment_figure, timeline_figure
        from gpuinfra.report.page import Section, render_page

        secs = [
            Section("Over time", fig_html(timeline_figure(r.rows, f"{tr.label}: {r.config}"), "tl")),
            Section(
                "Segments and blocks at the end" + (" (the OOM)" if r.oom else ""),
                fig_html(segment_figure(r.snapshot, "segments of process main"), "seg"),
            ),
        ]
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_page(f"Memory: {tr.label}", secs))
        if not as_json:
            out.print(f"wrote {html}")
    if r.ooms:
        raise typer.Exit(1)


# -- probes --------------------------------------------------------------------------------

probe_app = typer.Typer(
    help="Probe real GPUs through NVML (or read a saved probe). Exit code 3: no NVIDIA driver/GPU here.",
    invoke_without_command=True,
)
FROM_HELP = "Read a saved probe (gpuinfra probe --save JSON, or `nvidia-smi -q` output) instead of NVML."


def _get_probe(from_: Path | None):
    from gpuinfra.io.probe import EXIT_NO_GPU, ProbeUnavailable, load_probe, probe_nvml

    if from_ is not None:
        return load_probe(from_)
    try:
        return probe_nvml()
    except ProbeUnavailable as e:
        Console(stderr=True).print(f"no GPU probe: {e}. Use --from FILE for a saved probe.", highlight=False)
        raise typer.Exit(EXIT_NO_GPU) from None


@probe_app.callback()
def probe(
    ctx: typer.Context,
    from_: Annotated[Path | None, typer.Option("--from", help=FROM_HELP)] = None,
    save: Annotated[Path | None, typer.Option(help="Also write the probe as JSON (readable with --from).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the probe as JSON.")] = False,
) -> None:
    """List the GPUs: memory, utilization, clocks, power, temperature, ECC, row remapping, MIG, PCIe, NVLink."""
    if ctx.invoked_subcommand is not None:
        return
    from gpuinfra.io.probe import probe_findings
    from gpuinfra.models.faults import verdict

    p = _get_probe(from_)
    if save is not None:
        p.save(save)
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
    out.print(f"node verdict: [bold]{worst}[/] ({why})")


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
    from gpuinfra.io.probe import EXIT_NO_GPU, ProbeUnavailable
    from gpuinfra.io.probe_memory import compare_real

    try:
        res = compare_real(scenario, config, device)
    except ProbeUnavailable as e:
        Console(stderr=True).print(f"no GPU probe: {e}", highlight=False)
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


# -- reliability and incidents --------------------------------------------------------------


def reliability(
    nodes: Annotated[int, typer.Option(help="Nodes in the job (8 GPUs each).")] = 256,
    days: Annotated[float, typer.Option(help="How long the job runs.")] = 30.0,
    policy: Annotated[str, typer.Option(help="naive, cordon, spares or spares+quarantine.")] = "spares",
    spares: Annotated[int, typer.Option(help="Spare nodes (spares policies).")] = 8,
    lemon_fraction: Annotated[float, typer.Option(help="Share of lemon nodes.")] = 0.0,
    lemon_factor: Annotated[float, typer.Option(help="How many times as often a lemon fails.")] = 10.0,
    checkpoint_min: Annotated[float, typer.Option(help="Checkpoint interval, minutes.")] = 60.0,
    restart_min: Annotated[float, typer.Option(help="Restart overhead, minutes.")] = 10.0,
    rate: Annotated[
        float, typer.Option(help="Unexpected interruptions per 1,000 node-days (default: Llama 3's).")
    ] = 0.0,
    seeds: Annotated[int, typer.Option(help="Independent runs to average.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """A large training job under the fleet's failure mix: ETTR and GPU-hours lost by cause, per remediation policy."""
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.models.reliability import LLAMA3_RATE_PER_1000_NODE_DAYS, JobSpec, expected_ettr, simulate

    price = gpu_hour_price("H100-SXM").on_demand_usd or 0.0
    spec = JobSpec(
        nodes=nodes,
        days=days,
        policy=policy,
        spares=spares,
        lemon_fraction=lemon_fraction,
        lemon_factor=lemon_factor,
        checkpoint_interval_s=checkpoint_min * 60,
        restart_s=restart_min * 60,
        rate_per_1000_node_days=rate or LLAMA3_RATE_PER_1000_NODE_DAYS,
        usd_per_gpu_hour=price,
    )
    runs = [simulate(spec, seed=s) for s in range(max(seeds, 1))]
    if as_json:
        json.dump([r.as_dict() for r in runs], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    import numpy as np

    out.print(
        f"{nodes} nodes x 8 GPUs, {days:g} days, policy {policy}, {seeds} runs; failure rate {spec.rate_per_1000_node_days:.2f} per 1,000 node-days",
        highlight=False,
    )
    t = Table("", "mean", "per run")
    t.add_row("ETTR", f"{np.mean([r.ettr for r in runs]):.4f}", ", ".join(f"{r.ettr:.3f}" for r in runs))
    t.add_row("failures", f"{np.mean([r.failures for r in runs]):.1f}", ", ".join(str(r.failures) for r in runs))
    for k in runs[0].lost_gpu_hours:
        t.add_row(f"GPU-hours lost: {k}", f"{np.mean([r.lost_gpu_hours[k] for r in runs]):,.0f}", "")
    tot = np.mean([r.total_lost_gpu_hours for r in runs])
    t.add_row("GPU-hours lost, total", f"{tot:,.0f}", f"${tot * price:,.0f} at ${price:.2f}/H100-hour")
    out.print(t)
    out.print(f"closed form (no repair waits, no lemons): ETTR {expected_ettr(spec):.4f}", highlight=False)


def incident(
    name: Annotated[
        str, typer.Argument(help="thermal-straggler, nccl-hang, xid79-storm, oom-crash-loop or poisoned-gpu")
    ],
    action: Annotated[
        str | None, typer.Option(help="The responder's action (default: the hurried one); see --help of each.")
    ] = None,
    postmortem: Annotated[Path | None, typer.Option(help="Write the postmortem (Markdown) here.")] = None,
) -> None:
    """Run an incident scenario: signals over time, the debugging path, the cost of the action, a postmortem."""
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.errors import did_you_mean
    from gpuinfra.models.incidents import INCIDENTS

    if name not in INCIDENTS:
        raise UserError(f"unknown incident '{name}'", expected=", ".join(INCIDENTS), fix=did_you_mean(name, INCIDENTS))
    fn, actions = INCIDENTS[name]
    act = action or actions[0]
    if act not in actions:
        raise UserError(f"unknown action '{act}' for {name}", where="--action", expected=" or ".join(actions))
    inc = fn(act, usd=gpu_hour_price("H100-SXM").on_demand_usd or 0.0)
    md = inc.postmortem_markdown()
    if postmortem is not None:
        postmortem.parent.mkdir(parents=True, exist_ok=True)
        postmortem.write_text(md)
    sys.stdout.write(md)


# -- observability ---------------------------------------------------------------------------

metrics_app = typer.Typer(
    help="Telemetry under dcgm-exporter / kube-state-metrics names: export, serve.", no_args_is_help=True
)
alerts_app = typer.Typer(
    help="Prometheus alert rules for GPUs: export, evaluate against ground truth.", no_args_is_help=True
)


def _telemetry(nodes: int, hours: float, seed: int, interval: float, run: Path | None = None, max_nodes: int = 8):
    if run is not None:
        from gpuinfra.sim.telemetry_run import telemetry_from_run

        return telemetry_from_run(run, hours=hours, interval_s=interval, max_nodes=max_nodes)
    from gpuinfra.obs.simulate import simulate_telemetry

    return simulate_telemetry(nodes=nodes, hours=hours, interval_s=interval, seed=seed)


@metrics_app.command("export")
def metrics_export(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for metrics.om (OpenMetrics) and truth.json.")
    ] = Path("runs/metrics"),
    nodes: Annotated[int, typer.Option(help="Nodes of 8 GPUs (built-in telemetry scenario).")] = 4,
    hours: Annotated[float, typer.Option(help="Hours of telemetry.")] = 6.0,
    interval: Annotated[float, typer.Option(help="Sampling interval, s (dcgm-exporter default 30).")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    run: Annotated[
        Path | None, typer.Option(help="A run directory from `gpuinfra simulate`: export its pods' GPUs instead.")
    ] = None,
    max_nodes: Annotated[int, typer.Option(help="With --run: at most this many nodes (the busiest).")] = 8,
) -> None:
    """Write a simulation's series as OpenMetrics with timestamps; load with
    `promtool tsdb create-blocks-from openmetrics metrics.om DIR`."""
    from gpuinfra.io.results import write_json
    from gpuinfra.obs.export import write_openmetrics

    tel = _telemetry(nodes, hours, seed, interval, run, max_nodes)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = write_openmetrics(tel, out_dir / "metrics.om")
    write_json(
        out_dir / "truth.json",
        {"incidents": [i.__dict__ for i in tel.truth], "noise": tel.noise, "start_unix": tel.start_unix},
    )
    out.print(
        f"wrote {out_dir / 'metrics.om'}: {n:,} samples of {sum(len(v) for v in tel.series.values())} series; truth.json: {len(tel.truth)} incidents",
        highlight=False,
    )


@metrics_app.command("serve")
def metrics_serve(
    bind: Annotated[
        str, typer.Option(help="Address to bind (127.0.0.1 by default; 0.0.0.0 exposes it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (dcgm-exporter uses 9400).")] = 9400,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second (1 = real time).")] = 1.0,
    nodes: Annotated[int, typer.Option(help="Nodes of 8 GPUs.")] = 4,
    hours: Annotated[float, typer.Option(help="Hours of telemetry to replay.")] = 6.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    duration: Annotated[
        float, typer.Option(help="Stop after this many real seconds (0: until Ctrl-C or the end).")
    ] = 0.0,
) -> None:
    """Serve a simulation's current values on /metrics while it replays."""
    import time as _time

    from gpuinfra.obs.export import MetricsServer

    tel = _telemetry(nodes, hours, seed, 30.0)
    srv = MetricsServer(tel, bind, port, speed).start()
    out.print(f"serving http://{bind}:{srv.port}/metrics at {speed:g}x; Ctrl-C stops", highlight=False)
    end = (tel.times[-1] / speed) if speed > 0 else float("inf")
    t0 = _time.monotonic()
    try:
        while _time.monotonic() - t0 < (duration or end):
            _time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    out.print("stopped", highlight=False)


@alerts_app.command("export")
def alerts_export(
    rule_set: Annotated[str, typer.Option("--set", help="designed or naive.")] = "designed",
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the rule file here (default: stdout).")
    ] = None,
    check: Annotated[bool, typer.Option(help="Also run `promtool check rules` on it.")] = False,
) -> None:
    """Write a Prometheus rule file for GPU alerts."""
    from gpuinfra.obs.export import run_promtool
    from gpuinfra.obs.rules import RULE_SETS, rule_file

    if rule_set not in RULE_SETS:
        raise UserError(f"unknown rule set '{rule_set}'", where="--set", expected=", ".join(RULE_SETS))
    text = rule_file(RULE_SETS[rule_set]())
    if out_file is None:
        sys.stdout.write(text)
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text)
        out.print(f"wrote {out_file}", highlight=False)
    if check:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "rules.yml"
            p.write_text(text)
            r = run_promtool("check", "rules", str(p))
        Console(stderr=True).print((r.stdout + r.stderr).strip(), highlight=False)
        if r.returncode != 0:
            raise typer.Exit(1)


@alerts_app.command("evaluate")
def alerts_evaluate(
    nodes: Annotated[int, typer.Option(help="Nodes of 8 GPUs.")] = 4,
    hours: Annotated[float, typer.Option(help="Hours of telemetry.")] = 6.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    promtool_check: Annotated[
        bool,
        typer.Option("--promtool/--no-promtool", help="Check agreement with `promtool test rules` (small clusters)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print scores as JSON.")] = False,
) -> None:
    """Run the naive and designed rule sets over simulated telemetry with known incidents: precision, recall, time to detect, pages per day."""
    from gpuinfra.obs.evaluate import evaluate
    from gpuinfra.obs.rules import RULE_SETS

    tel = _telemetry(nodes, hours, seed, 30.0)
    res = {name: evaluate(fn(), tel) for name, fn in RULE_SETS.items()}
    if promtool_check:
        import tempfile

        from gpuinfra.obs.export import check_with_promtool

        with tempfile.TemporaryDirectory() as d:
            agree = {name: check_with_promtool(fn(), tel, Path(d) / name) for name, fn in RULE_SETS.items()}
    if as_json:
        payload = {k: v.as_dict() for k, v in res.items()}
        if promtool_check:
            payload["promtool"] = {k: {x: y for x, y in v.items() if x != "test_output"} for k, v in agree.items()}
        json.dump(payload, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return
    for name, ev in res.items():
        d = ev.as_dict()
        prec = "-" if d["precision"] is None else f"{d['precision']:.0%}"
        out.print(
            f"[bold]{name}[/]: recall {d['recall']:.0%} of {ev.n_incidents} incidents, precision {prec}, {d['pages_per_day']:.0f} pages/day",
            highlight=False,
        )
        t = Table("rule", "pages", "true", "precision", "caught/targeted", "mean time to detect")
        for s in ev.scores:
            t.add_row(
                s.rule,
                str(s.episodes),
                str(s.true_episodes),
                "-" if s.precision is None else f"{s.precision:.0%}",
                f"{s.caught}/{s.targeted}",
                "-" if s.mean_ttd_s is None else f"{s.mean_ttd_s / 60:.1f} min",
            )
        out.print(t)
    if promtool_check:
        for name, a in agree.items():
            out.print(
                f"promtool ({name}): check {'ok' if a['check_ok'] else 'FAILED'}, test rules {'agree' if a['test_ok'] else 'DISAGREE'} over {a['evaluations']} evaluations, {a['expected_alerts']} alerts",
                highlight=False,
            )


# -- sharing ---------------------------------------------------------------------------------

export_app = typer.Typer(help="Write real configuration for Kubernetes and NVIDIA's tools.", no_args_is_help=True)
sharing_app = typer.Typer(help="GPU sharing: whole GPU, time-slicing, MPS, MIG, mixed fleets.", no_args_is_help=True)


@export_app.command("sharing")
def export_sharing_cmd(
    policy: Annotated[str, typer.Option(help="whole, timeslice, mps, mig or mixed.")] = "mig",
    gpu: Annotated[str, typer.Option(help="GPU model of the node pool.")] = "H100-SXM",
    replicas: Annotated[int, typer.Option(help="Time-slicing / MPS replicas per GPU.")] = 4,
    layout: Annotated[
        str | None, typer.Option(help="MIG profiles per GPU, comma-separated (default: mig-parted's all-balanced).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for the manifests.")] = Path("runs/sharing"),
    k8s_version: Annotated[str, typer.Option(help="Kubernetes version whose schemas validate the objects.")] = "1.30",
) -> None:
    """Device-plugin ConfigMap (time-slicing/MPS), mig-parted config and node labels for a policy, validated offline."""
    from gpuinfra.io.sharing_export import export_sharing

    lay = [x.strip() for x in layout.split(",") if x.strip()] if layout else None
    res = export_sharing(policy, gpu, out_dir, replicas, lay, k8s_version=k8s_version)
    out.print(
        f"wrote {', '.join(res['files'])} to {out_dir}; validated against Kubernetes {k8s_version} schemas; node labels {res['labels']}",
        highlight=False,
    )


@sharing_app.command("evaluate")
def sharing_evaluate(
    gpu: Annotated[str, typer.Option(help="GPU model.")] = "H100-SXM",
    load: Annotated[float, typer.Option(help="Scale of the inference arrival rates.")] = 1.0,
    seconds: Annotated[float, typer.Option(help="Simulated seconds per GPU group.")] = 120.0,
    replicas: Annotated[int, typer.Option(help="Time-slicing / MPS replicas.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """The package's mixed workload (LLM decode, embedding, fine-tuning) under each sharing policy."""
    from gpuinfra.sim.sharing import POLICIES, evaluate_policy, mixed_workload

    ts = mixed_workload(gpu, load)
    res = [evaluate_policy(p, ts, gpu, seconds, seed, replicas) for p in POLICIES]
    if as_json:
        json.dump([r.as_dict() for r in res], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    t = Table(
        "policy",
        "GPUs",
        "utilization",
        "p50 ms",
        "p99 ms",
        "SLO met",
        "training x alone",
        "blast radius",
        "configs",
        "OOM",
    )

    def f(v, fmt):
        return "-" if v is None else fmt.format(v)

    for r in res:
        t.add_row(
            r.policy,
            f"{r.gpus:g}",
            f"{r.utilization:.0%}",
            f(r.inference_p50_s and r.inference_p50_s * 1e3, "{:.0f}"),
            f(r.inference_p99_s and r.inference_p99_s * 1e3, "{:.0f}"),
            f(r.slo_attainment, "{:.1%}"),
            f(r.training_throughput, "{:.2f}"),
            f"{r.blast_radius:.1f}",
            str(r.node_configs),
            str(r.oom_tenants),
        )
    out.print(t)
