"""``topo list|show``, ``collective``, ``scale``: node topologies, collectives like nccl-tests, scaling."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, check_input_file, esc, out
from gpuinfra.units import check_all, parallelism_checks

topo_app = typer.Typer(help="Node topology: built-in nodes and `nvidia-smi topo -m` matrices.", no_args_is_help=True)

NIC_HELP = "NIC type between nodes: ndr, hdr, roce400, roce200, eth100 (default: the node's)."


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
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    cpu: Annotated[
        str | None,
        typer.Option(
            help="The host CPU of a matrix file, for the inter-socket (SYS) link: a catalog CPU (EPYC-9654, "
            "Xeon-8480+) or NCCL's class (amd, skl, srp, erp). Default: Sapphire Rapids, stated as an assumption."
        ),
    ] = None,
) -> None:
    """Say how a node's GPUs are connected: NVLink, PCIe switches, host bridges, NUMA, NICs. For a
    matrix file, the CPU, PCIe generation and NIC speed behind the rates are printed as assumptions."""
    from collections import Counter

    from gpuinfra.io.atomic import check_output_file, path_error
    from gpuinfra.io.topo import parse_topo, rank, read_topo_file
    from gpuinfra.models.topology import BUILTINS

    if html is not None:
        check_output_file(html, force=force, where="--html")
    p = Path(node)
    exists = False
    if node not in BUILTINS:
        try:
            exists = p.exists()
        except OSError as e:
            raise path_error(e, p, "NODE", "read") from None
        if exists:
            check_input_file(p, "NODE", "topology file")  # refuses a directory
    if exists and gpu is None:
        # a matrix without a GPU model: what the matrix itself says, no rates
        if cpu is not None:
            from gpuinfra.models.topology import cpu_class

            cpu_class(cpu)  # a wrong name is still an error
            out.print("--cpu sets the rate of the inter-socket link: it takes effect with --gpu MODEL")
        for k, m in enumerate(parse_topo(read_topo_file(p), str(p))):
            gpus = m.gpus
            pairs = Counter(m.link(a, b) for i, a in enumerate(gpus) for b in gpus[i + 1 :])
            nics = [d for d in m.devices if not d.startswith("GPU")]
            out.print(
                f"[bold]matrix {k + 1}[/]: {len(gpus)} GPUs, {len(nics)} NICs (pass --gpu MODEL for bandwidths)",
                markup=True,
            )
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
    from gpuinfra.io.nodes import load_topology

    topo = load_topology(node, gpu, cpu)
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
                "cpu_link": topo.cpu,
                "nic": topo.nic if topo.nics else None,
                "assumptions": topo.assumptions,
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
        from gpuinfra.io.atomic import write_text

        write_text(html, render_page(f"Topology: {topo.name}", [sec]), "--html")
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
    check_all(
        [
            (nodes, "--nodes", dict(lo=1, hi=100_000)),
            (step_factor, "--step-factor", dict(lo=2, hi=1024)),
            (nodes_per_leaf, "--nodes-per-leaf", dict(lo=1, hi=100_000)),
            (oversubscription, "--oversubscription", dict(lo=1, hi=1000)),
        ]
    )
    from gpuinfra.io.nodes import load_topology, parse_gpus
    from gpuinfra.models import collectives as co

    topo = load_topology(node, gpu)
    fab = co.Fabric(nic=nic, nodes_per_leaf=nodes_per_leaf, oversubscription=oversubscription)
    pl = co.Placement.make(topo, parse_gpus(gpus), nodes=nodes, fabric=fab)
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
    check_all(
        [
            *parallelism_checks(tp, pp, micro_batch, microbatches, seq),
            (overlap, "--overlap", dict(lo=0, hi=1)),
            (efficiency, "--efficiency", dict(lo=0, hi=1, lo_open=True)),
            (max_gpus, "--max-gpus", dict(lo=1, hi=10_000_000)),
            (oversubscription, "--oversubscription", dict(lo=1, hi=1000)),
        ]
    )
    from gpuinfra.io.nodes import load_topology
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
            f"activations) on a {esc(topo.gpu.name)}; raise --tp/--pp or shrink --micro-batch/--seq",
            highlight=False,
            markup=True,
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
    out.print(scale_sentence(at, int(curve[-1]["gpus"])), highlight=False)


def scale_sentence(at: int | None, max_gpus: int) -> str:
    """Where communication on the critical path overtakes compute, as a sentence."""
    if at is None:
        return f"Communication stays below compute up to {max_gpus:,} GPUs."
    return f"Communication exceeds compute from {at:,} GPUs on (largest size tried: {max_gpus:,} GPUs)."
