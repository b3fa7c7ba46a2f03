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
