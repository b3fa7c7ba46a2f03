"""A GPU node as layers, and what a change at one layer forces at the others.

Layers, bottom up: hardware (GPU model), firmware (VBIOS), kernel, driver branch, CUDA (the
toolkit the images were built with), container toolkit, device plugin / GPU operator, framework
image (PyTorch). The coupling rules are those of models/compat.py (NVIDIA's CUDA compatibility
tables, PyTorch's release matrix; sources in catalog/data/compat/SOURCE.md):

- a **framework** (PyTorch) minor ships wheels for a few CUDA versions only (rule torch-wheel);
  each wheel carries its CUDA runtime, so the host needs only a driver that runs it, natively
  (driver >= the toolkit's driver, rule driver-floor) or under minor-version compatibility (driver
  >= the CUDA major's floor, a warning in ``compat.check``);
- the **driver** is forced up only when ``compat.check`` refuses every stack that keeps it (below
  the CUDA major's floor): a driver change drains every node, an image change (CUDA, framework)
  is a rolling restart of pods;
- firmware, kernel, container toolkit and device plugin have no rows in the packaged data: a
  change there is carried as given and listed as ``unchecked`` (the GPU Operator validates them
  on the node; see the upgrade controller's ``node_upgrade_s``).

:func:`plan_change` returns the least disruptive consistent stack, every forced change with
the rule that forced it, how the driver runs the CUDA, and the final compatibility report; a
stack the data refuses raises UserError naming the rule.
"""

from __future__ import annotations

import re
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
    unchecked: list[dict[str, str]] = field(default_factory=list)
    """Requested layers without compatibility data (rule no-data): carried as given, validated on the node."""
    driver_compat: str | None = None
    """How the final stack's CUDA runs on its driver: native, minor-version or forward-compat (compat.check)."""

    @property
    def layers_changed(self) -> list[str]:
        return [ly for ly in LAYERS if getattr(self.before, ly) != getattr(self.after, ly)]

    @property
    def needs_reboot(self) -> bool:
        """A driver, kernel or firmware change needs the node drained and rebooted; image-only
        changes (CUDA in the image, framework) roll with the pods."""
        return any(ly in self.layers_changed for ly in ("driver", "kernel", "firmware", "hardware"))

    @property
    def rollout(self) -> str:
        """How the change reaches the pool: a node drain and reboot, or a rolling restart of pods."""
        if self.needs_reboot:
            return "cordon, drain and reboot every node of the pool (driver/kernel/firmware change)"
        if self.layers_changed:
            return (
                "no node drain: the container image changes (the PyTorch wheel carries its CUDA runtime; the node "
                "keeps its driver); rolling restart of the pods only"
            )
        return "nothing changes"

    def as_dict(self) -> dict:
        return {
            "before": self.before.__dict__,
            "after": self.after.__dict__,
            "requested": self.requested,
            "forced": self.forced,
            "layers_changed": self.layers_changed,
            "unchecked": self.unchecked,
            "needs_node_drain": self.needs_reboot,
            "rollout": self.rollout,
            "driver_compat": self.driver_compat,
            "verdict": self.report.verdict if self.report else None,
            "findings": [f.__dict__ for f in self.report.findings] if self.report else [],
        }


def parse_target(text: str, *, flag: str = "--to") -> dict[str, str]:
    """``driver=570.86.15,cuda=12.8,framework=2.7`` or ``DRIVER/CUDA[/FRAMEWORK]`` -> layer -> version.

    ``flag`` names the option in messages (``--to``, ``--from``). Raises UserError for an empty
    text, an unknown layer, a layer named twice, an empty or malformed version.
    """
    text = text.strip()
    usage = "DRIVER/CUDA[/TORCH] or layer=version,... (layers: " + ", ".join(LAYERS) + ")"
    if not text:
        raise UserError(
            "no layer given (the value is empty)",
            where=flag,
            expected=usage,
            fix=f"name the target layers, e.g. {flag} driver=580.65.06",
        )
    out: dict[str, str] = {}
    if "=" in text:
        for part in text.split(","):
            k, _, v = part.partition("=")
            k = k.strip().replace("-", "_")
            k = {"torch": "framework", "gpu_operator": "device_plugin"}.get(k, k)
            if k not in LAYERS or not v.strip():
                raise UserError(f"'{part}' is not LAYER=VERSION", where=flag, expected=usage)
            if k in out:
                raise UserError(
                    f"layer '{k}' is given twice ({out[k]} and {v.strip()})",
                    where=flag,
                    expected="each layer once",
                    fix="keep the version you mean and drop the other",
                )
            out[k] = v.strip()
    else:
        parts = [p.strip() for p in text.split("/")]
        if not parts or len(parts) > 3 or not all(parts):
            raise UserError(f"'{text}' is not DRIVER/CUDA[/TORCH]", where=flag, expected=usage)
        out = dict(zip(("driver", "cuda", "framework"), parts, strict=False))
    for k in ("driver", "cuda", "framework"):
        if k in out:
            cc.version_tuple(out[k], where=f"{flag} {k}")
    for k in NO_DATA:
        # versions the compat data does not judge still have to look like versions: 6.8.0-45-generic
        # (kernel), 96.00.51.00.0B (VBIOS), 1.17.3 (container toolkit), v0.17.0 (device plugin)
        if k in out and not _VERSION_LIKE.fullmatch(out[k]):
            raise UserError(
                f"'{out[k]}' is not a version",
                where=f"{flag} {k}",
                expected="dot-separated numbers with an optional v prefix and -suffix, e.g. 6.8.0-45-generic",
            )
    return out


_VERSION_LIKE = re.compile(r"v?\d+(\.[0-9A-Za-z]+)*([-+][0-9A-Za-z.\-]+)?")


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in v)


def _driver_mode(rep: compat.Report) -> str | None:
    """'native' (driver >= the toolkit's driver), 'minor-version' or 'cuda-compat' (forward compat), from
    the report's driver rule; None when no CUDA is named."""
    for f in rep.findings:
        if f.rule == "driver-floor":
            return "native"
        if f.rule == "minor-version":
            return "minor-version"
        if f.rule == "forward-compat":
            return "forward-compat"
    return None


def _wheel_status(rep: compat.Report) -> str:
    return next((f.verdict for f in rep.findings if f.rule == "torch-wheel"), "ok")


def plan_change(before: NodeStack, to: dict[str, str]) -> ChangePlan:
    """The least disruptive consistent stack that holds the requested layer versions.

    Candidates: every requested layer at its requested version; the framework kept or moved to any
    PyTorch minor of the wheel table; the image's CUDA kept or moved to any wheel of that framework;
    the driver kept or raised to the driver its CUDA toolkit shipped with. ``compat.check`` judges
    each; refused stacks are dropped. The pick minimises, in order: (1) a driver change nobody asked
    for (it drains every node), (2) the distance the framework moves (in PyTorch minors), (3) a CUDA
    change nobody asked for, (4) experimental wheels, (5) minor-version compatibility over a native
    driver, (6) the distance the CUDA moves. A non-requested layer that changes is listed in
    ``forced`` with the rule that refused the stack as requested; requested layers never are.
    Layers without compatibility data (firmware, kernel, container toolkit, device plugin) are
    carried as given and listed in ``unchecked``.

    Raises UserError when no candidate passes (the message names the rules that refuse the
    requested stack), or for unknown versions (from compat.check).
    """
    naive = replace(before, **to)
    rep0 = compat.check(naive.compat_stack())
    minors = sorted({w.torch for w in cc.torch_wheels()})
    if "framework" in to:
        tv = cc.version_tuple(to["framework"], where="--to framework")[:2]
        if tv not in minors:
            raise UserError(
                f"PyTorch {to['framework']} is not in the wheel table",
                where="--to framework",
                expected="one of " + ", ".join(_fmt(m) for m in minors),
            )
        fw_cands: list[str | None] = [to["framework"]]
    elif before.framework is None:
        fw_cands = [None]
    else:
        fw_cands = [before.framework] + [_fmt(m) for m in minors if _fmt(m) != before.framework]
    cur_fw = cc.version_tuple(before.framework, where="--from framework")[:2] if before.framework else None
    cur_cuda = cc.version_tuple(before.cuda, where="--from cuda")[:2] if before.cuda else None
    best: tuple[tuple, NodeStack, compat.Report] | None = None
    for fw in fw_cands:
        if "cuda" in to:
            cudas: list[str | None] = [to["cuda"]]
        elif fw is None or fw == before.framework and "framework" not in to:
            cudas = [before.cuda]
        else:
            fv = cc.version_tuple(fw)[:2]
            cudas = sorted({_fmt(w.cuda[:2]) for w in cc.torch_wheels() if w.torch == fv})
            if before.cuda in cudas:
                cudas = [before.cuda, *[c for c in cudas if c != before.cuda]]
        for cu in cudas:
            drivers = [naive.driver]
            if "driver" not in to and cu is not None:
                tk = compat._toolkit(cc.version_tuple(cu, where="--to cuda")[:2])
                if cc.version_tuple(naive.driver) < tk.linux_driver:
                    drivers.append(compat.fmt_driver(tk.linux_driver))
            for drv in drivers:
                cand = replace(naive, driver=drv, cuda=cu, framework=fw)
                rep = compat.check(cand.compat_stack())
                if rep.verdict == "refuse":
                    continue
                fdist = 0 if fw == before.framework or "framework" in to else 100
                if fdist and cur_fw in minors:
                    fdist = abs(minors.index(cc.version_tuple(fw)[:2]) - minors.index(cur_fw))
                cv = cc.version_tuple(cu)[:2] if cu else None
                cdist = (
                    0
                    if cv == cur_cuda or cv is None or cur_cuda is None
                    else abs((cv[0] * 100 + cv[1]) - (cur_cuda[0] * 100 + cur_cuda[1]))
                )
                key = (
                    drv != naive.driver,
                    fdist,
                    "cuda" not in to and cu != before.cuda,
                    _wheel_status(rep) != "ok",
                    _driver_mode(rep) != "native",
                    cdist,
                    tuple(-x for x in cc.version_tuple(fw)) if fw else (),  # on a tie, the newer release
                    tuple(-x for x in cv) if cv else (),
                )
                if best is None or key < best[0]:
                    best = (key, cand, rep)
                if drv == naive.driver:
                    break  # the same stack on a raised driver can only rank lower
    if best is None:
        bad = [f for f in rep0.findings if f.verdict == "refuse"]
        raise UserError(
            "the compatibility data forbids this upgrade path: "
            + "; ".join(f"rule {f.rule}: {f.message}" for f in bad),
            where="--to",
            expected="a stack no compat rule refuses (gpuinfra compat check lists the rules)",
            fix=(bad[0].fix if bad else "") or "name a framework too (framework=X.Y) or another CUDA",
        )
    _, after, rep = best
    refused = list(dict.fromkeys(f.rule for f in rep0.findings if f.verdict == "refuse"))
    plan = ChangePlan(before, after, dict(to), report=rep)
    for ly in ("driver", "cuda", "framework"):
        if ly not in to and getattr(after, ly) != getattr(before, ly):
            # the rule that refused the stack as requested, at this layer: the wheel table for the image's
            # CUDA / framework, the driver rules for the driver
            own = [r for r in refused if (r == "torch-wheel") == (ly != "driver")]
            rule = ", ".join(own or refused)
            plan.forced.append(
                {"layer": ly, "from": str(getattr(before, ly)), "to": str(getattr(after, ly)), "rule": rule}
            )
    plan.unchecked = [
        {"layer": ly, "from": getattr(before, ly), "to": to[ly], "rule": "no-data"} for ly in NO_DATA if ly in to
    ]
    plan.driver_compat = _driver_mode(rep)
    return plan
