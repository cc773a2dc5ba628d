"""The ``mabware`` command line.

One click group, ``main``, and one private module per command family; a
new subcommand is a ``@click.command()`` in its module, added to ``main``
here. Commands print tables with rich on stdout and progress on stderr
(only when stderr is a terminal), and turn bad input into click usage
errors (exit code 2, the option named, no traceback). What a command
needs beyond click and rich (uvicorn, httpx, redis, the server) it imports
when it runs, so that ``mabware --help`` and ``mabware keygen`` stay quick
and work without the extras.

``mabware simulate`` plays a policy against Bernoulli arms through the real
decision path (``mabware.simulate.run``) for several seeds and reports the
regret distribution. ``mabware keygen`` prints fresh cookie keys (or,
with ``--signing``, the Ed25519 pair that signs the edge snapshot).
``mabware serve`` runs the standalone server (``mabware.server``) under
uvicorn (the ``server`` extra), in one process or several. ``mabware
report`` prints what a shared store holds (``mabware.store.report``).
``mabware snapshot`` writes the signed edge snapshot of a server's store
to a file, once or every few seconds, for any static host.
``mabware demo`` runs ``mabware.demo``: a shop under uvicorn with several
workers, loopback visitors, the dashboard and a summary table.
"""

from __future__ import annotations

import click

from mabware import __version__
from mabware.cli._demo import demo
from mabware.cli._keys import keygen
from mabware.cli._report import report
from mabware.cli._serve import serve
from mabware.cli._simulate import simulate
from mabware.cli._snapshot import snapshot

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="mabware")
def main() -> None:
    """mabware: multi-armed-bandit experiments inside any Python web app."""


main.add_command(simulate)
main.add_command(keygen)
main.add_command(serve)
main.add_command(report)
main.add_command(demo)
main.add_command(snapshot)
