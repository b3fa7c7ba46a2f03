"""`gpuinfra precision` (table, train, accuracy), `gpuinfra rollout` (run, compare) and `gpuinfra security`
(isolation, blast, abuse): parse, call the library, print. Exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gpuinfra.cli._common import _console
from gpuinfra.units import check_all, check_seed, parallelism_checks

out = _console(highlight=False, soft_wrap=True)
precision_app = typer.Typer(help="Memory, speed and published accuracy per precision.", no_args_is_help=True)
rollout_app = typer.Typer(
    help="Roll a model version out across replicas; silent failures; rollback.", no_args_is_help=True
)
security_app = typer.Typer(help="Isolation per sharing mode, blast radius, abuse guardrails.", no_args_is_help=True)


def _table(title: str, cols: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=escape(title))
    for c in cols:
        t.add_column(escape(c))
    for r in rows:
        t.add_row(*[escape(str(x)) for x in r])
    return t


@precision_app.command("table")
def precision_table_cmd(
    model: Annotated[str, typer.Option("--model", help="Llama-3-8B, Llama-2-7B or Llama-3-70B.")] = "Llama-3-8B",
    gpu: Annotated[str, typer.Option("--gpu", help="A GPU of the catalog.")] = "H100-SXM",
    batch: Annotated[int, typer.Option("--batch", help="Decode batch (sequences).")] = 16,
    context: Annotated[int, typer.Option("--context", help="Tokens in each sequence's KV cache.")] = 2048,
    group_size: Annotated[int, typer.Option("--group-size", help="int4 quantisation group.")] = 128,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Weights, KV cache, fit, decode throughput and prefill time at each precision the GPU has (roofline)."""
    from gpuinfra.models.precision import model_shape, precision_table

    rows = precision_table(model_shape(model), gpu, batch=batch, context=context, prompt=context, group_size=group_size)
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], indent=1))
        return
    out.print(
        _table(
            f"{model} on one {gpu}: batch {batch}, context {context} (roofline bound)",
            [
                "precision",
                "bits/weight",
                "weights GB",
                "KV GB",
                "fits",
                "decode tok/s",
                "bound",
                "serving-model tok/s",
                "prefill ms",
            ],
            [
                [
                    r.precision,
                    f"{r.bits_per_weight:.3g}",
                    f"{r.weight_bytes / 1e9:.2f}",
                    f"{r.kv_bytes / 1e9:.2f}",
                    "yes" if r.fits else f"no ({r.gpus_needed} GPUs)",
                    f"{r.decode_tokens_per_s:,.0f}",
                    r.decode_bound,
                    "-" if r.serving_decode_tokens_per_s is None else f"{r.serving_decode_tokens_per_s:,.0f}",
                    f"{r.prefill_s * 1e3:.1f}",
                ]
                for r in rows
            ],
        )
    )


@precision_app.command("train")
def precision_train_cmd(
    model: Annotated[str, typer.Option("--model", help="gpt3-1.3b, llama2-7b, llama2-70b or gpt3-175b.")] = "llama2-7b",
    node: Annotated[
        str, typer.Option("--node", help="A built-in node topology (dgx-h100, dgx-a100, ...).")
    ] = "dgx-h100",
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel degree.")] = 2,
    pp: Annotated[int, typer.Option("--pp", help="Pipeline-parallel degree.")] = 1,
    dp: Annotated[int, typer.Option("--dp", help="Data-parallel degree.")] = 4,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Sequences per micro-batch.")] = 1,
    microbatches: Annotated[int, typer.Option("--microbatches", help="Micro-batches per step.")] = 4,
    seq: Annotated[int, typer.Option("--seq", help="Tokens per sequence.")] = 4096,
    zero: Annotated[int, typer.Option("--zero", help="ZeRO stage 0-3 (FSDP FULL_SHARD = 3).")] = 0,
    recompute: Annotated[str, typer.Option("--recompute", help="none, selective or full.")] = "none",
    flash: Annotated[bool, typer.Option("--flash/--no-flash", help="FlashAttention.")] = True,
    cuda_graphs: Annotated[bool, typer.Option("--cuda-graphs/--no-cuda-graphs")] = False,
    efficiency: Annotated[float, typer.Option("--efficiency", help="Fraction of the roofline achieved.")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One training configuration at every precision (fp32, bf16, fp16, fp8): memory per GPU, fit,
    step time, tokens/s, MFU and what the precision asks for stability (models/train_config)."""
    from dataclasses import replace

    from gpuinfra.errors import UserError
    from gpuinfra.models import train_config as tc
    from gpuinfra.models.scaling import model_spec
    from gpuinfra.models.topology import builtin

    check_all(parallelism_checks(tp, pp, micro_batch, microbatches, seq))
    m, topo = model_spec(model), builtin(node)
    if not 0 < efficiency <= 1:
        raise UserError("efficiency must be in (0, 1]", where="--efficiency")
    base = tc.TrainConfig(tp, pp, dp, micro_batch, microbatches, seq, "bf16", zero, recompute, flash, cuda_graphs)
    base = replace(base, efficiency=efficiency)
    rows = []
    for p in tc.TRAIN_PRECISIONS:
        c = replace(base, precision=p)
        try:
            mem, st = tc.memory(m, topo.gpu, c), tc.step(m, topo, c)
        except UserError as e:
            if "tensor cores" not in e.what and "BF16" not in e.what:
                raise
            rows.append({"precision": p, "refused": e.what})
            continue
        rows.append(
            {"precision": p, "memory": mem.as_dict(), "step": st.as_dict(), "stability": tc.precision_stability(p)}
        )
    if as_json:
        print(json.dumps({"model": model, "node": node, "config": base.__dict__, "rows": rows}, indent=1))
        return
    out.print(
        _table(
            f"{model} on {node}: tp {tp} pp {pp} dp {dp}, micro-batch {micro_batch} x {microbatches}, seq {seq}, "
            f"ZeRO {zero}, recompute {recompute}, FlashAttention {'on' if flash else 'off'}, "
            f"CUDA graphs {'on' if cuda_graphs else 'off'}",
            ["precision", "GiB/GPU", "fits", "step s", "tokens/s", "MFU (own peak)", "scaling", "unit roundoff"],
            [
                [r["precision"], "refused: " + r["refused"], "", "", "", "", "", ""]
                if "refused" in r
                else [
                    r["precision"],
                    f"{r['memory']['total_gib']:.1f}",
                    "yes" if r["memory"]["fits"] else "OOM",
                    f"{r['step']['step_s']:.3f}",
                    f"{r['step']['tokens_per_s']:,.0f}",
                    f"{100 * r['step']['mfu']:.1f} %",
                    r["stability"]["scaling"],
                    f"{r['stability']['unit_roundoff']:.3g}",
                ]
                for r in rows
            ],
        )
    )


@precision_app.command("accuracy")
def precision_accuracy_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Published perplexity deltas of quantised models (packaged data, one source per row)."""
    from dataclasses import asdict

    from gpuinfra.models.precision import accuracy_deltas

    rows = accuracy_deltas()
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
        return
    out.print(
        _table(
            "Perplexity increase vs 16-bit",
            ["model", "method", "bits/w", "delta ppl", "source"],
            [[r.model, r.method, r.bits_per_weight or "", f"+{r.delta:.4g}", r.source[:70]] for r in rows],
        )
    )


def _rollout_cfg(strategy: str, failure: str, replicas: int, rate: float, bake_s: float, weight: float, hours: float):
    from gpuinfra.errors import UserError, did_you_mean
    from gpuinfra.sim.rollout import FAILURES, RolloutConfig, Strategy

    if failure not in FAILURES:
        raise UserError(
            f"unknown failure '{failure}'",
            where="--failure",
            expected=", ".join(FAILURES),
            fix=did_you_mean(failure, FAILURES) or "pick one",
        )
    return RolloutConfig(
        replicas=replicas,
        rate_rps=rate,
        horizon_s=hours * 3600,
        strategy=Strategy(strategy, canary_weight=weight, bake_s=bake_s),
        failure=FAILURES[failure],
    )


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


@rollout_app.command("run")
def rollout_run_cmd(
    strategy: Annotated[str, typer.Option("--strategy", help="recreate, rolling, canary or bluegreen.")] = "canary",
    failure: Annotated[str, typer.Option("--failure", help="none, precision, tokenizer or version.")] = "tokenizer",
    replicas: Annotated[int, typer.Option("--replicas")] = 8,
    rate: Annotated[float, typer.Option("--rate", help="Requests per second.")] = 40.0,
    bake_s: Annotated[float, typer.Option("--bake-s", help="Canary analysis / blue kept after switch (s).")] = 1800.0,
    weight: Annotated[float, typer.Option("--canary-weight")] = 0.10,
    hours: Annotated[float, typer.Option("--hours")] = 4.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One rollout: time to detect, to roll back, requests served wrong, GPUs held."""
    from gpuinfra.sim.rollout import simulate_rollout

    check_seed(seed)
    r = simulate_rollout(_rollout_cfg(strategy, failure, replicas, rate, bake_s, weight, hours), seed)
    if as_json:
        print(json.dumps(r.as_dict(), indent=1))
        return
    _print_rollouts([r])


def _print_rollouts(results) -> None:
    rows = []
    for r in results:
        s = r.summary
        q = s["requests"]
        rows.append(
            [
                s["strategy"],
                s["failure"],
                s["detected_by"] or "not detected",
                _fmt_s(s["time_to_detect_s"]),
                _fmt_s(s["time_to_rollback_s"]),
                f"{q['wrong']:,}",
                f"{q['refused']:,}",
                str(s["peak_gpus"]),
                f"{r.gpu_hours:.1f}",
                s["phase"],
            ]
        )
    out.print(
        _table(
            "Rollouts (invariants checked)",
            [
                "strategy",
                "failure",
                "detected by",
                "detect s",
                "rollback s",
                "wrong answers",
                "refused",
                "peak GPUs",
                "GPU-h",
                "end",
            ],
            rows,
        )
    )


@rollout_app.command("compare")
def rollout_compare_cmd(
    failure: Annotated[str, typer.Option("--failure", help="none, precision, tokenizer or version.")] = "tokenizer",
    replicas: Annotated[int, typer.Option("--replicas")] = 8,
    rate: Annotated[float, typer.Option("--rate")] = 40.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every strategy against the same failure and the same traffic seed."""
    from gpuinfra.sim.rollout import STRATEGIES, simulate_rollout

    check_seed(seed)
    rs = [simulate_rollout(_rollout_cfg(k, failure, replicas, rate, 1800.0, 0.10, 4.0), seed) for k in STRATEGIES]
    if as_json:
        print(json.dumps([r.as_dict() for r in rs], indent=1))
        return
    _print_rollouts(rs)


@security_app.command("isolation")
def security_isolation_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What each sharing mode isolates (memory, faults, performance, side channels), with sources."""
    from dataclasses import asdict

    from gpuinfra.models.blast import isolation_table

    rows = isolation_table()
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
        return
    out.print(
        _table(
            "Isolation boundaries per sharing mode",
            ["mode", "boundary", "level", "co-tenant can be", "source"],
            [[r.mode, r.boundary, r.level, r.effect_on_cotenant, r.source[:60]] for r in rows],
        )
    )


@security_app.command("blast")
def security_blast_cmd(
    file: Annotated[Path, typer.Argument(help="A boundaries YAML (see examples/security/).")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The workload assumed compromised.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Blast radius of a compromised endpoint: secrets, models, data, nodes, co-tenants, network paths."""
    from dataclasses import asdict

    from gpuinfra.io.deploy_schema import load_estate
    from gpuinfra.models.blast import blast_radius, summarize

    r = blast_radius(load_estate(file), endpoint)
    if as_json:
        print(json.dumps({"summary": summarize(r), "reached": [asdict(x) for x in r]}, indent=1))
        return
    out.print(
        _table(
            f"Blast radius of {endpoint}",
            ["category", "asset", "held/affected", "path", "boundary"],
            [[x.category, x.asset, "held" if x.control else x.effect, " -> ".join(x.path[1:]), x.how] for x in r],
        )
    )
    out.print(escape(", ".join(f"{k}: {v}" for k, v in summarize(r).items())))


@security_app.command("abuse")
def security_abuse_cmd(
    rate_rps: Annotated[float | None, typer.Option("--rate-rps", help="Token bucket refill per key (req/s).")] = None,
    burst: Annotated[int | None, typer.Option("--burst", help="Token bucket capacity per key.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Output cap per request.")] = None,
    quota: Annotated[int | None, typer.Option("--quota", help="Output tokens per key per day.")] = None,
    abuse_rps: Annotated[float, typer.Option("--abuse-rps", help="Requests/s of the abusive key.")] = 5.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One hour of a shared endpoint with one abusive key, with and without the given guardrails."""
    from gpuinfra.sim.abuse import AbuseConfig, Guardrails, simulate_abuse

    check_seed(seed)
    g = Guardrails(rate_rps, burst, max_tokens, quota)
    runs = {"no guardrails": simulate_abuse(AbuseConfig(abuse_rps=abuse_rps), seed)}
    if g.any:
        runs["with guardrails"] = simulate_abuse(AbuseConfig(abuse_rps=abuse_rps, guardrails=g), seed)
    if as_json:
        print(json.dumps({k: v.as_dict() for k, v in runs.items()}, indent=1))
        return
    rows = []
    for k, r in runs.items():
        s = r.summary
        rows.append(
            [
                k,
                f"{s['legit_success_ratio']:.1%}",
                _fmt_s(s["legit"]["wait_p99_s"] and s["legit"]["wait_p99_s"] * 1000),
                f"{s['abuse']['served']:,}",
                f"{s['abuse']['rate_limited']:,}",
                f"{r.abuse_gpu_hours:.2f}",
                f"{r.gpu_hours:.1f}",
            ]
        )
    out.print(
        _table(
            "Abuse of a shared endpoint (1 h, invariants checked)",
            [
                "run",
                "legit served",
                "legit p99 wait ms",
                "abuse served",
                "abuse 429",
                "abuse GPU-h",
                "GPU-h held",
            ],
            rows,
        )
    )
