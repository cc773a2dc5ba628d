"""``mabware demo``: the demo shop under uvicorn, visitors, and what the store learned."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from mabware import __version__
from mabware.cli._output import write_json


@click.command()
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="uvicorn workers."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Loopback port to serve the shop on; 0 picks a free one.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True, max=10_000),
    default=150.0,
    show_default=True,
    help="Visits a second, at most (fewer if the shop answers slower).",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the store's state file here (default: a temporary one, removed at the end).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the visitors' draws (who returns, who buys).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the summary as JSON to this file.",
)
def demo(
    seconds: float | None,
    workers: int,
    port: int,
    rate: float,
    state: Path | None,
    seed: int,
    json_path: Path | None,
) -> None:
    """Run a small shop with a live experiment and watch it learn (needs mabware[server]).

    Starts the demo shop (mabware.demo.shop) under uvicorn with several
    workers that learn together through a file store, prints its URL and
    the dashboard's, and plays visitors from loopback whose chance to buy
    depends on the page variant they see. At the end (after --seconds, or
    at Ctrl-C) it stops every process and prints what the store learned
    beside the hidden true rates, and the regret.
    """
    import importlib.util

    needed = ("uvicorn", "httpx", "jinja2", "pygal", "prometheus_client")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"mabware demo needs {', '.join(missing)}: pip install 'mabware[server]'"
        )
    from mabware.demo.run import DemoError, DemoOptions, report, run_demo

    options = DemoOptions(seconds, workers, port, rate, state, seed)
    try:
        result = run_demo(options, out=Console(), err=Console(stderr=True))
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    report(result, Console())
    if json_path is not None:
        write_json(json_path, {"mabware_version": __version__, **result.to_json()})
