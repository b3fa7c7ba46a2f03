"""`nvidia-smi -q` text and `-q -x` XML as drivers 550+ print them (tests/fixtures/smi/SOURCE.md)."""

import contextlib
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.health import parse_nvidia_smi_q
from gpuinfra.io.probe import load_probe, parse_nvidia_smi_probe, parse_nvidia_smi_xml

SMI = Path(__file__).parents[1] / "fixtures" / "smi"


def test_power_on_550_plus_drivers():
    d = load_probe(SMI / "power-580.txt").devices[0]
    assert (d.power_w, d.power_limit_w) == (13.37, 480.0)


def test_every_process_of_a_gpu():
    d = load_probe(SMI / "h100-sram-procs-550.txt").devices[0]
    assert [(p.pid, p.used_mib) for p in d.processes] == [(48211, 61440), (48377, 11042)]


def test_sram_fields_feed_the_retirement_rule():
    d = load_probe(SMI / "h100-sram-procs-550.txt").devices[0]
    assert (d.sram_aggregate_uncorrected, d.sram_volatile_uncorrected, d.sram_threshold_exceeded) == (5, 0, True)
    ev = parse_nvidia_smi_q((SMI / "h100-sram-procs-550.txt").read_text(), "q.txt")
    got = sorted((f.cls, f.action) for f in ev.findings)
    assert got == sorted(
        [
            ("memory", "drain_and_replace"),  # SRAM Threshold Exceeded: Yes (catalog WORKFLOW_XID_48)
            ("memory", "drain_and_replace"),  # aggregate SRAM uncorrectable 2 + 3 = 5 > 4
            ("system", "reset_gpu"),  # GPU Recovery Action: Reset (NVML GPU_RESET)
            ("slowdown", "none"),  # HW Slowdown (thermal or power brake)
            ("power", "none"),  # HW Power Brake Slowdown: power, not thermal
        ]
    )
    assert all(f.source == "q.txt:9" for f in ev.findings)


def test_xml_reads_like_the_text():
    text = parse_nvidia_smi_probe((SMI / "h100-sram-procs-550.txt").read_text(), "t")
    xml = load_probe(SMI / "h100-sram-procs-550.xml")
    a, b = dataclasses.asdict(text.devices[0]), dataclasses.asdict(xml.devices[0])
    assert {k: v for k, v in a.items() if a[k] is not None or b[k] is not None} == {
        k: v for k, v in b.items() if a[k] is not None or b[k] is not None
    }
    assert xml.driver_version == "550.54.15" and xml.devices[0].catalog_model == "H100-SXM"
    ev = parse_nvidia_smi_q((SMI / "h100-sram-procs-550.xml").read_text(), "q.xml")
    assert sorted(f.action for f in ev.findings) == sorted(
        ["drain_and_replace", "drain_and_replace", "reset_gpu", "none", "none"]
    )


@pytest.mark.parametrize(
    "text,what",
    [
        ("<nvidia_smi_log><gpu>", "not well-formed"),
        ("<other/>", "no <gpu>"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><nvidia_smi_log/>', "entities"),
    ],
)
def test_bad_xml_is_a_user_error(text, what):
    with pytest.raises(UserError, match=what):
        parse_nvidia_smi_xml(text, "f.xml")


def test_non_numeric_pid_is_not_a_traceback():
    text = (SMI / "h100-sram-procs-550.txt").read_text().replace("48377", "N/A")
    d = parse_nvidia_smi_probe(text, "t").devices[0]
    assert [p.pid for p in d.processes] == [48211]


SMI_BITS = st.sampled_from(
    [
        "GPU 00000000:18:00.0\n",
        "    Processes\n",
        "        Process ID                        : ",
        "            Used GPU Memory               : ",
        "    ECC Errors\n        Aggregate\n",
        "            SRAM Uncorrectable SEC-DED    : ",
        "            SRAM Threshold Exceeded       : ",
        "    GPU Power Readings\n",
        "        Instantaneous Power Draw          : ",
        "    Clocks Event Reasons\n",
        "        HW Power Brake Slowdown       : Active\n",
        "    GPU Recovery Action                   : ",
        "Yes\n",
        "N/A\n",
        "12 MiB\n",
        "-3\n",
        "\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(SMI_BITS, st.text(max_size=6)), max_size=30))
def test_text_reader_never_crashes(parts):
    with contextlib.suppress(UserError):
        parse_nvidia_smi_q("".join(parts), "fuzz")


XML_BITS = st.sampled_from(
    [
        "<nvidia_smi_log>",
        "</nvidia_smi_log>",
        '<gpu id="0">',
        "</gpu>",
        "<processes><process_info><pid>",
        "</pid></process_info></processes>",
        "<ecc_errors><aggregate><sram_uncorrectable_secded>",
        "</sram_uncorrectable_secded></aggregate></ecc_errors>",
        "<gpu_recovery_action>",
        "</gpu_recovery_action>",
        "7",
        "x",
        "&amp;",
        "<!ENTITY",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(XML_BITS, st.text(max_size=6)), max_size=30))
def test_xml_reader_never_crashes(parts):
    with contextlib.suppress(UserError):
        parse_nvidia_smi_q("<" + "".join(parts), "fuzz.xml")
