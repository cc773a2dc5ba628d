"""``mabware report``: what a shared store holds, per experiment and arm."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mabware.cli._output import count, number


@click.command()
@click.option(
    "--store",
    "store_url",
    required=True,
    metavar="URL",
    help="The shared store to read: file:PATH, http(s)://HOST or redis://HOST.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead.")
def report(store_url: str, as_json: bool) -> None:
    """Print the global statistics a shared store holds, per experiment and arm.

    Reads the merged state straight from the backend (no app, no
    experiment configuration needed): pulls and rewards summed over every
    replica, live and retired, for each experiment's newest version.
    """
    from mabware.exceptions import ConfigError
    from mabware.store.merge import StateError
    from mabware.store.report import open_backend, summary

    scheme, _, rest = store_url.partition(":")
    if scheme.lower() == "file" and rest and not Path(rest).expanduser().exists():
        # opening a FileBackend would create the file's directory and lock file
        raise click.BadParameter(f"no state file at {rest}", param_hint="'--store'")
    try:
        backend = open_backend(store_url)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="'--store'") from None
    try:
        state = backend.read()
    except StateError as exc:
        raise click.ClickException(f"the state in {store_url} is unreadable: {exc}") from None
    except Exception as exc:  # a backend that cannot be reached: no traceback, say why
        raise click.ClickException(
            f"could not read {store_url}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        backend.close()
    doc = summary(state, time.time())
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    replicas = doc["replicas"]
    ago = replicas["last_push_seconds_ago"]
    table = Table(
        title=f"mabware store {_without_password(store_url)}",
        caption=f"{replicas['live']} live replicas, {replicas['retired']} retired; "
        + ("no push yet" if ago is None else f"last push {ago:.1f} s ago"),
    )
    table.add_column("experiment")
    table.add_column("arm")
    for column in ("pulls", "reward_sum", "mean"):
        table.add_column(column, justify="right")
    for name, experiment in doc["experiments"].items():
        for arm, stats in experiment["arms"].items():
            table.add_row(
                f"{name} (v{experiment['version']})",
                arm,
                count(stats["pulls"]),
                count(stats["reward_sum"]),
                number(stats["mean_reward"], 4),
            )
    Console().print(table)


def _without_password(url: str) -> str:
    """``url`` with any ``:TOKEN@`` credentials blanked (tables get pasted)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
