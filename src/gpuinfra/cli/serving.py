"""``gpuinfra serving``: LLM step times, replica memory and request-level serving simulations."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpuinfra.cli._common import _console
from gpuinfra.errors import UserError
from gpuinfra.units import MAX_SEED, check_all

serving_app = typer.Typer(
    help="LLM serving: step times from the roofline, KV memory, batching policies, autoscaling.",
    no_args_is_help=True,
)
out = _console()

Model = Annotated[str, typer.Option("--model", help="Built-in model (gpuinfra serving models) or a config.json.")]
Gpu = Annotated[str, typer.Option("--gpu", help="GPU model from the catalog.")]
Precision = Annotated[str, typer.Option("--precision", help="Weights/compute precision: bf16, fp16, fp8.")]
Tp = Annotated[int, typer.Option("--tp", help="Tensor-parallel GPUs per replica.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o)))


@serving_app.command("models")
def models(as_json: AsJson = False) -> None:
    """List the built-in model profiles (from each model's published config.json)."""
    from gpuinfra.catalog.llms import llm_models

    rows = [
        {
            "name": m.name,
            "layers": m.layers,
            "hidden": m.hidden,
            "heads": m.heads,
            "kv_heads": m.kv_heads,
            "intermediate": m.intermediate,
            "vocab": m.vocab,
            "experts": m.experts,
            "params_b": round(m.params / 1e9, 2),
            "kv_kib_per_token_bf16": m.kv_bytes_per_token() / 1024,
            "source": m.source,
        }
        for m in llm_models()
    ]
    if as_json:
        _print_json(rows)
        return
    t = Table("model", "layers", "hidden", "heads/kv", "ffn", "vocab", "experts", "params (B)", "KV KiB/token")
    for r in rows:
        t.add_row(
            r["name"],
            str(r["layers"]),
            str(r["hidden"]),
            f"{r['heads']}/{r['kv_heads']}",
            str(r["intermediate"]),
            str(r["vocab"]),
            str(r["experts"]),
            f"{r['params_b']:.2f}",
            f"{r['kv_kib_per_token_bf16']:.0f}",
        )
    out.print(t)


@serving_app.command("step")
def step(
    model: Model = "llama-2-7b",
    gpu: Gpu = "A100-80GB",
    precision: Precision = "bf16",
    tp: Tp = 1,
    batch_tokens: Annotated[
        int, typer.Option("--batch-tokens", help="Decode: sequences; prefill: prompt tokens.")
    ] = 128,
    context: Annotated[int, typer.Option("--context", help="Tokens already in each sequence's KV cache.")] = 1024,
    phase: Annotated[str, typer.Option("--phase", help="decode or prefill.")] = "decode",
    as_json: AsJson = False,
) -> None:
    """Time of one engine step with a per-operator breakdown (ms), the memory breakdown and the knee."""
    from gpuinfra.models.serving import knee_batch, memory_breakdown, step_model

    if batch_tokens < 1 or context < 0:
        raise UserError("--batch-tokens must be >= 1 and --context >= 0", where="--batch-tokens/--context")
    sm = step_model(model, gpu, precision, tp)
    if phase == "decode":
        b = sm.decode_step(batch_tokens, context)
        tokens_out = batch_tokens
    elif phase == "prefill":
        b = sm.prefill_step(batch_tokens)
        tokens_out = 1
    else:
        raise UserError(f"unknown phase '{phase}'", where="--phase", expected="decode or prefill")
    mem = memory_breakdown(sm.s)
    res = {
        "model": sm.s.model.name,
        "gpu": sm.s.gpu.name,
        "precision": precision,
        "tp": tp,
        "phase": phase,
        "batch_tokens": batch_tokens,
        "context": context,
        "step_ms": b.total_s * 1e3,
        "breakdown_ms": b.as_ms(),
        "tokens_per_s": tokens_out / b.total_s,
        "kv_bytes_per_token": sm.s.kv_bytes_per_token,
        "decode_knee_batch": knee_batch(sm, context),
        "memory_gib": mem.as_dict(),
        "assumptions": "roofline lower bound (no efficiency factor); 1 ms CPU overhead per step; "
        "decode steps replay CUDA graphs (no launch overhead); see models/serving.py",
    }
    if as_json:
        _print_json(res)
        return
    out.print(
        f"{escape(res['model'])} on {tp} x {escape(res['gpu'])} ({precision}), {phase}, "
        f"{batch_tokens} {'sequences' if phase == 'decode' else 'prompt tokens'}: [bold]{res['step_ms']:.3f} ms[/]"
    )
    t = Table("operator", "ms", "bound")
    for k, v in res["breakdown_ms"].items():
        if k.endswith("_ms") and k != "total_ms":
            t.add_row(k[:-3], f"{v:.3f}", b.bound.get(k[:-3], ""))
    out.print(t)
    if not mem.fits:
        out.print(
            f"[bold yellow]does not fit:[/] weights {mem.weights_gib:.1f} GiB per GPU leave no KV cache on "
            f"{escape(res['gpu'])}; short by {mem.short_by_gib:.1f} GiB per GPU (raise --tp or use --precision fp8)"
        )
    out.print(
        f"KV {res['kv_bytes_per_token'] / 1024:.0f} KiB/token; KV cache {mem.kv_cache_gib:.1f} GiB/GPU = "
        f"{mem.kv_tokens:,} tokens; decode knee at batch {res['decode_knee_batch']}"
    )


def _rate(text: str) -> float:
    if text.strip().lower() in ("inf", "infinity", "max"):
        return math.inf
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"bad rate '{text}'", where="--rate", expected="requests per second, or inf") from None
    if not v > 0:  # NaN too
        raise UserError("rate must be > 0", where="--rate")
    return v


MAX_REQUESTS = 2_000_000
"""Most requests one ``serving run`` generates (request-level simulation: each is an object with
its own events; beyond this the run takes hours and GBs)."""


@serving_app.command("run")
def run(
    model: Model = "llama-3-8b",
    gpu: Gpu = "H100-SXM",
    precision: Precision = "bf16",
    tp: Tp = 1,
    replicas: Annotated[int, typer.Option("--replicas", help="Replicas (the autoscaler's start when one is set).")] = 1,
    rate: Annotated[str, typer.Option("--rate", help="Requests/s, or inf for saturated throughput.")] = "1",
    duration: Annotated[float, typer.Option("--duration", help="Seconds of arrivals.")] = 300.0,
    input_tokens: Annotated[str, typer.Option("--input-tokens", help="N, uniform:A:B or lognormal:MEAN:CV.")] = "1000",
    output_tokens: Annotated[
        str, typer.Option("--output-tokens", help="N, uniform:A:B or lognormal:MEAN:CV.")
    ] = "1000",
    arrival: Annotated[str, typer.Option("--arrival", help="poisson, gamma or diurnal.")] = "poisson",
    cv: Annotated[float, typer.Option("--cv", help="Gamma arrivals: coefficient of variation.")] = 2.0,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="CSV of arrival_s, prompt_tokens, output_tokens.")
    ] = None,
    batching: Annotated[str, typer.Option("--batching", help="single, dynamic, continuous or chunked.")] = "continuous",
    preemption: Annotated[str, typer.Option("--preemption", help="KV preemption: recompute or swap.")] = "recompute",
    autoscaler: Annotated[str, typer.Option("--autoscaler", help="none, hpa, kpa or predictive.")] = "none",
    scale_metric: Annotated[str, typer.Option("--scale-metric", help="HPA: rps, concurrency, queue or kv.")] = "rps",
    scale_target: Annotated[
        float,
        typer.Option("--scale-target", help="Per replica: HPA/predictive metric target; KPA containerConcurrency."),
    ] = 10.0,
    min_replicas: Annotated[int | None, typer.Option("--min-replicas", help="Default 1 (KPA: 0).")] = None,
    max_replicas: Annotated[int, typer.Option("--max-replicas")] = 16,
    n_saturated: Annotated[int, typer.Option("--requests", help="Requests of a --rate inf run.")] = 1000,
    mig_profile: Annotated[
        str | None, typer.Option("--mig-profile", help="Serve each replica on a MIG instance (e.g. 3g.40gb).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: AsJson = False,
) -> None:
    """Simulate replicas serving requests; print latency percentiles, throughput, SLO and cost."""
    from gpuinfra.io.serving_trace import read_request_trace
    from gpuinfra.sim.serving import Autoscaler, Batching, ServingConfig, make_requests, simulate

    r = _rate(rate)
    check_all(
        [
            (duration, "--duration", dict(lo=0, hi=30 * 86400, lo_open=True)),
            (cv, "--cv", dict(lo=0, hi=100, lo_open=True)),
            (scale_target, "--scale-target", dict(lo=0, hi=1e9, lo_open=True)),
            (max_replicas, "--max-replicas", dict(lo=1, hi=10_000)),
            (replicas, "--replicas", dict(lo=0, hi=10_000)),
            (min_replicas, "--min-replicas", dict(lo=0, hi=10_000)),
            (n_saturated, "--requests", dict(lo=1, hi=MAX_REQUESTS)),
            (seed, "--seed", dict(lo=0, hi=MAX_SEED)),
        ]
    )
    if trace is None and math.isfinite(r) and r * duration > MAX_REQUESTS:
        raise UserError(
            f"--rate {r:g} for --duration {duration:g} s is about {r * duration:,.0f} requests",
            where="--rate/--duration",
            expected=f"at most {MAX_REQUESTS:,} requests per run",
            fix="lower --rate or --duration",
        )
    reqs = (
        read_request_trace(trace)
        if trace
        else make_requests(seed, r, duration, input_tokens, output_tokens, arrival, cv, n_saturated)
    )
    if len(reqs) == 0:
        raise UserError("no requests arrived", where="--rate/--duration", fix="raise --rate or --duration")
    lo = min_replicas if min_replicas is not None else (0 if autoscaler == "kpa" else 1)
    a = Autoscaler(
        kind=autoscaler,
        metric=scale_metric,
        target=scale_target,
        container_concurrency=scale_target,
        min_replicas=lo,
        max_replicas=max(max_replicas, replicas),
    )
    cfg = ServingConfig(
        model, gpu, precision, tp, replicas, Batching(kind=batching, preemption=preemption), a, mig_profile=mig_profile
    )
    res = simulate(cfg, reqs, seed)
    d = res.as_dict()
    if as_json:
        _print_json(d)
        return
    t = Table("metric", "p50", "p90", "p99")
    for k in ("ttft_s", "tpot_s", "e2e_s"):
        v = d[k]
        t.add_row(k[:-2] + " (s)", *(f"{v[p]:.4f}" if v[p] is not None else "-" for p in ("p50", "p90", "p99")))
    out.print(t)
    out.print(
        f"{res.completed}/{res.requests} requests; throughput {res.throughput_tok_s:,.0f} output tok/s; "
        f"SLO attainment {res.slo_attainment:.1%}; goodput {res.goodput_rps:.2f} req/s; "
        f"{res.gpu_hours:.2f} GPU-h = ${res.cost_usd:.2f} (${res.usd_per_million_tokens:.2f} per M output tokens); "
        f"preemptions {res.preemptions}; replicas at most {res.max_replicas}; invariants ok: {res.invariants['ok']}"
    )
