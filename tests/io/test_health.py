"""`gpuinfra health` on real line formats: Xid lines as the kernel prints them (dmesg and journald
prefixes), the nvidia-smi -q excerpt of facts/gpu.md 4.2, junk, unknown Xids."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpuinfra.catalog.xid import ACTIONS, xid_catalog
from gpuinfra.io.health import parse_kernel_log, parse_nvidia_smi_q
from gpuinfra.models.faults import escalate, verdict

FIX = Path(__file__).parents[1] / "fixtures"

# facts/gpu.md 4.1, "Suggested simulator mapping"
FACTS_MAPPING = {
    "restart_app": (13, 31, 32, 68, 69, 94),
    "reset_gpu": (46, 48, 62, 64, 95, 109, 119, 120, 140, 143),
    "reboot_node": (79,),
    "none": (63, 92, 121),
}


def test_catalog_covers_the_facts_and_follows_their_actions():
    cat = xid_catalog()
    for action, xids in FACTS_MAPPING.items():
        for x in xids:
            assert cat[x].action == action, x
    assert cat[74].action == "reset_gpu" and cat[74].cause_class == "nvlink"
    assert all(x.action in ACTIONS and x.source for x in cat.values())


def test_kernel_log_findings():
    ev = parse_kernel_log((FIX / "dmesg-xid.log").read_text(), "dmesg-xid.log")
    got = [(f.gpu, f.xid, f.cls, f.action) for f in ev.findings]
    assert got == [
        ("0000:10:1c", 63, "memory", "none"),
        ("0000:5a:00", 13, "application", "restart_app"),
        ("0000:5a:00", 43, "application", "none"),
        ("0000:3b:00", 79, "hardware", "reboot_node"),
        ("0000:3b:00", 79, "hardware", "reboot_node"),
        ("0000:8a:00", 154, "system", "reset_gpu"),
        ("0000:8a:00", 999, "unknown", "investigate"),
        (None, None, "unparsed", "investigate"),
    ]
    assert ev.lines_ignored == 2
    assert ev.findings[0].source == "dmesg-xid.log:2"
    assert "not in gpuinfra's catalog" in ev.findings[6].reason
    escalated = escalate(ev.findings)
    assert escalated[-1].action == "drain_and_replace" and escalated[-1].gpu == "0000:3b:00"
    assert verdict(escalated) == "drain_and_replace"
    assert verdict(ev.findings) == "reboot_node"


def test_nvidia_smi_q_findings():
    ev = parse_nvidia_smi_q((FIX / "nvidia-smi-q-a100.txt").read_text(), "smi.txt")
    got = sorted((f.gpu, f.action, f.cls) for f in ev.findings)
    assert got == sorted(
        [
            ("00000000:10:1C.0", "reset_gpu", "memory"),  # remap pending
            ("00000000:10:1C.0", "none", "thermal"),  # HW thermal slowdown active
            ("00000000:20:1C.0", "drain_and_replace", "memory"),  # remapping failure
            ("00000000:20:1C.0", "reset_gpu", "memory"),  # volatile DRAM uncorrectable
            ("00000000:20:1C.0", "drain_and_replace", "memory"),  # SRAM aggregate 6 > 4
        ]
    )
    assert len(ev.gpus_seen) == 2


def test_cli_json_and_verdict_last(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpuinfra.cli",
            "health",
            "--dmesg",
            str(FIX / "dmesg-xid.log"),
            "--nvidia-smi",
            str(FIX / "nvidia-smi-q-a100.txt"),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1, r.stderr  # an action is needed
    data = json.loads(r.stdout)
    assert {"source_line", "gpu", "xid", "class", "action", "reason"} <= set(data[0])
    assert {d["action"] for d in data} <= set(ACTIONS)
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "health", "--dmesg", str(FIX / "dmesg-xid.log")],
        capture_output=True,
        text=True,
        env={
            "COLUMNS": "250",
            "PATH": "",
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
        },
    )
    assert r.returncode == 1
    assert r.stdout.strip().splitlines()[-1].startswith("node verdict: drain_and_replace")


@pytest.mark.parametrize(
    "args,needle",
    [
        ([], "nothing to read"),
        (["--dmesg", "/nonexistent/kern.log"], "file not found"),
    ],
)
def test_cli_bad_input(args, needle, tmp_path):
    r = subprocess.run([sys.executable, "-m", "gpuinfra.cli", "health", *args], capture_output=True, text=True)
    assert r.returncode == 2 and needle in r.stderr
    junk = tmp_path / "smi.txt"
    junk.write_text("this is not nvidia-smi output\n")
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "health", "--nvidia-smi", str(junk)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "no GPU sections found" in r.stderr


@pytest.mark.parametrize(
    "line,code",
    [
        ("NVRM: Xid (PCI:0000:5a:00): 43, pid=7, name=python, Ch 00000008", 0),  # IGNORE: verdict none
        ("NVRM: Xid (PCI:0000:5a:00): 13, pid=7, name=python, Graphics Exception", 1),  # restart_app
        ("NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus.", 1),  # reboot_node
        ("NVRM: Xid (PCI:0000:5a:00): 999, some future error", 1),  # not in the catalog: investigate
        ("NVRM: Xid garbled line without bus id", 1),  # unreadable Xid line: investigate
        # an NVSwitch SXid (line format of the driver's SXid print): no SXid catalog here, investigate
        ("nvidia-nvswitch0: SXid (PCI:0000:c3:00.0): 20009, Non-fatal, Link 28 RX Short Error Rate", 1),
    ],
)
def test_cli_exit_code_says_whether_an_action_is_needed(line, code, tmp_path):
    """On-call scripts: 0 = verdict none, 1 = an action is needed (2 = bad input, above)."""
    log = tmp_path / "kern.log"
    log.write_text(f"[  100.0] {line}\n")
    for extra in ([], ["--json"]):
        r = subprocess.run(
            [sys.executable, "-m", "gpuinfra.cli", "health", "--dmesg", str(log), *extra],
            capture_output=True,
            text=True,
            env={
                "COLUMNS": "250",
                "PATH": "",
                **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
            },
        )
        assert r.returncode == code, r.stdout + r.stderr


def test_resolution_buckets_are_shown_in_words():
    from gpuinfra.models.faults import bucket_meaning

    assert bucket_meaning("RESTART_BM") == "reboot the bare-metal node"
    assert "NVLink" in bucket_meaning("WORKFLOW_NVLINK_ERR")


def test_an_empty_or_binary_log_is_refused_and_a_log_without_kernel_lines_is_flagged(tmp_path):
    from tests.clirunner import gi

    empty = tmp_path / "empty.log"
    empty.write_text("")
    r = gi("health", "--dmesg", str(empty))
    assert r.returncode == 2 and "is empty" in r.output
    binary = tmp_path / "bin.log"
    binary.write_bytes(b"line one\nline two\x00\x01\x02\n")  # NUL: binary, named with its line
    r = gi("health", "--dmesg", str(binary))
    assert r.returncode == 2 and "binary data" in r.output and "bin.log:2" in r.output, r.output
    words = tmp_path / "notes.txt"
    words.write_text("shopping list\neggs\n")
    r = gi("health", "--dmesg", str(words))
    assert r.returncode == 0 and "is this the node's kernel log?" in " ".join(r.output.split())


def test_unknown_evidence_is_investigate_ranked_between_none_and_every_catalog_action():
    unknown = "[  100.0] NVRM: Xid (PCI:0000:5a:00): 999, some future error\n"
    ignore = "[  101.0] NVRM: Xid (PCI:0000:5a:00): 43, pid=7, name=python, Ch 00000008\n"  # IGNORE: none
    app = "[  102.0] NVRM: Xid (PCI:0000:5a:00): 13, pid=7, name=python, Graphics Exception\n"  # restart_app
    assert verdict(parse_kernel_log(ignore, "k").findings) == "none"
    assert verdict(parse_kernel_log(unknown + ignore, "k").findings) == "investigate"
    # a catalog action beside it still decides what to do; the unknown line stays in the findings
    ev = parse_kernel_log(unknown + app, "k")
    assert verdict(ev.findings) == "restart_app"
    assert [f.action for f in ev.findings] == ["investigate", "restart_app"]


def test_sxid_line_is_named_not_ignored():
    line = "Nov 29 01:00:00 n3 kernel: nvidia-nvswitch3: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 32 egress\n"
    ev = parse_kernel_log(line, "k")
    (f,) = ev.findings
    assert (f.gpu, f.cls, f.action) == ("0000:05:00", "nvswitch", "investigate")
    assert "SXid 12028" in f.reason and "nvidia-nvswitch3" in f.reason and ev.lines_ignored == 0


def test_unknown_nvidia_smi_values_are_investigate_not_no(tmp_path):
    text = (FIX / "nvidia-smi-q-a100.txt").read_text().splitlines()
    # line 34: GPU 0's 'Remapping Failure Occurred : No'; make it a value nvidia-smi does not print
    assert text[33].split(":")[0].strip() == "Remapping Failure Occurred"
    text[33] = text[33].replace(": No", ": Maybe")
    text.insert(34, "    GPU Recovery Action                   : Recalibrate Flux")
    ev = parse_nvidia_smi_q("\n".join(text) + "\n", "smi.txt")
    inv = sorted(f.source_line for f in ev.findings if f.action == "investigate")
    assert inv == ["GPU Recovery Action: Recalibrate Flux", "Remapped Rows/Remapping Failure Occurred: Maybe"]
    # N/A (line 29, Pending Page Blacklist) is a field the GPU does not report: not unknown
    assert not any("Blacklist" in f.source_line for f in ev.findings)
    f = tmp_path / "smi.txt"
    f.write_text("\n".join(text) + "\n")
    r = subprocess.run(
        [sys.executable, "-m", "gpuinfra.cli", "health", "--nvidia-smi", str(f), "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1


def test_control_characters_inside_a_log_line_are_read_and_printed_escaped(tmp_path):
    """A process name is user data: ESC and BEL in it are part of a real log line, not binary data.
    They reach the terminal escaped (\\x1b) and JSON as \\u001b, never raw."""
    import json

    from tests.clirunner import gi

    log = tmp_path / "node.log"
    line = "[  100.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=1234, name=\x1b[31mevil\x07proc, Graphics Exception"
    log.write_text("[   99.0] kernel: boot\n" + line + "\n")
    r = gi("health", "--dmesg", str(log))
    assert r.returncode == 1, r.output  # Xid 13: restart_app, an action
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "node.log:2" in r.stdout, r.output
    r = gi("health", "--dmesg", str(log), "--json")
    (f,) = json.loads(r.stdout)
    assert f["source_line"] == line and "\\u001b" in r.stdout and "\x1b" not in r.stdout
