"""``mig profiles|fit``: GPU-instance profiles and what still fits a GPU."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from gpuinfra.cli._common import out

mig_app = typer.Typer(help="MIG: profiles, placements and what still fits a GPU.", no_args_is_help=True)


@mig_app.command("profiles")
def mig_profiles_cmd(gpu: Annotated[str, typer.Argument(help="A MIG-capable GPU: A100-40GB, A100-80GB, H100, H200")]):
    """The GPU-instance profiles of a GPU: slices, memory, SMs, max count, valid start slots."""
    from gpuinfra.models.mig import mig_profiles

    t = Table("profile", "id", "compute", "memory slices", "GiB", "SMs", "max", "start slots")
    for p in mig_profiles(gpu):
        t.add_row(
            p.name,
            str(p.profile_id),
            f"{p.compute_slices}/7",
            f"{p.memory_slices}/8",
            f"{p.memory_gib:g}",
            str(p.sm_count) if p.sm_count else "-",
            str(p.max_count),
            ",".join(map(str, p.placements)),
        )
    out.print(t)


@mig_app.command("fit")
def mig_fit(
    gpu: Annotated[str, typer.Argument(help="A MIG-capable GPU")],
    want: Annotated[str, typer.Option(help="The profile to place, e.g. 2g.10gb")],
    have: Annotated[str, typer.Option(help="Existing instances: PROFILE@START_SLOT, comma-separated")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Whether and where a profile still fits a GPU that already has some instances, and why not."""
    from gpuinfra.models.mig import mig_profiles, parse_have, placements, profile, stranded_slices, why_not

    state = parse_have(gpu, have)
    p = profile(gpu, want)
    where = placements(state, p)
    reasons = {s: why_not(state, p, s) for s in p.placements if s not in where}
    stranded = stranded_slices(state, [q for q in mig_profiles(gpu) if not q.media_engines])
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "gpu": gpu,
                    "want": want,
                    "have": [str(i) for i in state],
                    "fits": bool(where),
                    "start_slots": where,
                    "why_not": {str(k): v for k, v in reasons.items()},
                    "stranded_memory_slices": stranded,
                },
                indent=2,
            )
            + "\n"
        )
        return
    if where:
        out.print(f"{want} fits at start slot(s) {', '.join(map(str, where))}")
    else:
        out.print(f"{want} does not fit:")
    for s, why in reasons.items():
        out.print(f"  slot {s}: {why}")
    if stranded:
        out.print(f"free memory slices no profile can use now (MIG fragmentation): {', '.join(map(str, stranded))}")
