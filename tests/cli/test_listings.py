"""Listing commands show what each built-in is, read from the built-in's own data."""

from __future__ import annotations

from importlib import resources

import yaml

from tests.clirunner import gi


def test_scenarios_lists_each_builtin_with_its_own_description():
    r = gi("scenarios")
    assert r.returncode == 0, r.output
    flat = " ".join(r.stdout.split())
    files = [p for p in resources.files("gpuinfra").joinpath("scenarios").iterdir() if p.name.endswith(".yaml")]
    assert files
    for p in files:
        doc = yaml.safe_load(p.read_text())
        desc = " ".join(str(doc.get("description", "")).split())
        assert desc, f"{p.name} has no description"
        assert doc["name"] in flat
        # the first words of the file's description, whatever wrapping the table applied
        assert " ".join(desc.split()[:5]) in flat.replace("│ ", "").replace(" │", ""), p.name


def test_memory_run_counts_what_ran_before_the_oom_and_says_it_in_order():
    from gpuinfra.models.memory_trace import scenario

    tr = scenario("variable-batch")
    r = gi("memory", "run", "--scenario", "variable-batch")
    assert r.returncode == 1, r.output
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    tally = next(i for i, ln in enumerate(lines) if "operations ran" in ln)
    oom = next(i for i, ln in enumerate(lines) if ln.startswith("OOM at line"))
    table = next(i for i, ln in enumerate(lines) if "memory of process main" in ln)
    assert tally < oom < table
    # the OOM is raised by the trace's last operation (one process): every earlier one ran
    oom_line = int(lines[oom].split()[3])
    idx = next(i for i, op in enumerate(tr.ops) if op.line == oom_line)
    assert idx == len(tr.ops) - 1
    assert lines[tally].startswith(f"{idx} of {len(tr.ops)} operations ran; 1 raised an OOM")
    assert f"after {idx} operations had run" in lines[oom]


def test_memory_run_counts_skipped_operations_of_a_stopped_process(tmp_path):
    # 16 GiB device: 10 GiB fits, 10 GiB more does not (OOM ends main), the free after it never runs
    import json

    p = tmp_path / "t.txt"
    p.write_text("gpu 16GiB\ncontext 0\nalloc a 10GiB\nalloc b 10GiB\nfree a\n")
    r = gi("memory", "run", str(p))
    assert r.returncode == 1
    assert "1 of 3 operations ran; 1 raised an OOM; 1 did not run" in r.stdout
    assert "OOM at line 4" in r.stdout and "after 1 operation had run" in r.stdout
    js = json.loads(gi("memory", "run", str(p), "--json").stdout)
    counts = (js["operations_total"], js["operations_ran"], js["operations_failed"], js["operations_skipped"])
    assert counts == (3, 1, 1, 1)
