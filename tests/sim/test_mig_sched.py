"""MIG instances as schedulable resources in the replay (mixed strategy)."""

from __future__ import annotations

import pandas as pd
import pytest

from gpuinfra.errors import UserError
from gpuinfra.io.scenario import builtin_scenario_text, parse_scenario
from gpuinfra.io.traces import read_generic, write_generic
from gpuinfra.run import simulate, write_run_dir
from gpuinfra.sim.plugins.mig import mig_milli

LAYOUT = {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}
MILLI = {mig_milli("H100-SXM", p): p for p in LAYOUT}


def test_mig_pods_use_instances_and_never_exceed_the_layout(tmp_path):
    sc = parse_scenario(
        builtin_scenario_text("mig-inference").replace("jobs: 1500", "jobs: 400"), "builtin:mig-inference"
    )
    out = simulate(sc, None, log_events=False)
    write_run_dir(out, tmp_path / "run", report=False)
    d = pd.read_parquet(tmp_path / "run" / "pods.parquet")
    placed = d[d["node"] != ""]
    mig_nodes = placed["node"].str.startswith("h100-mig")
    assert set(placed[mig_nodes]["gpu_milli"]) <= set(MILLI)  # only instance requests on MIG nodes
    assert set(placed[~mig_nodes]["gpu_milli"]) == {1000}  # whole GPUs only on the others
    # at any instant, per GPU and profile, no more pods than the layout has instances
    for (node, dev), g in placed[mig_nodes].groupby(["node", "devices"]):
        ev = sorted(
            [(r.start_s, 1, r.gpu_milli) for r in g.itertuples()]
            + [(r.end_s, -1, r.gpu_milli) for r in g.itertuples()],
            key=lambda x: (x[0], x[1]),
        )
        live: dict[int, int] = {}
        for _, k, m in ev:
            live[m] = live.get(m, 0) + k
            assert live[m] <= LAYOUT[MILLI[m]], (node, dev, MILLI[m])


def test_generic_trace_carries_mig_profiles(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("job_id,submit_time_s,duration_s,gpu_model,mig_profile\na,0,10,H100-SXM,1g.10gb\nb,1,10,H100-SXM,\n")
    pods = read_generic(f, "t.csv")
    assert (pods[0].mig_profile, pods[0].num_gpu, pods[0].gpu_milli) == ("1g.10gb", 1, mig_milli("H100-SXM", "1g.10gb"))
    assert pods[1].mig_profile == ""
    out = tmp_path / "u.csv"
    write_generic(pods, out)
    assert [p.mig_profile for p in read_generic(out, "u.csv")] == ["1g.10gb", ""]
    f.write_text("job_id,submit_time_s,duration_s,gpu_model,mig_profile\na,0,10,H100-SXM,5g.50gb\n")
    with pytest.raises(UserError, match=r"t\.csv:2.*mig_profile.*unknown MIG profile"):
        read_generic(f, "t.csv")
    f.write_text("job_id,submit_time_s,duration_s,mig_profile\na,0,10,1g.10gb\n")
    with pytest.raises(UserError, match="exactly one gpu_model"):
        read_generic(f, "t.csv")


def test_bad_mig_layout_is_a_scenario_error():
    text = builtin_scenario_text("mig-inference").replace(
        "mig_layout: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]", "mig_layout: [4g.40gb, 4g.40gb]"
    )
    sc = parse_scenario(text, "s.yaml")
    with pytest.raises(UserError, match=r"s\.yaml:1\d.*mig_layout.*does not fit"):
        simulate(sc, None, log_events=False)


def test_time_sliced_replicas_in_the_replay(tmp_path):
    text = """
name: ts
seed: 1
cluster:
  pools:
    - {name: ts, gpu_model: H100-SXM, gpus_per_node: 1, cpu_milli: 64000, memory_mib: 262144, count: 1,
       timeslice_replicas: 4}
    - {name: plain, gpu_model: H100-SXM, gpus_per_node: 2, cpu_milli: 64000, memory_mib: 262144, count: 1}
workload:
  trace: jobs.csv
"""
    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_time_s,duration_s,num_gpu,gpu_milli,cpu_milli,memory_mib,node_selector\n"
        + "".join(f"r{k},{k},100,1,1000,1000,1024,nvidia.com/gpu.replicas=4\n" for k in range(5))
        + "w,10,100,2,1000,1000,1024,\n"
    )
    (tmp_path / "s.yaml").write_text(text)
    sc = parse_scenario(text, str(tmp_path / "s.yaml"))
    out = simulate(sc, tmp_path, log_events=False)
    write_run_dir(out, tmp_path / "run", report=False)
    d = pd.read_parquet(tmp_path / "run" / "pods.parquet").set_index("name")
    reps = d.loc[[f"r{k}" for k in range(5)]]
    assert (reps["node"] == "ts-0000").all()
    assert reps["gpu_hours"].to_numpy() == pytest.approx([100 * 0.25 / 3600] * 5)  # one replica = 1000 // 4 of the GPU
    assert list(reps["start_s"]) == [0.0, 1.0, 2.0, 3.0, 100.0]  # four share the GPU, the fifth waits
    assert d.loc["w", "node"] == "plain-0000"  # a 2-GPU request never lands on the time-sliced pool
    assert out.summary["invariants"]["gpu_time_balance"]["ok"] and out.summary["invariants"]["no_overcommit"]["ok"]


def test_mig_manager_repartitions_idle_gpus_for_pending_demand(tmp_path):
    def run(reconfigure: bool):
        args = "\n  plugin_args: {MigFit: {reconfigure: true, interval_s: 300}}" if reconfigure else ""
        text = f"""
name: reconf
seed: 1
horizon_s: 20000
cluster:
  pools:
    - {{name: m, gpu_model: H100-SXM, gpus_per_node: 2, cpu_milli: 64000, memory_mib: 262144, count: 1,
       mig_layout: [7g.80gb]}}
workload:
  trace: jobs.csv
scheduler:
  filters: [NodeResourcesFit, GpuModel]{args}
"""
        (tmp_path / "jobs.csv").write_text(
            "job_id,submit_time_s,duration_s,gpu_model,mig_profile\n"
            + "big,0,3000,H100-SXM,7g.80gb\n"
            + "".join(f"s{k},10,600,H100-SXM,1g.10gb\n" for k in range(8))
        )
        sc = parse_scenario(text, "s.yaml")
        out = simulate(sc, tmp_path, log_events=False)
        return out

    # without reconfiguration no 1g instance can ever exist: refused at load time, naming the rows
    with pytest.raises(UserError) as e:
        run(False)
    assert "jobs.csv:3: pod 's0' can never be scheduled: asks for MIG instance 1g.10gb" in str(e.value)
    dyn = run(True)
    d = dict(zip(dyn.run.pods.names, dyn.run.start_s))
    assert all(d[f"s{k}"] == 300 + 60 for k in range(7))  # the idle GPU is cut into 7 x 1g at t=300, ready 60 s later
    assert d["s7"] == 360 + 600  # the 8th takes the first 1g instance that frees up
    ends = dict(zip(dyn.run.pods.names, dyn.run.end_s))
    assert d["big"] == 0 and ends["big"] == 3000  # the busy GPU was never drained
    s = dyn.summary
    assert s["invariants"]["gpu_time_balance"]["ok"]
    assert s["gpu_time"]["unavailable_gpu_hours"] > 0  # reconfiguration time is paid in GPU-time
