"""Lab 11 computes its conclusions from the graph, the policy checks and the abuse runs it makes."""

import json

import pytest

from gpuinfra.errors import UserError
from gpuinfra.labs import lab11, registry
from tests.labs.report_checks import figure_problems, figures
from tests.labs.test_lab_reports import test_no_physically_impossible_number as _numbers


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("l11")
    lab11.run(out, quick=True)
    return out, json.loads((out / "summary.json").read_text()), (out / "report.html").read_text()


def test_every_activity(quick):
    _, s, html = quick
    assert 11 in registry()
    for h in (
        "1. Explain why GPU isolation",
        "2. Analyze security risks",
        "3. Supply chain",
        "4. Abuse",
        "5. Design",
        "6. Evaluate blast",
    ):
        assert h in html


def test_claims_from_the_runs(quick):
    _, s, html = quick
    ce = s["isolation"]["cotenant_effects"]
    assert ce["mig"] == ["leak"] and "crash" in ce["mps"] and "crash" not in ce["whole"]
    assert [x["admitted"] for x in s["supply_chain"]] == [False, False, True, False, False]
    runs = s["abuse"]["runs"]
    assert runs["design"]["abuse_gpu_hours"] < runs["no guardrails"]["abuse_gpu_hours"]
    assert all(v["invariants_ok"] for v in runs.values())
    sb, sd = s["design"]["summary"]["baseline"], s["design"]["summary"]["design"]
    assert f"from {sum(sb.values())} assets to {sum(sd.values())}" in html


def test_design_used_and_bad_design_refused(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text(
        "compromised: a\nestate:\n  workloads: [{name: a, node: n, secrets: [s]}]\n  secrets: [{name: s}]\n"
        "guardrails: {max_tokens: 256}\n"
    )
    lab11.run(tmp_path / "o", design=d, quick=True)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["design"]["summary"]["design"]["secrets"] == 1
    d.write_text("compromised: zz\nestate:\n  workloads: [{name: a, node: n}]\n")
    with pytest.raises(UserError, match="unknown workload 'zz'"):
        lab11.run(tmp_path / "p", design=d, quick=True)


def test_user_text_is_escaped_in_the_report(tmp_path):
    d = tmp_path / "d.yaml"
    d.write_text("compromised: '<b>x</b>'\nestate:\n  workloads: [{name: '<b>x</b>', node: n}]\n")
    html = (lab11.run(tmp_path / "o", design=d, quick=True)).read_text()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_report_checks(quick):
    _, s, html = quick
    assert figures(html) and figure_problems(html) == []
    _numbers({11: (s, html)}, 11)
