"""The standalone server (``mabware serve``): a Starlette app.

Route modules:

* ``mabware.server.api``: the REST API (experiments, decisions, rewards,
  changes), the endpoints MAB E-Commerce Optimizer clients know;
* ``mabware.server.sync``: replicas on many hosts push their totals to
  ``POST /sync`` and pull the merged state; ``GET /snapshot`` answers the
  state with an ETag;
* ``mabware.server.openapi``: ``GET /openapi.json`` (OpenAPI 3.1) and
  ``GET /docs``, its page without JavaScript.

``create_app`` builds the app; ``app_from_environment`` builds it from the
variables ``ENVIRONMENT`` names, for uvicorn's workers (``mabware serve
--workers N``); ``check_settings`` refuses what ``create_app`` would refuse,
building nothing.

The server is itself one replica of its store: the statistics of its
decisions and rewards merge with those of every middleware process that
syncs through the same file or through ``/sync``.

Every error is an RFC 9457 problem body (``application/problem+json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route

from mabware.dashboard import Dashboard
from mabware.exceptions import ConfigError
from mabware.server import openapi
from mabware.server._auth import ReadersOnly
from mabware.server._metrics import metrics_for
from mabware.server._problems import ProblemError, handle_http_exception, handle_problem
from mabware.server._registry import open_registry
from mabware.server._service import Service
from mabware.server._state import open_backend
from mabware.server.api import Api
from mabware.server.sync import SyncEndpoints

__all__ = [
    "ENVIRONMENT",
    "OPEN_ENDPOINTS",
    "app_from_environment",
    "check_settings",
    "create_app",
]

#: ``create_app``'s settings -> the environment variables ``app_from_environment`` reads
ENVIRONMENT = {
    "store_url": "MABWARE_SERVE_STORE",
    "token": "MABWARE_TOKEN",
    "read_token": "MABWARE_READ_TOKEN",
    "retention": "MABWARE_SERVE_RETENTION",
    "sync_interval": "MABWARE_SERVE_SYNC_INTERVAL",
    "protect": "MABWARE_SERVE_PROTECT",
}
#: the endpoints open to anyone by default; ``protect`` puts any of them behind the read token
OPEN_ENDPOINTS = ("health", "metrics", "dashboard", "docs")


def create_app(
    store_url: str = "file:./mabware.state",
    *,
    token: str | None = None,
    read_token: str | None = None,
    retention: float = 3600.0,
    sync_interval: float = 1.0,
    protect: Collection[str] = (),
) -> Starlette:
    """The server as an ASGI app.

    Args:
        store_url: where the merged state lives: ``file:PATH`` (survives a
            restart; may be shared with the processes of this host) or ``memory:``.
        token: the write token: every mutation and ``/sync`` must carry it
            (and it reads too); None: no check (loopback only, please).
        read_token: a token that reads (experiments, decisions, snapshot)
            but changes nothing; None: reading needs the write token, if any.
        retention: seconds of silence after which a replica is retired.
        sync_interval: seconds between two syncs of the server's own replica.
        protect: which of ``OPEN_ENDPOINTS`` need the read (or write) token;
            the others answer anyone.

    Raises:
        ConfigError: a store URL, token, retention, sync interval or
            protected endpoint that cannot work.
    """
    _check_values(token, read_token, retention, sync_interval, protect)
    backend = open_backend(store_url, retention=float(retention))
    sync = SyncEndpoints(backend, token=token, read_token=read_token)
    scheme = store_url.partition(":")[0].lower()
    service = Service(open_registry(store_url, backend), backend, scheme=scheme,
                      sync_interval=sync_interval)  # fmt: skip
    api = Api(service, write_token=token, read_token=read_token)

    dashboard = Dashboard(service.dashboard_source, title="mabware serve")
    metrics = metrics_for(service)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick(service, sync_interval))
        try:
            yield
        finally:
            ticker.cancel()
            await run_in_threadpool(service.close)
            backend.close()

    tokens = (read_token.encode() if read_token else None, token.encode() if token else None)

    def guarded(name: str, routes: list[Route]) -> list[Route]:
        if name not in protect:
            return routes
        return [
            Route(r.path, ReadersOnly(r.app, *tokens), methods=r.methods, name=r.name)
            for r in routes
        ]

    return Starlette(
        routes=[
            *sync.routes,  # first: the busiest route matches at once
            *guarded("health", [api.health_route]),
            *api.routes,
            *guarded("docs", openapi.routes(secured=token is not None)),
            Mount(
                "/dashboard",
                dashboard if "dashboard" not in protect else ReadersOnly(dashboard, *tokens),
            ),
            *guarded("metrics", [Route("/metrics", metrics, methods=["GET", "HEAD"])]),
        ],
        exception_handlers={ProblemError: handle_problem, HTTPException: handle_http_exception},
        lifespan=lifespan,
    )


def check_settings(
    store_url: str = "file:./mabware.state",
    *,
    token: str | None = None,
    read_token: str | None = None,
    retention: float = 3600.0,
    sync_interval: float = 1.0,
    protect: Collection[str] = (),
) -> None:
    """Raise what ``create_app`` would raise for these settings, and build nothing.

    ``mabware serve --workers N`` checks its settings in the parent before
    uvicorn starts the workers: a worker that fails at start-up is only a
    log line. The store is opened and closed again (a file store creates
    its directory, as every worker would); no app, no metrics, no threads.

    Raises:
        ConfigError: a store URL, token, retention or sync interval that cannot work.
        OSError: a file store whose directory cannot be created.
    """
    _check_values(token, read_token, retention, sync_interval, protect)
    open_backend(store_url, retention=float(retention)).close()


def app_from_environment(environ: Mapping[str, str] | None = None) -> Starlette:
    """``create_app`` with the settings that ``ENVIRONMENT`` names (uvicorn's factory).

    uvicorn's workers import the app by name, so ``mabware serve --workers
    N`` passes its settings through the environment, which they inherit
    (``uvicorn.run("mabware.server:app_from_environment", factory=True)``).
    An unset or empty variable is the ``create_app`` default, as click reads
    an empty ``MABWARE_TOKEN``.

    Args:
        environ: where to read (default ``os.environ``).

    Raises:
        ConfigError: a variable that ``create_app`` refuses, or a number that is none.
    """
    environ = os.environ if environ is None else environ
    texts = {name: environ.get(variable) or None for name, variable in ENVIRONMENT.items()}

    def seconds(name: str, default: float) -> float:
        text = texts[name]
        if text is None:
            return default
        try:
            return float(text)
        except ValueError:
            raise ConfigError(
                f"{ENVIRONMENT[name]} must be a number of seconds, got {text!r}"
            ) from None

    return create_app(
        texts["store_url"] or "file:./mabware.state",
        token=texts["token"],
        read_token=texts["read_token"],
        retention=seconds("retention", 3600.0),
        sync_interval=seconds("sync_interval", 1.0),
        protect=[n for n in (texts["protect"] or "").split(",") if n],
    )


def _check_values(
    token: str | None,
    read_token: str | None,
    retention: float,
    sync_interval: float,
    protect: Collection[str],
) -> None:
    unknown = sorted(set(protect) - set(OPEN_ENDPOINTS))
    if isinstance(protect, str) or unknown:
        raise ConfigError(
            f"protect names endpoints among {', '.join(OPEN_ENDPOINTS)}, got {protect!r}"
        )
    if protect and not (token or read_token):
        raise ConfigError("protect needs a token (or a read token) to protect with")
    for name, value in (("token", token), ("read_token", read_token)):
        if value is not None and (
            not isinstance(value, str) or not value or not value.isprintable() or " " in value
        ):
            raise ConfigError(f"{name} must be a non-empty string of printable characters, "
                              "no spaces")  # fmt: skip
    for name, seconds in (("retention", retention), ("sync_interval", sync_interval)):
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"{name} must be a number of seconds > 0, got {seconds!r}")


async def _tick(service: Service, interval: float) -> None:
    """Recompute allocations every ``interval`` even without requests.

    Other replicas' learning arrives with each sync; recomputing on a
    cadence keeps the dashboard's history and the time-based guardrails
    moving when this server itself gets no decisions.
    """
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(Exception):  # never let the ticker die on one bad recompute
            await run_in_threadpool(service.tick)
