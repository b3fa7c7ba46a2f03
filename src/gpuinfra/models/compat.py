"""Does this software stack run on this GPU and driver? Driver / CUDA / PyTorch / architecture coupling.

The rules, each applied to the packaged tables (``catalog/compat.py``; sources in
``catalog/data/compat/SOURCE.md``):

- **driver-floor** (NVIDIA CUDA Compatibility, backward compatibility; S1/S2): an application
  built with CUDA toolkit X runs with full features on any driver >= the driver X shipped with.
- **minor-version** (S3): within a CUDA major >= 11, any toolkit runs on a driver >= the major's
  floor (11.x: 450.80.02, 12.x: 525, 13.x: 580) with a limited feature set: features that need
  a newer driver fail at run time and PTX from a newer toolkit cannot be JIT-compiled.
- **forward-compat** (S3, forward compatibility): below the major's floor, only the
  ``cuda-compat`` package (a newer user-mode libcuda) helps, and only on data-center GPUs.
- **arch-min-driver** (S2, S3): a driver older than the one the first CUDA toolkit with an
  architecture's native code shipped with does not know that GPU (see ``_arch_driver``).
- **arch-min-cuda** / **arch-dropped** (S8, S9, S11, S12): a GPU needs a CUDA that knows its SM
  (first CUDA with native SASS) and is lost by the CUDA major that drops its architecture.
- **torch-wheel** (PyTorch RELEASE.md, S6): a PyTorch minor ships wheels for a few CUDA
  versions only; the wheel carries its own CUDA runtime, so the host needs only the driver.
- **torch-arch** (S6, S7, S8): the wheel's build compiles SASS for a list of SMs; a GPU outside
  it runs only through PTX JIT (when the build ships PTX) or not at all.
- **branch-eol** (S4): a driver branch past its end of life gets no security fixes.

:func:`check` returns every finding (ok, warn, refuse) with its rule, source and fix;
:func:`safe_upgrades` lists the PyTorch wheels and driver branches that work from a stack.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gpuinfra.catalog import compat as cc
from gpuinfra.errors import UserError

DATA_CENTER_ARCHS = {"Volta", "Turing", "Ampere", "Ada Lovelace", "Hopper", "Blackwell (datacenter)", "Blackwell Ultra"}
"""Architectures with data-center SKUs, which forward compatibility (cuda-compat) supports (S3).
A consumer GeForce card of the same architecture is not supported; ``--consumer`` says so."""


@dataclass(frozen=True)
class Finding:
    rule: str
    verdict: str
    """ok, warn or refuse."""
    message: str
    source: str
    fix: str = ""


@dataclass(frozen=True)
class Stack:
    """The stack to judge: GPU name, driver version, CUDA (of the app or wheel), PyTorch version."""

    gpu: str
    driver: str
    cuda: str | None = None
    torch: str | None = None
    consumer: bool = False


@dataclass
class Report:
    """Findings for one stack; ``verdict`` is the worst of them."""

    stack: Stack
    arch: cc.GpuArch
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """refuse if any rule refuses, else warn if any warns, else ok."""
        vs = {f.verdict for f in self.findings}
        return "refuse" if "refuse" in vs else "warn" if "warn" in vs else "ok"

    def as_dict(self) -> dict:
        return {
            "stack": self.stack.__dict__,
            "gpu_architecture": self.arch.architecture,
            "sm": self.arch.sm,
            "verdict": self.verdict,
            "findings": [f.__dict__ for f in self.findings],
        }


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in v)


def fmt_driver(v: tuple[int, ...]) -> str:
    """A driver version as NVIDIA spells it: the minor and patch have two digits at least
    (520.61.05, 535.104.05; a tuple (520, 61, 5) would otherwise print as 520.61.5)."""
    return ".".join([str(v[0]), *(f"{x:02d}" for x in v[1:])])


def _toolkit(cuda: tuple[int, ...]) -> cc.ToolkitRelease:
    rows = [t for t in cc.toolkits() if t.cuda[: len(cuda)] == cuda]
    if not rows:
        known = sorted({_fmt(t.cuda[:2]) for t in cc.toolkits()}, key=cc.version_tuple)
        raise UserError(
            f"CUDA {_fmt(cuda)} is not in the toolkit table", where="--cuda", expected="one of " + ", ".join(known)
        )
    return min(rows, key=lambda t: t.linux_driver)  # the least demanding release of that version


def check(stack: Stack, today: dt.date | None = None) -> Report:
    """Every rule above applied to ``stack``. Raises UserError for an unknown GPU, a malformed
    version or a CUDA/PyTorch version the tables do not hold."""
    today = today or dt.date.today()
    arch = cc.find_arch(stack.gpu)
    drv = cc.version_tuple(stack.driver, where="--driver")
    if not 300 <= drv[0] <= 999:
        raise UserError(
            f"driver {stack.driver} is not an NVIDIA data-center driver version",
            where="--driver",
            expected="a version like 535.104.05 (branch R300-R999)",
        )
    rep = Report(stack, arch)
    add = rep.findings.append
    br = cc.driver_branches().get(drv[0])
    if br is None:
        add(
            Finding(
                "branch-eol",
                "warn",
                f"driver branch R{drv[0]} is not in NVIDIA's supported-drivers table",
                "S4",
                "use a Production or Long Term Support branch (R535, R570, R580)",
            )
        )
    elif br.end_of_life == "EOL" or (br.end_of_life[:4].isdigit() and br.end_of_life < today.strftime("%Y-%m")):
        add(
            Finding(
                "branch-eol",
                "warn",
                f"R{br.branch} ({br.designation}) is past end of life"
                + (f" ({br.end_of_life})" if br.end_of_life != "EOL" else "")
                + ": no more security or bug fixes",
                br.source,
                "move to a supported branch (R580 LTSB until 2028-08)",
            )
        )
    else:
        add(
            Finding(
                "branch-eol",
                "ok",
                f"R{br.branch}: {br.designation}, end of life {br.end_of_life or 'not listed'}"
                + ("" if br.verified == "yes" else f" (verified: {br.verified})"),
                br.source,
            )
        )
    cuda = cc.version_tuple(stack.cuda, where="--cuda") if stack.cuda else None
    if cuda is None and stack.torch:
        # no CUDA named: the wheel decides; judge each wheel of the release and keep the best
        tv = cc.version_tuple(stack.torch, where="--torch")[:2]
        wheels = [w for w in cc.torch_wheels() if w.torch == tv]
        if wheels:
            rank = {"ok": 0, "warn": 1, "refuse": 2}
            reps = [
                check(Stack(stack.gpu, stack.driver, _fmt(w.cuda[:2]), stack.torch, stack.consumer), today)
                for w in wheels
            ]
            best = min(
                zip(reps, wheels),
                key=lambda rw: (rank[rw[0].verdict], rw[1].status != "stable", tuple(-x for x in rw[1].cuda)),
            )[0]
            best.stack = stack
            return best
    if stack.torch:
        tv = cc.version_tuple(stack.torch, where="--torch")[:2]
        wheels = [w for w in cc.torch_wheels() if w.torch == tv]
        if not wheels:
            known = sorted({f"{w.torch[0]}.{w.torch[1]}" for w in cc.torch_wheels()}, key=cc.version_tuple)
            raise UserError(
                f"PyTorch {stack.torch} is not in the wheel table",
                where="--torch",
                expected="one of " + ", ".join(known),
            )
        match = [w for w in wheels if cuda is None or w.cuda[:2] == cuda[:2]]
        if not match:
            add(
                Finding(
                    "torch-wheel",
                    "refuse",
                    f"PyTorch {tv[0]}.{tv[1]} has no wheel for CUDA {_fmt(cuda)}: it ships "
                    + ", ".join(f"{w.tag} ({w.status})" for w in wheels),
                    wheels[0].source,
                    f"install one of {', '.join(w.tag for w in wheels)}, "
                    f"or a PyTorch release built for CUDA {_fmt(cuda)}",
                )
            )
        else:
            w = max(match, key=lambda w: (w.status == "stable", w.cuda))
            cuda = cuda or w.cuda
            add(
                Finding(
                    "torch-wheel",
                    "ok" if w.status == "stable" else "warn",
                    f"PyTorch {tv[0]}.{tv[1]} wheel {w.tag} ({w.status}) bundles the CUDA {_fmt(w.cuda)} runtime"
                    + (f" and NCCL {w.nccl}" if w.nccl else "")
                    + "; the host needs only the driver",
                    w.source,
                    "" if w.status == "stable" else "prefer a stable wheel tag",
                )
            )
            _torch_arch(rep, tv, w.cuda, arch)
    if cuda is not None:
        _driver_rules(rep, drv, stack.driver, cuda, arch, stack.consumer)
        _arch_rules(rep, cuda, arch)
    _arch_driver(rep, drv, stack.driver, arch)
    return rep


def _arch_driver(rep: Report, drv: tuple[int, ...], drv_text: str, arch: cc.GpuArch) -> None:
    """**arch-min-driver**: a driver cannot run a GPU architecture it predates. The first driver that
    knows an architecture is taken as the driver the first CUDA toolkit with its native code shipped
    with (S2 table; e.g. Hopper: CUDA 11.8 -> 520.61.05, the driver NVIDIA AI Enterprise 2.3 introduced
    H100 support with; Blackwell: CUDA 12.8 -> 570.86.10). Minor-version compatibility (S3) lets a
    newer *toolkit* run on an older driver; it does not teach an older driver a newer GPU."""
    if not arch.min_cuda:
        return
    try:
        tk = _toolkit(arch.min_cuda[:2])
    except UserError:  # an architecture older than the toolkit table (CUDA < 11): nothing to check
        return
    if drv < tk.linux_driver:
        rep.findings.append(
            Finding(
                "arch-min-driver",
                "refuse",
                f"driver {drv_text} predates {arch.architecture} (sm_{arch.sm}): the first CUDA with its code "
                f"({_fmt(arch.min_cuda[:2])}) shipped with driver {fmt_driver(tk.linux_driver)}, "
                "and a driver does not run a GPU it predates (minor-version compatibility covers toolkits, not GPUs)",
                f"{arch.source};{tk.source}",
                f"use driver >= {fmt_driver(tk.linux_driver)}",
            )
        )


def _driver_rules(
    rep: Report, drv: tuple[int, ...], drv_text: str, cuda: tuple[int, ...], arch: cc.GpuArch, consumer: bool
) -> None:
    t = _toolkit(cuda[:2])
    add = rep.findings.append
    if drv >= t.linux_driver:
        add(
            Finding(
                "driver-floor",
                "ok",
                f"driver {drv_text} >= {fmt_driver(t.linux_driver)}, the driver CUDA "
                f"{_fmt(t.cuda)} shipped with: full features",
                t.source,
            )
        )
    elif drv >= t.family_min_driver:
        add(
            Finding(
                "minor-version",
                "warn",
                f"driver {drv_text} is older than CUDA {_fmt(t.cuda)}'s "
                f"{fmt_driver(t.linux_driver)} but >= the CUDA {cuda[0]}.x floor "
                f"{fmt_driver(t.family_min_driver)}: runs under minor-version compatibility "
                "(features needing a newer driver fail; newer PTX cannot JIT)",
                "S3",
                f"upgrade the driver to >= {fmt_driver(t.linux_driver)} for full features",
            )
        )
    else:
        dc = arch.architecture in DATA_CENTER_ARCHS and not consumer
        add(
            Finding(
                "forward-compat",
                "refuse",
                f"driver {drv_text} is below the CUDA {cuda[0]}.x floor {fmt_driver(t.family_min_driver)}: CUDA "
                f"{_fmt(cuda)} will not initialise ('CUDA driver version is insufficient')"
                + (
                    " unless the cuda-compat package supplies a newer libcuda (data-center GPUs only)"
                    if dc
                    else "; forward compatibility (cuda-compat) is not supported on consumer GPUs"
                ),
                "S3",
                f"upgrade the driver to >= {fmt_driver(t.linux_driver)}"
                + (f", or install cuda-compat-{cuda[0]}-{cuda[1] if len(cuda) > 1 else 0}" if dc else ""),
            )
        )


def _arch_rules(rep: Report, cuda: tuple[int, ...], arch: cc.GpuArch) -> None:
    add = rep.findings.append
    if arch.min_cuda and cuda[:2] < arch.min_cuda[:2]:
        add(
            Finding(
                "arch-min-cuda",
                "refuse",
                f"{arch.architecture} (sm_{arch.sm}) needs CUDA >= "
                f"{_fmt(arch.min_cuda)} for native code; CUDA {_fmt(cuda)} does not know it",
                arch.source,
                f"use CUDA >= {_fmt(arch.min_cuda)}",
            )
        )
    elif arch.dropped_in_cuda_major is not None and cuda[0] >= arch.dropped_in_cuda_major:
        add(
            Finding(
                "arch-dropped",
                "refuse",
                f"CUDA {arch.dropped_in_cuda_major}.0 dropped {arch.architecture} "
                f"(sm_{arch.sm}); CUDA {_fmt(cuda)} cannot compile for it",
                arch.source,
                f"stay on CUDA {arch.dropped_in_cuda_major - 1}.x for this GPU",
            )
        )
    else:
        add(
            Finding(
                "arch-min-cuda",
                "ok",
                f"CUDA {_fmt(cuda)} supports {arch.architecture} (sm_{arch.sm})"
                + ("" if arch.verified == "yes" else f" (verified: {arch.verified})"),
                arch.source,
            )
        )


def _torch_arch(rep: Report, tv: tuple[int, int], wheel_cuda: tuple[int, ...], arch: cc.GpuArch) -> None:
    lists = [
        a
        for a in cc.torch_arch_lists()
        if tv in a.torch and a.cuda[:2] == wheel_cuda[:2] and "aarch64" not in a.platform
    ]
    if not lists:
        rep.findings.append(
            Finding(
                "torch-arch",
                "warn",
                f"no SM list in the data for PyTorch {tv[0]}.{tv[1]} "
                f"CUDA {_fmt(wheel_cuda)}: whether it ships sm_{arch.sm} code is unchecked",
                "S6",
                "run torch.cuda.get_arch_list() on the target image",
            )
        )
        return
    a = lists[0]
    if arch.sm in a.sms:
        rep.findings.append(Finding("torch-arch", "ok", f"the {a.platform} build compiles sm_{arch.sm}", a.source))
    elif a.ptx and arch.sm > max(a.sms):
        rep.findings.append(
            Finding(
                "torch-arch",
                "warn",
                f"sm_{arch.sm} is not in the build's SASS list "
                f"({', '.join(f'sm_{s}' for s in sorted(a.sms))}); it runs via PTX JIT (slow first "
                "launch, no arch-specific kernels)",
                a.source,
                "use a build that lists this SM",
            )
        )
    else:
        rep.findings.append(
            Finding(
                "torch-arch",
                "refuse",
                f"the {a.platform} build of PyTorch {tv[0]}.{tv[1]} "
                f"CUDA {_fmt(wheel_cuda)} compiles only "
                f"{', '.join(f'sm_{s}' for s in sorted(a.sms))}: no kernel image for sm_{arch.sm}",
                a.source,
                "pick a wheel whose SM list includes this GPU",
            )
        )


def safe_upgrades(stack: Stack, today: dt.date | None = None) -> list[dict]:
    """PyTorch wheels (newest first) that ``check`` does not refuse on this GPU and driver."""
    out = []
    for w in sorted(cc.torch_wheels(), key=lambda w: (w.torch, w.cuda), reverse=True):
        rep = check(
            Stack(stack.gpu, stack.driver, _fmt(w.cuda[:2]), f"{w.torch[0]}.{w.torch[1]}", stack.consumer), today
        )
        if rep.verdict != "refuse":
            out.append(
                {"torch": f"{w.torch[0]}.{w.torch[1]}", "wheel": w.tag, "status": w.status, "verdict": rep.verdict}
            )
    return out
