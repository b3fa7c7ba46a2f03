"""Built-in sweeps (``gpuinfra sweep run fgd-paper``): YAML files packaged in ``sweep/data``."""

from __future__ import annotations

from importlib.resources import files

from gpuinfra.errors import UserError, did_you_mean


def builtin_sweeps() -> list[str]:
    """Names of the packaged sweeps."""
    return sorted(
        p.name[: -len(".yaml")] for p in files("gpuinfra.sweep").joinpath("data").iterdir() if p.name.endswith(".yaml")
    )


def builtin_sweep_text(name: str) -> str:
    if name not in builtin_sweeps():
        raise UserError(
            f"no built-in sweep '{name}'",
            where="sweep",
            expected=", ".join(builtin_sweeps()),
            fix=did_you_mean(name, builtin_sweeps()),
        )
    return files("gpuinfra.sweep").joinpath("data", f"{name}.yaml").read_text(encoding="utf-8")
