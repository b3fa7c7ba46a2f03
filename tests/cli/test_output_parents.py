"""One rule for single-file outputs (io/atomic.check_output_file): the file's directory must
exist. A missing parent is refused before any work with exit 2, the option named and "create it
first"; nothing is created. Directories a command owns (lab -o, simulate --out, export sharing -o)
are still created."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clirunner import gi

ROOT = Path(__file__).resolve().parents[2]
SMALL_CLUSTER = ROOT / "examples" / "small-cluster.yaml"
SMI = ROOT / "tests" / "fixtures" / "nvidia-smi-q-h100-full.txt"

CASES = [
    ("schema -o {out}", "--out", "schema.json"),
    ("trace convert openb:gpushare40 {out}", "DEST", "t.csv"),
    ("alerts export -o {out}", "--out", "rules.yml"),
    ("incident nccl-hang --postmortem {out}", "--postmortem", "pm.md"),
    ("topo show dgx-h100 --html {out}", "--html", "topo.html"),
    ("memory run {trace} --html {out}", "--html", "mem.html"),
    ("cost attribute {cluster} --csv {out}", "--csv", "alloc.csv"),
    ("probe --from {smi} --save {out}", "--save", "probe.json"),
    ("checkpoint plan --html {out}", "--html", "plan.html"),
    ("artifact keygen {out}", "key", "signer"),
]


@pytest.mark.parametrize(("cmd", "option", "name"), CASES, ids=[c[0].split(" {")[0] for c in CASES])
def test_file_output_with_a_missing_parent_is_refused_before_work(tmp_path, cmd, option, name):
    trace = tmp_path / "ok.mt"
    trace.write_text("gpu 80GiB\nalloc a 1MiB\nfree a\n")
    out = tmp_path / "no" / "such" / name
    args = cmd.format(out=out, trace=trace, cluster=SMALL_CLUSTER, smi=SMI).split(" ")
    r = gi(*args)
    assert r.returncode == 2, r.output[-2000:]
    msg = " ".join(r.output.split())
    assert "Traceback" not in r.output
    assert "does not exist" in msg and "create it first" in msg and option in msg, msg
    assert not (tmp_path / "no").exists()  # nothing created


def test_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "f").write_text("")
    r = gi("schema", "-o", str(tmp_path / "f" / "sub" / "x.json"))
    msg = " ".join(r.output.split())
    assert r.returncode == 2 and "is a file, not a directory" in msg and "--out" in msg, msg


def test_an_existing_parent_is_written(tmp_path):
    r = gi("checkpoint", "plan", "--html", str(tmp_path / "plan.html"))
    assert r.returncode == 0 and (tmp_path / "plan.html").stat().st_size > 0, r.output
    r = gi("checkpoint", "plan", "--html", str(tmp_path / "plan.html"))  # a single file is not replaced silently
    assert r.returncode == 2 and "--force" in r.output
    assert gi("checkpoint", "plan", "--html", str(tmp_path / "plan.html"), "--force").returncode == 0


def test_an_owned_output_directory_is_still_created(tmp_path):
    out = tmp_path / "new" / "sharing"
    r = gi("export", "sharing", "--gpu", "H100-SXM", "--policy", "whole", "-o", str(out))
    assert r.returncode == 0 and (out / "node-labels.yaml").is_file(), r.output
