"""Lab 9 computes its conclusions from its runs, and runs a design file against the baselines."""

import json
from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab9, registry

SHIPPED = Path(lab9.__file__).parent / "designs" / "lab9-serving.yaml"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab9")
    lab9.run(out, design=SHIPPED, quick=True)
    return json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_every_activity_and_computed_claims(quick):
    s, html = quick
    assert 9 in registry()
    for h in ("1. Explain", "2. Analyse", "3. Design", "4. Compare", "4b. Why autoscaling"):
        assert h in html
    ex = s["explain"]
    assert 0 < ex["mfu"]["decode_batch_1"] < ex["mfu"]["decode_at_knee"] < ex["mfu"]["prefill_2048"] < 1
    assert f"{ex['decode_1_ms']:.2f} ms" in html
    de = s["design"]
    assert de["strongest"] in de["baselines"] and de["label"] == str(SHIPPED)
    assert f"{de['design']['slo_attainment']:.1%}" in html
    sc = s["cold"]["scaling"]
    k_short, k_long, k_conc, k_kv_rps, k_kv = lab9.SCALING_RUNS
    # the same request rate and autoscaler: long prompts get no more replicas, and fare worse
    assert sc[k_long]["max_replicas"] <= sc[k_short]["max_replicas"]
    assert sc[k_long]["slo_attainment"] < sc[k_short]["slo_attainment"]
    assert sc[k_conc]["max_replicas"] > sc[k_long]["max_replicas"]
    # memory-bound replicas: the request rate looks low while the KV cache is full
    assert sc[k_kv]["max_replicas"] > sc[k_kv_rps]["max_replicas"]
    assert sc[k_kv]["preemptions"] < sc[k_kv_rps]["preemptions"]


def test_no_impossible_numbers(quick):
    s, html = quick
    for block in (s["design"]["baselines"], s["cold"]["strategies"], s["cold"]["scaling"]):
        for r in block.values():
            assert 0 <= r["slo_attainment"] <= 1 and r["usd_per_million_tokens"] > 0
            assert r["ttft_p50_s"] is None or r["ttft_p50_s"] >= 0


def test_bad_design(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("batching: {kind: teleport}\n")
    with pytest.raises(UserError, match="unknown batching policy"):
        lab9.run(tmp_path / "o", design=d, quick=True)
    d.write_text("replicaz: 3\n")
    with pytest.raises(UserError, match="unknown design keys"):
        lab9.run(tmp_path / "o", design=d, quick=True)


def test_design_on_mig_instances_is_evaluated(tmp_path):
    d = tmp_path / "mig.yaml"
    d.write_text("precision: fp8\nmig_profile: 3g.40gb\nreplicas: 4\nbatching: {kind: continuous}\n")
    spec, label = lab9.load_design(d)
    res = lab9.design_activity(spec, label, quick=True)
    # four replicas on two GPUs: the design's GPU-hours are two GPUs' worth, the baselines' three
    assert res["design"]["gpu_hours"] < min(v["gpu_hours"] for v in res["baselines"].values())
