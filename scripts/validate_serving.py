"""Serving model against published measurements (never tuned to them): prints a Markdown table.

    PYTHONPATH=src python scripts/validate_serving.py

1. NVIDIA NIM LLM benchmarking, Llama-3.3-70B-Instruct fp8, TP2 on 2 x H100 80G, concurrency 1
   (docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance): TTFT and inter-token latency (ITL).
   Llama-3.3-70B has Llama-3.1-70B's architecture. Compared: our prefill step of the prompt (TTFT)
   and our decode step of one sequence at the mid-output context (ITL).
2. TensorRT-LLM 0.5.0 docs/source/performance.md, H100 FP8, static batches (the "dynamic" policy
   here with every request at t=0): output tokens/s. "LLaMA 7B" there has Llama-2-7B's shapes;
   "LLaMA 70B" is Llama-2-70B (TP4). KV cache assumed bf16 (the page does not say).
"""

from __future__ import annotations

import numpy as np

from gpuinfra.models.serving import ServingSetup, StepModel
from gpuinfra.sim.serving import Batching, Requests, ServingConfig, simulate

NIM = [  # (input, output, TTFT ms, ITL ms)
    (5000, 500, 406.77, 18.58),
    (500, 2000, 47.77, 18.91),
]
TRT = [  # (model, tp, batch, input, output, output tok/s)
    ("llama-2-7b", 1, 64, 128, 128, 9193),
    ("llama-2-7b", 1, 64, 128, 2048, 5367),
    ("llama-2-7b", 1, 64, 2048, 128, 2058),
    ("llama-2-7b", 1, 32, 2048, 2048, 2230),
    ("llama-2-70b", 4, 64, 128, 128, 3317),
    ("llama-2-70b", 4, 64, 128, 2048, 2616),
    ("llama-2-70b", 4, 64, 2048, 128, 843),
    ("llama-2-70b", 4, 64, 2048, 2048, 1583),
]


def main() -> None:
    sm = StepModel(ServingSetup.make("llama-3.1-70b", "H100-SXM", "fp8", tp=2))
    print("| measurement | published | gpuinfra | error | sensitivity: fp8 KV cache |\n|---|---|---|---|---|")
    errs = []
    for inp, out, ttft, itl in NIM:
        t = sm.prefill_step(inp).total_s * 1e3
        d = sm.decode_step(1, inp + out // 2).total_s * 1e3
        for name, pub, ours in ((f"NIM 70B fp8 TP2, {inp}/{out}, TTFT ms", ttft, t), ("... ITL ms", itl, d)):
            e = ours / pub - 1
            errs.append(abs(e))
            print(f"| {name} | {pub:,.2f} | {ours:,.2f} | {e:+.0%} | |")
    for model, tp, b, inp, out, pub in TRT:
        n = b
        rq = Requests(np.zeros(n), np.full(n, inp, np.int64), np.full(n, out, np.int64))
        c = ServingConfig(model, "H100-SXM", "fp8", tp, 1, Batching(kind="dynamic", max_batch_size=b))
        r = simulate(c, rq)
        r8 = simulate(ServingConfig(model, "H100-SXM", "fp8", tp, 1, c.batching, kv_dtype="fp8"), rq)
        e = r.throughput_tok_s / pub - 1
        errs.append(abs(e))
        print(f"| TRT-LLM 0.5 {model} fp8 TP{tp}, batch {b}, {inp}/{out}, output tok/s | {pub:,} | "
              f"{r.throughput_tok_s:,.0f} | {e:+.0%} | "
              f"{r8.throughput_tok_s:,.0f} ({r8.throughput_tok_s / pub - 1:+.0%}) |")  # fmt: skip
    print(f"\nmean absolute error {np.mean(errs):.0%}, max {np.max(errs):.0%} over {len(errs)} points")


if __name__ == "__main__":
    main()
