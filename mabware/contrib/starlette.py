"""Starlette: the pure ASGI middleware, plus ``arms(request)`` for handlers.

::

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from mabware import Experiment, MabwareMiddleware
    from mabware.contrib.starlette import arms

    async def home(request):
        headline = arms(request)["headline"]
        ...
        arms(request).reward("headline", 1.0)

    app = Starlette(
        routes=[...],
        middleware=[Middleware(MabwareMiddleware, experiments=[...], secret_keys=[...])],
    )

Starlette builds its middleware stack lazily, on the server's first ASGI
call, so a bad setting raises there, not at import; and uvicorn's default
``--lifespan auto`` takes a failing lifespan call for an app without
lifespan support, keeps serving, and every request answers 500. Building
the ``mabware.Engine`` yourself and passing ``engine=engine`` raises the
``ConfigError`` at import instead, and lets a handler read
``engine.report()``::

    engine = Engine([...], secret_keys=[...])
    app = Starlette(routes=[...], middleware=[Middleware(MabwareMiddleware, engine=engine)])
"""

from __future__ import annotations

from starlette.requests import Request

from mabware.assignments import Assignments
from mabware.exceptions import ConfigError

__all__ = ["arms"]


def arms(request: Request) -> Assignments:
    """This request's assignments: ``request.scope["mabware"]``.

    Raises:
        ConfigError: the app is not wrapped in ``MabwareMiddleware`` (or the
            request is not HTTP: websockets get no assignments).
    """
    try:
        visit: Assignments = request.scope["mabware"]
    except KeyError:
        raise ConfigError(
            "no mabware assignments on this request: add "
            "Middleware(MabwareMiddleware, experiments=[...], secret_keys=[...]) to "
            "Starlette(middleware=[...]) (FastAPI: app.add_middleware(MabwareMiddleware, ...))"
        ) from None
    return visit
