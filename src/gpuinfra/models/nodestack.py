"""A GPU node as layers, and what a change at one layer forces at the others.

Layers, bottom up: hardware (GPU model), firmware (VBIOS), kernel, driver branch, CUDA (the
toolkit the images were built with), container toolkit, device plugin / GPU operator, framework
image (PyTorch). The coupling rules are those of models/compat.py (NVIDIA's CUDA compatibility
tables, PyTorch's release matrix; sources in catalog/data/compat/SOURCE.md):

- raising **CUDA** past what the driver supports forces the **driver** up to the toolkit's
  corresponding driver (rule driver-floor; minor-version compatibility keeps a driver at the
  major's floor working with reduced features, reported as a warning by ``compat.check``);
- a **framework** (PyTorch) minor ships wheels for a few CUDA versions only (rule torch-wheel):
  choosing it forces the image's CUDA to one of its wheels (the newest the driver runs);
- a **driver** change keeps CUDA and framework unless ``compat.check`` refuses the stack, in
  which case the newest framework wheel the new driver runs is proposed (``safe_upgrades``);
- firmware, kernel, container toolkit and device plugin have no rows in the packaged data: a
  change there is carried as given and flagged ``no-data`` (the GPU Operator validates them on
  the node; see the upgrade controller's ``node_upgrade_s``).

:func:`plan_change` returns the new stack, every forced change with its rule and the final
compatibility report; a stack the data refuses raises UserError naming the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gpuinfra.catalog import compat as cc
from gpuinfra.errors import UserError
from gpuinfra.models import compat

LAYERS = (
    "hardware",
    "firmware",
    "kernel",
    "driver",
    "cuda",
    "container_toolkit",
    "device_plugin",
    "framework",
)
NO_DATA = ("firmware", "kernel", "container_toolkit", "device_plugin")


@dataclass(frozen=True)
class NodeStack:
    """One node's layers. ``hardware`` is a GPU model name; versions are strings."""

    hardware: str
    driver: str
    cuda: str | None = None
    framework: str | None = None
    """PyTorch minor, e.g. '2.7'."""
    firmware: str = ""
    kernel: str = ""
    container_toolkit: str = ""
    device_plugin: str = ""

    def compat_stack(self) -> compat.Stack:
        return compat.Stack(self.hardware, self.driver, self.cuda, self.framework)


@dataclass
class ChangePlan:
    """What a requested change does to a node: the new stack, forced changes, final verdict."""

    before: NodeStack
    after: NodeStack
    requested: dict[str, str]
    forced: list[dict[str, str]] = field(default_factory=list)
    report: compat.Report | None = None

    @property
    def layers_changed(self) -> list[str]:
        return [ly for ly in LAYERS if getattr(self.before, ly) != getattr(self.after, ly)]

    @property
    def needs_reboot(self) -> bool:
        """A driver, kernel or firmware change needs the node drained and rebooted; image-only
        changes (CUDA in the image, framework) roll with the pods."""
        return any(ly in self.layers_changed for ly in ("driver", "kernel", "firmware", "hardware"))

    def as_dict(self) -> dict:
        return {
            "before": self.before.__dict__,
            "after": self.after.__dict__,
            "requested": self.requested,
            "forced": self.forced,
            "layers_changed": self.layers_changed,
            "needs_node_drain": self.needs_reboot,
            "verdict": self.report.verdict if self.report else None,
            "findings": [f.__dict__ for f in self.report.findings] if self.report else [],
        }


def parse_target(text: str) -> dict[str, str]:
    """``driver=570.86.15,cuda=12.8,framework=2.7`` or ``DRIVER/CUDA[/FRAMEWORK]`` -> layer -> version.

    Raises UserError naming an unknown layer or an empty target.
    """
    text = text.strip()
    out: dict[str, str] = {}
    if "=" in text:
        for part in text.split(","):
            k, _, v = part.partition("=")
            k = k.strip().replace("-", "_")
            k = {"torch": "framework", "gpu_operator": "device_plugin"}.get(k, k)
            if k not in LAYERS or not v.strip():
                raise UserError(
                    f"--to: '{part}' is not LAYER=VERSION", where="--to", expected="layers: " + ", ".join(LAYERS)
                )
            out[k] = v.strip()
    else:
        parts = [p.strip() for p in text.split("/") if p.strip()]
        if not parts or len(parts) > 3:
            raise UserError(f"--to: '{text}'", where="--to", expected="DRIVER/CUDA[/TORCH] or driver=...,cuda=...")
        out = dict(zip(("driver", "cuda", "framework"), parts, strict=False))
    if not out:
        raise UserError("--to names no layer", where="--to", expected="DRIVER/CUDA or driver=...,cuda=...")
    return out


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in v)


def plan_change(before: NodeStack, to: dict[str, str]) -> ChangePlan:
    """Apply the requested layer versions, add what they force (rules above), check the result.

    Raises UserError when the resulting stack is refused by a compat rule (the message names
    the rule and its fix), or for unknown versions (from compat.check).
    """
    after = replace(before, **to)
    plan = ChangePlan(before, after, dict(to))
    drv = cc.version_tuple(after.driver, where="--to driver")
    # framework chosen: its CUDA must be one of its wheels (the newest whose driver floor is met)
    if "framework" in to:
        tv = cc.version_tuple(after.framework or "", where="--to framework")[:2]
        wheels = [w for w in cc.torch_wheels() if w.torch == tv]
        if not wheels:
            raise UserError(f"PyTorch {after.framework} is not in the wheel table", where="--to framework")
        if after.cuda is None or all(_fmt(w.cuda[:2]) != after.cuda for w in wheels):
            ok = [w for w in wheels if compat._toolkit(w.cuda[:2]).family_min_driver <= drv]
            pick = max(ok or wheels, key=lambda w: w.cuda)
            new = _fmt(pick.cuda[:2])
            if "cuda" in to and to["cuda"] != new:
                raise UserError(
                    f"PyTorch {after.framework} ships no wheel for CUDA {to['cuda']} (rule torch-wheel)",
                    where="--to",
                    expected="CUDA one of " + ", ".join(sorted({_fmt(w.cuda[:2]) for w in wheels})),
                )
            plan.forced.append({"layer": "cuda", "from": str(after.cuda), "to": new, "rule": "torch-wheel"})
            after = replace(after, cuda=new)
    # CUDA above the driver: force the driver up to the toolkit's corresponding driver
    if after.cuda is not None and "driver" not in to:
        tk = compat._toolkit(cc.version_tuple(after.cuda, where="--to cuda"))
        if drv < tk.linux_driver:
            new = _fmt(tk.linux_driver)
            plan.forced.append({"layer": "driver", "from": after.driver, "to": new, "rule": "driver-floor"})
            after = replace(after, driver=new)
    # a driver change that breaks the framework: newest wheel the new driver runs
    if after.framework is not None and "framework" not in to:
        rep = compat.check(after.compat_stack())
        if rep.verdict == "refuse":
            safe = compat.safe_upgrades(compat.Stack(after.hardware, after.driver))
            if "cuda" in to:  # the image's CUDA was asked for: only wheels built for it
                safe = [w for w in safe if w["wheel"] == "cu" + to["cuda"].replace(".", "")]
            if not safe:
                raise UserError(
                    f"no PyTorch wheel runs on driver {after.driver} with CUDA {after.cuda} on {after.hardware} "
                    f"(framework {after.framework} is refused: {rep.findings[-1].rule})",
                    where="--to",
                    fix="name a framework too (framework=X.Y) or another CUDA",
                )
            s = safe[0]
            plan.forced.append({"layer": "framework", "from": after.framework, "to": s["torch"], "rule": "torch-wheel"})
            cuda = s["wheel"].removeprefix("cu")
            after = replace(after, framework=s["torch"], cuda=f"{cuda[:-1]}.{cuda[-1]}")
    for ly in NO_DATA:
        if ly in to:
            plan.forced.append({"layer": ly, "from": getattr(before, ly), "to": to[ly], "rule": "no-data"})
    plan.after = after
    plan.report = compat.check(after.compat_stack())
    if plan.report.verdict == "refuse":
        bad = [f for f in plan.report.findings if f.verdict == "refuse"]
        raise UserError(
            "the compatibility data forbids this upgrade path: "
            + "; ".join(f"rule {f.rule}: {f.message}" for f in bad),
            where="--to",
            expected="a stack no compat rule refuses (gpuinfra compat check lists the rules)",
            fix=bad[0].fix or None,
        )
    return plan
