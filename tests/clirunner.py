"""Run the ``gpuinfra`` command in-process (typer's CliRunner) with a subprocess-like result."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from gpuinfra.cli import _common, app


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def gi(*args: str, cwd: Path | None = None, input: str | None = None) -> Result:
    """``gpuinfra ARGS`` in this process. An exception that escapes the CLI (a bug: the user would
    see a traceback) is appended to stderr as its traceback, so "Traceback" checks catch it."""
    # a 200-column terminal for every console of the command modules (as COLUMNS=200 gave subprocesses)
    for name, mod in list(sys.modules.items()):
        if name == "gpuinfra.cli" or name.startswith("gpuinfra.cli."):
            for value in vars(mod).values():
                if isinstance(value, Console):
                    value.width = 200
    _common.out.width = _common.err.width = 200
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        r = CliRunner().invoke(app, [str(a) for a in args], input=input, prog_name="gpuinfra")
    finally:
        os.chdir(old)
    stderr = r.stderr
    exc = r.exception if r.exception is not None and not isinstance(r.exception, SystemExit) else None
    if exc is not None:
        stderr += "".join(traceback.format_exception(exc))
    return Result(r.exit_code, r.stdout, stderr, exc)
