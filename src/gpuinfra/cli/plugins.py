"""``plugins``: the scheduler plugins a scenario's profile can name."""

from __future__ import annotations

import re
import sys

from rich.table import Table

from gpuinfra.cli._common import esc, out

_HEAD = re.compile(r"^.*?\((?:QueueSort|Filter|Score|Reserve)\):\s*", re.S)


def contract(cls: type) -> str:
    """A plugin's contract in one paragraph: its class's own docstring when it has one (an alias
    such as FIFO beside PrioritySort in one module), else its module's first paragraph, without
    the leading "Name (extension point):" the table shows in its own columns."""
    doc = cls.__dict__.get("__doc__") or sys.modules[cls.__module__].__doc__ or ""
    para = doc.strip().split("\n\n")[0]
    return _HEAD.sub("", " ".join(para.split()), count=1)


def plugins() -> None:
    """List the scheduler plugins a scenario's profile can name."""
    from gpuinfra.sim import plugins as _  # noqa: F401
    from gpuinfra.sim.scheduler import REGISTRY

    t = Table("plugin", "extension point", "contract")
    t.columns[2].overflow = "fold"
    for name, cls in sorted(REGISTRY.items()):
        kind = next(b.__name__.replace("Plugin", "") for b in cls.__mro__[1:] if b.__name__.endswith("Plugin"))
        t.add_row(name, kind, esc(contract(cls)))
    out.print(t)
