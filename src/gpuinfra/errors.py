"""The package's own error type for mistakes a user can make.

A :class:`UserError` names *where* (a file, line or field path), *what* was wrong, what was
expected and how to fix it. The CLI prints it as one message and exits with code 2. Bugs are
ordinary exceptions and stay loud.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

EXIT_USER_ERROR = 2

_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_AND_NEWLINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MAX_TOKEN_CHARS = 120
"""A run of non-space characters longer than this in a message (a pasted value, a long name) is
shown as its first and last characters around an ellipsis."""
MAX_PART_CHARS = 1000
"""A part of a message (what, where, expected, fix) longer than this is cut in the middle."""
_LONG_TOKEN = re.compile(r"\S{" + str(MAX_TOKEN_CHARS + 1) + ",}")


def _escape_control(m: re.Match) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def neutralise(text: str, *, newline: bool = True) -> str:
    """``text`` with C0/C1 control characters (ESC, CR, BEL, CSI ...) and bidirectional overrides
    shown as escapes (``\\x1b``), so that user text printed on a terminal cannot move the cursor,
    recolour or clear it. ``newline``: keep newlines (a multi-line message); False: escape them too."""
    return (_CONTROLS if newline else _CONTROLS_AND_NEWLINE).sub(_escape_control, text)


def shorten(text: str, limit: int = MAX_PART_CHARS) -> str:
    """``text`` with each run of more than :data:`MAX_TOKEN_CHARS` non-space characters, and then
    the whole when longer than ``limit``, cut in the middle to an ellipsis with the count left out."""

    def cut(s: str, n: int) -> str:
        keep = n // 2 - 10
        return f"{s[:keep]}...({len(s) - 2 * keep:,} characters)...{s[-keep:]}"

    text = _LONG_TOKEN.sub(lambda m: cut(m.group(0), MAX_TOKEN_CHARS), text)
    return cut(text, limit) if len(text) > limit else text


def safe_text(text: object, *, newline: bool = True) -> str:
    """User text as a message may echo it: controls neutralised (:func:`neutralise`), long values
    shortened (:func:`shorten`)."""
    return shorten(neutralise(str(text), newline=newline))


def _rebuild(cls: type, args: tuple, kwargs: dict) -> Exception:
    """Unpickling a :class:`UserError` (raised in a sweep's worker process, re-raised in the parent)."""
    return cls(*args, **kwargs)


class UserError(Exception):
    """A mistake in the user's input (file, trace row, option, request)."""

    def __reduce__(self):
        # the keyword-only fields survive a process boundary (the default pickling would call
        # UserError(rendered text) and UserErrors(...) without its required ``where``)
        return (_rebuild, (type(self), (self.what,), {"where": self.where, "expected": self.expected, "fix": self.fix}))

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        expected: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.what = what
        self.where = where
        self.expected = expected
        self.fix = fix
        super().__init__(self.render())

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        what = safe_text(self.what)
        head = f"{safe_text(self.where, newline=False)}: {what}" if self.where else what
        parts = [head]
        if self.expected:
            parts.append(f"expected {safe_text(self.expected)}")
        if self.fix:
            parts.append(f"To fix: {safe_text(self.fix)}")
        text = ". ".join(p.rstrip(".") for p in parts)
        return text if text.endswith(("?", "!")) else text + "."


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Return 'Did you mean X?' for the closest choice, or None."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"Did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"Did you mean '{close[0]}'?" if close else None


class UserErrors(UserError):
    """Several mistakes found in one input (a file), each a :class:`UserError` with its own where.

    Raised when a file has more than one problem, so that a user fixes them all in one go
    instead of one per run. ``problems`` holds them in file order; the message lists at most
    ``shown`` of them and says how many more there are.
    """

    def __init__(self, problems: list[UserError], *, where: str, fix: str | None = None, shown: int = 30) -> None:
        self.problems = list(problems)
        self.shown = shown
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''}", where=where, fix=fix)

    def __reduce__(self):
        return (_rebuild, (type(self), (self.problems,), {"where": self.where, "fix": self.fix, "shown": self.shown}))

    def render(self) -> str:
        if len(self.problems) == 1:
            p = self.problems[0]
            return UserError(p.what, where=p.where, expected=p.expected, fix=p.fix or self.fix).render()
        lines = [f"{safe_text(self.where, newline=False)}: {len(self.problems)} problems:"]
        lines += ["  - " + p.render() for p in self.problems[: self.shown]]
        if len(self.problems) > self.shown:
            lines.append(f"  ... and {len(self.problems) - self.shown} more")
        if self.fix:
            lines.append(f"To fix: {safe_text(self.fix)}.")
        return "\n".join(lines)
