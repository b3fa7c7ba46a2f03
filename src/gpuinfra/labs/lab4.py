"""Lab 4: GPU sharing models: "GPU Sharing as an Infra Trade-off" (seed section 4).

Activities (seed 4.6), each a step below:
1. Explain why GPU sharing is harder than CPU sharing: memory that cannot be over-committed,
   a shared fault domain, and what co-located tenants do to each other's latency.
2. Compare isolation guarantees across full GPU, time-slicing, MPS and MIG, measured on the same
   tenants (latency, throughput, who a fault takes down) and MIG's own fragmentation.
3. Design a sharing policy for mixed training and inference (``--design FILE``: a YAML with
   ``policy``, ``replicas`` and ``layout``; default the mixed fleet) and write its real configs.
4. Evaluate utilization gains against operational complexity for each model, across load.
5. Present: the report.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any, Literal

import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from gpuinfra.errors import UserError
from gpuinfra.io.scenario_load import read_design_yaml
from gpuinfra.io.sharing_export import check_layout, export_sharing
from gpuinfra.labs import write_lab
from gpuinfra.models import mig as migm
from gpuinfra.models.sharing import MPS_MAX_CLIENTS, Share, advertised, mig_share
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import floor_pct
from gpuinfra.sim.sharing import (
    POLICIES,
    SLO_TARGET,
    evaluate_policy,
    mixed_workload,
    reconfigurations_per_day,
    simulate_isolated,
    simulate_shared,
)

TITLE = "GPU Sharing as an Infra Trade-off"
GPU = "H100-SXM"


def explain(horizon: float) -> dict[str, Any]:
    ts = {t.name: t for t in mixed_workload(GPU)}
    chat = ts["chat-7b"]
    alone = simulate_isolated(chat, Share("whole"), horizon, 1)
    with_train = simulate_shared([chat, ts["finetune-a"]], "timeslice", GPU, horizon, 1)
    c2 = next(r for r in with_train.tenants if r.tenant == "chat-7b")
    # memory: three 30 GiB tenants on an 80 GB GPU under time-slicing
    big = [
        ts["finetune-a"],
        ts["finetune-b"],
        ts["finetune-a"].__class__(**{**ts["finetune-a"].__dict__, "name": "finetune-c"}),
    ]
    mem = simulate_shared(big, "timeslice", GPU, 10.0, 1)
    return {
        "alone_p99_s": alone.p99_s,
        "timesliced_p99_s": c2.p99_s,
        "alone_slo": alone.slo_attainment,
        "timesliced_slo": c2.slo_attainment,
        "oom_when_sum_exceeds": [r.tenant for r in mem.tenants if r.oom],
        "mem_sum_gib": sum(t.mem_gib for t in big),
    }


SLO_FLOOR = SLO_TARGET
"""A design is acceptable only if every inference tenant gets at least 90 % of its requests within
its SLO (a service-level choice, stated; the MIG sizing aims at the same): an aggregate hides a
tenant that gets nothing."""
REFERENCE_LOAD = 1.0
"""Deployments (groups, MIG layout) are sized once at this load and held fixed across the sweep."""


def isolation(horizon: float, load: float, replicas: int = 4) -> dict[str, Any]:
    ts = mixed_workload(GPU, load)
    ref = mixed_workload(GPU, REFERENCE_LOAD)
    res = {p: evaluate_policy(p, ts, GPU, horizon, 3, replicas, sizing=ref).as_dict() for p in POLICIES}
    # MIG fragmentation: free slices no wanted profile can use after a common pattern
    state = migm.parse_have(GPU, "3g.40gb@4,2g.20gb@0,1g.10gb@2")
    stranded = migm.stranded_slices(state, [migm.profile(GPU, "2g.20gb"), migm.profile(GPU, "3g.40gb")])
    lay = res["mixed"]["mig_layout"] or []
    adv = {
        "whole": advertised(8, "whole"),
        f"timeslice x{replicas}": advertised(8, "timeslice", replicas=replicas),
        f"mps x{replicas}": advertised(8, "mps", replicas=replicas),
        f"mig mixed strategy ({', '.join(lay)})": advertised(8, "mig", layout=lay),
    }
    return {"policies": res, "mig_stranded_slices": stranded, "advertised": adv}


def recommend(pol: dict[str, dict], floor: float = SLO_FLOOR, prefer: str | None = None) -> dict[str, Any]:
    """The policy to recommend from one run's results: among those where every inference tenant
    meets ``floor`` and nobody is out of memory, the fewest GPUs, then the higher request-weighted
    SLO attainment, then the smaller blast radius, then fewer node configurations, then ``prefer``
    (the design's own policy) on a full tie. None qualifies: the best worst tenant."""
    ok = [p for p, r in pol.items() if (r["min_tenant_slo"] or 0) >= floor and not r["oom_tenants"]]
    if ok:
        best = min(
            ok,
            key=lambda p: (
                pol[p]["gpus"],
                -round(pol[p]["slo_attainment"] or 0, 9),
                round(pol[p]["blast_radius"], 9),
                pol[p]["node_configs"],
                p != prefer,
            ),
        )
    else:
        best = max(pol, key=lambda p: ((pol[p]["min_tenant_slo"] or 0), -pol[p]["gpus"]))
    return {"policy": best, "meets_floor": bool(ok), "qualifying": ok, "floor": floor}


def dominating(pol: dict[str, dict], r: dict) -> list[str]:
    """Policies at least as good as result ``r`` on GPUs, SLO attainment and worst tenant, and
    strictly better on one (in the same run)."""
    out = []
    for p, x in pol.items():
        a = (x["gpus"], -(x["slo_attainment"] or 0), -(x["min_tenant_slo"] or 0))
        b = (r["gpus"], -(r["slo_attainment"] or 0), -(r["min_tenant_slo"] or 0))
        if all(u <= v + 1e-12 for u, v in zip(a, b)) and any(u < v - 1e-12 for u, v in zip(a, b)):
            out.append(p)
    return out


def same_numbers(a: dict, b: dict) -> bool:
    """Whether two policy results have the same measured numbers (tenants, GPUs, utilization, SLO)."""
    keys = ("gpus", "utilization", "slo_attainment", "min_tenant_slo", "training_throughput", "blast_radius")

    def close(x, y) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        return x == y

    def measured(r: dict) -> dict[str, dict]:
        return {t["tenant"]: {k: v for k, v in t.items() if k != "share"} for t in r["tenants"]}

    ma, mb = measured(a), measured(b)
    return (
        all(close(a[k], b[k]) for k in keys)
        and ma.keys() == mb.keys()
        and all(close(ma[n][k], mb[n][k]) for n in ma for k in ma[n])
    )


class Design(BaseModel):
    """Lab 4's ``--design`` file: the sharing policy, its replicas and the MIG layout of its MIG GPUs."""

    model_config = ConfigDict(extra="forbid")
    policy: Literal["whole", "timeslice", "mps", "mig", "mixed"] = "mixed"
    replicas: StrictInt = Field(4, ge=2, le=MPS_MAX_CLIENTS)
    """Time-slicing / MPS replicas per GPU (k8s-device-plugin ``replicas``; MPS allows at most 48 clients)."""
    layout: list[str] | None = None
    """MIG profiles on every MIG GPU (mig-parted ``devices: all``), e.g. [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]."""

    @field_validator("layout", mode="before")
    @classmethod
    def _split(cls, v):
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v


DESIGN = Path(__file__).parent / "designs" / "lab4-mixed.yaml"


def load_design(path: Path | None) -> tuple[dict, str]:
    """Read and check a design (``Design``): every mistake is a ``UserError`` naming the field."""
    if path is None:
        return Design().model_dump(), "the built-in design (mixed fleet: training on whole GPUs, inference on MIG)"
    raw = read_design_yaml(path, lab=4) or {}
    if not isinstance(raw, dict):
        raise UserError("a design is a mapping", where=str(path), expected="keys policy, replicas, layout")
    try:
        d = Design.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "design"
        what = {
            "extra_forbidden": f"unknown design key {field!r}",
            "literal_error": f"unknown policy {raw.get('policy')!r}",
        }.get(err["type"], f"{err['msg'][0].lower()}{err['msg'][1:]} (got {err.get('input')!r})")
        expected = {
            "policy": ", ".join(POLICIES),
            "replicas": f"a whole number from 2 to {MPS_MAX_CLIENTS} (replicas per GPU)",
            "layout": "a list of MIG profiles, e.g. [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]",
        }.get(str(err["loc"][0]) if err["loc"] else "", "policy, replicas, layout")
        raise UserError(what, where=f"{path}: {field}", expected=expected) from None
    if d.layout is not None:
        if d.policy not in ("mig", "mixed"):
            raise UserError(
                f"a MIG layout does nothing under policy {d.policy}",
                where=f"{path}: layout",
                expected="policy mig or mixed with a layout, or no layout",
            )
        check_layout(GPU, d.layout, where=f"{path}: layout")
    return d.model_dump(), str(path)


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    spec, label = load_design(design)  # check the design before any run
    out_dir.mkdir(parents=True, exist_ok=True)
    horizon = 60.0 if quick else 180.0
    loads = [0.5, 1.0, 1.5] if quick else [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    ref = mixed_workload(GPU, REFERENCE_LOAD)
    sweep = {
        p: [
            evaluate_policy(p, mixed_workload(GPU, x), GPU, horizon, 5, spec["replicas"], sizing=ref).as_dict()
            for x in loads
        ]
        for p in POLICIES
    }
    reconf = reconfigurations_per_day(GPU, mixed_workload(GPU, 1.5), mixed_workload(GPU, 0.5))
    chosen = evaluate_policy(
        spec["policy"], ref, GPU, horizon, 7, spec["replicas"], layout=spec["layout"], sizing=ref
    ).as_dict()
    # the baselines in the same run as the design (same seed, same requests)
    baselines = {p: evaluate_policy(p, ref, GPU, horizon, 7, spec["replicas"], sizing=ref).as_dict() for p in POLICIES}
    exported = export_sharing(
        spec["policy"],
        GPU,
        out_dir / "configs",
        spec["replicas"],
        chosen["mig_layout"],
        training_layout=chosen["training_mig_layout"],
    )
    iso = isolation(horizon, 1.0, spec["replicas"])
    s = {
        "schema": "gpuinfra.lab4/2",
        "quick": quick,
        "gpu": GPU,
        "slo_floor": SLO_FLOOR,
        "reference_load": REFERENCE_LOAD,
        "explain": explain(horizon),
        "isolation": iso,
        "recommendation": recommend(baselines, prefer=spec["policy"]),
        "design": {
            "spec": spec,
            "label": label,
            "result": chosen,
            "baselines": baselines,
            "dominated_by": dominating(baselines, chosen),
            "exported": exported,
        },
        "evaluate": {"loads": loads, "sweep": sweep, "reconfiguration": reconf},
    }
    return write_lab(out_dir, s, render(s))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _pct_down(x: float | None) -> str:
    """A share compared with a floor, rounded down: 0.8996 against a 90 % floor reads 89.9%, not 90.0%."""
    return "-" if x is None else floor_pct(x, 1)


def tenant_table(pol: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """Per-tenant results under each policy: SLO attainment (inference) or work relative to
    running alone (training); OOM where the tenant could not start."""
    names = [t["tenant"] for t in next(iter(pol.values()))["tenants"]]
    rows = []
    for n in names:
        row = [n]
        for r in pol.values():
            t = next(x for x in r["tenants"] if x["tenant"] == n)
            if t["oom"]:
                row.append("OOM")
            elif t["kind"] == "training":
                row.append(f"{t['relative_throughput']:.2f}x alone")
            else:
                row.append(f"{_pct(t['slo_attainment'])} ({t['share']})")
        rows.append(row)
    return ["tenant", *pol], rows


def figures(s: dict[str, Any]) -> dict[str, go.Figure]:
    """Lab 4's figures, each with axis titles with units and a legend for several traces."""
    ev = s["evaluate"]
    loads = ev["loads"]
    xt = "inference load (x the scenario's request rates)"
    fig_slo = line_figure(
        {p: list(zip(loads, [100 * (x["slo_attainment"] or 0) for x in v])) for p, v in ev["sweep"].items()},
        "Requests within SLO against load (deployments sized at load 1.0 and held fixed)",
        xt,
        "requests within SLO, all tenants (%)",
        logx=False,
    )
    fig_worst = line_figure(
        {p: list(zip(loads, [100 * (x["min_tenant_slo"] or 0) for x in v])) for p, v in ev["sweep"].items()},
        "The worst inference tenant's requests within SLO against load",
        xt,
        "worst tenant's requests within SLO (%)",
        logx=False,
    )
    fig_util = line_figure(
        {p: list(zip(loads, [100 * x["utilization"] for x in v])) for p, v in ev["sweep"].items()},
        "GPU utilization against load",
        xt,
        "busy time of the GPUs used (%)",
        logx=False,
    )
    last = {p: v[-1] for p, v in ev["sweep"].items()}
    gain = {p: 1 - last[p]["gpus"] / last["whole"]["gpus"] for p in last}
    fig_saved = bar_figure(
        list(last),
        {"GPUs saved against whole GPUs": [100 * gain[p] for p in last]},
        "GPUs each policy saves against one whole GPU per tenant",
        "GPUs saved (% of the whole-GPU fleet)",
    )
    fig_saved.update_layout(xaxis_title="sharing policy (-)")
    fig_cfg = bar_figure(
        list(last),
        {"node configurations": [last[p]["node_configs"] for p in last]},
        "Distinct GPU node configurations each policy needs (operational cost)",
        "node configurations (count)",
    )
    fig_cfg.update_layout(xaxis_title="sharing policy (-)")
    for f in (fig_saved, fig_cfg):
        f.update_layout(showlegend=False)
    return {"slo": fig_slo, "worst": fig_worst, "util": fig_util, "saved": fig_saved, "configs": fig_cfg}


def render(s: dict[str, Any]) -> str:
    f: list[str] = []
    secs: list[Section] = []
    ex = s["explain"]
    claim1 = (
        f"Sharing a GPU is not sharing a CPU: a chat service alone meets its SLO {ex['alone_slo']:.0%} of the time (p99 {ex['alone_p99_s'] * 1e3:.0f} ms); "
        f"time-sliced with one fine-tuning job it meets it {ex['timesliced_slo']:.0%} of the time (p99 {ex['timesliced_p99_s'] * 1e3:.0f} ms). "
        f"And memory cannot be over-committed: three tenants needing {ex['mem_sum_gib']:.0f} GiB on an 80 GB GPU leave {', '.join(ex['oom_when_sum_exceeds']) or 'nobody'} out of memory at start."
    )
    secs.append(
        Section(
            "1. Explain: why GPU sharing is hard",
            "",
            claim1,
            "gpuinfra.sim.sharing: request-level simulation of tenants on GPUs of a ClusterState, on the simulation kernel; no swap, no memory isolation under time-slicing.",
        )
    )
    f.append(claim1)
    iso = s["isolation"]
    pol = iso["policies"]
    floor = s["slo_floor"]
    rows = [
        [
            p,
            f"{r['gpus']:g}",
            f"{r['utilization']:.0%}",
            f"{(r['inference_p99_s'] or 0) * 1e3:.0f}",
            _pct(r["slo_attainment"]),
            f"{_pct(r['min_tenant_slo'])} ({r['worst_tenant']})",
            f"{r['training_throughput']:.2f}",
            f"{r['blast_radius']:.1f}",
            r["node_configs"],
            r["oom_tenants"],
        ]
        for p, r in pol.items()
    ]
    best_blast = min(pol, key=lambda p: (pol[p]["blast_radius"], pol[p]["gpus"]))
    worst_blast = max(pol, key=lambda p: pol[p]["blast_radius"])
    mig, mixed = pol["mig"], pol["mixed"]
    if same_numbers(mig, mixed):
        tl = mig["training_mig_layout"] or []
        sh = mig_share(s["gpu"], tl[0]) if tl else None
        full = [t["tenant"] for t in mig["tenants"] if tl and t["share"] == tl[0]]
        why = (
            f"The mig and mixed rows measure the same because they run the same hardware: {', '.join(full)} get a {tl[0]} instance "
            f"({sh.sm_frac:.0%} of the SMs, {sh.bw_frac:.0%} of the memory bandwidth) under mig and a whole GPU under mixed, and the other inference tenants sit in the same MIG layout "
            f"({', '.join(mig['mig_layout'] or [])}). They differ in operations only: mig makes every GPU MIG-enabled (only limited IPC across instances, "
            f"and a change of layout only when the GPU is idle: MIG user guide), mixed keeps those GPUs MIG-disabled."
            if sh
            else "The mig and mixed rows measure the same: no tenant is placed differently."
        )
    else:
        why = "The mig and mixed rows differ: " + ", ".join(
            k for k in ("gpus", "slo_attainment", "training_throughput", "utilization") if mig[k] != mixed[k]
        )
    claim2 = (
        f"Measured on the same six tenants: time-slicing packs them on {pol['timeslice']['gpus']:g} GPUs but shares one fault domain among {pol['timeslice']['blast_radius']:.1f} tenants, "
        f"cuts training to {pol['timeslice']['training_throughput']:.2f}x and leaves {pol['timeslice']['worst_tenant']} {_pct(pol['timeslice']['min_tenant_slo'])} of its requests within SLO; "
        f"MPS keeps training at {pol['mps']['training_throughput']:.2f}x on {pol['mps']['gpus']:g} GPUs, worst tenant {_pct(pol['mps']['min_tenant_slo'])}, but a fault still takes {pol['mps']['blast_radius']:.1f}; "
        f"MIG isolates faults ({pol['mig']['blast_radius']:.1f}) on {pol['mig']['gpus']:g} GPUs, worst tenant {_pct(pol['mig']['min_tenant_slo'])}, and leaves {len(iso['mig_stranded_slices'])} memory slice(s) stranded in a common layout. "
        f"Blast radius: smallest with {best_blast}, largest with {worst_blast}. {why}"
    )
    adv = "".join(f"<li>{escape(k)}: {escape(str(v))}</li>" for k, v in iso["advertised"].items())
    th, trows = tenant_table(pol)
    secs.append(
        Section(
            "2. Compare isolation: full GPU, time-slicing, MPS, MIG",
            table_html(
                [
                    "policy",
                    "GPUs",
                    "utilization",
                    "p99 ms",
                    "SLO met, all requests",
                    "SLO met, worst tenant",
                    "training x alone",
                    "tenants per fault",
                    "node configs",
                    "OOM",
                ],
                rows,
            )
            + "<p>Per tenant (SLO attainment and the share it ran on; training: work relative to a whole GPU alone):</p>"
            + table_html(th, trows)
            + f"<p>What an 8-GPU node advertises to Kubernetes:</p><ul>{adv}</ul>",
            claim2,
        )
    )
    f.append(claim2)
    d = s["design"]
    r = d["result"]
    rec = s["recommendation"]
    base = d["baselines"]
    files = "".join(f"<li>configs/{escape(x)}</li>" for x in d["exported"]["files"])
    lay = r["mig_layout"]
    layout_txt = f" MIG layout on every MIG GPU: {', '.join(lay)} (exported as simulated)." if lay else ""
    if (r["min_tenant_slo"] or 0) < floor:
        verdict = (
            f"It does not meet the floor of {floor:.0%} within SLO for every tenant: {r['worst_tenant']} gets {_pct_down(r['min_tenant_slo'])}, "
            f"although {_pct(r['slo_attainment'])} of all requests are within SLO."
        )
    else:
        verdict = f"Every inference tenant gets at least {floor:.0%} of its requests within SLO (worst: {r['worst_tenant']}, {_pct_down(r['min_tenant_slo'])})."
    if d["dominated_by"]:
        b = min(d["dominated_by"], key=lambda p: (base[p]["gpus"], -(base[p]["min_tenant_slo"] or 0)))
        vs = (
            f" {b} does better on every count in the same run: {base[b]['gpus']:g} GPUs against {r['gpus']:g}, "
            f"{_pct(base[b]['slo_attainment'])} of requests within SLO against {_pct(r['slo_attainment'])}, worst tenant {_pct(base[b]['min_tenant_slo'])} against {_pct(r['min_tenant_slo'])}."
        )
    else:
        vs = " No policy of the same run does better on GPUs, SLO attainment and worst tenant at once."
    rb = base[rec["policy"]]
    recommendation = (
        f" Recommended: {rec['policy']} ({rb['gpus']:g} GPUs, {_pct(rb['slo_attainment'])} within SLO, worst tenant {_pct(rb['min_tenant_slo'])}, {rb['blast_radius']:.1f} tenant(s) per fault): "
        + (
            f"the fewest GPUs among the policies that meet the {floor:.0%} floor for every tenant ({', '.join(rec['qualifying'])})."
            if rec["meets_floor"]
            else f"no policy meets the {floor:.0%} floor for every tenant; it has the best worst tenant."
        )
    )
    claim3 = (
        f"The design ({d['label']}: policy {d['spec']['policy']}) serves the workload on {r['gpus']:g} GPUs with {_pct(r['slo_attainment'])} of requests within SLO, training at {r['training_throughput']:.2f}x, "
        f"{r['blast_radius']:.1f} tenant(s) per fault. {verdict}{vs}{recommendation}{layout_txt} "
        f"Its configs validate against the Kubernetes {d['exported']['kubernetes_version']} schemas."
    )
    th3, trows3 = tenant_table({"design": r, **{f"{p} (baseline)": base[p] for p in base}})
    secs.append(
        Section(
            "3. Design: a policy for mixed training and inference",
            table_html(th3, trows3) + f"<ul>{files}</ul>",
            claim3,
            f"`gpuinfra export sharing` writes the same files for any policy; `--design FILE` (policy, replicas, layout; start from labs/designs/lab4-mixed.yaml) changes this step. "
            f"The floor ({floor:.0%} of each tenant's requests within SLO) is a service-level choice.",
        )
    )
    f.append(claim3)
    ev = s["evaluate"]
    loads = ev["loads"]
    figs = figures(s)
    last = {p: v[-1] for p, v in ev["sweep"].items()}
    gain = {p: 1 - last[p]["gpus"] / last["whole"]["gpus"] for p in last}
    rc = ev["reconfiguration"]
    worst = min(last, key=lambda p: last[p]["slo_attainment"] or 0)
    held = last["mig"]["mig_layout"] or []
    claim4 = (
        f"Each policy's deployment is sized at load {s['reference_load']:g} and held fixed as load rises (MIG layout {', '.join(held)} on every MIG GPU at every load). "
        f"At load {loads[-1]}x, time-slicing saves {gain['timeslice']:.0%} of the GPUs and meets the SLO for {_pct(last['timeslice']['slo_attainment'])} of requests (worst tenant {_pct(last['timeslice']['min_tenant_slo'])}), "
        f"MPS saves {gain['mps']:.0%} at {_pct(last['mps']['slo_attainment'])} (worst {_pct(last['mps']['min_tenant_slo'])}), "
        f"MIG saves {gain['mig']:.0%} at {_pct(last['mig']['slo_attainment'])} (worst {_pct(last['mig']['min_tenant_slo'])}); the worst at high load is {worst}. "
        f"MIG's price is operational: {last['mig']['node_configs']} node configurations and, when the inference mix shifts between day and night "
        f"(sized for load 1.5 by day: {', '.join(rc['day_layout'])} on {rc['day_gpus']} GPU(s), {rc['day_whole_gpus']} service(s) on whole GPUs; "
        f"for load 0.5 at night: {', '.join(rc['night_layout'])} on {rc['night_gpus']}, {rc['night_whole_gpus']} on whole GPUs), "
        f"{rc['reconfigurations_per_day']} GPU reconfigurations a day ({rc['gpu_hours_per_day']:.2f} GPU-hours idle for them)."
    )
    secs.append(
        Section(
            "4. Evaluate: utilization against complexity",
            "".join(fig_html(fig, k) for k, fig in figs.items()),
            claim4,
        )
    )
    f.append(claim4)
    sub = f"Seed section 4, every activity run now on {s['gpu']} ({'quick' if s['quick'] else 'full'} mode). Time-slice length and switch cost, MPS bandwidth contention and MIG sizing headroom are stated assumptions in gpuinfra.models.sharing."
    return render_page(f"Lab 4: {TITLE}", secs, findings=f, subtitle=sub)
