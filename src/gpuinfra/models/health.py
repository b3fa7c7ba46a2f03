"""GPU health as an explicit state machine: sticky states, a transition table, and history.

States (per GPU; a node's state is its worst GPU's):

| state | schedulable | meaning |
|---|---|---|
| healthy | yes | |
| degraded | yes | correctable trouble (high SBE rate, thermal slowdown): runs, watched |
| needs_reset | no | poisoned until a GPU reset runs (Xid 48, 95, 64, ... or a pending remap) |
| needs_reboot | no | poisoned until the node reboots (Xid 79 fallen off the bus) |
| drained | no | taken out of service on purpose (cordoned, jobs moved) |
| in_repair | no | with the vendor or a technician |
| replaced | yes | a new part in the same slot; starts clean |

The stickiness is the point (seed section 5): a poisoned GPU does not heal by itself; a job
placed on it fails again, so the only ways out are the action (reset, reboot) or a drain.
``TRANSITIONS`` lists every legal (state, event) -> state; anything else raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATES = ("healthy", "degraded", "needs_reset", "needs_reboot", "drained", "in_repair", "replaced")
SCHEDULABLE = frozenset({"healthy", "degraded", "replaced"})
EVENTS = (
    "degrade",
    "recover",
    "fault_reset",
    "fault_reboot",
    "reset_done",
    "reboot_done",
    "drain",
    "undrain",
    "repair_start",
    "repair_done",
    "replace",
)

_ACTIVE = ("healthy", "degraded", "replaced")
TRANSITIONS: dict[tuple[str, str], str] = {}
for s in _ACTIVE:
    TRANSITIONS[(s, "degrade")] = "degraded"
    TRANSITIONS[(s, "fault_reset")] = "needs_reset"
    TRANSITIONS[(s, "fault_reboot")] = "needs_reboot"
    TRANSITIONS[(s, "drain")] = "drained"
TRANSITIONS[("degraded", "recover")] = "healthy"
# a poisoned GPU: only its action, a worse fault, or a drain moves it
TRANSITIONS[("needs_reset", "reset_done")] = "healthy"
TRANSITIONS[("needs_reset", "reboot_done")] = "healthy"  # a reboot resets every GPU of the node
TRANSITIONS[("needs_reset", "fault_reboot")] = "needs_reboot"
TRANSITIONS[("needs_reset", "drain")] = "drained"
TRANSITIONS[("needs_reboot", "reboot_done")] = "healthy"
TRANSITIONS[("needs_reboot", "drain")] = "drained"
TRANSITIONS[("drained", "undrain")] = "healthy"
TRANSITIONS[("drained", "repair_start")] = "in_repair"
TRANSITIONS[("drained", "replace")] = "replaced"
TRANSITIONS[("in_repair", "repair_done")] = "healthy"
TRANSITIONS[("in_repair", "replace")] = "replaced"

ACTION_EVENT = {"reset_gpu": "fault_reset", "reboot_node": "fault_reboot", "drain_and_replace": "drain"}
"""What a fault with a given decision-tree action does to the GPU's state (none/restart_app: nothing)."""


class IllegalTransition(ValueError):
    pass


@dataclass
class GpuHealth:
    gpu: str
    state: str = "healthy"
    history: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(time, event, from, to) for every transition taken."""

    @property
    def schedulable(self) -> bool:
        return self.state in SCHEDULABLE

    def apply(self, event: str, t_s: float) -> str:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            raise IllegalTransition(f"{self.gpu}: '{event}' is not allowed in state '{self.state}'")
        self.history.append((t_s, event, self.state, nxt))
        self.state = nxt
        return nxt

    def on_fault(self, action: str, t_s: float) -> str:
        """Apply a classified fault (models/faults.py action). Faults never make a state better."""
        ev = ACTION_EVENT.get(action)
        if ev is None or (self.state, ev) not in TRANSITIONS:
            return self.state  # restart_app / none, or already at least as bad (e.g. a reset fault when drained)
        return self.apply(ev, t_s)
