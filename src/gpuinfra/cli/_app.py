"""The root ``gpuinfra`` app: its click group catches gpuinfra errors and Ctrl-C for every command."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup, TyperOption

from gpuinfra import __version__
from gpuinfra.cli._common import EXIT_INTERRUPTED, Interrupted, out, print_interrupted, print_user_error
from gpuinfra.errors import EXIT_USER_ERROR, UserError


class RootGroup(TyperGroup):
    """Turns a :class:`UserError` raised anywhere below into one message and exit code 2, and
    Ctrl-C into a line saying what was interrupted and what was kept, exit code 130."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            print_user_error(e)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except Interrupted as e:
            print_interrupted(e.what, e.kept)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except KeyboardInterrupt:
            name = ctx.invoked_subcommand or "(no command)"
            print_interrupted(
                f"gpuinfra {name}",
                "every file already written is complete (files are written whole, then renamed); "
                "a run directory without manifest.json is unfinished and readers refuse it",
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None


_typer_display_type_rich = TyperOption.display_type_rich


def _flag_takes_no_value(self: TyperOption, ctx) -> str | None:
    """A boolean flag's type column in rich help: none. Typer (0.29) prints ``<bool>`` beside every flag,
    ``--version`` and ``--help`` included, which reads as if they wanted a value; they take none."""
    if getattr(self, "is_flag", False) and getattr(self, "is_bool_flag", False):
        return None
    return _typer_display_type_rich(self, ctx)


TyperOption.display_type_rich = _flag_takes_no_value  # every command's help renders through this class


class LabGroup(TyperGroup):
    """``gpuinfra lab 6`` is short for ``gpuinfra lab run 6``."""

    def parse_args(self, ctx, args):
        if args and args[0].isdigit():
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="gpuinfra",
    cls=RootGroup,
    help="The AI Infra Engineer Framework, executable: GPU cluster models, a simulator, real interfaces, labs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"gpuinfra {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """gpuinfra: run `gpuinfra simulate` for the default scenario."""
