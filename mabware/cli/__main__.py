"""``python -m mabware.cli`` is the ``mabware`` command too (older scripts and tests run it so)."""

from mabware.cli import main

main()
