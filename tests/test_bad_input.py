"""Bad input at the CLI boundary (issue 13): every command that reads a value or a file answers a
mistake with exit code 2 and one message naming the option, file or field; never a traceback,
never silent acceptance, never a hang (budgets refuse work this machine cannot do, up front)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clirunner import gi
from tests.test_cli import SMALL

LONG = "x" * 5000

CASES: list[tuple[str, str]] = [
    # numbers: non-finite, out of range, budgets
    ("collective all_reduce --bytes inf", "--bytes"),
    ("collective all_reduce --bytes -8", "--bytes"),
    ("collective all_reduce --bytes 1e30", "--bytes"),
    ("collective all_reduce --nodes 0", "--nodes"),
    ("collective all_reduce --oversubscription nan", "--oversubscription"),
    ("collective all_reduce -f 1", "--step-factor"),
    ("collective all_reduce --gpus 0,x", "--gpus"),
    ("collective all_reduce --gpus 0,1,1", "GPU1 named more than once"),
    ("metrics export --interval 0 --out {tmp}/m", "--interval"),
    ("metrics export --hours 0.5 --out {tmp}/m", "--hours"),
    ("metrics export --hours inf --out {tmp}/m", "--hours"),
    ("metrics export --nodes 1000 --hours 8760 --out {tmp}/m", "samples"),
    ("metrics export --seed -1 --out {tmp}/m", "--seed"),
    ("metrics serve --port 70000", "--port"),
    ("metrics serve --speed 0", "--speed"),
    ("metrics serve --duration -1", "--duration"),
    ("alerts evaluate --hours 0", "--hours"),
    ("alerts evaluate --nodes 0", "--nodes"),
    ("simulate --seed -1 --out {tmp}/r", "--seed"),
    ("simulate --seed 99999999999999999999999 --out {tmp}/r", "--seed"),
    ("compare {scenario} --seed -1 --out {tmp}/c", "--seed"),
    ("compare {scenario} --load nan --out {tmp}/c", "--load"),
    ("compare {scenario} --policies , --out {tmp}/c", "--policies"),
    ("sharing evaluate --seconds 0", "--seconds"),
    ("sharing evaluate --seconds 1e9", "--seconds"),
    ("sharing evaluate --load nan", "--load"),
    ("sharing evaluate --seconds 80000 --load 50", "--seconds/--load"),
    ("sharing evaluate --replicas 0", "--replicas"),
    ("scale --seq 0", "--seq"),
    ("scale --overlap 2", "--overlap"),
    ("scale --efficiency 0", "--efficiency"),
    ("scale --tp -1", "--tp"),
    ("reliability --days inf", "--days"),
    ("reliability --days nan", "--days"),
    ("reliability --days -1", "--days"),
    ("reliability --nodes -5", "--nodes"),
    ("reliability --lemon-fraction 1.5", "--lemon-fraction"),
    ("reliability --rate -1", "--rate"),
    ("reliability --rate nan", "--rate"),
    ("reliability --checkpoint-min 0", "--checkpoint-min"),
    ("reliability --seeds 0", "--seeds"),
    ("reliability --nodes 100000 --days 3650", "--nodes/--days/--rate/--seeds"),
    ("fill --seeds 0-200000000 --out {tmp}/f", "CPU-hours"),
    ("fill --seeds -1 --out {tmp}/f", "--seeds"),
    ("fill --seeds 1-x --out {tmp}/f", "--seeds"),
    ("fill --policy , --out {tmp}/f", "--policy"),
    ("fill --workload , --out {tmp}/f", "--workload"),
    ("fill --load inf --out {tmp}/f", "--load"),
    ("fill --workers 0 --out {tmp}/f", "--workers"),
    ("memory run --scenario variable-batch --config expandable_segments:Maybe", "expandable_segments"),
    ("memory run --scenario variable-batch --config max_split_size_mb:inf", "max_split_size_mb"),
    ("roofline --op gemm:0,1,1", "--op"),
    ("roofline --op gemm:1,8,8 --dtype fp64", "--dtype"),
    ("roofline --op gemm:1,8,8 --devices ,", "--devices"),
    ("export sharing --policy timeslice --replicas 0 -o {tmp}/cfg", "--replicas"),
    ("probe memory --device -1", "--device"),
    ("export sharing --k8s-version 9.99 -o {tmp}/cfg", "--k8s-version"),
    ("trace convert openb:gpushare40 {tmp}/out.txt", "DEST"),
    ("fill --workload {binary} --out {tmp}/f", "--workload"),
    ("fill --workload {tmp}/t.parquet --out {tmp}/f", "--workload"),
    ("lab run 6 --workers 0 --out {tmp}/l", "--workers"),
    ("mig fit H100 --want [/x]", "[/x]"),
    ("serving run --duration inf", "--duration"),
    ("serving run --rate nan", "--rate"),
    ("serving run --seed -1", "--seed"),
    ("checkpoint plan --params nan", "--params"),
    ("checkpoint plan --interval nan", "--interval"),
    ("checkpoint plan --rate nan", "--rate"),
    ("checkpoint plan --requeue inf", "--requeue"),
    ("checkpoint plan --writers-per-node 0", "--writers-per-node"),
    ("io profile --seed -1", "--seed"),
    ("io profile --cache-gb nan", "--cache-gb"),
    ("serving run --max-replicas -1", "--max-replicas"),
    ("serving run --duration 2000000 --rate 1000", "--rate/--duration"),
    # paths: directories, missing files, existing outputs, over-long names
    ("simulate {dir}", "SCENARIO"),
    ("simulate {missing}", "scenario file not found"),
    ("simulate {scenario} --out {file}", "--out"),
    ("simulate {scenario} --out {notrun}", "--force"),
    ("simulate {scenario} --out {tmp}/" + LONG, "too long"),
    ("simulate {tmp}/" + LONG, "too long"),
    ("compare {dir} --out {tmp}/c", "SCENARIO"),
    ("trace check {dir}", "TRACE"),
    ("trace check {tmp}/" + LONG, "too long"),
    ("trace convert openb:gpushare40 {file}", "DEST"),
    ("trace convert openb:gpushare40 {dir}", "DEST"),
    ("schema -o {file}", "--out"),
    ("schema -o {dir}", "--out"),
    ("schema -o {tmp}/" + LONG, "too long"),
    ("health --dmesg {dir}", "--dmesg"),
    ("health --nvidia-smi {missing}", "--nvidia-smi"),
    ("topo show {dir}", "NODE"),
    ("topo show {tmp}/" + LONG, "too long"),
    ("memory run {dir}", "TRACE"),
    ("memory run {missing}", "TRACE"),
    ("probe --from {dir}", "--from"),
    ("probe --from {missing}", "--from"),
    ("lab run 6 --design {missing} --out {tmp}/l", "--design"),
    ("lab run 6 --design {tmp}/" + LONG + " --out {tmp}/l", "too long"),
    ("lab run 1 --design {scenario} --out {tmp}/l", "takes no design"),
    ("metrics export --run {notrun} --out {tmp}/m", "manifest.json"),
    ("metrics export --run {missing} --out {tmp}/m", "--run"),
    ("metrics export --run {tmp}/" + LONG + " --out {tmp}/m", "too long"),
    ("incident nccl-hang --postmortem {file}", "--postmortem"),
    ("alerts export -o {file}", "--out"),
    ("topo show dgx-h100 --html {file}", "--html"),
    ("memory run --scenario interleaved --html {file}", "--html"),
]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("precious\n")
    (tmp_path / "notrun").mkdir()
    (tmp_path / "notrun" / "notes.txt").write_text("mine\n")
    (tmp_path / "s.yaml").write_text(SMALL)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\n")
    (tmp_path / "t.parquet").write_bytes(b"x")
    return {
        "tmp": str(tmp_path),
        "dir": str(tmp_path / "adir"),
        "file": str(tmp_path / "afile"),
        "missing": str(tmp_path / "missing.txt"),
        "notrun": str(tmp_path / "notrun"),
        "scenario": str(tmp_path / "s.yaml"),
        "binary": str(tmp_path / "bin.csv"),
    }


@pytest.mark.parametrize(("cmd", "needle"), CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_exit_2_one_message(cmd, needle, places, tmp_path):
    args = [a.format(**places) for a in cmd.split(" ")]
    r = gi(*args)
    assert "Traceback" not in r.output, r.output
    assert r.returncode == 2, (r.returncode, r.output)
    assert needle in r.stderr, r.stderr
    # nothing of ours written, nothing of the user's touched
    assert (tmp_path / "afile").read_text() == "precious\n"
    assert not (tmp_path / "m").exists() and not (tmp_path / "f").exists() and not (tmp_path / "r").exists()


def test_a_file_output_with_a_missing_parent_directory_is_refused(tmp_path):
    # one rule for every single-file output (io/atomic.check_output_file): the parent must exist;
    # tests/cli/test_output_parents.py walks every such option
    out = tmp_path / "a" / "b" / "schema.json"
    r = gi("schema", "-o", str(out))
    assert r.returncode == 2 and "create it first" in r.stderr and "Traceback" not in r.output, r.output
    assert not (tmp_path / "a").exists()
    (tmp_path / "a" / "b").mkdir(parents=True)
    r = gi("schema", "-o", str(out))
    assert r.returncode == 0 and out.stat().st_size > 0, r.output


def test_the_roofline_defaults_work_on_every_default_device():
    r = gi("roofline", "--op", "gemm:1,8,8")
    assert r.returncode == 0, r.output
    assert "T4 fp16" in r.stdout and "H100 bf16" in r.stdout  # T4 (Turing) has no BF16: fp16 there


def test_metrics_serve_warns_when_bound_beyond_loopback():
    r = gi("metrics", "serve", "--bind", "0.0.0.0", "--port", "0", "--nodes", "1", "--hours", "1", "--duration", "0.2")
    assert r.returncode == 0, r.output
    assert "warning: --bind 0.0.0.0 exposes /metrics" in r.stderr
