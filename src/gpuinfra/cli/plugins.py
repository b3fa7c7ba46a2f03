"""``plugins``: the scheduler plugins a scenario's profile can name."""

from __future__ import annotations

import sys

from rich.table import Table

from gpuinfra.cli._common import out


def plugins() -> None:
    """List the scheduler plugins a scenario's profile can name."""
    from gpuinfra.sim import plugins as _  # noqa: F401
    from gpuinfra.sim.scheduler import REGISTRY

    t = Table("plugin", "extension point", "contract")
    for name, cls in sorted(REGISTRY.items()):
        kind = next(b.__name__.replace("Plugin", "") for b in cls.__mro__[1:] if b.__name__.endswith("Plugin"))
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        t.add_row(name, kind, doc)
    out.print(t)
