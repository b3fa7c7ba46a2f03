"""Bad values and paths the CLI refuses up front with one message (exit 2): seeds on every command
that has a ``--seed`` option, unwritable lab output directories, cost CSV paths, lab 13 designs,
sweep spec files and the wording of a few hints."""

from __future__ import annotations

from pathlib import Path

import typer

from gpuinfra.cli import app
from gpuinfra.units import MAX_SEED
from tests.clirunner import gi

# The required arguments each command with a --seed option needs to reach its seed check; a new
# command with --seed fails test_every_seed_option_is_enumerated until it is added here.
SEED_COMMANDS: dict[str, list[str]] = {
    "simulate": [],
    "compare": [],
    "metrics export": ["--out", "{tmp}/m"],
    "metrics serve": [],
    "alerts evaluate": [],
    "sharing evaluate": [],
    "artifact roundtrip": ["--out", "{tmp}/a"],
    "io profile": [],
    "upgrade plan": ["no-such.yaml", "--to", "550/12.4"],
    "cost attribute": ["no-such.yaml"],
    "rollout run": [],
    "rollout compare": [],
    "security abuse": [],
    "serving run": [],
    "spot whatif": [],
}


def _commands_with_seed() -> list[str]:
    found = []

    def walk(c, path):
        subs = getattr(c, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        elif any("--seed" in getattr(p, "opts", []) for p in c.params):
            found.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    return found


def test_every_seed_option_is_enumerated():
    assert sorted(_commands_with_seed()) == sorted(SEED_COMMANDS)


def test_every_seed_option_refuses_negative_and_oversized_seeds(tmp_path):
    for name in _commands_with_seed():
        extra = [a.replace("{tmp}", str(tmp_path)) for a in SEED_COMMANDS[name]]
        for bad in ("-1", str(MAX_SEED + 1), "99999999999999999999999"):
            r = gi(*name.split(), *extra, "--seed", bad)
            assert r.returncode == 2, (name, bad, r.output[-2000:])
            assert "Traceback" not in r.output, (name, bad, r.output[-2000:])
            assert "--seed" in r.output and "out of range" in r.output, (name, bad, r.output[-2000:])


def test_every_lab_refuses_an_unwritable_out_before_running(tmp_path):
    from gpuinfra.labs import registry

    (tmp_path / "file").write_text("")
    for n in sorted(registry()):
        r = gi("lab", str(n), "--quick", "-o", tmp_path / "file" / "x")
        assert r.returncode == 2, (n, r.output[-2000:])
        assert "--out" in r.output and "Traceback" not in r.output, (n, r.output[-2000:])
        assert "a parent of this path is a file" in r.output, (n, r.output[-2000:])


SMALL_CLUSTER = str(Path(__file__).parents[2] / "examples" / "small-cluster.yaml")


def test_cost_csv_refuses_bad_paths_before_simulating(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "exist.csv").write_text("keep me\n")
    cases = [
        (tmp_path / "file" / "x.csv", "is a file, not a directory"),
        (tmp_path, "is a directory"),
        (tmp_path / "exist.csv", "--force"),
    ]
    for path, want in cases:
        r = gi("cost", "attribute", SMALL_CLUSTER, "--csv", path)
        assert r.returncode == 2 and "--csv" in r.output and want in r.output, r.output[-2000:]
        assert "Traceback" not in r.output
    assert (tmp_path / "exist.csv").read_text() == "keep me\n"
    r = gi("cost", "attribute", SMALL_CLUSTER, "--csv", tmp_path / "exist.csv", "--force")
    assert r.returncode == 0, r.output[-2000:]
    assert "keep me" not in (tmp_path / "exist.csv").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gpuinfra-tmp-")]


def test_lab13_refuses_a_quota_its_workload_cannot_run_under(tmp_path):
    design = tmp_path / "tiny-quota.yaml"
    design.write_text("team_quota_gpus: 0.001\n")
    r = gi("lab", "13", "--quick", "-o", tmp_path / "out", "--design", design)
    assert r.returncode == 2, r.output[-2000:]
    assert f"{design}: team_quota_gpus" in r.output and "at least 2 GPUs per team" in r.output, r.output
    assert "run-3.csv" not in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_lab13_leaves_no_partial_run_files_when_a_run_fails(tmp_path, monkeypatch):
    import pytest

    from gpuinfra.errors import UserError
    from gpuinfra.labs import lab13

    def boom(*a, **k):
        raise UserError("simulated failure")

    monkeypatch.setattr(lab13.api, "simulate", boom)
    with pytest.raises(UserError):
        lab13.run(tmp_path, quick=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


SWEEP_HEAD = "name: t\nkind: replay\nscenario: synthetic-small\n"


def test_sweep_spec_errors_name_the_file_line_and_field(tmp_path):
    cases = [
        ('seeds: "1-5"\nparams: {}\n', ":5: params:", "empty grid"),
        ('seeds: "1-5"\nparams:\n  cluster.pools[1].count: []\n', ":6: params.cluster.pools[1].count:", "no values"),
        ('seeds: "a-b"\nparams:\n  cluster.pools[1].count: [1]\n', ":4: seeds: bad seeds 'a-b'", "A-B"),
        ("seeds: [-1]\nparams:\n  cluster.pools[1].count: [1]\n", ":4: seeds:", "out of range"),
        (
            'seeds: "1"\nparams:\n  cluster.pools[1].count: [1, 1]\n',
            ":6: params.cluster.pools[1].count:",
            "more than once",
        ),
        (
            'seeds: "1"\nparams:\n  cluster.pools[1].count: [0]\n',
            ":6: params.cluster.pools[1].count:",
            "invalid scenario",
        ),
        ('seeds: "1"\nparams:\n  workload.generator.arrival_rate_per_hour: [.inf]\n', ":6: params.workload", "finite"),
    ]
    for i, (body, where, what) in enumerate(cases):
        f = tmp_path / f"sw{i}.yaml"
        f.write_text(SWEEP_HEAD + body)
        r = gi("sweep", "plan", f)
        assert r.returncode == 2, (body, r.output[-2000:])
        assert f"{f}{where}" in r.output and what in r.output, (body, r.output[-2000:])
        assert "--seeds" not in r.output and "Traceback" not in r.output, r.output


def test_hints_point_at_the_right_command_or_doc(tmp_path):
    f = tmp_path / "forecast.yaml"
    f.write_text("source: test\nforecast:\n  - {week: 0, gpus: 10}\n  - {week: 1, gpus: .inf}\n")
    r = gi("capacity", "plan", "-f", f)
    assert r.returncode == 2 and f"{f}:4" in r.output and "docs/capacity.md" in r.output, r.output
    assert "gpuinfra schema" not in r.output

    r = gi("simulate", "openb-default", cwd=tmp_path)
    assert r.returncode == 2 and "--builtin openb-default" in r.output, r.output

    r = gi("trace", "check", "/dev/null")
    assert r.returncode == 2 and "not a regular file" in r.output and "not found" not in r.output, r.output


def test_memory_run_checks_values_and_paths_first(tmp_path):
    t = tmp_path / "zero.mt"
    t.write_text("gpu 0GiB\nalloc a 1MiB\n")
    r = gi("memory", "run", t)
    assert r.returncode == 2 and f"{t}:1" in r.output and "out of range" in r.output, r.output
    assert "no 'gpu' line" not in r.output

    (tmp_path / "file").write_text("")
    ok = tmp_path / "ok.mt"
    ok.write_text("gpu 80GiB\nalloc a 1MiB\nfree a\n")
    r = gi("memory", "run", ok, "--html", tmp_path / "file" / "x.html")
    assert r.returncode == 2 and "--html" in r.output and "Traceback" not in r.output, r.output
    assert "peak" not in r.output.lower()  # refused before the model ran: no results printed
