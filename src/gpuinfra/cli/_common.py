"""What every command module shares: the two consoles, escaping and the one error printer.

Both consoles have rich markup and emoji codes **off**: whatever a command prints (file names,
trace fields, log lines, error messages) reaches the terminal as written. A line that wants
styling passes ``markup=True`` and escapes every interpolated value with :func:`esc`.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from gpuinfra.errors import UserError

out = Console(markup=False, emoji=False)
"""Results (stdout)."""
err = Console(stderr=True, markup=False, emoji=False)
"""Progress, warnings and errors (stderr)."""


def esc(value: object) -> str:
    """``value`` as text that rich markup shows verbatim (``[bold]H1000`` stays ``[bold]H1000``)."""
    return escape(str(value))


def print_user_error(e: UserError | str) -> None:
    """The one way a gpuinfra error reaches the user: ``error: WHERE: WHAT. expected ... To fix: ...``,
    the message never interpreted as markup."""
    err.print(Text.assemble(("error:", "bold red"), " ", str(e)), highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning on stderr (``warning: ...``), never interpreted as markup."""
    err.print(Text.assemble(("warning:", "bold yellow"), " ", message), highlight=False, soft_wrap=True)
