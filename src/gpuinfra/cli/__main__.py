"""``python -m gpuinfra.cli``."""

from gpuinfra.cli import main

main()
