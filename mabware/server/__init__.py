"""The standalone server (``mabware serve``): a Starlette app.

So far it serves the sync endpoints (``mabware.server.sync``): replicas on
many hosts push their totals to ``POST /sync`` and pull the merged state;
``GET /snapshot`` answers the state with an ETag. The REST API, dashboard
and metrics (DESIGN.md, "Server") join as more route modules beside it.

Every error is an RFC 9457 problem body (``application/problem+json``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from mabware.exceptions import ConfigError
from mabware.server._problems import ProblemError, handle_http_exception, handle_problem
from mabware.server._state import open_backend
from mabware.server.sync import SyncEndpoints

__all__ = ["create_app"]


def create_app(
    store_url: str = "file:./mabware.state",
    *,
    token: str | None = None,
    retention: float = 3600.0,
) -> Starlette:
    """The server as an ASGI app.

    Args:
        store_url: where the merged state lives: ``file:PATH`` (survives a
            restart; may be shared with the processes of this host) or ``memory:``.
        token: the bearer token every request must carry; None: no check
            (loopback only, please).
        retention: seconds of silence after which a replica is retired.

    Raises:
        ConfigError: a store URL, token or retention that cannot work.
    """
    if token is not None and (
        not isinstance(token, str) or not token or not token.isprintable() or " " in token
    ):
        raise ConfigError("token must be a non-empty string of printable characters, no spaces")
    if not (isinstance(retention, int | float) and math.isfinite(retention) and retention > 0):
        raise ConfigError(f"retention must be a number of seconds > 0, got {retention!r}")
    backend = open_backend(store_url, retention=float(retention))
    sync = SyncEndpoints(backend, token=token)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            backend.close()

    return Starlette(
        routes=sync.routes,
        exception_handlers={ProblemError: handle_problem, HTTPException: handle_http_exception},
        lifespan=lifespan,
    )
