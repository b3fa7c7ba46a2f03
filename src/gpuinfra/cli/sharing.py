"""``export sharing`` and ``sharing evaluate``: GPU sharing configs and policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import FORCE_HELP, out
from gpuinfra.errors import UserError
from gpuinfra.units import MAX_SEED, check_all

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
    product_name: Annotated[
        str | None,
        typer.Option(
            help="The GPU's NVML product name as `nvidia-smi --query-gpu=name --format=csv,noheader` prints it on the "
            "node (default: the catalog's published name; required for a GPU without one)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Device-plugin ConfigMap (time-slicing/MPS), mig-parted config and node labels for a policy, validated offline."""
    check_all(
        [
            (replicas, "--replicas", dict(lo=1, hi=1024)),
        ]
    )
    from gpuinfra.io.sharing_export import export_sharing
    from gpuinfra.units import parse_names

    lay = parse_names(layout, "--layout") if layout is not None else None
    if lay == []:
        raise UserError(
            "no MIG profile given",
            where="--layout",
            expected="MIG profiles per GPU, comma-separated (e.g. 3g.40gb,3g.40gb)",
            fix="leave --layout out for mig-parted's all-balanced layout",
        )
    res = export_sharing(
        policy, gpu, out_dir, replicas, lay, k8s_version=k8s_version, force=force, product_name=product_name
    )
    out.print(
        f"wrote {', '.join(res['files'])} to {out_dir}; validated against Kubernetes {k8s_version} schemas; "
        f"node labels (the product, replicas and MIG ones as GPU Feature Discovery writes them for "
        f"'{res['nvml_name']}'; the config ones for the operator to select by):",
        highlight=False,
    )
    for k, v in res["labels"].items():
        out.print(f"  {k}: {v}", highlight=False)


MAX_SECONDS_X_LOAD = 36_000
"""Simulated seconds x load one ``sharing evaluate`` may run: requests grow with both, and 120 s
at load 1 took about 1.8 s (0.015 s per simulated second) on the 2-core machine, so this is
about 9 minutes."""


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
    check_all(
        [
            (load, "--load", dict(lo=0, hi=100, lo_open=True)),
            (seconds, "--seconds", dict(lo=0, hi=86_400, lo_open=True)),
            (replicas, "--replicas", dict(lo=1, hi=1024)),
            (seed, "--seed", dict(lo=0, hi=MAX_SEED)),
        ]
    )
    from gpuinfra.sim.sharing import POLICIES, evaluate_policy, mixed_workload

    if seconds * load > MAX_SECONDS_X_LOAD:
        raise UserError(
            f"--seconds {seconds:g} at --load {load:g} would take about {seconds * load * 0.015:,.0f} s",
            where="--seconds/--load",
            expected=f"seconds x load at most {MAX_SECONDS_X_LOAD:,}",
            fix="simulate fewer seconds (120 s already gives thousands of requests)",
        )
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
