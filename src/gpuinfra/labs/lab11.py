"""Lab 11: "Security Boundaries in AI Infrastructure" (seed section 11).

Activities, each computed from this run:

1. **Why GPU isolation is imperfect**: what each sharing mode (whole GPU, time-slicing, MPS, MIG)
   isolates and what it leaves open (sourced data), and what a compromised co-tenant can do to the
   others on one shared GPU under each mode (the blast-radius graph with that GPU's mode switched).
2. **Security risks in multi-tenant GPU environments**: the blast radius of every endpoint of a
   baseline estate (secrets, models, data, nodes, co-tenants, network paths).
3. **Supply chain**: a model directory built here is inventoried (sha256 manifest), signed
   (Ed25519), and put through the admission policy unsigned, signed, tampered and with a
   malicious checkpoint added.
4. **Abuse of inference endpoints**: one hour of a shared endpoint with an abusive key, simulated
   on the kernel, without guardrails, with each guardrail alone, and with the design's.
5. **A security model for shared inference** (``--design``, a YAML of
   :class:`gpuinfra.io.deploy_schema.Lab11Design`: an estate, the workload assumed compromised and
   the guardrails), and 6. **the blast radius of a compromised model endpoint** under it, against
   the baseline estate. Headlines compare with the strongest baseline of the same runs.
"""

from __future__ import annotations

import dataclasses
import pickle
import shutil
from pathlib import Path
from typing import Any

from gpuinfra.labs import write_lab, write_lab_file
from gpuinfra.report.figs import bar_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html

TITLE = "Security Boundaries in AI Infrastructure"
DESIGNS = Path(__file__).parent / "designs"
BASELINE = DESIGNS / "lab11-baseline-estate.yaml"
LEVELS = ("hard", "soft", "partial", "none")


def load_design(path: Path | None):
    from gpuinfra.io.deploy_schema import Lab11Design, lab11_problems
    from gpuinfra.io.scenario_load import load_model_file

    p = path or DESIGNS / "lab11-security.yaml"
    d = load_model_file(p, Lab11Design, extra=lab11_problems, what="a lab 11 design")
    return d, ("the shipped design" if path is None else str(path))


def _isolation(baseline) -> dict[str, Any]:
    from gpuinfra.models.blast import SHARING_MODES, blast_radius, isolation_table

    rows = [dataclasses.asdict(r) for r in isolation_table()]
    counts = {
        m: {lv: sum(1 for r in rows if r["mode"] == m and r["level"] == lv) for lv in LEVELS} for m in SHARING_MODES
    }
    # the baseline's MPS-shared GPU switched to each mode: what the compromised endpoint can do to its co-tenant
    shared = next(g for g, m in baseline.gpu_sharing.items() if m != "whole")
    victim = next(w.name for w in baseline.workloads if w.gpu == shared and w.name != baseline.workloads[0].name)
    per_mode = {}
    for m in SHARING_MODES:
        e = dataclasses.replace(baseline, gpu_sharing={**baseline.gpu_sharing, shared: m})
        if m == "whole":  # a whole GPU has one tenant: the co-tenant moves to another GPU of the node
            other = f"{shared}-whole"
            wl = tuple(dataclasses.replace(w, gpu=other) if w.name == victim else w for w in baseline.workloads)
            e = dataclasses.replace(e, workloads=wl, gpu_sharing={**e.gpu_sharing, other: "whole"})
        hit = [r for r in blast_radius(e, baseline.workloads[0].name) if r.asset == f"workload:{victim}"]
        per_mode[m] = hit[0].effect.split(", ") if hit else []
    return {"rows": rows, "levels": counts, "shared_gpu": shared, "victim": victim, "cotenant_effects": per_mode}


def _blast_all(estate) -> dict[str, dict[str, int]]:
    from gpuinfra.models.blast import blast_radius, summarize

    return {w.name: summarize(blast_radius(estate, w.name)) for w in estate.workloads if w.kind == "endpoint"}


def _supply_chain(work: Path) -> list[dict[str, Any]]:
    from gpuinfra.io import artifact_roundtrip
    from gpuinfra.io.supply_chain import MANIFEST, SIGNATURE, check_policy, keygen, make_manifest, sign

    model = work / "model"
    if model.exists():
        shutil.rmtree(model)
    model.mkdir(parents=True)
    rt = work / "rt"
    artifact_roundtrip.run(rt, seed=0)
    write_lab_file(model / "model.safetensors", (rt / "mlp-fp32.safetensors").read_bytes())
    write_lab_file(model / "config.json", '{"architecture": "mlp", "d_in": 32, "hidden": 64, "d_out": 16}\n')
    priv, pub = keygen()
    write_lab_file(work / "key.pem", priv, mode=0o600)  # a private key: owner only
    write_lab_file(work / "key.pub", pub)
    steps = []

    def step(what: str, require_signature: bool = True) -> None:
        r = check_policy(model, work / "key.pub", require_signature=require_signature)
        steps.append({"step": what, "admitted": r.ok, "reasons": r.reasons[:3]})

    def manifest_and_sign() -> None:
        m = make_manifest(model, {"source": "lab 11 build", "builder": "gpuinfra"})
        write_lab_file(model / MANIFEST, m)
        write_lab_file(model / SIGNATURE, sign(m, work / "key.pem"))

    step("no manifest")
    write_lab_file(model / MANIFEST, make_manifest(model, {"source": "lab 11 build"}))
    step("manifest, unsigned")
    manifest_and_sign()
    step("manifest, signed")
    with open(model / "model.safetensors", "r+b") as fh:  # flip one weight byte after signing
        fh.seek(-1, 2)
        b = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([b[0] ^ 0x01]))
    step("weights changed after signing")
    write_lab_file(model / "model.safetensors", (rt / "mlp-fp32.safetensors").read_bytes())

    class _Gadget:
        def __reduce__(self):
            import os

            return (os.system, ("echo owned",))

    write_lab_file(model / "extra.pkl", pickle.dumps(_Gadget(), protocol=4))  # written, never loaded
    manifest_and_sign()
    step("signed, with a malicious pickle added")
    return steps


def _abuse(design, price: float, quick: bool) -> dict[str, Any]:
    from gpuinfra.models.precision import model_shape, precision_row
    from gpuinfra.sim.abuse import AbuseConfig, Guardrails, simulate_abuse

    tps = precision_row(model_shape("Llama-3-8B"), "H100-SXM", "bf16", batch=16, context=2048).decode_tokens_per_s
    g = design.guardrails
    variants = {
        "no guardrails": Guardrails(),
        "max tokens 1024": Guardrails(max_tokens=1024),
        "token bucket 0.5/s, burst 10": Guardrails(rate_rps=0.5, burst=10),
        "quota 2M tokens/day": Guardrails(daily_token_quota=2_000_000),
        "design": Guardrails(g.rate_rps, g.burst, g.max_tokens, g.daily_token_quota),
    }
    out = {}
    for k, gr in variants.items():
        r = simulate_abuse(AbuseConfig(tokens_per_s=tps, guardrails=gr, horizon_s=1800 if quick else 3600), seed=0)
        s = r.summary
        out[k] = {
            "legit_success": s["legit_success_ratio"],
            "legit_p99_wait_s": s["legit"]["wait_p99_s"],
            "abuse_served": s["abuse"]["served"],
            "abuse_rate_limited": s["abuse"]["rate_limited"],
            "abuse_gpu_hours": r.abuse_gpu_hours,
            "abuse_usd": r.abuse_gpu_hours * price,
            "gpu_hours": r.gpu_hours,
            "invariants_ok": r.invariants["ok"],
        }
    return {"tokens_per_s_per_replica": tps, "usd_per_gpu_hour": price, "runs": out}


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    from gpuinfra.catalog.prices import gpu_hour_price
    from gpuinfra.io.deploy_schema import load_estate
    from gpuinfra.models.blast import blast_radius, summarize

    out_dir.mkdir(parents=True, exist_ok=True)
    d, label = load_design(design)
    baseline = load_estate(BASELINE)
    est = d.estate.to_estate()
    price = gpu_hour_price("H100-SXM").on_demand_usd or 0.0
    base_name = (
        d.compromised if any(w.name == d.compromised for w in baseline.workloads) else baseline.workloads[0].name
    )
    reach = {
        "baseline": [dataclasses.asdict(r) for r in blast_radius(baseline, base_name)],
        "design": [dataclasses.asdict(r) for r in blast_radius(est, d.compromised)],
    }
    s = {
        "schema": "gpuinfra.lab11/1",
        "isolation": _isolation(baseline),
        "baseline_blast": _blast_all(baseline),
        "supply_chain": _supply_chain(out_dir / "supply-chain"),
        "abuse": _abuse(d, price, quick),
        "design": {
            "label": label,
            "compromised": d.compromised,
            "baseline_compromised": base_name,
            "reach": reach,
            "summary": {
                "baseline": summarize(blast_radius(baseline, base_name)),
                "design": summarize(blast_radius(est, d.compromised)),
            },
        },
    }
    return write_lab(out_dir, s, render(s))


def render(s: dict[str, Any]) -> str:
    secs: list[Section] = []
    findings: list[str] = []
    iso = s["isolation"]
    modes = list(iso["levels"])
    fig1 = bar_figure(
        modes,
        {lv: [iso["levels"][m][lv] for m in modes] for lv in LEVELS},
        "Strength of the five isolation boundaries per sharing mode",
        "boundaries (of 5)",
        stacked=True,
    )
    fig1.update_layout(xaxis_title="sharing mode", legend_title_text="boundary level")
    open_ = {m: [r["boundary"] for r in iso["rows"] if r["mode"] == m and r["level"] != "hard"] for m in modes}
    ce = iso["cotenant_effects"]
    c1 = (
        "No sharing mode is hard on all five boundaries: "
        + "; ".join(f"{m} leaves {', '.join(open_[m]) or 'nothing'} open" for m in modes)
        + f". A compromised endpoint sharing {iso['shared_gpu']} with {iso['victim']} can "
        + "; ".join(f"under {m}: {', '.join(ce[m]) or 'nothing'}" for m in modes)
        + "."
    )
    secs.append(
        Section(
            "1. Explain why GPU isolation is inherently imperfect",
            fig_html(fig1, "l11iso")
            + table_html(
                ["mode", "boundary", "level", "co-tenant can be", "detail", "source"],
                [
                    [r["mode"], r["boundary"], r["level"], r["effect_on_cotenant"], r["detail"], r["source"]]
                    for r in iso["rows"]
                ],
            ),
            c1,
        )
    )
    findings.append(c1)
    bb = s["baseline_blast"]
    cats = list(next(iter(bb.values())))
    worst = max(bb, key=lambda k: sum(bb[k].values()))
    c2 = (
        f"In the baseline estate the widest blast radius is {worst}'s: "
        + ", ".join(f"{v} {k}" for k, v in bb[worst].items() if v)
        + f"; {sum(1 for v in bb.values() if v['co-tenants (affected)'])} of {len(bb)} endpoints can affect a co-tenant."
    )
    secs.append(
        Section(
            "2. Analyze security risks in multi-tenant GPU environments",
            table_html(["endpoint", *cats], [[k, *[v[c] for c in cats]] for k, v in bb.items()]),
            c2,
        )
    )
    findings.append(c2)
    sc = s["supply_chain"]
    c3 = (
        "Admission policy on the model directory built here: "
        + "; ".join(f"{x['step']}: {'admitted' if x['admitted'] else 'refused'}" for x in sc)
        + f". Only {sum(x['admitted'] for x in sc)} of {len(sc)} states pass: signed, unmodified and free of code-executing pickles."
    )
    secs.append(
        Section(
            "3. Supply chain risks: manifest, signature, scan",
            table_html(
                ["state", "admitted", "why refused"],
                [[x["step"], "yes" if x["admitted"] else "no", " | ".join(x["reasons"])] for x in sc],
            ),
            c3,
        )
    )
    findings.append(c3)
    ab = s["abuse"]
    runs = ab["runs"]
    singles = {k: v for k, v in runs.items() if k not in ("design",)}
    best = max(singles, key=lambda k: (singles[k]["legit_success"], -singles[k]["abuse_gpu_hours"]))
    names = list(runs)
    fig4 = bar_figure(
        names,
        {"legitimate requests served": [100 * runs[k]["legit_success"] for k in names]},
        "Legitimate requests served under one abusive key",
        "requests served (%)",
    )
    fig4.update_layout(xaxis_title="guardrails")
    fig4b = bar_figure(
        names,
        {"abuser's GPU time": [runs[k]["abuse_gpu_hours"] for k in names]},
        "GPU time the abusive key consumed",
        "GPU-hours",
    )
    fig4b.update_layout(xaxis_title="guardrails")
    n0, dz = runs["no guardrails"], runs["design"]
    c4 = (
        f"Without guardrails one abusive key takes {n0['abuse_gpu_hours']:.2f} GPU-hours (${n0['abuse_usd']:,.2f}) of "
        f"{n0['gpu_hours']:.1f} and only {n0['legit_success']:.1%} of legitimate requests are served; the strongest single "
        f"guardrail ({best}) serves {runs[best]['legit_success']:.1%} with the abuser at {runs[best]['abuse_gpu_hours']:.2f} GPU-hours; "
        f"the design's guardrails serve {dz['legit_success']:.1%} and leave the abuser {dz['abuse_gpu_hours']:.3f} GPU-hours (${dz['abuse_usd']:,.2f})."
    )
    secs.append(
        Section(
            "4. Abuse prevention for inference endpoints",
            fig_html(fig4, "l11abuse")
            + fig_html(fig4b, "l11abusegpu")
            + table_html(
                [
                    "guardrails",
                    "legit served",
                    "legit p99 wait s",
                    "abuse served",
                    "abuse 429",
                    "abuse GPU-h",
                    "abuse $",
                ],
                [
                    [
                        k,
                        f"{v['legit_success']:.1%}",
                        "-" if v["legit_p99_wait_s"] is None else f"{v['legit_p99_wait_s']:.2f}",
                        f"{v['abuse_served']:,}",
                        f"{v['abuse_rate_limited']:,}",
                        f"{v['abuse_gpu_hours']:.3f}",
                        f"{v['abuse_usd']:,.2f}",
                    ]
                    for k, v in runs.items()
                ],
            ),
            c4,
            f"Replica throughput {ab['tokens_per_s_per_replica']:,.0f} output tokens/s (roofline of Llama-3-8B bf16 on H100, batch 16: an upper bound); "
            f"${ab['usd_per_gpu_hour']:.2f} per H100-hour (packaged price catalog). 50 legitimate keys at 0.1 req/s; the abuser 5 req/s x 4096 tokens [assumptions].",
        )
    )
    findings.append(c4)
    dg = s["design"]
    sb, sd = dg["summary"]["baseline"], dg["summary"]["design"]
    fig5 = bar_figure(
        list(sb),
        {"baseline estate": list(sb.values()), "design": [sd[k] for k in sb]},
        f"Blast radius of a compromised {dg['compromised']}",
        "assets reached (count)",
    )
    fig5.update_layout(xaxis_title="category")
    tb, td = sum(sb.values()), sum(sd.values())
    c5 = (
        f"The design ({dg['label']}) reduces what a compromised {dg['compromised']} reaches from {tb} assets to {td}: "
        + ", ".join(f"{k} {sb[k]} -> {sd[k]}" for k in sb if sb[k] or sd[k])
        + "."
    )
    secs.append(
        Section(
            "5. Design a security model for shared inference",
            fig_html(fig5, "l11blast"),
            c5,
            "`--design FILE` (estate, compromised, guardrails) replaces the shipped design; its estate is validated like a boundaries file.",
        )
    )
    findings.append(c5)
    rows = []
    for which in ("baseline", "design"):
        for r in dg["reach"][which]:
            rows.append(
                [
                    which,
                    r["category"],
                    r["asset"],
                    "held" if r["control"] else r["effect"],
                    " -> ".join(r["path"][1:]),
                    r["how"],
                ]
            )
    held_secrets = [r["asset"] for r in dg["reach"]["design"] if r["category"] == "secrets"]
    c6 = (
        f"Under the design a compromised {dg['compromised']} still holds {len(held_secrets)} secret(s) ({', '.join(held_secrets) or 'none'}) and "
        f"affects {sd['co-tenants (affected)']} co-tenant(s); every remaining path is listed with the boundary it crosses."
    )
    secs.append(
        Section(
            "6. Evaluate blast radius of a compromised model endpoint",
            table_html(["estate", "category", "asset", "held/affected", "path", "boundary crossed"], rows),
            c6,
        )
    )
    findings.append(c6)
    sub = "Seed section 11, every activity run now: blast radius from declared boundaries (networkx), supply-chain policy on files built here, abuse simulated on the kernel with the cluster invariants checked."
    return render_page(f"Lab 11: {TITLE}", secs, findings=findings, subtitle=sub)
