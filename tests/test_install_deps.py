"""The README's first command installs only ``[project] dependencies``: every module of the package
must import, and every command's help must render, without the dev/optional extras."""

import subprocess
import sys

# Installed here by the dev extra (or pulled in by it), absent after `pip install -e .`.
NOT_INSTALLED_BY_DEFAULT = (
    "click", "ray", "pytest", "hypothesis", "playwright", "pynvml", "picklescan", "fickling", "kubernetes",
    "importlinter",
)  # fmt: skip

SCRIPT = f"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = {NOT_INSTALLED_BY_DEFAULT!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Block())
import gpuinfra
for m in pkgutil.walk_packages(gpuinfra.__path__, "gpuinfra."):
    if not m.name.endswith("__main__"):  # runs the CLI
        importlib.import_module(m.name)
from typer.testing import CliRunner
from gpuinfra.cli import app
import typer
cmd = typer.main.get_command(app)
bad = []
def walk(c, path):
    r = CliRunner().invoke(app, [*path, "--help"])
    if r.exit_code != 0:
        bad.append((" ".join(path), repr(r.exception)))
    for name, sub in getattr(c, "commands", {{}}).items():
        walk(sub, [*path, name])
walk(cmd, [])
print(bad)
sys.exit(1 if bad else 0)
"""


def test_every_module_imports_and_every_help_renders_without_the_extras():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
