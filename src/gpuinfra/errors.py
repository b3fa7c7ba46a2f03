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
