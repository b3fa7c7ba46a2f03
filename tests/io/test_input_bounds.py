"""Bad input found by an attacker trial is refused with one message naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.scenario_load import parse_scenario

FIX = Path(__file__).parent.parent / "fixtures" / "atk"
SERVICE = (FIX / "service_load.yaml").read_text()
LOAD = 'offered_rps: 10, source: x, input_tokens: "uniform:50:3"'


def _scenario(load: str) -> str:
    assert LOAD in SERVICE
    return SERVICE.replace(LOAD, load)


@pytest.mark.parametrize(
    ("load", "field", "words"),
    [
        ("offered_rps: .inf, source: x", "offered_rps", "finite"),
        ("offered_rps: 1e308, source: x", "offered_rps", "less than or equal"),
        ("offered_rps: 1, source: x, replica_capacity_rps: .inf, capacity_source: y", "replica_capacity_rps", "finite"),
        ("offered_rps: 1, source: x, replica_capacity_rps: 1e9, capacity_source: y", "replica_capacity_rps", "less"),
        ('offered_rps: 1, source: "  "', "source", "blank"),
        ("offered_rps: 1, source: x, input_tokens: 0", "input_tokens", ">= 1"),
        ('offered_rps: 1, source: x, input_tokens: "uniform:50:3"', "input_tokens", "low end above"),
        ("offered_rps: 1, source: x, input_tokens: 1000000000000", "input_tokens", "context window of 8192"),
        ('offered_rps: 1, source: x, output_tokens: "poisson:3:4"', "output_tokens", "not a token length"),
        ("offered_rps: 1, source: x, model: llama-9", "model", "unknown model"),
        ("offered_rps: 1, source: x, precision: int3", "precision", "bf16"),
        ("offered_rps: 1, source: x, slo_ttft_s: .nan", "slo_ttft_s", "finite"),
        ("offered_rps: 1, source: x, min_replicas: 10000000", "min_replicas", "less"),
    ],
)
def test_service_load_refused_at_load_time(load: str, field: str, words: str) -> None:
    with pytest.raises(UserError) as e:
        parse_scenario(_scenario(load), "c6.yaml")
    msg = str(e.value)
    assert f"c6.yaml:18: execution.kinds[1].load.{field}" in msg
    assert words in msg
    assert "--" not in msg.split("To fix")[0]  # names the file's field, never a CLI flag


def test_service_load_sane_values_load() -> None:
    sc = parse_scenario(
        _scenario('offered_rps: 10, source: x, input_tokens: "uniform:50:300", output_tokens: "lognormal:100:2"'),
        "c6.yaml",
    )
    assert sc is not None


# --- artifacts ---------------------------------------------------------------------------------


def test_safetensors_header_nesting_refused(tmp_path: Path) -> None:
    from gpuinfra.io.artifact import MAX_SAFETENSORS_NESTING, inspect

    body = b"[" * 100_000
    p = tmp_path / "deep.safetensors"
    p.write_bytes(len(body).to_bytes(8, "little") + body)
    with pytest.raises(UserError, match=f"nests 100000 levels.*above the {MAX_SAFETENSORS_NESTING}") as e:
        inspect(p)
    assert str(p) in str(e.value)


def test_json_nesting_ignores_brackets_in_strings() -> None:
    from gpuinfra.io.artifact import json_nesting

    assert json_nesting(b'{"a": {"shape": [1, 2]}, "b": "[[[[\\"[[["}') == 3
    assert json_nesting(b"") == 0


def _real_safetensors(path: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((4, 4), dtype=np.float16)}, str(path))
    return path


def _real_gguf(path: Path) -> Path:
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tensor("w", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("make", [_real_safetensors, _real_gguf])
def test_scan_does_not_read_pickle_free_formats_as_pickle(tmp_path: Path, make) -> None:
    from gpuinfra.io.pickle_scan import scan_path

    p = make(tmp_path / ("m.safetensors" if make is _real_safetensors else "m.gguf"))
    r = scan_path(p)
    assert r.verdict == "safe"
    assert r.pickles == 0
    assert [f.kind for f in r.findings] == ["no-pickle"]


def test_scan_cli_safetensors_exit_0(tmp_path: Path) -> None:
    from tests.clirunner import gi

    p = _real_safetensors(tmp_path / "ok.safetensors")
    r = gi("artifact", "scan", str(p))
    assert r.returncode == 0, r.output
    assert "holds no pickle" in r.output and "malformed" not in r.output


def test_scan_still_reads_a_pickle_named_safetensors(tmp_path: Path) -> None:
    import pickle

    from gpuinfra.io.pickle_scan import scan_path

    p = tmp_path / "liar.safetensors"
    p.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    assert scan_path(p).pickles == 1


# --- health ------------------------------------------------------------------------------------


def test_repeated_keys_numbered_in_order() -> None:
    from gpuinfra.io.health import _sections

    text = "GPU 00000000:18:00.0\n" + "".join(f"    X : {i}\n" for i in range(5000))
    [(bus, kv, line)] = _sections(text)
    assert (bus, line) == ("00000000:18:00.0", 1)
    assert kv["X"] == "0" and kv["X#2"] == "1" and kv["X#5000"] == "4999" and len(kv) == 5000


def test_nvidia_smi_without_ecc_fields_says_so(tmp_path: Path) -> None:
    from tests.clirunner import gi

    p = tmp_path / "q.txt"
    p.write_text("GPU 00000000:18:00.0\n" + "    X : y\n" * 50)
    r = gi("health", "--nvidia-smi", str(p))
    assert r.returncode == 0, r.output
    assert "no ECC" in r.output and "memory errors not judged" in r.output


def _xid_log(path: Path, gpus: int, per_gpu: int) -> Path:
    lines = [
        f"[{g * per_gpu + i}.000000] NVRM: Xid (PCI:0000:{g:02x}:00): 13, pid={i}, Graphics SM Warp Exception"
        for g in range(gpus)
        for i in range(per_gpu)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dmesg_table_grouped_per_gpu_and_xid(tmp_path: Path) -> None:
    import json

    from tests.clirunner import gi

    _xid_log(tmp_path / "k.log", gpus=2, per_gpu=100)
    r = gi("health", "--dmesg", "k.log", cwd=tmp_path)
    assert r.returncode in (0, 1) and not r.stderr, r.output  # 1: action needed
    assert "200 findings grouped per GPU x Xid" in r.output
    assert r.output.count("│ 13 ") == 2  # one row per GPU
    assert all(f"k.log:{n} " in r.output for n in (1, 100, 101, 200))  # first and last line of each
    js = gi("health", "--dmesg", "k.log", "--json", cwd=tmp_path)
    assert len(json.loads(js.stdout)) == 200  # --json lists every finding


def test_dmesg_table_capped(tmp_path: Path) -> None:
    from gpuinfra.cli.health import MAX_TABLE_ROWS
    from tests.clirunner import gi

    p = _xid_log(tmp_path / "k.log", gpus=MAX_TABLE_ROWS + 5, per_gpu=2)
    r = gi("health", "--dmesg", str(p))
    assert r.returncode in (0, 1) and not r.stderr, r.output  # 1: action needed
    assert "5 more rows (--json for all)" in r.output


# --- control characters and long values --------------------------------------------------------


def test_error_neutralises_controls_and_shortens() -> None:
    from gpuinfra.errors import UserErrors

    e = UserError("bad cell '\x1b[31mX\x9b\u202e'", where="f\x1b[2J.csv:3", expected="a\nb", fix="x" * 1000)
    text = str(e)
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "\\x1b[31mX\\x9b\\u202e" in text and "f\\x1b[2J.csv:3" in text
    assert "a\nb" in text  # a newline in the message body is kept
    assert len(text) < 300 and "characters)..." in text
    many = UserErrors([UserError("\x07bell", where="w:1"), UserError("ok", where="w:2")], where="w\x1b")
    assert "\x07" not in str(many) and "\x1b" not in str(many) and "\n" in str(many)


def test_newline_in_where_escaped() -> None:
    assert "\n" not in str(UserError("x", where="a\nerror: forged"))


def test_cli_escapes_controls_in_file_names(tmp_path: Path) -> None:
    from tests.clirunner import gi

    p = tmp_path / "\x1b[31mx.csv"
    p.write_text("week,gpus\n1,2\n")
    r = gi("trace", "check", str(p))
    assert r.returncode == 2
    assert "\x1b" not in r.output and "\\x1b[31mx.csv" in r.output


def test_esc_neutralises() -> None:
    from gpuinfra.cli._common import esc

    assert esc("[bold]\x1b[2J") == "\\[bold]\\x1b[2J"


@pytest.mark.parametrize("name", ["\x1b[2JNVIDIA H100", "NVIDIA\nH100", "N" * 1000])
def test_product_name_refused(name: str) -> None:
    from gpuinfra.catalog.gpus import gpu_model
    from gpuinfra.io.sharing_export import nvml_product_name

    with pytest.raises(UserError, match="--product-name"):
        nvml_product_name(gpu_model("H100-SXM"), name)


def test_product_name_cli_exit_2(tmp_path: Path) -> None:
    from tests.clirunner import gi

    r = gi("export", "sharing", "--product-name", "\x1b[2JNVIDIA", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "\x1b" not in r.output and "control" in r.output


# --- trace times -------------------------------------------------------------------------------


def test_trace_time_beyond_bound_refused() -> None:
    from gpuinfra.io.traces import read_generic

    with pytest.raises(UserError, match=r"huge_submit.csv:2.*submit_time_s=1e300 is beyond 3\.156e\+09 s"):
        read_generic(FIX / "huge_submit.csv", "huge_submit.csv")


@pytest.mark.parametrize(("col", "value"), [("submit_time_s", "3.2e9"), ("duration_s", "1e12")])
def test_trace_time_bound_each_column(tmp_path: Path, col: str, value: str) -> None:
    from gpuinfra.io.traces import read_generic

    row = {"job_id": "a", "submit_time_s": "0", "duration_s": "100", col: value}
    p = tmp_path / "t.csv"
    p.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    with pytest.raises(UserError, match=f"t.csv:2.*{col}"):
        read_generic(p, "t.csv")


def test_trace_bound_keeps_microseconds() -> None:
    import math

    from gpuinfra.io.traces import MAX_TRACE_TIME_S

    assert math.ulp(MAX_TRACE_TIME_S) < 1e-6  # events 1 us apart stay apart on the float64 clock


def test_request_trace_bounds() -> None:
    from gpuinfra.io.serving_trace import parse_request_trace

    with pytest.raises(UserError, match="r.csv:2"):
        parse_request_trace("arrival_s,prompt_tokens,output_tokens\n1e300,10,10\n", "r.csv")
    with pytest.raises(UserError, match="r.csv:2"):
        parse_request_trace("arrival_s,prompt_tokens,output_tokens\n1,1e12,10\n", "r.csv")


# --- topology paths ----------------------------------------------------------------------------

TOPO = Path(__file__).parent.parent / "fixtures" / "topology"


@pytest.mark.parametrize("name", ["4xA100-sxm-nv4-4nic-pxb.txt", "2gpu-nv12-8nic-pix-node-pxb-sys.txt"])
def test_widest_path_matches_brute_force(name: str) -> None:
    """The per-source search gives every pair the widest bottleneck, then the fewest hops, that any
    simple path avoiding NIC transit has (enumerated by networkx)."""
    import networkx as nx

    from gpuinfra.io.nodes import load_topology

    t = load_topology(str(TOPO / name), "H100-SXM")
    g = t.graph
    nics = set(t.nics)
    for a in t.gpus + t.nics:
        for b in t.gpus + t.nics:
            if a == b:
                continue
            sub = g.subgraph([v for v in g if v not in nics or v in (a, b)])
            best = max(
                (min(g.edges[e]["bw_line"] for e in zip(p, p[1:])), -len(p)) for p in nx.all_simple_paths(sub, a, b)
            )
            hops = t._widest_path(a, b)
            assert (min(g.edges[e]["bw_line"] for e in zip(hops, hops[1:])), -len(hops)) == best
