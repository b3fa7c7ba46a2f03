"""The package's own error type for mistakes a user can make.

A :class:`UserError` names *where* (a file, line or field path), *what* was wrong, what was
expected and how to fix it. The CLI prints it as one message and exits with code 2. Bugs are
ordinary exceptions and stay loud.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in the user's input (file, trace row, option, request)."""

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
        head = f"{self.where}: {self.what}" if self.where else self.what
        parts = [head]
        if self.expected:
            parts.append(f"expected {self.expected}")
        if self.fix:
            parts.append(f"To fix: {self.fix}")
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

    def render(self) -> str:
        if len(self.problems) == 1:
            p = self.problems[0]
            return UserError(p.what, where=p.where, expected=p.expected, fix=p.fix or self.fix).render()
        lines = [f"{self.where}: {len(self.problems)} problems:"]
        lines += ["  - " + p.render() for p in self.problems[: self.shown]]
        if len(self.problems) > self.shown:
            lines.append(f"  ... and {len(self.problems) - self.shown} more")
        if self.fix:
            lines.append(f"To fix: {self.fix}.")
        return "\n".join(lines)
