"""The standalone server (``mabware serve``): a Starlette app.

Route modules:

* ``mabware.server.api``: the REST API (experiments, decisions, rewards,
  changes), the endpoints MAB E-Commerce Optimizer clients know;
* ``mabware.server.sync``: replicas on many hosts push their totals to
  ``POST /sync`` and pull the merged state; ``GET /snapshot`` answers the
  state with an ETag; a push-only token pushes and reads nothing;
* ``mabware.server.edge``: ``GET /edge/snapshot``, the signed snapshot of
  the published allocations (``_publisher``) that ``GET /decision`` walks
  and the edge SDK decides from;
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
from mabware.server._config import OPEN_ENDPOINTS, check_values
from mabware.server._edge_storage import open_edge_storage
from mabware.server._metrics import metrics_for
from mabware.server._problems import ProblemError, handle_http_exception, handle_problem
from mabware.server._publisher import Publisher
from mabware.server._push_scope import check_push
from mabware.server._registry import open_registry
from mabware.server._service import Service
from mabware.server._state import open_backend
from mabware.server.api import Api
from mabware.server.edge import EdgeEndpoints
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
    "signing_key": "MABWARE_SIGNING_KEY",
    "snapshot_interval": "MABWARE_SERVE_SNAPSHOT_INTERVAL",
    "push_token": "MABWARE_PUSH_TOKEN",
}


def create_app(
    store_url: str = "file:./mabware.state",
    *,
    token: str | None = None,
    read_token: str | None = None,
    retention: float = 3600.0,
    sync_interval: float = 1.0,
    protect: Collection[str] = (),
    signing_key: str | None = None,
    snapshot_interval: float = 10.0,
    push_token: str | None = None,
) -> Starlette:
    """The server as an ASGI app.

    Args:
        store_url: where the merged state lives: ``file:PATH`` (survives a
            restart; may be shared with the processes of this host) or ``memory:``.
        token: the write token: every mutation and ``/sync`` must carry it
            (and it reads too); None: no check (loopback only, please).
        read_token: a token that reads (experiments, decisions, snapshots)
            but changes nothing; None: reading needs the write token, if any.
        retention: seconds of silence after which a replica is retired.
        sync_interval: seconds between two syncs of the server's own replica.
        protect: which of ``OPEN_ENDPOINTS`` need the read (or write) token;
            the others answer anyone.
        signing_key: the Ed25519 key that signs ``GET /edge/snapshot``, as
            text: ``mabware keygen --signing``'s JSON or its private key;
            None: that endpoint answers 404 (decisions still walk a snapshot).
        snapshot_interval: seconds after which a snapshot is issued anew
            (and the server's decisions learn).
        push_token: a token that may only push to ``/sync`` (edge clients),
            tallies of registered experiments only; needs ``token`` beside it.

    Raises:
        ConfigError: a store URL, token, key, retention, interval or
            protected endpoint that cannot work.
    """
    key = check_values(
        token,
        read_token,
        push_token,
        signing_key,
        protect,
        retention=retention,
        sync_interval=sync_interval,
        snapshot_interval=snapshot_interval,
    )
    backend = open_backend(store_url, retention=float(retention))
    scheme = store_url.partition(":")[0].lower()
    service = Service(open_registry(store_url, backend), backend, scheme=scheme,
                      sync_interval=sync_interval)  # fmt: skip
    publisher = Publisher(
        service, open_edge_storage(store_url, backend), key=key, interval=snapshot_interval
    )
    sync = SyncEndpoints(
        backend,
        token=token,
        read_token=read_token,
        push_token=push_token,
        check_push=lambda push: check_push(push, service),
    )
    api = Api(service, publisher, write_token=token, read_token=read_token)
    edge = EdgeEndpoints(publisher, read_token=read_token, write_token=token)

    dashboard = Dashboard(service.dashboard_source, title="mabware serve")
    metrics = metrics_for(service)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the first snapshot before the first request: every decision walks one
        first = await run_in_threadpool(publisher.tick)
        tasks = [
            asyncio.create_task(_tick(service, sync_interval)),
            asyncio.create_task(_publish(publisher, first)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
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
            *edge.routes,
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
    signing_key: str | None = None,
    snapshot_interval: float = 10.0,
    push_token: str | None = None,
) -> None:
    """Raise what ``create_app`` would raise for these settings, and build nothing.

    ``mabware serve --workers N`` checks its settings in the parent before
    uvicorn starts the workers: a worker that fails at start-up is only a
    log line. The store is opened and closed again (a file store creates
    its directory, as every worker would); no app, no metrics, no threads.

    Raises:
        ConfigError: a store URL, token, key, retention or interval that cannot work.
        OSError: a file store whose directory cannot be created.
    """
    check_values(
        token,
        read_token,
        push_token,
        signing_key,
        protect,
        retention=retention,
        sync_interval=sync_interval,
        snapshot_interval=snapshot_interval,
    )
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
        signing_key=texts["signing_key"],
        snapshot_interval=seconds("snapshot_interval", 10.0),
        push_token=texts["push_token"],
    )


async def _publish(publisher: Publisher, delay: float) -> None:
    """Issue a snapshot whenever the stored one is due (``Publisher.tick`` says when).

    Every worker wakes when the snapshot it holds is ``snapshot_interval``
    old; one issues, the others find its snapshot under the storage's lock.
    """
    while True:
        await asyncio.sleep(delay)
        delay = await run_in_threadpool(publisher.tick)  # never raises


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
