"""Lab 9: inference infrastructure and serving: "Running Inference Systems in Production" (seed section 9).

Activities (seed 9.7), each a step below, every number from runs made now:
1. Explain why inference prioritises different guarantees than training: one sequence's decode
   step against the batch knee and a prefill (latency per token, throughput, MFU from the
   roofline step model), and the KV memory that bounds concurrency.
2. Analyse failure tolerance of online against batch inference: the same replica is lost at the
   same moment in an online run (Poisson arrivals with an SLO) and in a batch run (all requests
   queued); what each loses.
3. Design an inference system optimised for latency and cost (``--design FILE``: model, GPU,
   precision, tp, replicas, batching, autoscaler), evaluated against the four runtimes' batching
   policies as baselines on the same arrivals; headline against the strongest baseline.
4. Compare cold-start and warm-start strategies: the cold-start pipeline per storage tier, then
   scale-to-zero (cold and warm start), keep-one-warm and fixed peak capacity under bursts;
   and where scaling on request rate alone fails: long prompts (against scaling on concurrency)
   and memory-bound replicas (against scaling on KV-cache use).
5. Present: the report.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gpuinfra.errors import UserError
from gpuinfra.io.scenario_load import read_design_yaml
from gpuinfra.labs import write_lab
from gpuinfra.models.serving import ServingSetup, StepModel, knee_batch, memory_breakdown, peak_flops
from gpuinfra.report.figs import bar_figure, line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html
from gpuinfra.report.wording import ceil_num
from gpuinfra.sim.serving import (
    STORAGE_BW,
    WARM_START,
    Autoscaler,
    Batching,
    ColdStart,
    Requests,
    ServingConfig,
    Slo,
    make_requests,
    simulate,
    summary_line,
)

TITLE = "Running Inference Systems in Production"
MODEL, GPU = "llama-3-8b", "H100-SXM"
IN_TOK, OUT_TOK = "lognormal:600:1", "lognormal:200:1"
"""Prompt and output lengths: log-normal, mean 600 / 200 tokens, CV 1 [assumption: a chat mix
between ShareGPT's 202/179 and the Azure conversation trace's 1,155/211 means, facts/serving.md]."""
SLO = Slo(ttft_s=2.0, tpot_s=0.2)
RATE = 12.0
"""Requests/s of the design activity (bursty: Gamma inter-arrivals, CV 2)."""


def _cfg(**kw) -> ServingConfig:
    base = {"model": MODEL, "gpu": GPU, "slo": SLO}
    base.update(kw)
    return ServingConfig(**base)


# -- 1 --------------------------------------------------------------------------------------------
def explain() -> dict[str, Any]:
    s = ServingSetup.make(MODEL, GPU)
    sm = StepModel(s)
    peak = peak_flops(s.gpu, "bf16")
    knee = knee_batch(sm, 1024)
    curve = []
    for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        st = sm.decode_step(b, 1024)
        curve.append({"batch": b, "step_ms": st.total_s * 1e3, "tok_s": b / st.total_s})
    d1 = sm.decode_step(1, 1024)
    pre = sm.prefill_step(2048)
    mfu = {
        "decode_batch_1": 2 * s.model.params / d1.total_s / peak,
        "decode_at_knee": 2 * s.model.params * knee / sm.decode_step(knee, 1024).total_s / peak,
        "prefill_2048": 2 * s.model.params * 2048 / pre.total_s / peak,
    }
    mem = memory_breakdown(s)
    per_seq_4k = s.kv_bytes_per_token * 4096 / 2**30
    mem7 = memory_breakdown(ServingSetup.make("llama-2-7b", GPU))
    return {
        "decode_1_ms": d1.total_s * 1e3,
        "prefill_2048_ms": pre.total_s * 1e3,
        "knee": knee,
        "curve": curve,
        "mfu": mfu,
        "memory": mem.as_dict(),
        "kv_gib_per_4k_seq": per_seq_4k,
        "concurrent_4k_seqs": int(mem.kv_tokens // 4096),
        "concurrent_4k_seqs_llama2_7b": int(mem7.kv_tokens // 4096),
    }


# -- 2 --------------------------------------------------------------------------------------------
def failure(quick: bool) -> dict[str, Any]:
    horizon = 120.0 if quick else 300.0
    reps = 4
    cs = ColdStart(storage="local-nvme", image_gb=0.0)
    fail_t = horizon / 2
    online_reqs = make_requests(11, 12.0, horizon, IN_TOK, OUT_TOK)
    batch_reqs = make_requests(11, math.inf, horizon, IN_TOK, OUT_TOK, n_saturated=len(online_reqs))
    out: dict[str, Any] = {"fail_at_s": fail_t, "replicas": reps, "cold_start_s": cs.total_s(16.06e9)}
    for name, rq in (("online", online_reqs), ("batch", batch_reqs)):
        base = simulate(_cfg(replicas=reps, cold_start=cs), rq, 11, keep_requests=True)
        ft = fail_t if name == "online" else base.duration_s / 2
        hit = simulate(_cfg(replicas=reps, cold_start=cs, fail_at=((ft, 0),)), rq, 11, keep_requests=True)
        pb, ph = base.per_request, hit.per_request
        again = ph["attempts"] > 1
        extra = (ph["done_s"] - pb["done_s"])[again]
        late = (ph["done_s"] - ph["arrival_s"])[again]
        out[name] = {
            "requests": base.requests,
            "base": summary_line(base) | {"duration_s": base.duration_s},
            "failed": summary_line(hit) | {"duration_s": hit.duration_s, "retried": hit.retried},
            "fail_at_s": ft,
            "retried_extra_latency_mean_s": float(extra.mean()) if len(extra) else 0.0,
            "retried_extra_latency_max_s": float(extra.max()) if len(extra) else 0.0,
            "retried_e2e_p50_s": float(np.median(late)) if len(late) else 0.0,
        }
    return out


# -- 3 --------------------------------------------------------------------------------------------
DESIGN_KEYS = {"model", "gpu", "precision", "tp", "replicas", "batching", "autoscaler", "cold_start", "mig_profile"}


MAX_REPLICAS = 64
"""Replicas a design may ask for: the lab's arrivals (tens of requests a second) are served by a
handful; 64 keeps a mistaken design from running for hours."""


def _check_numbers(raw: dict, label: str) -> None:
    """Every number in the design finite and non-negative; replicas and tp whole and in range."""
    import math

    def walk(v, path):
        if isinstance(v, bool):
            return
        if isinstance(v, (int, float)) and (not math.isfinite(v) or v < 0):
            raise UserError(f"{v} is not a finite non-negative number", where=f"{label}: {path}")
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}.{k}" if path else str(k))
        if isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]")

    walk(raw, "")
    r = raw.get("replicas", 2)
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_REPLICAS:
        raise UserError(
            f"replicas: {r!r}", where=f"{label}: replicas", expected=f"a whole number from 1 to {MAX_REPLICAS}"
        )
    tp = raw.get("tp", 1)
    if isinstance(tp, bool) or tp not in (1, 2, 4, 8):
        raise UserError(f"tp {tp!r}", where=f"{label}: tp", expected="1, 2, 4 or 8 (GPUs per replica, within a node)")


def load_design(path: Path | None) -> tuple[dict, str]:
    d: dict[str, Any] = {
        "precision": "fp8",
        "replicas": 2,
        "batching": {"kind": "chunked", "chunk_size": 512},
        "autoscaler": {"kind": "none"},
    }
    if path is None:
        return d, "the built-in design (fp8 weights, chunked prefill, 2 replicas)"
    raw = read_design_yaml(Path(path), lab=9) or {}
    if not isinstance(raw, dict):
        raise UserError("the design is not a mapping", where=str(path), expected=", ".join(sorted(DESIGN_KEYS)))
    unknown = set(raw) - DESIGN_KEYS
    if unknown:
        raise UserError(
            f"unknown design keys {sorted(unknown)}", where=str(path), expected=", ".join(sorted(DESIGN_KEYS))
        )
    _check_numbers(raw, str(path))
    for k, typ in (("batching", Batching), ("autoscaler", Autoscaler), ("cold_start", ColdStart)):
        v = raw.get(k)
        if v is None:
            continue
        fields = set(typ.__dataclass_fields__)
        if not isinstance(v, dict) or set(v) - fields:
            bad = sorted(set(v) - fields) if isinstance(v, dict) else v
            raise UserError(f"{k}: unknown keys {bad}", where=f"{path}: {k}", expected=", ".join(sorted(fields)))
    return raw, str(path)


def _build(spec: dict) -> ServingConfig:
    b = dict(spec.get("batching") or {})
    if "preferred_batch_sizes" in b:
        b["preferred_batch_sizes"] = tuple(b["preferred_batch_sizes"])
    try:
        return _cfg(
            model=spec.get("model", MODEL),
            gpu=spec.get("gpu", GPU),
            precision=spec.get("precision", "bf16"),
            tp=int(spec.get("tp", 1)),
            replicas=int(spec.get("replicas", 1)),
            batching=Batching(**b),
            autoscaler=Autoscaler(**(spec.get("autoscaler") or {})),
            cold_start=ColdStart(**(spec.get("cold_start") or {})),
            mig_profile=spec.get("mig_profile"),
        )
    except TypeError as e:
        raise UserError(f"bad design value: {e}", where="--design") from None


def design_activity(spec: dict, label: str, quick: bool) -> dict[str, Any]:
    horizon = 180.0 if quick else 600.0
    rq = make_requests(21, RATE, horizon, IN_TOK, OUT_TOK, arrival="gamma", cv=2.0)
    reps = 3
    baselines = {
        "one at a time": Batching(kind="single"),
        "Triton dynamic (max 8, 5 ms)": Batching(kind="dynamic", max_batch_size=8, max_queue_delay_s=0.005),
        "vLLM continuous": Batching(kind="continuous"),
        "Sarathi chunked (512)": Batching(kind="chunked", chunk_size=512),
    }
    rows = {}
    for name, b in baselines.items():
        r = simulate(_cfg(replicas=reps, batching=b), rq, 21)
        rows[name] = summary_line(r) | {"replicas": reps, "peak_kv": r.peak_kv_utilization}
    cfg = _build(spec)
    r = simulate(cfg, rq, 21)
    chosen = summary_line(r) | {"replicas": r.max_replicas, "peak_kv": r.peak_kv_utilization}
    # strongest baseline: the highest SLO attainment, then the lowest cost per token
    best = max(rows, key=lambda k: (round(rows[k]["slo_attainment"], 3), -rows[k]["usd_per_million_tokens"]))
    return {
        "label": label,
        "spec": spec,
        "requests": len(rq),
        "rate": RATE,
        "baselines": rows,
        "design": chosen,
        "strongest": best,
    }


# -- 4 --------------------------------------------------------------------------------------------
SCALING_RUNS = (
    "short prompts, HPA on request rate",
    "long prompts, HPA on request rate",
    "long prompts, HPA on concurrency",
    "long outputs (KV-bound), HPA on request rate",
    "long outputs (KV-bound), HPA on KV-cache use",
)
KV_MODEL, KV_GPU = "llama-2-7b", "A100-80GB"
"""The memory-bound case: a model without GQA (0.5 MiB of KV per token) on an 80 GB A100."""


def cold_starts(quick: bool) -> dict[str, Any]:
    phases = {}
    for m in ("llama-3-8b", "llama-3-70b"):
        s = ServingSetup.make(m, GPU)
        for tier in STORAGE_BW:
            cs = ColdStart(storage=tier, provision_s=0.0)
            phases[f"{m} / {tier}"] = cs.phases(s.model.weight_bytes("bf16"))
    # bursts: quiet periods with bursts of traffic
    horizon = 900.0 if quick else 1800.0
    burst = []
    t = 30.0
    rng_arr = []
    base = make_requests(31, 6.0, 60.0, IN_TOK, OUT_TOK)
    while t < horizon:
        burst.append(t)
        rng_arr.append((base.arrival_s + t, base.prompt, base.output))
        t += 300.0
    rq = Requests(
        np.concatenate([a for a, _, _ in rng_arr]),
        np.concatenate([p for _, p, _ in rng_arr]),
        np.concatenate([o for _, _, o in rng_arr]),
    )
    kpa = Autoscaler(kind="kpa", container_concurrency=16, min_replicas=0, max_replicas=6)
    cold = ColdStart(provision_s=0.0, storage="s3")
    strategies = {
        "scale to zero, cold start (S3, image pull)": _cfg(replicas=0, autoscaler=kpa, cold_start=cold),
        "scale to zero, warm start (cached image, weights in host memory)": _cfg(
            replicas=0, autoscaler=kpa, cold_start=WARM_START
        ),
        "keep one warm (min 1), cold scale-out": _cfg(
            replicas=1, autoscaler=replace(kpa, min_replicas=1), cold_start=cold
        ),
        "fixed peak capacity (3 replicas)": _cfg(replicas=3),
    }
    res = {}
    for name, c in strategies.items():
        r = simulate(c, rq, 31)
        res[name] = summary_line(r) | {"max_replicas": r.max_replicas, "cold_start_s": r.cold_start_s["total_s"]}
    # request rate alone: HPA on rps tuned on short prompts, then long prompts at the same rate
    hpa_h = 600.0 if quick else 1200.0
    short = make_requests(41, 10.0, hpa_h, "lognormal:300:0.5", "lognormal:150:0.5")
    long_ = make_requests(41, 10.0, hpa_h, "lognormal:8000:0.5", "lognormal:150:0.5")
    cs = ColdStart(storage="local-nvme", image_gb=0.0)
    rps = Autoscaler(kind="hpa", metric="rps", target=5.0, min_replicas=1, max_replicas=8)
    conc = Autoscaler(kind="hpa", metric="concurrency", target=16.0, min_replicas=1, max_replicas=8)
    scaling = {}
    for name, rqs, a in zip(SCALING_RUNS, (short, long_, long_), (rps, rps, conc)):
        r = simulate(_cfg(replicas=2, autoscaler=a, cold_start=cs), rqs, 41)
        scaling[name] = summary_line(r) | {"max_replicas": r.max_replicas, "timeline": r.replicas_timeline}
    # memory-bound: few requests per second, each holding thousands of tokens of KV cache
    kv_rq = make_requests(43, 1.5, hpa_h, "lognormal:1000:0.5", "lognormal:3000:0.5")
    kv = Autoscaler(kind="hpa", metric="kv", target=0.6, min_replicas=1, max_replicas=8)
    for name, a in zip(SCALING_RUNS[3:], (rps, kv)):
        r = simulate(_cfg(model=KV_MODEL, gpu=KV_GPU, replicas=1, autoscaler=a, cold_start=cs), kv_rq, 43)
        scaling[name] = summary_line(r) | {
            "max_replicas": r.max_replicas,
            "timeline": r.replicas_timeline,
            "preemptions": r.preemptions,
        }
    return {"phases": phases, "bursts_at_s": burst, "requests": len(rq), "strategies": res, "scaling": scaling}


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    """Run every activity; write summary.json and report.html under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec, label = load_design(design)
    s = {
        "schema": "gpuinfra.lab9/1",
        "quick": quick,
        "model": MODEL,
        "gpu": GPU,
        "explain": explain(),
        "failure": failure(quick),
        "design": design_activity(spec, label, quick),
        "cold": cold_starts(quick),
    }
    return write_lab(out_dir, s, render(s))


def _fmt_row(name: str, r: dict) -> list:
    return [
        name,
        f"{r['ttft_p50_s']:.3f}" if r["ttft_p50_s"] is not None else "-",
        f"{r['ttft_p99_s']:.3f}" if r["ttft_p99_s"] is not None else "-",
        f"{r['tpot_p99_s'] * 1e3:.1f}" if r["tpot_p99_s"] is not None else "-",
        f"{r['slo_attainment']:.1%}",
        f"{r['goodput_rps']:.2f}",
        f"{r['throughput_tok_s']:,.0f}",
        f"{r['usd_per_million_tokens']:.2f}",
    ]


HEAD = ["run", "TTFT p50 s", "TTFT p99 s", "TPOT p99 ms", "SLO met", "goodput req/s", "output tok/s", "USD / M tok"]


def render(s: dict[str, Any]) -> str:
    f: list[str] = []
    secs: list[Section] = []
    ex = s["explain"]
    c1 = (
        f"Inference is latency-bound and memory-bound where training is throughput-bound: one sequence's decode step of "
        f"{s['model']} on {s['gpu']} takes {ex['decode_1_ms']:.2f} ms and uses {ex['mfu']['decode_batch_1']:.1%} of the "
        f"GPU's FLOPs (it reads every weight for one token); batching to the knee ({ex['knee']} sequences) raises that to "
        f"{ex['mfu']['decode_at_knee']:.0%}, and a 2,048-token prefill reaches {ex['mfu']['prefill_2048']:.0%}. "
        f"Concurrency is bounded by KV memory: {ex['memory']['kv_cache_gib']:.1f} GiB of KV cache hold "
        f"{ex['concurrent_4k_seqs']} sequences of 4,096 tokens ({ex['kv_gib_per_4k_seq']:.2f} GiB each) against "
        f"{ex['concurrent_4k_seqs_llama2_7b']} for Llama-2-7B without GQA."
    )
    fig1 = line_figure(
        {
            "step time (ms)": [(p["batch"], p["step_ms"]) for p in ex["curve"]],
            "throughput (thousand tokens/s)": [(p["batch"], p["tok_s"] / 1e3) for p in ex["curve"]],
        },
        f"Decode on {s['gpu']}: latency and throughput against batch size (1,024-token contexts)",
        "sequences in the batch (log scale)",
        "step time (ms) / throughput (thousand tokens/s)",
    )
    secs.append(
        Section(
            "1. Explain: what inference guarantees that training does not",
            fig_html(fig1, "decode"),
            c1,
            "gpuinfra.models.serving: roofline per operator; MFU = 2 x parameters x tokens/s over the dense BF16 peak.",
        )
    )
    f.append(c1)
    fl = s["failure"]
    on, ba = fl["online"], fl["batch"]
    c2 = (
        f"Losing one of {fl['replicas']} replicas mid-run: online, the {on['failed']['retried']} requests in flight on it "
        f"start over and finish {on['retried_extra_latency_mean_s']:.1f} s later on average (up to "
        f"{ceil_num(on['retried_extra_latency_max_s'], 1)} s), each one a user waiting; SLO attainment "
        f"{on['base']['slo_attainment']:.1%} -> {on['failed']['slo_attainment']:.1%}. Batch, {ba['failed']['retried']} of "
        f"{ba['requests']} requests (queued or running on it) are re-sent and the job ends {ba['failed']['duration_s'] - ba['base']['duration_s']:+.1f} s "
        f"({(ba['failed']['duration_s'] / ba['base']['duration_s'] - 1):+.1%}) later at "
        f"{ba['failed']['gpu_hours'] - ba['base']['gpu_hours']:+.3f} GPU-hours: the loss is throughput and cost, not one "
        f"person's latency, so batch tolerates failure by retrying shards while online needs spare capacity. "
        f"On the same {fl['replicas']} GPUs, the requests cost ${on['base']['usd_per_million_tokens']:.2f} per million "
        f"output tokens served online (GPUs held while arrivals trickle in) and "
        f"${ba['base']['usd_per_million_tokens']:.2f} as a batch (GPUs full): "
        f"{on['base']['usd_per_million_tokens'] / ba['base']['usd_per_million_tokens']:.1f}x for answering within seconds."
    )
    rows2 = [
        _fmt_row(f"{k}, {w}", fl[k][w]) + [f"{fl[k][w]['duration_s']:.0f}"]
        for k in ("online", "batch")
        for w in ("base", "failed")
    ]
    secs.append(Section("2. Analyse: failure tolerance, online vs batch", table_html([*HEAD, "makespan s"], rows2), c2))
    f.append(c2)
    de = s["design"]
    bl = de["baselines"]
    best = de["strongest"]
    d = de["design"]
    rows3 = [_fmt_row(k, v) for k, v in bl.items()] + [_fmt_row(f"design: {de['label']}", d)]
    dslo = d["slo_attainment"] - bl[best]["slo_attainment"]
    dcost = d["usd_per_million_tokens"] / bl[best]["usd_per_million_tokens"] - 1
    c3 = (
        f"On the same {de['requests']} bursty arrivals ({de['rate']:g} req/s, Gamma CV 2), the strongest baseline is "
        f"{best} ({bl[best]['slo_attainment']:.1%} within SLO at ${bl[best]['usd_per_million_tokens']:.2f} per million "
        f"output tokens); the design meets the SLO for {d['slo_attainment']:.1%} ({dslo * 100:+.1f} points) at "
        f"${d['usd_per_million_tokens']:.2f} ({dcost:+.0%}). One at a time, the worst, meets it for "
        f"{bl['one at a time']['slo_attainment']:.1%}."
    )
    labels = list(bl) + ["design"]
    fig3 = bar_figure(
        labels,
        {
            "SLO attainment (%)": [100 * v["slo_attainment"] for v in bl.values()] + [100 * d["slo_attainment"]],
            "USD per million output tokens": [v["usd_per_million_tokens"] for v in bl.values()]
            + [d["usd_per_million_tokens"]],
        },
        "Runtimes on the same arrivals: SLO attainment and cost",
        "percent of requests / USD per million tokens",
    )
    fig3.update_xaxes(title_text="runtime (batching policy)")
    secs.append(
        Section(
            "3. Design: an inference system for latency and cost",
            table_html(HEAD, rows3) + fig_html(fig3, "design"),
            c3,
            f"SLO: TTFT <= {SLO.ttft_s:g} s and time per output token <= {SLO.tpot_s * 1e3:.0f} ms (Vidur-Search's). "
            "`--design FILE` (model, gpu, precision, tp, mig_profile, replicas, batching, autoscaler, cold_start) replaces the design row.",
        )
    )
    f.append(c3)
    co = s["cold"]
    st = co["strategies"]
    names = list(co["phases"])
    fig4 = bar_figure(
        names,
        {k: [co["phases"][n][k] for n in names] for k in ("provision_s", "image_pull_s", "weights_load_s", "warmup_s")},
        "Cold-start pipeline by model and storage tier",
        "seconds",
        stacked=True,
    )
    fig4.update_xaxes(title_text="model / storage tier")
    cold_k = "scale to zero, cold start (S3, image pull)"
    warm_k = "scale to zero, warm start (cached image, weights in host memory)"
    keep_k = "keep one warm (min 1), cold scale-out"
    peak_k = "fixed peak capacity (3 replicas)"
    c4 = (
        f"Under bursts every 300 s, scaling to zero with a cold start ({st[cold_k]['cold_start_s']:.0f} s) gives TTFT p99 "
        f"{st[cold_k]['ttft_p99_s']:.1f} s and {st[cold_k]['slo_attainment']:.1%} within SLO at "
        f"${st[cold_k]['usd_per_million_tokens']:.2f}/M tokens; a warm start ({st[warm_k]['cold_start_s']:.0f} s) gives "
        f"{st[warm_k]['ttft_p99_s']:.1f} s and {st[warm_k]['slo_attainment']:.1%}; keeping one replica warm gives "
        f"{st[keep_k]['slo_attainment']:.1%} at ${st[keep_k]['usd_per_million_tokens']:.2f}; fixed peak capacity gives "
        f"{st[peak_k]['slo_attainment']:.1%} at ${st[peak_k]['usd_per_million_tokens']:.2f}."
    )
    rows4 = [_fmt_row(k, v) + [str(v["max_replicas"])] for k, v in st.items()]
    sc = co["scaling"]
    ks, kl, kc, kr, kk = SCALING_RUNS
    c5 = (
        f"Request rate alone is not load: with an HPA target of 5 req/s per replica, short prompts peak at "
        f"{sc[ks]['max_replicas']} replicas and meet the SLO for {sc[ks]['slo_attainment']:.1%}; 8,000-token prompts at the "
        f"same rate get the same {sc[kl]['max_replicas']} replicas and meet it for {sc[kl]['slo_attainment']:.1%}; scaling "
        f"the long prompts on concurrency reaches {sc[kc]['max_replicas']} replicas and {sc[kc]['slo_attainment']:.1%}. "
        f"Memory binds before requests do: {KV_MODEL} on {KV_GPU} with ~3,000-token outputs at 1.5 req/s stays at "
        f"{sc[kr]['max_replicas']} replica(s) under the request-rate HPA, preempts {sc[kr]['preemptions']} sequences and "
        f"meets the SLO for {sc[kr]['slo_attainment']:.1%}; scaling on KV-cache use reaches {sc[kk]['max_replicas']} "
        f"replicas, {sc[kk]['preemptions']} preemptions, {sc[kk]['slo_attainment']:.1%} within SLO at "
        f"${sc[kk]['usd_per_million_tokens']:.2f} against ${sc[kr]['usd_per_million_tokens']:.2f} per million tokens."
    )
    fig5 = line_figure(
        {k: [(t, n) for t, n in v["timeline"]] for k, v in sc.items()},
        "Replicas over time under the HPA",
        "time (s)",
        "replicas (starting or ready)",
        logx=False,
        mode="lines",
    )
    fig5.update_traces(line_shape="hv")
    rows5 = [_fmt_row(k, v) + [str(v["max_replicas"])] for k, v in sc.items()]
    secs.append(
        Section(
            "4. Compare: cold-start and warm-start serving",
            fig_html(fig4, "cold") + table_html([*HEAD, "max replicas"], rows4),
            c4,
            "KPA (Knative defaults, container concurrency 16); cold-start phases are stated assumptions in gpuinfra.sim.serving.ColdStart.",
        )
    )
    secs.append(
        Section(
            "4b. Why autoscaling inference is harder than it looks",
            table_html([*HEAD, "max replicas"], rows5) + fig_html(fig5, "hpa"),
            c5,
        )
    )
    f += [c4, c5]
    sub = (
        f"Seed section 9, every activity run now ({'quick' if s['quick'] else 'full'} mode): {s['model']} on {s['gpu']}, "
        "request-level simulation on the kernel with replicas holding GPUs through the cluster state; invariants checked in every run."
    )
    return render_page(f"Lab 9: {TITLE}", secs, findings=f, subtitle=sub)
