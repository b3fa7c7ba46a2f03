import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuinfra.errors import UserError
from gpuinfra.io.traces import (
    OPENB_POD_LISTS,
    TraceSource,
    openb_node_list,
    openb_pod_list,
    read_generic,
    read_openb_nodes,
    read_openb_pods,
    write_generic,
)
from gpuinfra.sim.workload import Pod, Toleration


def test_openb_default_counts_match_the_trace_documentation():
    pods = read_openb_pods(openb_pod_list("default"))
    # SOURCE.md: 8,152 pods, 1,088 CPU-only, 3,078 sharing, 897 never scheduled
    assert len(pods) == 8152
    assert sum(p.num_gpu == 0 for p in pods) == 1088
    assert sum(p.num_gpu == 1 and p.gpu_milli < 1000 for p in pods) == 3078
    pending = [p for p in pods if not math.isnan(p.delete_s)]
    assert len(pending) == 897
    assert sum(p.num_gpu * p.gpu_milli for p in pods) / 1000 == pytest.approx(6086.8, abs=0.05)
    excl = read_openb_pods(openb_pod_list("default"), pending="exclude")
    assert len(excl) == 8152 - 897


def test_openb_node_list_is_the_fgd_cluster():
    pools = read_openb_nodes(openb_node_list("gpu_node"))
    assert sum(p.count for p in pools) == 1213
    assert sum(p.count * p.gpus_per_node for p in pools) == 6212
    g2 = [p for p in pools if p.gpu_model == "G2"]
    assert sum(p.count for p in g2) == 549
    names = [n for p in pools for n in p.node_names]
    assert len(set(names)) == 1213 and "openb-node-0000" in names


def test_every_openb_pod_list_is_packaged_and_readable():
    from gpuinfra.catalog._data import data_path

    for name in OPENB_POD_LISTS:
        assert data_path("traces", "openb", f"openb_pod_list_{name}.csv.gz").exists()
    with pytest.raises(UserError, match="no timestamps"):
        read_openb_pods(openb_pod_list("multigpu20"))
    with pytest.raises(UserError, match="Did you mean 'gpushare40'"):
        openb_pod_list("gpushare4O")


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


HEADER = "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,owner\n"


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("j1,0,10,1,1000,1000,100,H100\n", "row has 8 fields, the header has 9"),
        ("j1,abc,10,1,1000,1000,100,H100,x\n", "submit_time_s='abc' is not a number"),
        ("j1,0,-5,1,1000,1000,100,H100,x\n", "duration_s=-5.0 is negative"),
        ("j1,0,10,1,1500,1000,100,H100,x\n", "gpu_milli=1500 is out of range"),
        ("j1,0,10,1.5,1000,1000,100,H100,x\n", "num_gpu='1.5' is not an integer"),
        ("j1,0,10,1,1000,1000,100,H101,x\n", "unknown GPU model 'H101'"),
        ("j1,0,10,0,500,1000,100,,x\n", "gpu_milli=500 with num_gpu=0"),
        ("j1,0,nan,1,1000,1000,100,,x\n", "duration_s=nan is not finite"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, needle):
    p = _write(tmp_path, HEADER + "ok,0,10,1,1000,1000,100,,x\n" + row)
    with pytest.raises(UserError) as e:
        read_generic(p)
    msg = str(e.value)
    assert f"{p}:3" in msg, msg
    assert needle in msg, msg


def test_missing_column_and_duplicate_ids(tmp_path):
    with pytest.raises(UserError, match=r":1: missing column\(s\) duration_s"):
        read_generic(_write(tmp_path, "job_id,submit_time_s\nj,0\n"))
    with pytest.raises(UserError, match="duplicate job_id 'j'"):
        read_generic(_write(tmp_path, "job_id,submit_time_s,duration_s\nj,0,1\nj,1,1\n"))
    with pytest.raises(UserError, match="no jobs"):
        read_generic(_write(tmp_path, "job_id,submit_time_s,duration_s\n"))
    with pytest.raises(UserError, match="unknown trace file type"):
        read_generic(_write(tmp_path, "x", name="t.json"))


def test_binary_garbage_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"\xff\xfe\x00garbage\x00\x81")
    with pytest.raises(UserError):
        read_generic(p)
    q = tmp_path / "t.parquet"
    q.write_bytes(b"not parquet")
    with pytest.raises(UserError, match="cannot read Parquet"):
        read_generic(q)


def test_openb_inconsistent_times_refused(tmp_path):
    hdr = (
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\n"
    )
    p = _write(tmp_path, hdr + "p0,1000,100,1,1000,,LS,Running,10,5,10\n", "o.csv")
    with pytest.raises(UserError, match=r"o.csv:2: deletion_time 5.0 is before creation_time 10.0"):
        read_openb_pods(TraceSource(str(p), p))
    p = _write(tmp_path, hdr + "p0,1000,100,1,1000,,LS,Running,10,50,60\n", "o.csv")
    with pytest.raises(UserError, match="scheduled_time 60.0 is outside"):
        read_openb_pods(TraceSource(str(p), p))


names = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N"], include_characters='-_.," '), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s)
times = st.floats(min_value=0, max_value=1e8, allow_nan=False, allow_infinity=False)


@st.composite
def pod_lists(draw):
    n = draw(st.integers(1, 25))
    ids = draw(st.lists(names, min_size=n, max_size=n, unique=True))
    out = []
    for j in ids:
        g = draw(st.integers(0, 8))
        milli = draw(st.integers(1, 1000)) if g else 0
        submit = draw(times)
        delete = draw(st.one_of(st.just(math.nan), st.floats(min_value=submit, max_value=2e8)))
        out.append(
            Pod(
                j,
                submit,
                draw(times),
                draw(st.integers(0, 10**6)),
                draw(st.integers(0, 10**7)),
                g,
                milli,
                draw(st.sampled_from([(), ("T4",), ("A100-80GB", "H100-SXM")])) if g else (),
                draw(st.integers(-5, 5)),
                draw(st.sampled_from(["", "LS", "BE"])),
                draw(names),
                delete,
                j,
                draw(st.sampled_from([(), (("zone", "a"),), (("pool", "h100"), ("zone", "b"))])),
                draw(
                    st.sampled_from(
                        [
                            (),
                            (Toleration("nvidia.com/gpu", "Exists", "", "NoSchedule"),),
                            (Toleration("team", "Equal", "ml", ""), Toleration("spot", "Exists")),
                        ]
                    )
                ),
            )
        )
    return out


def _same(a: list[Pod], b: list[Pod]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (
            x.name,
            x.submit_s,
            x.duration_s,
            x.cpu_milli,
            x.memory_mib,
            x.num_gpu,
            x.gpu_milli,
            x.gpu_models,
            x.priority,
            x.qos,
            x.owner,
            x.job,
            x.node_selector,
            x.tolerations,
        ) == (
            y.name,
            y.submit_s,
            y.duration_s,
            y.cpu_milli,
            y.memory_mib,
            y.num_gpu,
            y.gpu_milli,
            y.gpu_models,
            y.priority,
            y.qos,
            y.owner,
            y.job,
            y.node_selector,
            y.tolerations,
        )
        assert (math.isnan(x.delete_s) and math.isnan(y.delete_s)) or x.delete_s == y.delete_s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pod_lists(), st.sampled_from(["t.csv", "t.parquet"]))
def test_property_generic_round_trip(tmp_path, pods, name):
    p = tmp_path / name
    write_generic(pods, p)
    _same(read_generic(p), pods)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pod_lists(), st.data())
def test_property_truncated_file_is_refused_never_dropped(tmp_path, pods, data):
    p = tmp_path / "t.csv"
    write_generic(pods, p)
    text = p.read_text()
    cut = data.draw(st.integers(1, len(text) - 1))
    p.write_text(text[:cut])
    try:
        got = read_generic(p)
    except UserError:
        return  # refused with a message: fine
    # accepted: then every row it returns is one we wrote, unchanged, and only the last may be cut short
    assert len(got) <= len(pods)
    _same(got[:-1], pods[: len(got) - 1])
