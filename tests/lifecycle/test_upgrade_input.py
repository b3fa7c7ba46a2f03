"""Bad input on the upgrade path: one message naming FILE:LINE and the field (or the flag), what was
expected and how to fix it, exit 2 -- never a run that quietly ignores the mistake."""

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpuinfra import api
from gpuinfra.cli import app
from gpuinfra.errors import UserError
from gpuinfra.lifecycle import example_stack, upgrade_plan
from gpuinfra.models import compat
from gpuinfra.models.nodestack import LAYERS, NodeStack, parse_target, plan_change
from gpuinfra.models.pdb import PodDisruptionBudget

EX = Path(__file__).resolve().parents[2] / "examples"
TEXT = (EX / "upgrade.yaml").read_text().replace("trace: upgrade-jobs.csv", f"trace: {EX / 'upgrade-jobs.csv'}")
runner = CliRunner()


def _scenario(tmp_path: Path, old: str, new: str) -> Path:
    assert old in TEXT
    p = tmp_path / "up.yaml"
    p.write_text(TEXT.replace(old, new))
    return p


def _line(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


def _plan_error(path: Path, *extra: str) -> str:
    r = runner.invoke(app, ["upgrade", "plan", str(path), "--to", "driver=580.65.06", *extra])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    return r.output


# -- --to / --from ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "says"),
    [
        ("", "--to: no layer given"),
        ("  ", "--to: no layer given"),
        ("driver=535.104.05,driver=550.54.15", "--to: layer 'driver' is given twice (535.104.05 and 550.54.15)"),
        ("550/12.4/2.4/9", "--to: '550/12.4/2.4/9' is not DRIVER/CUDA[/TORCH]"),
        ("550//12.4", "--to: '550//12.4' is not DRIVER/CUDA[/TORCH]"),
        ("driver=abc", "--to driver: 'abc' is not a version number"),
        ("kernel=abc", "--to kernel: 'abc' is not a version"),
        ("driver=570.0.0.0.0.0.1", "--to driver: '570.0.0.0.0.0.1' is not a version gpuinfra knows: it has 7 parts"),
        ("570.0.0.0.0.0.1", "expected 1 to 4 dot-separated parts of 1 to 4 digits each"),
        ("driver=57000.1", "part '57000' has more than 4 digits"),
    ],
)
def test_bad_target_is_refused_before_any_run_with_the_flag_named_once(to, says):
    r = runner.invoke(app, ["upgrade", "plan", str(EX / "upgrade.yaml"), "--to", to])
    assert r.exit_code == 2, r.output
    msg = " ".join(r.output.split())
    assert says in msg
    assert "--to: --to" not in msg and "candidate" not in msg  # no doubled prefix, no simulation


def test_from_refuses_the_hardware_layer_and_names_its_flag():
    r = runner.invoke(app, ["upgrade", "layers", "--gpu", "H100-SXM", "--from", "hardware=B200,driver=535.104.05"])
    assert r.exit_code == 2
    r = runner.invoke(
        app, ["upgrade", "layers", "--gpu", "H100-SXM", "--from", "driver=535.104.05", "--to", "cuda=12.8,cuda=12.4"]
    )
    assert r.exit_code == 2 and "--to: layer 'cuda' is given twice" in " ".join(r.output.split())


_version = st.tuples(st.integers(0, 999), st.integers(0, 99)).map(lambda t: f"{t[0]}.{t[1]}")


@given(st.dictionaries(st.sampled_from(["driver", "cuda", "framework", "kernel", "firmware"]), _version, min_size=1))
def test_parse_target_round_trips_layer_equals_version(d):
    assert parse_target(",".join(f"{k}={v}" for k, v in d.items())) == d


@given(st.sampled_from(["driver", "cuda", "framework", "kernel"]), _version, _version)
def test_parse_target_refuses_a_layer_named_twice(layer, a, b):
    with pytest.raises(UserError, match="given twice"):
        parse_target(f"{layer}={a},{layer}={b}")


# -- the upgrade block ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf", "1e11"])
def test_node_upgrade_time_must_be_finite_and_bounded(tmp_path, value):
    p = _scenario(tmp_path, "node_upgrade_s: 1200", f"node_upgrade_s: {value}")
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'node_upgrade_s:')}: upgrade.node_upgrade_s:" in out


def test_start_at_or_after_the_horizon_names_both_fields(tmp_path):
    p = _scenario(tmp_path, "start_s: 3600", "start_s: 259200")
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'start_s:')}: upgrade.start_s:" in out
    assert f"horizon_s (259200 s, {p}:{_line(p, 'horizon_s:')})" in out
    assert "PodDisruptionBudget" not in out


def test_budget_for_an_owner_without_pods_names_the_key_and_the_owners(tmp_path):
    p = _scenario(tmp_path, 'serving: {minAvailable: "80%"}', '"[red]nobody[/red]": {minAvailable: 1}')
    out = " ".join(_plan_error(p).split())
    # the key verbatim (the CLI prints errors with markup off), its line, and the owners that exist
    assert f"{p}:{_line(p, 'nobody')}: upgrade.pdbs.[red]nobody[/red]:" in out
    assert "batch, research, serving" in out


@pytest.mark.parametrize(
    ("budget", "field", "says"),
    [
        ('{minAvailable: "150%"}', "upgrade.pdbs.serving.minAvailable", "'150%' is above 100 %"),
        ("{maxUnavailable: -1}", "upgrade.pdbs.serving.maxUnavailable", "-1 is negative"),
        ('{minAvailable: "8O%"}', "upgrade.pdbs.serving.minAvailable", "is not an integer or a percentage"),
        ("{minAvailable: true}", "upgrade.pdbs.serving.minAvailable", ""),
        ("{minAvailable: 1, maxUnavailable: 1}", "upgrade.pdbs.serving", "give exactly one of minAvailable"),
        ("{}", "upgrade.pdbs.serving", "give exactly one of minAvailable"),
    ],
)
def test_budget_errors_carry_file_line_and_field_once(tmp_path, budget, field, says):
    p = _scenario(tmp_path, 'serving: {minAvailable: "80%"}', f"serving: {budget}")
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'serving: {')}: {field}:" in out
    assert says in out
    assert "serving: serving" not in out


def test_budget_no_drain_satisfies_is_located(tmp_path):
    p = _scenario(tmp_path, 'serving: {minAvailable: "80%"}', 'serving: {minAvailable: "100%"}')
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'serving: {')}: upgrade.pdbs.serving.minAvailable:" in out
    assert "refuses every eviction" in out


def test_unknown_pool_is_named_once_with_the_pools(tmp_path):
    p = _scenario(tmp_path, "pool: gpu\n", "pool: nopool\n")
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'pool: nopool')}: upgrade.pool: 'nopool' is not a pool of the cluster" in out
    assert "one of gpu, gpu-surge" in out and "upgrade.pool: upgrade.pool" not in out


@pytest.mark.parametrize(
    ("stack", "says"),
    [
        ('{driver: "535.104.05", cuda: 12.1}', "write the version in quotes"),
        ('{drvier: "535.104.05"}', "unknown layer 'drvier'"),
        ('{driver: "535.x"}', "is not a version number"),
    ],
)
def test_stack_layers_and_versions_are_checked_at_load(tmp_path, stack, says):
    p = _scenario(tmp_path, 'stack: {driver: "535.104.05", cuda: "12.1", framework: "2.3"}', f"stack: {stack}")
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'stack:')}: upgrade.stack:" in out and says in out


def test_surge_with_no_parallelism_is_refused_at_load(tmp_path):
    p = _scenario(tmp_path, "max_surge: 1", "max_surge: 0")
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'upgrade:')}: upgrade: max_surge and max_unavailable are both 0" in out


def test_simulate_refuses_a_budget_for_a_missing_owner_too(tmp_path):
    p = _scenario(tmp_path, 'serving: {minAvailable: "80%"}', "nobody: {minAvailable: 1}")
    with pytest.raises(UserError, match=r"upgrade\.pdbs\.nobody: no pod of the trace has owner 'nobody'"):
        api.simulate(str(p))
    # the simulate command names the file and line too (checked while the scenario is built)
    r = runner.invoke(app, ["simulate", str(p), "-o", str(tmp_path / "run")])
    assert r.exit_code == 2, r.output
    assert f"{p}:{_line(p, 'nobody')}: upgrade.pdbs.nobody:" in " ".join(r.output.split())
    assert not (tmp_path / "run").exists()


# -- the current stack ----------------------------------------------------------------------------


def test_missing_current_stack_suggests_one_the_tool_accepts(tmp_path):
    p = _scenario(tmp_path, '  stack: {driver: "535.104.05", cuda: "12.1", framework: "2.3"}\n', "")
    out = " ".join(_plan_error(p).split())
    assert "the pool's current driver is not known" in out
    frm = re.search(r"--from (\S+?)\.?$", out).group(1)
    cur = parse_target(frm, flag="--from")
    # the suggestion is a stack compat accepts, and a driver upgrade can be planned from it
    assert compat.check(compat.Stack("H100-SXM", cur["driver"], cur["cuda"], cur["framework"])).verdict != "refuse"
    plan_change(NodeStack(hardware="H100-SXM", **cur), {"driver": "580.65.06"})


@pytest.mark.parametrize("gpu", ["H100-SXM", "A100", "B200", "L4", "V100"])
def test_example_stack_is_accepted_by_compat(gpu):
    ex = example_stack(gpu)
    assert ex, gpu
    assert compat.check(compat.Stack(gpu, ex["driver"], ex["cuda"], ex["framework"])).verdict != "refuse"


def test_example_scenario_carries_a_current_stack_compat_accepts():
    sc = api.scenario(str(EX / "upgrade.yaml"))
    s = sc.upgrade.stack
    assert set(s) <= set(LAYERS) and "driver" in s
    assert compat.check(compat.Stack("H100-SXM", s["driver"], s.get("cuda"), s.get("framework"))).verdict != "refuse"


def test_budget_built_in_code_names_its_field_once():
    with pytest.raises(UserError) as e:
        PodDisruptionBudget("serving", "150%")
    assert str(e.value).startswith("upgrade.pdbs.serving.minAvailable: '150%' is above 100 %")


def test_plan_library_call_locates_errors_in_the_scenario(tmp_path):
    p = _scenario(tmp_path, "start_s: 3600", "start_s: 999999")
    sc = api.scenario(str(p))
    with pytest.raises(UserError, match=rf"{re.escape(str(p))}:\d+: upgrade\.start_s"):
        upgrade_plan(sc, sc._base_dir, {"driver": "580.65.06"})


def test_a_current_version_compat_does_not_know_is_blamed_on_where_it_was_written(tmp_path):
    p = _scenario(tmp_path, 'driver: "535.104.05", cuda: "12.1"', 'driver: "200.1", cuda: "12.1"')
    out = " ".join(_plan_error(p).split())
    assert f"{p}:{_line(p, 'stack:')}: upgrade.stack: driver 200.1 is not an NVIDIA data-center driver" in out
    out = " ".join(_plan_error(EX / "upgrade.yaml", "--from", "driver=535.104.05,cuda=99.1").split())
    assert "error: --from: CUDA 99.1 is not in the toolkit table" in out


def test_a_target_equal_to_the_current_stack_is_refused_before_any_run():
    r = runner.invoke(app, ["upgrade", "plan", str(EX / "upgrade.yaml"), "--to", "driver=535.104.05"])
    assert r.exit_code == 2, r.output
    assert "nothing to upgrade" in " ".join(r.output.split())


def test_a_version_the_tables_lack_is_named_after_the_upgrade_flag_it_came_from():
    base = ["upgrade", "layers", "--gpu", "H100-SXM"]
    r = runner.invoke(app, [*base, "--from", "driver=535.104.05,cuda=13.5,framework=2.3", "--to", "framework=2.7"])
    assert r.exit_code == 2 and "--from cuda: CUDA 13.5 is not in the toolkit table" in " ".join(r.output.split())
    r = runner.invoke(app, [*base, "--from", "driver=535.104.05,cuda=12.1,framework=2.3", "--to", "framework=1.0"])
    assert r.exit_code == 2 and "--to framework: PyTorch 1.0 is not in the wheel table" in " ".join(r.output.split())
    r = runner.invoke(app, ["upgrade", "plan", str(EX / "upgrade.yaml"), "--to", "framework=1.0"])
    assert r.exit_code == 2 and "--to framework: PyTorch 1.0" in " ".join(r.output.split())
