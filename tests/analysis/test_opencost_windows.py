"""The OpenCost export's windows: each row carries the interval its pod ran (RFC 3339 after a stated
epoch), gpuHours = gpuCount x minutes / 60 on every row (OpenCost's ``Allocation.GPUs()``), CPU
requests filled, idle named as OpenCost names it, and the rows still sum to the bill."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuinfra import api
from gpuinfra.analysis import attribution as at
from gpuinfra.errors import UserError

EX = Path(__file__).resolve().parents[2] / "examples"


def _consistent(table: pd.DataFrame, horizon: float) -> None:
    gh = table["gpuCount"] * table["minutes"] / 60.0
    assert np.allclose(table["gpuHours"], gh, rtol=1e-9, atol=1e-9)
    assert (table["startS"] >= 0).all() and (table["endS"] <= horizon).all()
    assert (table["endS"] >= table["startS"]).all()
    assert np.allclose(table["minutes"], (table["endS"] - table["startS"]) / 60.0)
    back = (pd.to_datetime(table["start"]) - pd.Timestamp(at.DEFAULT_EPOCH)).dt.total_seconds()
    assert np.allclose(back, table["startS"], atol=1e-3)
    assert np.allclose(table["cpuCoreHours"], table["cpuCores"] * table["minutes"] / 60.0)


def test_a_pod_that_ran_ten_to_noon_on_two_gpus_is_120_minutes_and_4_gpu_hours(tmp_path):
    rows = ["job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,gpu_model,priority,qos,owner"]
    rows += ["train-a,36000,7200,2,1000,16000,65536,H100-SXM,5,,research"]
    (tmp_path / "jobs.csv").write_text("\n".join(rows) + "\n")
    d = {
        "name": "hand",
        "seed": 1,
        "horizon_s": 86400.0,
        "sample_interval_s": 600,
        "cluster": {"pools": [{"name": "gpu", "shape": "aws:p5.48xlarge", "count": 1}]},
        "workload": {"trace": "jobs.csv"},
        "scheduler": {"filters": ["NodeResourcesFit"], "reserve": "FirstFitDevices"},
        "prices": {"cloud": "aws"},
    }
    (tmp_path / "sc.yaml").write_text(yaml.safe_dump(d))
    o = api.simulate(api.scenario(tmp_path / "sc.yaml"))._output
    t = at.attribute(o.run, o.ledger, o.built.prices, cluster_name="hand", epoch="2026-03-01T00:00:00Z")
    (row,) = t[t["costCategory"] == "workload"].to_dict(orient="records")
    assert row["name"] == "research/train-a"
    assert (row["start"], row["end"]) == ("2026-03-01T10:00:00.000Z", "2026-03-01T12:00:00.000Z")
    assert row["minutes"] == pytest.approx(120.0)
    assert row["gpuCount"] == pytest.approx(2.0) and row["gpuHours"] == pytest.approx(4.0)
    assert row["cpuCores"] == row["cpuCoreRequestAverage"] == pytest.approx(16.0)
    assert row["cpuCoreHours"] == pytest.approx(32.0) and row["cpuCost"] == 0.0
    idle = t[t["costCategory"] == "idle"].iloc[0]
    # the run (and its bill) starts at the first arrival, 10:00: 14 h to the 24 h horizon
    assert idle["name"] == "hand/__idle__" and idle["minutes"] == pytest.approx(840.0)
    assert idle["start"] == "2026-03-01T10:00:00.000Z"
    # 8 GPUs x 14 h billed: the pod's 4 GPU-hours + 108 idle (stranded included)
    assert idle["gpuHours"] + t.loc[t.costCategory == "stranded", "gpuHours"].sum() == pytest.approx(108.0)
    assert t.loc[t.costCategory.isin(["idle", "stranded"]), "gpuCount"].sum() == pytest.approx(108.0 / 14.0)
    assert t["totalCost"].sum() == pytest.approx(at.bill(o.run, o.built.prices)["total"])
    assert "__idle__" in set(at.aggregate(t)["namespace"])


@pytest.fixture(scope="module")
def upgrade_table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("up")
    shutil.copy(EX / "upgrade-jobs.csv", tmp / "upgrade-jobs.csv")
    shutil.copy(EX / "upgrade.yaml", tmp / "upgrade.yaml")
    o = api.simulate(api.scenario(tmp / "upgrade.yaml"))._output
    return at.attribute(o.run, o.ledger, o.built.prices), o


def test_upgrade_example_every_row_has_its_own_window_and_sums_to_the_bill(upgrade_table):
    t, o = upgrade_table
    _consistent(t, float(o.run.horizon_s))
    pods = t[t["pod"] != ""]
    # rows are the pods' own runs, not the whole run for every row (the trial's finding)
    assert (pods["minutes"] < (o.run.horizon_s - o.run.recorder.start_s) / 60.0).any()
    assert (pods.loc[pods.costCategory == "failure_waste", "cpuCores"] > 0).all()
    # a surviving run's row holds its request for the whole window (no over-provisioning moved out)
    plain = pods[(pods.costCategory == "workload") & (pods.namespace != "serving")]
    led = o.ledger.set_index("name")
    last = plain.drop_duplicates("pod", keep="first")
    assert np.allclose(last["gpuCount"], led.loc[last["pod"], "num_gpu"].to_numpy() * 1.0, rtol=1e-6)
    assert t["totalCost"].sum() == pytest.approx(at.bill(o.run, o.built.prices)["total"], rel=1e-9)
    assert at.check(o.run, t)["ok"]
    assert {n.split("/")[-1] for n in t.loc[t["namespace"] == "", "name"]} == {
        "__idle__",
        "__stranded__",
        "__unavailable__",
    }


def test_each_thrown_away_attempt_is_its_own_row_inside_the_pods_life(upgrade_table):
    t, o = upgrade_table
    fw = t[t.costCategory == "failure_waste"]
    assert len(fw) > 0
    att = fw[fw["cpuCores"] > 0]  # engine attempts (in-place gang restarts carry no CPU of their own)
    led0 = o.ledger.set_index("name")
    req = led0.loc[att["pod"], "num_gpu"].to_numpy() * led0.loc[att["pod"], "gpu_milli"].to_numpy() / 1000.0
    # an attempt holds its request for its whole window, so its time-average is the request
    assert np.allclose(att["gpuCount"], req, rtol=1e-9)
    led = o.ledger.set_index("name")
    sub = led.loc[fw["pod"], "submit_s"].to_numpy()
    assert (fw["startS"].to_numpy() >= sub - 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=0, max_value=1e8, allow_nan=False),
    st.datetimes(
        min_value=pd.Timestamp("1970-01-01").to_pydatetime(), max_value=pd.Timestamp("2200-01-01").to_pydatetime()
    ),
)
def test_rfc3339_round_trips_to_the_millisecond(seconds, when):
    epoch = when.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    (text,) = at.rfc3339(np.array([seconds]), epoch)
    assert text.endswith("Z") and "T" in text
    assert (pd.Timestamp(text) - pd.Timestamp(epoch)).total_seconds() == pytest.approx(seconds, abs=1e-3)


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "2026-03-01T00:00:00",
        "",
        "9999-12-31T23:59:59Z",  # beyond pandas' nanosecond range: was an OverflowError traceback
        "0001-01-01T00:00:00Z",
        "March 5 2026 10am Z",  # a fuzzy date parser would accept it; RFC 3339 does not
        "2026-01-01",
        "2026-02-30T00:00:00Z",
        "nan",
    ],
)
def test_an_epoch_that_is_not_rfc3339_with_an_offset_is_refused(bad):
    with pytest.raises(UserError) as e:
        at.rfc3339(np.array([0.0]), bad)
    assert "epoch" in str(e.value)


def test_cli_refuses_a_bad_epoch_before_running_with_exit_2():
    from typer.testing import CliRunner

    from gpuinfra.cli import app

    r = CliRunner().invoke(app, ["cost", "attribute", str(EX / "upgrade.yaml"), "--epoch", "2026-03-01T00:00:00"])
    assert r.exit_code == 2
    assert "--epoch" in r.output and "offset" in r.output and "Traceback" not in r.output
