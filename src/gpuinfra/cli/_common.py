"""What every command module shares: the two consoles and the one error printer."""

from __future__ import annotations

from rich.console import Console

from gpuinfra.errors import UserError

out = Console()
"""Results (stdout)."""
err = Console(stderr=True)
"""Progress, warnings and errors (stderr)."""


def print_user_error(e: UserError) -> None:
    """The one way a gpuinfra error reaches the user: ``error: WHERE: WHAT. expected ... To fix: ...``."""
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
