"""`gpuinfra sweep --help` names the shorthand docs/sweeps.md uses (`gpuinfra sweep NAME|FILE` = `sweep run`)."""

from __future__ import annotations

import re

from gpuinfra.sweep.builtin import builtin_sweeps
from tests.clirunner import gi


def test_sweep_help_names_the_shorthand_and_its_example_resolves_to_run():
    r = gi("sweep", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.replace("│", " ").split())
    assert "gpuinfra sweep NAME|FILE [OPTIONS]` is `gpuinfra sweep run NAME|FILE [OPTIONS]" in text, text
    example = re.search(r"e\.g\. `gpuinfra sweep ([\w-]+) ", text)
    assert example and example.group(1) in builtin_sweeps()
    # the shorthand is what the help says it is: `sweep NAME --help` is `sweep run --help`
    short, full = gi("sweep", example.group(1), "--help"), gi("sweep", "run", "--help")
    assert short.returncode == full.returncode == 0 and short.stdout == full.stdout


def test_ray_workers_refuses_an_empty_item_and_out_of_range_sizes():
    from typer.testing import CliRunner

    from gpuinfra.cli import app

    for bad, says in [("8,,32", "empty item"), ("0", "from 1 to 1,000,000"), ("8,x", "integers")]:
        r = CliRunner().invoke(app, ["sweep", "plan", "capacity-plan", "--ray-workers", bad, "--per-run-s", "0.5"])
        assert r.exit_code == 2 and says in r.output, (bad, r.output)
