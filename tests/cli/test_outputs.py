"""Outputs atomic and owned (issue 13 item 6): temp file + rename, run-directory manifests written
last and checked by readers, no silent overwrite without --force, same seed -> same bytes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io import atomic, manifest
from tests.clirunner import gi
from tests.test_cli import SMALL


def _scenario(tmp_path: Path) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(SMALL)
    return f


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    p = tmp_path / "a" / "b.txt"
    atomic.write_text(p, "one\n")
    assert p.read_text() == "one\n"

    def boom(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.write_with(p, boom)
    assert p.read_text() == "one\n"  # the earlier file is untouched
    assert sorted(x.name for x in p.parent.iterdir()) == ["b.txt"]  # no temporary file left


def test_atomic_write_path_errors_are_user_errors(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        atomic.write_text(tmp_path / "f" / "g.txt", "x")
    with pytest.raises(UserError, match="too long"):
        atomic.write_text(tmp_path / ("n" * 5000), "x")


def test_simulate_run_has_a_manifest_written_last_and_deterministic(tmp_path):
    f = _scenario(tmp_path)
    for d in ("r1", "r2"):
        assert gi("simulate", str(f), "--out", str(tmp_path / d), "-q").returncode == 0
    m1 = (tmp_path / "r1" / "manifest.json").read_bytes()
    assert m1 == (tmp_path / "r2" / "manifest.json").read_bytes()  # no paths, no clock
    m = json.loads(m1)
    assert m["command"] == "simulate" and m["params"]["seed"] == 5
    names = {e["path"] for e in m["files"]}
    assert names == {"summary.json", "metrics.parquet", "pods.parquet", "events.jsonl", "scenario.yaml", "report.html"}
    for e in m["files"]:
        assert (tmp_path / "r1" / e["path"]).stat().st_size == e["bytes"]
        assert (tmp_path / "r1" / e["path"]).read_bytes() == (tmp_path / "r2" / e["path"]).read_bytes()
    # written last: no data file is newer than the manifest
    mt = (tmp_path / "r1" / "manifest.json").stat().st_mtime_ns
    assert all((tmp_path / "r1" / n).stat().st_mtime_ns <= mt for n in names)
    assert manifest.verify(tmp_path / "r1", "simulate") == m


def test_readers_refuse_an_unfinished_or_altered_run(tmp_path):
    run = tmp_path / "run"
    # telemetry needs GPU models with BF16 (the SMALL scenario's T4 has none): a built-in scenario
    assert gi("simulate", "--builtin", "synthetic-small", "--out", str(run), "-q").returncode == 0
    ok = gi("metrics", "export", "--run", str(run), "--out", str(tmp_path / "m1"), "--hours", "1")
    assert ok.returncode == 0, ok.output
    # truncated pods.parquet (a SIGKILL mid-copy, a full disk): sizes and hashes no longer match
    pods = run / "pods.parquet"
    pods.write_bytes(pods.read_bytes()[:100])
    r = gi("metrics", "export", "--run", str(run), "--out", str(tmp_path / "m2"))
    assert r.returncode == 2 and "pods.parquet" in r.stderr and "differs" in r.stderr, r.output
    # no manifest at all: the run never finished
    (run / "manifest.json").unlink()
    r = gi("metrics", "export", "--run", str(run), "--out", str(tmp_path / "m3"))
    assert r.returncode == 2 and "no valid manifest.json" in r.stderr and "Traceback" not in r.output


def test_an_interrupted_write_leaves_the_old_run_whole(tmp_path, monkeypatch):
    import gpuinfra.run as run_mod

    f = _scenario(tmp_path)
    run = tmp_path / "run"
    assert gi("simulate", str(f), "--out", str(run), "-q").returncode == 0
    real = run_mod.write_parquet
    calls = []

    def dies_on_second(path, df):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C between two files of the rerun
        real(path, df)

    monkeypatch.setattr(run_mod, "write_parquet", dies_on_second)
    r = gi("simulate", str(f), "--out", str(run), "-q")
    assert r.returncode == 130, r.output
    assert "interrupted: simulate small while writing" in r.stderr and "as it was before" in r.stderr
    # the rerun was written beside the old run and never renamed into place: the old run is whole
    manifest.verify(run, "simulate")
    assert not [p for p in run.iterdir() if p.name.startswith(".gpuinfra-tmp-")]
    assert not [p for p in tmp_path.iterdir() if ".gpuinfra-" in p.name]  # no sibling temp left


def test_run_directories_are_owned(tmp_path):
    f = _scenario(tmp_path)
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    r = gi("simulate", str(f), "--out", str(d), "-q")
    assert r.returncode == 2 and "not empty" in r.stderr and "--force" in r.stderr
    assert gi("simulate", str(f), "--out", str(d), "-q", "--force").returncode == 0
    assert (d / "notes.txt").read_text() == "mine"  # --force writes beside, never deletes foreign files
    # a finished run of the same command is replaced without --force
    assert gi("simulate", str(f), "--out", str(d), "-q", "--seed", "6").returncode == 0
    assert json.loads((d / "manifest.json").read_text())["params"]["seed"] == 6
    # but not a run of another command
    r = gi("compare", str(f), "--policies", "fgd", "--out", str(d), "-q")
    assert r.returncode == 2 and "a run of `gpuinfra simulate`" in r.stderr
    # --out naming a file
    r = gi("simulate", str(f), "--out", str(f), "-q")
    assert r.returncode == 2 and "is a file" in r.stderr


def test_fill_and_compare_write_manifests(tmp_path):
    f = _scenario(tmp_path)
    assert gi("compare", str(f), "--policies", "fgd", "--out", str(tmp_path / "c"), "-q").returncode == 0
    assert manifest.verify(tmp_path / "c", "compare")["params"]["policies"] == ["fgd"]
    r = gi(
        "fill",
        "--workload",
        "gpushare40",
        "--seeds",
        "1",
        "--load",
        "0.2",
        "--workers",
        "1",
        "-q",
        "-o",
        str(tmp_path / "f"),
    )
    assert r.returncode == 0, r.output
    m = manifest.verify(tmp_path / "f", "fill")
    assert {"fill.csv", "summary.json", "report.html"} <= {e["path"] for e in m["files"]}


SINGLE_FILES = [
    (["schema", "-o", "{p}"], "--out"),
    (["alerts", "export", "-o", "{p}"], "--out"),
    (["trace", "convert", "openb:gpushare40", "{p}.csv"], "DEST"),
    (["topo", "show", "dgx-h100", "--html", "{p}"], "--html"),
    (["memory", "run", "--scenario", "cached-not-free", "--html", "{p}"], "--html"),
    (["incident", "nccl-hang", "--postmortem", "{p}"], "--postmortem"),
]


@pytest.mark.parametrize(("args", "where"), SINGLE_FILES)
def test_single_output_files_refuse_to_overwrite(tmp_path, args, where):
    p = tmp_path / "out"
    target = Path(str(p) + (".csv" if args[0] == "trace" else ""))
    target.write_text("precious")
    r = gi(*[a.format(p=p) for a in args])
    assert r.returncode == 2 and where in r.stderr and "already exists" in r.stderr, r.output
    assert target.read_text() == "precious"
    r = gi(*[a.format(p=p) for a in args], "--force")
    assert r.returncode in (0, 1) and target.read_text() != "precious", r.output  # memory run exits 1 on OOM
    assert [x.name for x in tmp_path.iterdir()] == [target.name]  # no temporary file left


def test_probe_save_and_export_sharing_refuse_to_overwrite(tmp_path):
    fix = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi-q-h100-full.txt"
    save = tmp_path / "p.json"
    save.write_text("{}")
    r = gi("probe", "--from", str(fix), "--save", str(save))
    assert r.returncode == 2 and "--save" in r.stderr and save.read_text() == "{}"
    pytest.importorskip("kubernetes_validate")
    out = tmp_path / "cfg"
    assert gi("export", "sharing", "--policy", "whole", "-o", str(out)).returncode == 0
    r = gi("export", "sharing", "--policy", "whole", "-o", str(out))
    assert r.returncode == 2 and "already exists" in r.stderr
    assert gi("export", "sharing", "--policy", "whole", "-o", str(out), "--force").returncode == 0


def test_no_stray_temp_files_after_a_run(tmp_path):
    f = _scenario(tmp_path)
    assert gi("simulate", str(f), "--out", str(tmp_path / "r"), "-q").returncode == 0
    assert not [n for n in os.listdir(tmp_path / "r") if n.startswith(".gpuinfra-tmp-")]


def test_a_scenario_name_never_escapes_the_runs_directory(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SMALL.replace("name: small", "name: ../../escaped"))
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    r = gi("simulate", str(f), "-q", cwd=work)
    assert r.returncode in (0, 2) and "Traceback" not in r.output, r.output
    assert not (tmp_path / "escaped-seed5").exists() and not (tmp_path / "a" / "escaped-seed5").exists()
    if r.returncode == 0:
        (made,) = (work / "runs").iterdir()
        assert made.parent == work / "runs" and "escaped-seed5" in made.name


def test_a_lab_run_is_a_manifested_run_directory(tmp_path):
    out = tmp_path / "l16"
    r = gi("lab", "16", "--quick", "--out", str(out))
    assert r.returncode == 0, r.output
    m = manifest.verify(out, "lab 16")
    listed = {e["path"] for e in m["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert listed == on_disk and "report.html" in listed
    # rerunning the same lab replaces it; another lab's run is refused
    assert gi("lab", "16", "--quick", "--out", str(out)).returncode == 0
    r = gi("lab", "1", "--quick", "--out", str(out))
    assert r.returncode == 2 and "a run of `gpuinfra lab 16`" in r.stderr


def test_compare_refuses_to_replace_another_scenarios_run(tmp_path):
    """The default `compare -o runs/compare` is shared by every scenario: a run of the same scenario is replaced
    (the README's "same command" rule), a run of another scenario, or of an edited one, is not, unless --force."""
    f = _scenario(tmp_path)
    d = tmp_path / "c"
    assert gi("compare", str(f), "--policies", "fgd", "--out", str(d), "-q").returncode == 0
    # same scenario, other policies: replaced
    assert gi("compare", str(f), "--policies", "firstfit", "--out", str(d), "-q").returncode == 0
    assert manifest.verify(d, "compare")["params"]["policies"] == ["firstfit"]
    first = manifest.verify(d, "compare")["params"]
    # another scenario (another name): refused, naming both
    other = tmp_path / "other.yaml"
    other.write_text(SMALL.replace("name: small", "name: other", 1))
    r = gi("compare", str(other), "--policies", "fgd", "--out", str(d), "-q")
    assert r.returncode == 2 and "scenario 'small' there, 'other' now" in r.stderr and "--force" in r.stderr, r.output
    assert manifest.verify(d, "compare")["params"] == first  # untouched
    # the same name with other contents: refused too
    edited = tmp_path / "edited.yaml"
    edited.write_text(SMALL + "\n# edited\n")
    r = gi("compare", str(edited), "--policies", "fgd", "--out", str(d), "-q")
    assert r.returncode == 2 and "different contents" in r.stderr, r.output
    # --force replaces it
    assert gi("compare", str(other), "--policies", "fgd", "--out", str(d), "-q", "--force").returncode == 0
    assert manifest.verify(d, "compare")["params"]["scenario"] == "other"
