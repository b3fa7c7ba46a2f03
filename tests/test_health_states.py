import itertools

import pytest

from gpuinfra.models.health import EVENTS, SCHEDULABLE, STATES, TRANSITIONS, GpuHealth, IllegalTransition


@pytest.mark.parametrize(("state", "event"), list(itertools.product(STATES, EVENTS)))
def test_every_legal_transition_taken_and_every_illegal_one_refused(state, event):
    g = GpuHealth("gpu0", state)
    if (state, event) in TRANSITIONS:
        assert g.apply(event, 1.0) == TRANSITIONS[(state, event)]
        assert g.history == [(1.0, event, state, TRANSITIONS[(state, event)])]
    else:
        with pytest.raises(IllegalTransition):
            g.apply(event, 1.0)
        assert g.state == state and not g.history


def test_poisoned_gpus_are_sticky_until_their_action_runs():
    g = GpuHealth("0000:3b:00")
    g.on_fault("reboot_node", 10.0)  # Xid 79
    assert g.state == "needs_reboot" and not g.schedulable
    for ev in ("recover", "reset_done", "undrain", "repair_done"):
        with pytest.raises(IllegalTransition):
            g.apply(ev, 11.0)
    g.on_fault("reset_gpu", 12.0)  # a lesser fault does not improve or change it
    assert g.state == "needs_reboot"
    g.apply("reboot_done", 20.0)
    assert g.schedulable and [h[1] for h in g.history] == ["fault_reboot", "reboot_done"]


def test_schedulable_states():
    assert {"healthy", "degraded", "replaced"} == SCHEDULABLE
    g = GpuHealth("x")
    g.on_fault("drain_and_replace", 1.0)
    g.apply("repair_start", 2.0)
    g.apply("replace", 3.0)
    assert g.state == "replaced" and g.schedulable


def test_decision_tree_is_the_catalog():
    from gpuinfra.catalog.xid import xid_catalog
    from gpuinfra.models.faults import decision_tree, decision_tree_mermaid

    edges = decision_tree()
    to_action = {(a, b) for a, b, _ in edges}
    for x in xid_catalog().values():
        assert ("Xid in kernel log", x.cause_class) in to_action and (x.cause_class, x.action) in to_action
    labels = " ".join(lab for _, _, lab in edges)
    assert all(str(x) in labels for x in xid_catalog())
    assert decision_tree_mermaid().startswith("flowchart LR\n")
