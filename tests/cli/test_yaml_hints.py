"""A YAML syntax error names the document of the file's own kind (forecast, lab design, sweep,
scenario, spot spec), not the scenario docs for every file. In-process CLI: exit 2, one message
with FILE:LINE:COLUMN, no traceback."""

from __future__ import annotations

import re

import pytest

from gpuinfra.io.scenario_load import DESIGNS_DIR, design_doc
from tests.clirunner import gi

BAD = "name: x\nweeks: [1, 2\nfoo: : bar\n"  # unclosed flow sequence: PyYAML stops at line 3, column 4


@pytest.mark.parametrize(
    ("args", "doc"),
    [
        (("capacity", "plan", "--forecast"), "docs/capacity.md (`gpuinfra capacity plan`)"),
        (("spot", "whatif", "--spec"), "docs/capacity.md (`gpuinfra spot whatif`)"),
        (("sweep", "plan"), "docs/sweeps.md"),
        (("simulate",), "docs/scenarios.md"),
        (("lab", "4", "--design"), "src/gpuinfra/labs/designs/lab4-mixed.yaml"),
        (("lab", "6", "--design"), "src/gpuinfra/labs/designs/lab6-policy.yaml"),
        (("lab", "12", "--design"), "src/gpuinfra/labs/designs/lab12-upgrade.yaml"),
        (("lab", "11", "--design"), "src/gpuinfra/labs/designs/lab11-security.yaml"),
    ],
)
def test_yaml_syntax_error_names_the_doc_of_its_file_kind(tmp_path, args, doc):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    extra = ("-o", str(tmp_path / "out")) if args[0] == "lab" else ()
    r = gi(*args, str(f), *extra)
    assert r.returncode == 2, r.output
    assert "Traceback" not in r.output
    msg = " ".join(r.output.split())
    assert re.search(r"bad\.yaml:3:4: YAML syntax error", msg), msg
    assert doc in msg, msg
    if args[0] != "simulate":
        assert "scenarios.md" not in msg  # the old hint, wrong for every other kind
    assert msg.count("YAML syntax error") == 1


def test_design_doc_names_existing_shipped_designs():
    for lab in (3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14):
        hint = design_doc(lab)
        names = re.findall(r"src/gpuinfra/labs/designs/(\S+)", hint)
        assert names, hint
        for n in names:
            assert (DESIGNS_DIR / n).is_file(), n
    assert "lab11-baseline-estate" not in design_doc(11)  # lab 11's fixed estate, not its design
    assert "README" in design_doc(99)
