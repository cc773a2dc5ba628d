"""``mabware serve``: the standalone server under uvicorn, in one process or several.

One worker runs the app that ``create_app`` built here. Several workers
need an import string (uvicorn spawns fresh interpreters), so the settings
travel through the environment they inherit to
``mabware.server:app_from_environment``, after the parent has checked
them: a worker that fails at start-up is a log line, not a usage error.
The signing key file is read and checked here (a bad key is a usage error
that never quotes it); the workers get its text in ``MABWARE_SIGNING_KEY``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # for mypy only: importing starlette here would slow every command
    from starlette.applications import Starlette

#: hosts where serving without a token is no exposure
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: prometheus_client's multiprocess mode: every worker writes its counters here
_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--store",
    "store_url",
    default="file:./mabware.state",
    show_default=True,
    metavar="URL",
    help="Where the merged state lives: file:PATH, redis://HOST or memory:.",
)
@click.option(
    "--token",
    envvar="MABWARE_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Bearer token every request must carry (prefer the environment variable: "
    "a command line is visible to other users).",
)
@click.option(
    "--read-token",
    envvar="MABWARE_READ_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Bearer token that reads experiments, decisions and the snapshot, but changes nothing.",
)
@click.option(
    "--retention",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds of silence after which a replica is retired.",
)
@click.option(
    "--sync-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Seconds between two syncs of each worker with the store.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="uvicorn worker processes; they share the store's experiments and statistics.",
)
@click.option(
    "--protect",
    default="",
    metavar="NAMES",
    help="Comma-separated endpoints that then need the read (or write) token: "
    "health, metrics, dashboard, docs. Default: open to anyone.",
)
@click.option(
    "--signing-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="The Ed25519 key that signs GET /edge/snapshot: a file holding `mabware keygen "
    "--signing`'s JSON or its private_key. Or MABWARE_SIGNING_KEY, holding that text "
    "itself. Without either, GET /edge/snapshot answers 404.",
)
@click.option(
    "--snapshot-interval",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    default=10.0,
    show_default=True,
    help="Seconds after which the published snapshot (what GET /decision and the edge "
    "SDK walk) is issued anew; a change of an experiment is published at once.",
)
@click.option(
    "--push-token",
    envvar="MABWARE_PUSH_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Bearer token that may only push to POST /sync (edge clients), tallies of "
    "registered experiments only. Needs --token beside it.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (off by default: at thousands of pushes a second, "
    "the log is much of the work).",
)
def serve(
    host: str,
    port: int,
    store_url: str,
    token: str | None,
    read_token: str | None,
    retention: float,
    sync_interval: float,
    workers: int,
    protect: str,
    signing_key_file: Path | None,
    snapshot_interval: float,
    push_token: str | None,
    access_log: bool,
) -> None:
    """Run the standalone server: the REST API, /sync and /edge/snapshot (needs mabware[server])."""
    try:
        import uvicorn
    except ImportError:
        raise click.ClickException(
            "mabware serve needs uvicorn: pip install 'mabware[server]'"
        ) from None
    from mabware.server import ENVIRONMENT, check_settings, create_app

    if workers > 1 and store_url.partition(":")[0].lower() == "memory":
        raise click.BadParameter(
            f"--workers {workers} needs a store the workers share (file:PATH or "
            "redis://HOST): memory: lives in one process",
            param_hint="'--store'",
        )
    settings: dict[str, Any] = {
        "token": token,
        "read_token": read_token,
        "retention": retention,
        "sync_interval": sync_interval,
        "protect": [name.strip() for name in protect.split(",") if name.strip()],
        "signing_key": signing_key(signing_key_file),
        "snapshot_interval": snapshot_interval,
        "push_token": push_token,
    }
    app: Starlette | None = None
    with _usage_errors():
        if workers == 1:
            app = create_app(store_url, **settings)
        else:  # each worker builds its own app: check here, build nothing to throw away
            check_settings(store_url, **settings)
    if not token and host not in _LOOPBACK:
        click.echo(f"warning: serving on {host} without a token; set MABWARE_TOKEN", err=True)
    if app is not None:  # one worker: this process serves the app just built
        uvicorn.run(app, host=host, port=port, access_log=access_log)
        return

    values = {**settings, "store_url": store_url}
    exported = {ENVIRONMENT[name]: _text(value) for name, value in values.items()}
    with _metrics_dir() as metrics, _environment({**exported, _METRICS_DIR: metrics}):
        uvicorn.run(
            "mabware.server:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            access_log=access_log,
        )


def signing_key(path: Path | None) -> str | None:
    """The signing key's text: the file's, else ``MABWARE_SIGNING_KEY``'s; checked here.

    A bad key is a usage error naming where it came from, never quoting it.
    """
    if path is not None:
        hint = "'--signing-key-file'"
        try:
            text: str | None = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise click.BadParameter(f"cannot read {path}: {reason}", param_hint=hint) from None
    else:
        hint, text = "MABWARE_SIGNING_KEY", os.environ.get("MABWARE_SIGNING_KEY") or None
    if text is None:
        return None
    from mabware.edge_snapshot import private_key
    from mabware.exceptions import ConfigError

    try:
        private_key(text)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint=hint) from None
    return text


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """A setting the server refuses is a usage error (exit 2), without a traceback."""
    from mabware.exceptions import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None
    except OSError as exc:
        raise click.BadParameter(str(exc), param_hint="'--store'") from None


def _text(value: str | float | list[str] | None) -> str | None:
    """A setting as an environment variable holds it (None: unset)."""
    if isinstance(value, list):
        return ",".join(value) or None
    return None if value is None else str(value)  # str(float) round-trips


@contextlib.contextmanager
def _metrics_dir() -> Iterator[str]:
    """The user's ``PROMETHEUS_MULTIPROC_DIR``, or a fresh empty one removed at the end.

    Without it, ``/metrics`` would answer the counts of whichever worker
    took the scrape; with it, the sum of all (``mabware.metrics``).
    prometheus_client wants the directory empty at start: a fresh one is.
    """
    if os.environ.get(_METRICS_DIR):
        yield os.environ[_METRICS_DIR]
        return
    with tempfile.TemporaryDirectory(prefix="mabware-metrics-") as path:
        yield path


@contextlib.contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (None: removed), restored at the end.

    The workers inherit the parent's environment when uvicorn spawns them;
    restoring it keeps an embedding process (tests, ``CliRunner``) as it was.
    """
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _put(name, value)
        yield
    finally:
        for name, value in saved.items():
            _put(name, value)


def _put(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
