"""Numbers the README states about the default scenario's request mix, recomputed from the trace and the draw."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gpuinfra.catalog._data import data_path
from gpuinfra.io.scenario import build, default_scenario_text, parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def test_readme_request_mix_is_the_traces_and_the_draws():
    """README: "of the trace's 7,064 GPU pods 98.9 % ask one GPU or a share of one and 0.6 % ask eight; of the
    36,320 jobs the seed-42 run draws, 99.0 % and 0.6 %" (it said 98.5 %, the scenario weight before
    normalisation). Each figure is recomputed here from the packaged trace and from the scenario's own draw."""
    text = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(
        r"of the trace's ([0-9,]+) GPU pods ([0-9.]+) % ask one GPU or a share of one and ([0-9.]+) % ask eight; "
        r"of the ([0-9,]+) jobs the seed-(\d+) run draws, ([0-9.]+) % and ([0-9.]+) %",
        text,
    )
    assert m, "the README states the mix with its populations"
    n_trace, one_trace, eight_trace, n_draw, seed, one_draw, eight_draw = m.groups()
    pods = pd.read_csv(data_path("traces", "openb", "openb_pod_list_default.csv.gz"))
    gpu = pods[pods.num_gpu > 0]
    assert int(n_trace.replace(",", "")) == len(gpu)
    assert one_trace == _pct((gpu.num_gpu == 1).mean())
    assert eight_trace == _pct((gpu.num_gpu == 8).mean())

    sc = parse_scenario(default_scenario_text(), "openb-default")
    assert int(seed) == sc.seed
    drawn = build(sc, None).pods
    k = np.asarray(drawn.num_gpu)
    assert int(n_draw.replace(",", "")) == len(k)
    assert one_draw == _pct((k == 1).mean())
    assert eight_draw == _pct((k == 8).mean())
    # the scenario's weights, normalised as the generator normalises them, are the trace's shares
    w = sc.workload.generator.gpus
    assert w[1] / sum(w.values()) == pytest.approx((gpu.num_gpu == 1).mean(), abs=5e-4)


def test_docs_do_not_point_at_internal_issues():
    """docs/trace-format.md said "see the scheduling issue's `gpuinfra fill`"; readers have docs pages, not issues."""
    text = (ROOT / "docs" / "trace-format.md").read_text()
    assert "issue" not in text.lower()
    assert "(scheduling.md#the-fill-experiment-gpuinfra-fill)" in text
    assert "## The fill experiment (`gpuinfra fill`)" in (ROOT / "docs" / "scheduling.md").read_text()
