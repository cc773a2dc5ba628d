"""``python -m mabware`` is the ``mabware`` command."""

from mabware.cli import main

main()
