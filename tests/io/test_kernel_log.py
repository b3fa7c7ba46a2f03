"""Kernel logs as published (tests/fixtures/kernel/SOURCE.md): NVLink 5 Xids resolved per
sub-code, Xid 154's recovery action, Xid 45 following its cause, dead GPUs without an Xid line,
one event on several lines, encodings. Every expected action is NVIDIA's Xid Catalog's for
that line (the sheet and row are named beside each case)."""

import codecs
import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra.catalog.xid import ACTIONS, paging_xids, xid_catalog
from gpuinfra.errors import UserError
from gpuinfra.io.health import parse_kernel_log
from gpuinfra.models.faults import escalate, verdict
from gpuinfra.textfile import decode_text, read_text

KERNEL = Path(__file__).parents[1] / "fixtures" / "kernel"


def _log(name: str):
    return parse_kernel_log((KERNEL / name).read_text(), name)


def test_every_catalog_xid_is_known_with_its_bucket():
    cat = xid_catalog()
    assert sorted(cat) == list(range(1, 173))  # the catalog's Xids sheet: 1..172
    # rows read off the sheet (immediate bucket)
    assert (cat[149].mnemonic, cat[149].catalog_action) == ("NVLINK_NETIR_ERROR", "WORKFLOW_NVLINK5_ERR")
    assert (cat[62].catalog_action, cat[62].action) == ("RESET_GPU", "reset_gpu")
    assert (cat[151].catalog_action, cat[151].action) == ("RESTART_VM", "reboot_node")
    assert cat[121].applies_to == ("GB200",)
    assert all(x.source for x in cat.values())


def test_paging_set_holds_every_operator_xid_including_62():
    pages = set(paging_xids())
    assert {48, 62, 64, 74, 79, 95, 109, 119, 120, 140, 143, 155, 158} <= pages
    assert set(range(144, 151)) <= pages  # decoded per sub-code: may need a reset
    assert not pages & {13, 31, 43, 63, 92, 94, 154}  # the application's, or informational


@pytest.mark.parametrize(
    "line,action",
    [
        (0, "reset_gpu"),  # 149 NETIR_LINK_EVT sub-code 0x21: RESET_GPU, INVESTIGATE_PEER_DEVICE
        (1, "none"),  # 149 sub-code 0x26 (100110): IGNORE, INVESTIGATE_SW/USER
        (2, "reset_gpu"),  # 149 sub-code 0x25: RESET_GPU
        (3, "none"),  # 144 SAW_MVB status 0x8: IGNORE
        (4, "none"),  # 145 RLW_CTRL status 0x80000000: IGNORE
        (5, "reset_gpu"),  # 150 MSE_WATCHDOG: RESET_GPU
    ],
)
def test_nvlink5_xids_resolved_per_subcode(line, action):
    f = _log("nvlink5-b200.log").findings[line]
    assert f.action == action
    assert "sub-code" in f.reason and "catalog decode" in f.reason


def test_nvlink5_subcode_names_investigation():
    fs = _log("nvlink5-b200.log").findings
    assert "INVESTIGATE_PEER_DEVICE" in fs[0].reason and "sub-code 33" in fs[0].reason
    assert "INVESTIGATE_SW/USER" in fs[1].reason and "Link Fatal" in fs[1].reason


def test_nvlink5_undecodable_falls_back_to_the_fatal_word():
    ev = parse_kernel_log(
        "NVRM: Xid (PCI:0000:00:1e): 149, NETIR_LINK_EVT Fatal XC 1 i 2 Link 01 [0x0000000a]\n"
        "NVRM: Xid (PCI:0000:00:1f): 146, TLW_FOO Nonfatal XC0 i0 Link 00 (0x1 0x2)\n",
        "x",
    )
    assert [f.action for f in ev.findings] == ["reset_gpu", "none"]
    assert all("decode sheet" in f.reason for f in ev.findings)


def test_xid154_names_the_recovery_action():
    fs = _log("recovery-action.log").findings
    got = [(f.gpu, f.xid, f.action) for f in fs]
    assert got == [
        ("0000:2a:00", 120, "reset_gpu"),
        ("0000:2a:00", 154, "reset_gpu"),  # 0x1 (GPU Reset Required)
        ("0000:01:00", 79, "reboot_node"),
        ("0000:01:00", None, "reboot_node"),  # NVRM 'GPU ... has fallen off the bus.' (= Xid 79)
        ("0000:01:00", 154, "reboot_node"),  # 0x2 (OS Reboot)
        ("0000:0d:00", 154, "reset_gpu"),  # 0x1 (PF FLR)
    ]
    assert "NVML_GPU_RECOVERY_ACTION_NODE_REBOOT" in fs[4].reason
    # the Xid 79 line and the NVRM line are one fault: no repeated-fault escalation
    assert verdict(escalate(fs)) == "reboot_node"


def test_xid154_by_code_when_the_label_is_new():
    ev = parse_kernel_log(
        "NVRM: Xid (PCI:0000:8a:00): 154, GPU recovery action changed from 0x0 (None) to 0x4 (Something New)\n"
        "NVRM: Xid (PCI:0000:8b:00): 154, GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)\n",
        "x",
    )
    assert [f.action for f in ev.findings] == ["reset_gpu", "none"]
    assert "DRAIN_AND_RESET" in ev.findings[0].reason


def test_xid45_follows_the_xid_it_names():
    fs = _log("xid45-caused-by.log").findings
    assert [(f.xid, f.action) for f in fs] == [(149, "reset_gpu"), (45, "reset_gpu"), (154, "reset_gpu")] + [
        (45, "reset_gpu")
    ]
    assert "follows it" in fs[1].reason and "xid45-caused-by.log:1" in fs[1].reason
    assert "previous Xid 48" in fs[3].reason and "ROBUST_CHANNEL_GPU_ECC_DBE" in fs[3].reason
    solo = parse_kernel_log("NVRM: Xid (PCI:0000:1b:00): 45, pid=1, name=a, Ch 00000001\n", "x").findings[0]
    assert solo.action == "none" and "Fabric Manager" in solo.reason


@pytest.mark.parametrize(
    "name,gpu,actions",
    [
        ("fallen-off-bus-no-xid.log", "0000:b3:00", ["reboot_node"]),
        ("fallen-off-bus-two-lines.log", "0000:01:00", ["reboot_node"]),
        ("fallen-off-bus-indented.log", "0000:9a:00", ["reboot_node", "reset_gpu"]),
    ],
)
def test_dead_gpu_without_xid_line(name, gpu, actions):
    ev = _log(name)
    assert [f.action for f in ev.findings] == actions
    assert all(f.gpu == gpu for f in ev.findings)
    assert ev.findings[0].equiv_xid == 79 and "Xid 79" in ev.findings[0].reason
    assert verdict(ev.findings) == "reboot_node"


def test_one_event_on_several_lines_counts_once():
    fs = _log("same-second.log").findings
    assert [f.xid for f in fs] == [79, 154, 48, 48, 63, 48]  # the GSP RPC line names no failed GPU
    head = escalate(fs[:2])
    assert not any(f.action == "drain_and_replace" for f in head)  # 79 + 154 in one second: one fault
    dbe_once = escalate(fs[2:5])  # two Xid 48 lines (+63) in one second: one DBE event
    assert not any(f.action == "drain_and_replace" for f in dbe_once)
    twice = escalate(fs[2:])  # the same GPU a day later: a second event
    assert twice[-1].action == "drain_and_replace" and "2 separate events" in twice[-1].reason


def test_mig_attributed_xid_line():
    f = _log("mig-attributed.log").findings[0]
    assert (f.gpu, f.xid, f.action) == ("0000:3b:00", 31, "restart_app")


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom"])
def test_kernel_log_encodings(tmp_path, codec):
    text = (KERNEL / "fallen-off-bus-no-xid.log").read_text()
    if codec == "utf-16-le-bom":
        data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    elif codec == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    else:
        data = text.encode(codec)
    p = tmp_path / "k.log"
    p.write_bytes(data)
    ev = parse_kernel_log(read_text(p), str(p))
    assert [f.action for f in ev.findings] == ["reboot_node"]


def test_undecodable_bytes_name_the_file(tmp_path):
    p = tmp_path / "latin1.log"
    p.write_bytes("NVRM: Xid caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError) as e:
        read_text(p)
    assert str(p) in str(e.value) and "offset 13" in str(e.value)
    with pytest.raises(UserError):
        read_text(tmp_path)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decode_never_raises_anything_but_user_error(data):
    with contextlib.suppress(UserError):
        decode_text(data, "f")


NVRM_BITS = st.sampled_from(
    [
        "NVRM: Xid (PCI:0000:3b:00): ",
        "NVRM: Xid (PCI:0000:3b:00 GPU-I:01): ",
        "NVRM: The NVIDIA GPU 0000:b3:00.0",
        "NVRM: GPU 0000:b3:00.0: ",
        "149, NETIR_LINK_EVT Fatal XC0 i0 Link 00 (",
        "154, GPU recovery action changed from 0x0 (None) to ",
        "45, caused by previous Xid ",
        "fallen off the bus",
        "0x",
        "[ 12.5] ",
        "\n",
        " ",
        ")",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(NVRM_BITS, st.text(max_size=8)), max_size=30))
def test_kernel_log_parser_never_crashes(parts):
    ev = parse_kernel_log("".join(parts), "fuzz")
    for f in ev.findings:
        assert f.action in ACTIONS
    verdict(escalate(ev.findings))


def test_a_dead_gpu_printing_its_state_again_is_one_fault():
    # the eGPU write-ups: thousands of identical NVRM lines in minutes, one dead GPU
    line = (
        "[ {t}.000001] NVRM: The NVIDIA GPU 0000:05:00.0 installed in this system has fallen off the bus "
        "and is not responding to commands.\n"
    )
    ev = parse_kernel_log("".join(line.format(t=100 + k) for k in range(50)), "egpu.log")
    assert len(ev.findings) == 50 and all(f.equiv_xid == 79 for f in ev.findings)
    assert verdict(escalate(ev.findings)) == "reboot_node"


def test_gpu_that_would_not_initialise():
    ev = _log("init-failed.log")
    assert [(f.gpu, f.equiv_xid, f.action) for f in ev.findings] == [("0000:39:00", 143, "reset_gpu")] * 4
    assert verdict(escalate(ev.findings)) == "reset_gpu"
