"""User text reaches the terminal verbatim: never read as rich markup or emoji codes (issue 13)."""

from __future__ import annotations

import pytest

from tests.clirunner import gi
from tests.test_cli import SMALL

HOSTILE = ["[/x]", "[bold]H1000", "[/bold]", "[link=file:///etc/passwd]x[/link]", ":fire:"]


@pytest.mark.parametrize("text", HOSTILE)
def test_error_messages_keep_user_text_verbatim(text):
    for args in (["mig", "fit", "H100", "--want", text], ["catalog", "prices", text], ["topo", "show", text]):
        r = gi(*args)
        assert r.returncode == 2, (args, r.output)
        assert "Traceback" not in r.output
        assert f"'{text}'" in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: ")


@pytest.mark.parametrize("text", ["[/x]", "[bold]H1000", ":fire:"])
def test_a_scenario_name_with_markup_prints_verbatim(tmp_path, text):
    f = tmp_path / "s.yaml"
    f.write_text(SMALL.replace("name: small", f"name: '{text}'"))
    r = gi("simulate", str(f), "--out", str(tmp_path / "run"))
    assert "Traceback" not in r.output
    if r.returncode == 2:  # a stricter name check refused it: the message must still show it verbatim
        assert text in r.stderr
    else:
        assert r.returncode == 0 and f"{text} (seed 5)" in r.stdout


def test_a_yaml_key_with_markup_is_named_verbatim(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SMALL + '"[/bold]": 1\n')
    r = gi("simulate", str(f), "--out", str(tmp_path / "run"), "-q")
    assert r.returncode == 2 and "[/bold]" in r.stderr and "Traceback" not in r.output


def test_trace_file_names_and_fields_with_markup(tmp_path):
    t = tmp_path / "[bold]jobs.csv"
    t.write_text("job_id,submit_time_s,duration_s,num_gpu\n[red]a,0,10,1\nb,5,[/x],1\n")
    r = gi("trace", "check", str(t))
    assert r.returncode == 2 and "[bold]jobs.csv" in r.stderr and "[/x]" in r.stderr, r.output
    t.write_text("job_id,submit_time_s,duration_s,num_gpu\n[red]a,0,10,1\n")
    r = gi("trace", "check", str(t))
    assert r.returncode == 0 and str(t) in r.stdout, r.output


def test_health_prints_log_text_verbatim(tmp_path):
    log = tmp_path / "[bold]node.log"
    log.write_text("[  100.0] NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus.\n")
    r = gi("health", "--dmesg", str(log))
    assert r.returncode == 1, r.output  # Xid 79: reboot_node, an action
    assert "[bold]node.log" in r.stdout and "Traceback" not in r.output
