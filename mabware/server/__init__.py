"""The standalone server (``mabware serve``): a Starlette app.

Route modules:

* ``mabware.server.api``: the REST API (experiments, decisions, rewards,
  changes), the endpoints MAB E-Commerce Optimizer clients know;
* ``mabware.server.sync``: replicas on many hosts push their totals to
  ``POST /sync`` and pull the merged state; ``GET /snapshot`` answers the
  state with an ETag;
* ``mabware.server.openapi``: ``GET /openapi.json`` (OpenAPI 3.1) and
  ``GET /docs``, its page without JavaScript.

The server is itself one replica of its store: the statistics of its
decisions and rewards merge with those of every middleware process that
syncs through the same file or through ``/sync``.

Every error is an RFC 9457 problem body (``application/problem+json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route

from mabware.dashboard import Dashboard
from mabware.exceptions import ConfigError
from mabware.server import openapi
from mabware.server._metrics import metrics_for
from mabware.server._problems import ProblemError, handle_http_exception, handle_problem
from mabware.server._registry import open_registry
from mabware.server._service import Service
from mabware.server._state import open_backend
from mabware.server.api import Api
from mabware.server.sync import SyncEndpoints

__all__ = ["create_app"]


def create_app(
    store_url: str = "file:./mabware.state",
    *,
    token: str | None = None,
    read_token: str | None = None,
    retention: float = 3600.0,
    sync_interval: float = 1.0,
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

    Raises:
        ConfigError: a store URL, token or retention that cannot work.
    """
    for name, value in (("token", token), ("read_token", read_token)):
        if value is not None and (
            not isinstance(value, str) or not value or not value.isprintable() or " " in value
        ):
            raise ConfigError(f"{name} must be a non-empty string of printable characters, "
                              "no spaces")  # fmt: skip
    if not (isinstance(retention, int | float) and math.isfinite(retention) and retention > 0):
        raise ConfigError(f"retention must be a number of seconds > 0, got {retention!r}")
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

    return Starlette(
        routes=[
            *sync.routes,  # first: the busiest route matches at once
            *api.routes,
            *openapi.routes(secured=token is not None),
            Mount("/dashboard", dashboard),
            Route("/metrics", metrics, methods=["GET", "HEAD"]),
        ],
        exception_handlers={ProblemError: handle_problem, HTTPException: handle_http_exception},
        lifespan=lifespan,
    )


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
