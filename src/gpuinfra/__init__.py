"""gpuinfra: the AI Infra Engineer Framework, executable.

The public surface is small on purpose; see ``gpuinfra.api`` for what scripts may import.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gpuinfra")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
