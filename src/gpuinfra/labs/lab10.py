"""Lab 10: "Model Packaging and Deployment Risk" (seed section 10).

Activities, each computed from what this run builds and simulates:

1. **Models are deployment artifacts, not static files**: a small model is written (numpy, in the
   run directory) as safetensors, GGUF, ONNX and as PyTorch-style zip checkpoints (one benign, one
   carrying a ``__reduce__`` gadget: written, never loaded); each is inspected for what it assumes
   of its runtime and whether loading it runs code; the pickles are scanned.
2. **Compatibility risks across formats and runtimes**: driver / CUDA / PyTorch / GPU stacks judged
   by the compatibility rules; what broke when the same model was loaded by its runtimes.
3. **The same model in several formats**: sizes, load times and output error per precision.
4. **Precision**: memory and roofline speed per precision (fp32 ... int4) and the published
   accuracy deltas (sourced data), i.e. quantisation as an infra trade-off.
5. **A rollback strategy for a breaking model change** (``--design``, a YAML of
   :class:`gpuinfra.io.deploy_schema.Lab10Design`): every built-in strategy and the design are
   rolled out on the simulator against silent failures (none, precision, tokenizer, version),
   several seeds each; wrong answers served, time to detect and roll back, GPUs held. The headline
   compares the design with the strongest built-in strategy of the same runs.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from gpuinfra.errors import UserError
from gpuinfra.labs import write_lab
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html

TITLE = "Model Packaging and Deployment Risk"
DESIGNS = Path(__file__).parent / "designs"
STACKS = [
    ("H100-SXM", "535.104.05", "12.4", "2.5.1"),
    ("H100-SXM", "550.54.15", "12.4", "2.5.1"),
    ("B200", "550.54.15", "12.4", "2.5.1"),
    ("A100-80GB", "470.82.01", "12.1", "2.1.2"),
    ("V100-32GB", "550.54.15", "12.8", "2.7.1"),
]


class _Gadget:
    """An object whose pickle imports os.system: the classic malicious checkpoint (never loaded)."""

    def __reduce__(self):
        return (os.system, ("echo owned",))


def _zip_checkpoint(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")


def _artifacts(work: Path, seed: int) -> dict[str, Any]:
    from gpuinfra.io import artifact_roundtrip
    from gpuinfra.io.artifact import inspect
    from gpuinfra.io.pickle_scan import scan_path

    rt = artifact_roundtrip.run(work, seed=seed)
    weights = artifact_roundtrip.make_model(seed)
    benign = pickle.dumps(OrderedDict((k, v.tolist()) for k, v in weights.items()), protocol=2)
    _zip_checkpoint(work / "mlp-benign.pt", benign)
    _zip_checkpoint(work / "mlp-malicious.pt", pickle.dumps({"model": _Gadget()}, protocol=4))
    files = ["mlp-fp32.safetensors", "mlp-fp32.gguf", "mlp-fp32.onnx", "mlp-benign.pt", "mlp-malicious.pt"]
    inspected = []
    for f in files:
        p = work / f
        row: dict[str, Any] = {"file": f, "bytes": p.stat().st_size}
        try:
            ins = inspect(p)
            row |= {
                "format": ins.format,
                "parameters": ins.parameters,
                "executes_code_on_load": ins.executes_code_on_load,
                "assumptions": {k: str(v)[:120] for k, v in ins.assumptions.items()},
            }
        except UserError as e:
            row |= {"format": "pytorch", "executes_code_on_load": True, "assumptions": {}, "inspect_error": e.what}
        if row["executes_code_on_load"]:
            sc = scan_path(p)
            row["scan"] = {"verdict": sc.verdict, "globals": sc.globals, "findings": len(sc.findings)}
        inspected.append(row)
    return {"roundtrip": rt.as_dict(), "inspected": inspected}


def _compat() -> list[dict[str, Any]]:
    from gpuinfra.models.compat import Stack, check

    out = []
    for gpu, drv, cuda, torch in STACKS:
        row: dict[str, Any] = {"stack": f"{gpu} / driver {drv} / CUDA {cuda} / torch {torch}"}
        try:
            rep = check(Stack(gpu, drv, cuda, torch))
            bad = [f for f in rep.findings if f.verdict != "ok"]
            row |= {"verdict": rep.verdict, "rules": [f"{f.rule}: {f.message}" for f in bad][:3]}
        except UserError as e:
            row |= {"verdict": "refuse (input)", "rules": [str(e)]}
        out.append(row)
    return out


def _precision() -> dict[str, Any]:
    from gpuinfra.models.precision import accuracy_deltas, model_shape, precision_table

    m = model_shape("Llama-3-8B")
    tables = {
        g: [r.as_dict() for r in precision_table(m, g, batch=16, context=2048)] for g in ("H100-SXM", "A100-80GB")
    }
    acc = [d.__dict__ for d in accuracy_deltas()]
    return {"model": m.name, "tables": tables, "accuracy": acc}


def load_design(path: Path | None):
    from gpuinfra.io.deploy_schema import Lab10Design
    from gpuinfra.io.scenario_load import load_model_file

    p = path or DESIGNS / "lab10-rollback.yaml"
    d = load_model_file(p, Lab10Design, what="a lab 10 design")
    return d, ("the shipped design" if path is None else str(path))


def _strategies(design) -> dict[str, Any]:
    from gpuinfra.sim.rollout import STRATEGIES, Signals, Strategy

    out = {k: (Strategy(k), Signals()) for k in STRATEGIES}
    out["design"] = (
        Strategy(design.strategy, design.canary_weight, design.bake_s, design.auto_rollback, design.rollback_delay_s),
        Signals(drift_z=design.drift_z, drift_window_s=design.drift_window_s),
    )
    return out


def _rollouts(design, seeds: list[int]) -> dict[str, Any]:
    from gpuinfra.sim.rollout import FAILURES, Failure, RolloutConfig, simulate_rollout

    fails = dict(FAILURES)
    if design.failure is not None:
        f = design.failure
        fails["design-failure"] = Failure(
            "design-failure", f.bad_fraction, f.error_fraction, f.length_factor, f.nll_shift, "from the design file"
        )
    res: dict[str, dict[str, Any]] = {}
    series: dict[str, list] = {}
    for name, (st, sig) in _strategies(design).items():
        res[name] = {}
        for fk, fv in fails.items():
            runs = [simulate_rollout(RolloutConfig(strategy=st, failure=fv, signals=sig), s) for s in seeds]
            ss = [r.summary for r in runs]

            def mean(key: str, ss=ss) -> float | None:
                v = [s[key] for s in ss if s[key] is not None]
                return float(np.mean(v)) if v else None

            res[name][fk] = {
                "wrong": float(np.mean([s["requests"]["wrong"] for s in ss])),
                "refused": float(np.mean([s["requests"]["refused"] for s in ss])),
                "detected": sum(s["detected_s"] is not None for s in ss),
                "rolled_back": sum(s["phase"] == "rolled-back" for s in ss),
                "time_to_detect_s": mean("time_to_detect_s"),
                "time_to_rollback_s": mean("time_to_rollback_s"),
                "peak_gpus": max(s["peak_gpus"] for s in ss),
                "gpu_hours": float(np.mean([r.gpu_hours for r in runs])),
                "invariants_ok": all(r.invariants["ok"] for r in runs),
                "runs": len(runs),
            }
            if fk == "tokenizer":
                series[name] = [(t, share) for t, _, _, share, _ in runs[0].series if t <= 3600]
    return {"seeds": seeds, "failures": {k: v.note for k, v in fails.items()}, "results": res, "series": series}


WEIGHTS = (0.02, 0.05, 0.10, 0.20, 0.40)


def _weight_sweep(seeds: list[int]) -> list[dict[str, Any]]:
    """Canary weight against the subtle (precision) failure: detection speed vs wrong answers."""
    from gpuinfra.sim.rollout import FAILURES, RolloutConfig, Strategy, simulate_rollout

    out = []
    for w in WEIGHTS:
        ss = [
            simulate_rollout(
                RolloutConfig(strategy=Strategy("canary", canary_weight=w), failure=FAILURES["precision"]), s
            ).summary
            for s in seeds
        ]
        det = [x["time_to_detect_s"] for x in ss if x["time_to_detect_s"] is not None]
        cfg = RolloutConfig()
        promote_s = cfg.start_s + cfg.cold_start_s + Strategy("canary").bake_s  # when the canary is promoted
        before = [x for x in ss if x["detected_s"] is not None and x["detected_s"] < promote_s]
        out.append(
            {
                "weight": w,
                "wrong": float(np.mean([x["requests"]["wrong"] for x in ss])),
                "time_to_detect_s": float(np.mean(det)) if det else None,
                "caught_by_canary": len(before),
                "runs": len(ss),
            }
        )
    return out


def _score(r: dict[str, Any]) -> tuple[float, float, float]:
    """Rank strategies: wrong answers + refused requests over the failures, then false rollbacks, then GPU-h."""
    bad = sum(v["wrong"] + v["refused"] for k, v in r.items() if k != "none")
    return (bad + r["none"]["refused"], r["none"]["rolled_back"], sum(v["gpu_hours"] for v in r.values()))


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    d, label = load_design(design)
    work = out_dir / "artifacts"
    art = _artifacts(work, seed=0)
    seeds = [0, 1] if quick else [0, 1, 2, 3, 4]
    ro = _rollouts(d, seeds)
    ro["weight_sweep"] = _weight_sweep(seeds)
    builtin = {k: v for k, v in ro["results"].items() if k != "design"}
    best = min(builtin, key=lambda k: _score(builtin[k]))
    s = {
        "schema": "gpuinfra.lab10/1",
        "artifacts": art,
        "compat": _compat(),
        "precision": _precision(),
        "rollout": ro,
        "design": {"label": label, "spec": d.model_dump(), "strongest_baseline": best},
    }
    return write_lab(out_dir, s, render(s))


def _fmt(v: float | None, unit: str = " s") -> str:
    return "not detected" if v is None else f"{v:,.0f}{unit}"


def render(s: dict[str, Any]) -> str:
    secs: list[Section] = []
    findings: list[str] = []
    # 1. artifacts
    ins = s["artifacts"]["inspected"]
    code = [r["file"] for r in ins if r["executes_code_on_load"]]
    mal = next(r for r in ins if r["file"] == "mlp-malicious.pt")
    ben = next(r for r in ins if r["file"] == "mlp-benign.pt")
    onnx_row = next(r for r in ins if r["format"] == "onnx")
    c1 = (
        f"{len(code)} of {len(ins)} files built here execute code when loaded ({', '.join(code)}); the scanner calls "
        f"the benign checkpoint '{ben['scan']['verdict']}' and the malicious one '{mal['scan']['verdict']}' "
        f"({mal['scan']['findings']} findings, imports {', '.join(mal['scan']['globals'])}). The ONNX file assumes "
        + ", ".join(f"{k} = {v}" for k, v in list(onnx_row["assumptions"].items())[:3])
        + ": a model is weights plus the code and runtime it assumes."
    )
    rows = [
        [
            r["file"],
            r["format"],
            f"{r['bytes']:,}",
            "yes" if r["executes_code_on_load"] else "no",
            "; ".join(f"{k}={v}" for k, v in r["assumptions"].items())[:140],
            r.get("scan", {}).get("verdict", "-"),
        ]
        for r in ins
    ]
    secs.append(
        Section(
            "1. Explain: models are deployment artifacts, not static files",
            table_html(["file", "format", "bytes", "runs code on load", "runtime assumptions", "pickle scan"], rows),
            c1,
        )
    )
    findings.append(c1)
    # 2. compatibility
    comp = s["compat"]
    refused = [c for c in comp if c["verdict"].startswith("refuse")]
    brk = s["artifacts"]["roundtrip"]["breaks"]
    c2 = (
        f"{len(refused)} of {len(comp)} driver/CUDA/PyTorch/GPU stacks are refused by the compatibility rules "
        f"and {len(brk)} load attempts of the same model broke in its own runtimes (e.g. {brk[0]['what']}): "
        "these failures surface at deployment, not at training."
        if brk
        else f"{len(refused)} of {len(comp)} stacks are refused by the compatibility rules."
    )
    html2 = table_html(
        ["stack", "verdict", "rules that fired"], [[c["stack"], c["verdict"], " | ".join(c["rules"])] for c in comp]
    )
    html2 += table_html(["what", "runtime's error"], [[b["what"], b["error"]] for b in brk])
    secs.append(Section("2. Analyze compatibility risks across formats and runtimes", html2, c2))
    findings.append(c2)
    # 3. formats
    rt = s["artifacts"]["roundtrip"]["rows"]
    ok = [r for r in rt if r["max_rel_err"] is not None]
    worst = max(ok, key=lambda r: r["max_rel_err"])
    sizes = {(r["format"], r["precision"]): r["bytes"] for r in rt}
    fmts = sorted({r["format"] for r in rt})
    precs = ["fp32", "fp16", "bf16"]
    fig3 = bar_figure(
        precs,
        {f: [sizes.get((f, p)) for p in precs] for f in fmts},
        "Size on disk of the same model per format and precision",
        "bytes on disk",
    )
    fig3.update_layout(xaxis_title="stored precision")
    c3 = (
        f"All {sum(r['ok'] for r in ok)} of {len(ok)} loads that ran stayed within their roundoff bound; the largest "
        f"relative error is {worst['max_rel_err']:.2e} ({worst['format']} {worst['precision']}, bound {worst['tolerance']:.2e}). "
        f"fp32 sizes: " + ", ".join(f"{f} {sizes.get((f, 'fp32'), 0):,} B" for f in fmts) + "."
    )
    secs.append(
        Section(
            "3. Package the same model in multiple formats and compare behavior",
            fig_html(fig3, "l10sizes")
            + table_html(
                ["format", "precision", "bytes", "load ms", "max rel err", "bound", "within", "note"],
                [
                    [
                        r["format"],
                        r["precision"],
                        f"{r['bytes']:,}",
                        f"{r['load_s'] * 1e3:.2f}",
                        "-" if r["max_rel_err"] is None else f"{r['max_rel_err']:.2e}",
                        "-" if r["tolerance"] is None else f"{r['tolerance']:.2e}",
                        "yes" if r["ok"] else "no",
                        r["note"],
                    ]
                    for r in rt
                ],
            ),
            c3,
            "Load times are wall clock on this machine (not a benchmark).",
        )
    )
    findings.append(c3)
    # 4. precision
    pr = s["precision"]
    h = {r["precision"]: r for r in pr["tables"]["H100-SXM"]}
    awq = next((a for a in pr["accuracy"] if a["model"] == "Llama-2-7B" and a["method"].startswith("AWQ")), None)
    q8 = next((a for a in pr["accuracy"] if a["method"] == "llama.cpp Q8_0"), None)
    c4 = (
        f"{pr['model']} on an H100: int4 (g128) weights take {h['int4']['weight_bytes'] / 1e9:.1f} GB against "
        f"{h['bf16']['weight_bytes'] / 1e9:.1f} GB at bf16 ({h['bf16']['weight_bytes'] / h['int4']['weight_bytes']:.1f}x less) and decode "
        f"{h['int4']['decode_tokens_per_s'] / h['bf16']['decode_tokens_per_s']:.2f}x faster at batch 16 (memory-bound roofline); "
        + (
            f"the serving model's per-operator step gives fp8 {h['fp8']['serving_decode_tokens_per_s'] / h['bf16']['serving_decode_tokens_per_s']:.2f}x bf16 "
            f"({h['bf16']['serving_decode_tokens_per_s']:,.0f} -> {h['fp8']['serving_decode_tokens_per_s']:,.0f} tokens/s, below the bound's "
            f"{h['fp8']['decode_tokens_per_s'] / h['bf16']['decode_tokens_per_s']:.2f}x: attention and overheads do not shrink with the weights); "
            if h.get("fp8", {}).get("serving_decode_tokens_per_s") and h["bf16"].get("serving_decode_tokens_per_s")
            else ""
        )
        + (f"published cost: +{awq['delta']:.2f} perplexity for AWQ int4 on Llama-2-7B, " if awq else "")
        + (f"+{q8['delta']:.4f} for 8-bit Q8_0 on Llama-3-8B." if q8 else "")
    )
    figp = bar_figure(
        list(h),
        {
            "weights (GB)": [r["weight_bytes"] / 1e9 for r in h.values()],
            "KV cache (GB)": [r["kv_bytes"] / 1e9 for r in h.values()],
        },
        f"{pr['model']} memory per precision on H100 (batch 16 x 2048 tokens)",
        "GB",
        stacked=True,
    )
    figp.update_layout(xaxis_title="serving precision")
    figs = bar_figure(
        list(h),
        {g: [r["decode_tokens_per_s"] for r in pr["tables"][g]] for g in pr["tables"]},
        "Decode throughput per precision (roofline, batch 16)",
        "output tokens/s",
    )
    figs.update_layout(xaxis_title="serving precision (A100 has no FP8)")
    figs.data[1].x = [r["precision"] for r in pr["tables"]["A100-80GB"]]
    srv = [
        (r["precision"], r["serving_decode_tokens_per_s"])
        for r in pr["tables"]["H100-SXM"]
        if r["serving_decode_tokens_per_s"]
    ]
    figs.add_bar(x=[p for p, _ in srv], y=[v for _, v in srv], name="H100-SXM, serving step model")
    acc_rows = [
        [a["model"], a["method"], a["bits_per_weight"] or "", f"+{a['delta']:.4g}", a["source"][:90]]
        for a in pr["accuracy"]
    ]
    secs.append(
        Section(
            "4. Quantization and precision: memory, speed, accuracy",
            fig_html(figp, "l10mem")
            + fig_html(figs, "l10speed")
            + table_html(["model", "method", "bits/w", "delta ppl", "source"], acc_rows),
            c4,
            "No FP8 perplexity row: no primary source was found, so none is shown (see catalog/data/precision/SOURCE.md).",
        )
    )
    findings.append(c4)
    # 5. design
    ro, dz = s["rollout"], s["design"]
    res = ro["results"]
    best = dz["strongest_baseline"]
    names = list(res)
    fails = [f for f in ro["failures"] if f != "none"]
    fig5 = bar_figure(
        names,
        {f: [res[n][f]["wrong"] + res[n][f]["refused"] for n in names] for f in fails},
        f"Requests answered wrong or refused per rollout (mean of {len(ro['seeds'])} seeds)",
        "requests (log)",
        logy=True,
    )
    fig5.update_layout(xaxis_title="strategy")
    fig6 = line_figure(
        {n: ro["series"][n] for n in names},
        "Share of traffic on the new version, tokenizer mismatch (seed 0, first hour)",
        "time (s)",
        "share of requests to the new version (fraction)",
        logx=False,
        mode="lines",
    )
    sw = ro["weight_sweep"]
    fig7 = line_figure(
        {"wrong answers served": [(x["weight"], x["wrong"]) for x in sw]},
        "Canary weight vs wrong answers, precision regression",
        "canary weight (share of traffic)",
        "requests answered wrong (mean)",
        logx=False,
    )
    fig8 = line_figure(
        {"time to detect": [(x["weight"], x["time_to_detect_s"]) for x in sw if x["time_to_detect_s"] is not None]},
        "Canary weight vs time to detect, precision regression",
        "canary weight (share of traffic)",
        "time to detect (s)",
        logx=False,
    )
    caught = [x for x in sw if x["caught_by_canary"] == x["runs"]]
    c5b = (
        "Against the subtle precision regression the canary's weight is the trade-off: "
        + ", ".join(
            f"{x['weight']:.0%}: caught before promotion in {x['caught_by_canary']}/{x['runs']} runs, {x['wrong']:,.0f} wrong"
            for x in sw
        )
        + (
            f"; the smallest weight that always catches it inside the bake is {caught[0]['weight']:.0%}."
            if caught
            else "; no weight tried catches it inside the bake in every run."
        )
    )
    rows5 = []
    for n in names:
        for f in ro["failures"]:
            v = res[n][f]
            rows5.append(
                [
                    n,
                    f,
                    f"{v['wrong']:,.0f}",
                    f"{v['refused']:,.0f}",
                    f"{v['detected']}/{v['runs']}",
                    _fmt(v["time_to_detect_s"]),
                    _fmt(v["time_to_rollback_s"]),
                    v["peak_gpus"],
                    f"{v['gpu_hours']:.1f}",
                ]
            )
    dr, br = res["design"], res[best]
    dw = sum(v["wrong"] + v["refused"] for v in dr.values())
    bw = sum(v["wrong"] + v["refused"] for v in br.values())
    verdict = "fewer" if dw < bw else ("as many" if dw == bw else "more")
    c5 = (
        f"The design ({dz['label']}: {dz['spec']['strategy']}, bake {dz['spec']['bake_s']:.0f} s) answers {dw:,.0f} requests wrong "
        f"or refuses them across the failures, {verdict} than the strongest built-in strategy, {best} ({bw:,.0f}); "
        f"it holds at most {max(v['peak_gpus'] for v in dr.values())} GPUs against {max(v['peak_gpus'] for v in br.values())}, "
        f"and rolls back a good release in {dr['none']['rolled_back']} of {dr['none']['runs']} runs. "
        f"Blue/green needs {res['bluegreen']['none']['peak_gpus']} GPUs for an 8-replica fleet; the precision regression is "
        f"detected in {sum(res[n]['precision']['detected'] for n in names)} of {sum(res[n]['precision']['runs'] for n in names)} runs."
    )
    secs.append(
        Section(
            "5. Design a rollback strategy for a breaking model change",
            fig_html(fig5, "l10wrong")
            + fig_html(fig6, "l10share")
            + table_html(
                [
                    "strategy",
                    "failure",
                    "wrong",
                    "refused",
                    "detected",
                    "time to detect",
                    "time to roll back",
                    "peak GPUs",
                    "GPU-h",
                ],
                rows5,
            ),
            c5,
            "Failures (assumptions, stated): "
            + "; ".join(f"{k}: {v}" for k, v in ro["failures"].items())
            + ". `--design FILE` (strategy, canary_weight, bake_s, auto_rollback, rollback_delay_s, drift_z, drift_window_s, failure) changes the 'design' rows.",
        )
    )
    findings.append(c5)
    secs.append(
        Section(
            "5b. The canary's weight: detection against exposure",
            fig_html(fig7, "l10w1") + fig_html(fig8, "l10w2"),
            c5b,
        )
    )
    findings.append(c5b)
    sub = "Seed section 10, every activity run now: files built and inspected in artifacts/, rollouts simulated with the cluster invariants checked."
    return render_page(f"Lab 10: {TITLE}", secs, findings=findings, subtitle=sub)
