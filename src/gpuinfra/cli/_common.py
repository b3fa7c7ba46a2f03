"""What every command module shares: the two consoles, escaping and the one error printer.

Both consoles have rich markup and emoji codes **off**: whatever a command prints (file names,
trace fields, log lines, error messages) reaches the terminal as written. A line that wants
styling passes ``markup=True`` and escapes every interpolated value with :func:`esc`.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from gpuinfra.errors import UserError, neutralise, safe_text

PIPE_WIDTH = 160
"""Columns when output goes to a pipe or file (rich would assume 80 and cut table cells short);
a terminal's own width is kept."""


class SafeConsole(Console):
    """A rich Console that shows control characters in the text it is given (plain strings and
    table cells) as escapes (``\\x1b``): user text (a file name, a CSV cell, a product name)
    cannot recolour, move the cursor or clear the terminal. Newlines are kept."""

    def render_str(self, text: str, **kw) -> Text:  # type: ignore[override]
        return super().render_str(neutralise(text), **kw)


def _console(**kw) -> Console:
    c = SafeConsole(**kw)
    return c if c.is_terminal else SafeConsole(width=max(c.width, PIPE_WIDTH), **kw)


out = _console(markup=False, emoji=False)
"""Results (stdout)."""
err = _console(stderr=True, markup=False, emoji=False)
"""Progress, warnings and errors (stderr)."""


def esc(value: object) -> str:
    """``value`` as text that rich markup shows verbatim (``[bold]H1000`` stays ``[bold]H1000``), its
    control characters shown as escapes and a long value shortened (errors.safe_text)."""
    return escape(safe_text(value))


def print_user_error(e: UserError | str) -> None:
    """The one way a gpuinfra error reaches the user: ``error: WHERE: WHAT. expected ... To fix: ...``,
    the message never interpreted as markup."""
    err.print(Text.assemble(("error:", "bold red"), " ", neutralise(str(e))), highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning on stderr (``warning: ...``), never interpreted as markup."""
    err.print(Text.assemble(("warning:", "bold yellow"), " ", neutralise(message)), highlight=False, soft_wrap=True)


class Interrupted(Exception):
    """Raised by a command on Ctrl-C to say what was interrupted and what was kept (exit 130)."""

    def __init__(self, what: str, kept: str) -> None:
        super().__init__(what)
        self.what, self.kept = what, kept


EXIT_INTERRUPTED = 130
"""128 + SIGINT, the shell's code for a command ended by Ctrl-C."""


def print_interrupted(what: str, kept: str) -> None:
    """``interrupted: WHAT; kept: KEPT`` on stderr, never interpreted as markup."""
    err.print(Text.assemble(("interrupted:", "bold yellow"), f" {what}; kept: {kept}"), highlight=False, soft_wrap=True)


FORCE_HELP = "Replace existing output instead of refusing."


def check_input_file(path, where: str, noun: str = "file") -> None:
    """Refuse a path that is not a readable file (a directory, a missing file) with a UserError."""
    from pathlib import Path

    p = Path(path)
    try:
        is_dir, is_file = p.is_dir(), p.is_file()
    except OSError as e:
        from gpuinfra.io.atomic import path_error

        raise path_error(e, p, where, "read") from None
    if is_dir:
        raise UserError(f"{noun} '{p}' is a directory", where=where, expected="a file")
    if not is_file and p.exists():  # /dev/null, a FIFO, a socket: it exists, it is just not a file
        raise UserError(
            f"{noun} '{p}' is not a regular file (a device, pipe or socket)",
            where=where,
            expected="a regular file",
            fix="save the data to a file first and pass that path",
        )
    if not is_file:
        raise UserError(f"{noun} not found: '{p}'", where=where, expected="an existing file")
