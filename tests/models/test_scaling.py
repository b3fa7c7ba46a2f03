"""Scaling model: parameter counts, memory, and the directions results must move in."""

from __future__ import annotations

import pytest

from gpuinfra.errors import UserError
from gpuinfra.models.collectives import Fabric
from gpuinfra.models.scaling import MODELS, Parallelism, comm_dominates_at, scaling_curve, step_time
from gpuinfra.models.topology import builtin


def test_parameter_counts_match_the_released_models():
    assert MODELS["llama2-7b"].params == 6_738_415_616  # Llama-2-7b checkpoint
    assert MODELS["llama2-70b"].params == 68_976_648_192  # Llama-2-70b checkpoint
    assert MODELS["gpt3-175b"].params == pytest.approx(175e9, rel=0.01)  # GPT-3 paper


def test_step_parts_add_up():
    s = step_time(
        MODELS["gpt3-1.3b"], builtin("dgx-h100"), Parallelism(dp=16, micro_batch=2, microbatches=4, overlap=0.5)
    )
    assert s.step_s == pytest.approx(
        s.compute_s + s.tp_comm_s + s.pp_comm_s + s.bubble_s + s.dp_exposed_s + s.dp_overlap_cost_s + s.optimizer_s
    )
    assert 0 <= s.dp_exposed_s <= s.dp_comm_s
    assert 0 < s.mfu < 1


@pytest.mark.parametrize("node", ["dgx-h100", "dgx-a100", "pcie-8x-l40s"])
def test_weak_scaling_throughput_never_falls(node):
    curve = scaling_curve(MODELS["gpt3-1.3b"], builtin(node), Parallelism(micro_batch=1, seq=2048), 256)
    tps = [r["tokens_per_s"] for r in curve]
    assert all(b >= a for a, b in zip(tps, tps[1:]))
    assert curve[0]["efficiency"] == pytest.approx(1.0)
    assert all(r["efficiency"] <= 1.0 + 1e-9 for r in curve)


def test_topology_decides_scaling_for_the_same_gpu():
    """The same A100s: NVSwitch node against a PCIe-switch node against NVLink-bridge pairs."""
    par = Parallelism(micro_batch=1, seq=2048)
    m = MODELS["gpt3-1.3b"]
    eff = {
        n: scaling_curve(m, builtin(n, "A100-80GB"), par, 64)[-1]["efficiency"] for n in ("dgx-a100", "pcie-8x-l40s")
    }
    assert eff["dgx-a100"] > eff["pcie-8x-l40s"]
    pcie = scaling_curve(m, builtin("pcie-8x-l40s", "A100-80GB"), par, 64)
    assert comm_dominates_at(pcie) is not None


def test_more_tokens_per_gpu_scale_better():
    small = scaling_curve(MODELS["gpt3-1.3b"], builtin("pcie-8x-l40s"), Parallelism(micro_batch=1, seq=2048), 64)
    big = scaling_curve(
        MODELS["gpt3-1.3b"],
        builtin("pcie-8x-l40s"),
        Parallelism(micro_batch=4, microbatches=8, seq=2048, overlap=0.5),
        64,
    )
    assert big[-1]["efficiency"] > small[-1]["efficiency"]


def test_faster_network_and_more_overlap_never_hurt():
    m, t = MODELS["llama2-7b"], builtin("dgx-a100")
    base = Parallelism(tp=2, dp=64, micro_batch=1, microbatches=4)
    slow = step_time(m, t, base, Fabric(nic="hdr")).step_s
    fast = step_time(m, t, base, Fabric(nic="ndr")).step_s
    assert fast <= slow
    over = step_time(m, t, Parallelism(**{**base.__dict__, "overlap": 1.0}), Fabric(nic="hdr")).step_s
    assert over <= slow


def test_memory_says_what_does_not_fit():
    assert not step_time(MODELS["llama2-7b"], builtin("pcie-8x-l40s"), Parallelism()).fits  # 16 B/param > 48 GB
    s = step_time(MODELS["llama2-70b"], builtin("dgx-h100"), Parallelism(tp=8, pp=4, microbatches=16))
    assert s.fits and s.memory_gib < 80


def test_bad_parallelism_is_a_user_error():
    with pytest.raises(UserError, match="larger than the node"):
        step_time(MODELS["llama2-7b"], builtin("dgx-h100"), Parallelism(tp=16))
    with pytest.raises(UserError, match="does not divide"):
        step_time(MODELS["llama2-7b"], builtin("dgx-h100"), Parallelism(pp=3))


def test_leaving_an_nvlink_pair_can_make_more_gpus_slower():
    """Synchronous data parallel runs at its slowest link: 2 bridged A100s beat 4 that cross sockets."""
    curve = scaling_curve(
        MODELS["gpt3-1.3b"], builtin("pcie-4x-a100-nvbridge"), Parallelism(micro_batch=1, seq=2048), 4
    )
    assert [r["gpus"] for r in curve] == [1, 2, 4]
    assert curve[2]["tokens_per_s"] < curve[1]["tokens_per_s"]


def test_overlap_costs_the_sms_nccl_holds():
    # DGX H100: 8 NICs -> 16 channels (NCCL logs, NVIDIA/nccl#820); H100 SXM has 132 SMs.
    # The hidden part of the all-reduce slows compute by 16/132 of its own length, by hand.
    topo = builtin("dgx-h100")
    s = step_time(MODELS["gpt3-1.3b"], topo, Parallelism(dp=16, micro_batch=2, microbatches=4, overlap=1.0))
    hidden = s.dp_comm_s - s.dp_exposed_s
    assert hidden > 0
    assert s.dp_overlap_cost_s == pytest.approx(hidden * 16 / 132)
    none = step_time(MODELS["gpt3-1.3b"], topo, Parallelism(dp=16, micro_batch=2, microbatches=4, overlap=0.0))
    assert none.dp_overlap_cost_s == 0.0 and none.step_s > s.step_s  # overlap still pays, just not fully
