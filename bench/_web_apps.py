"""The apps bench/web.py serves under uvicorn: one handler, four wrappings.

* ``plain``: a Starlette app with one route returning a short text body.
* ``mabware``: the same app inside ``MabwareMiddleware`` with three
  experiments (the handler reads all three arms).
* ``sessions``: the same app inside Starlette's ``SessionMiddleware`` (the
  handler reads the session), the anchor the issue names.
* ``passthrough``: the same app inside a pure ASGI middleware that does
  nothing but wrap ``send`` (what any such middleware costs at least).

Settings come from the environment so uvicorn can import them by name.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mabware import Experiment, MabwareMiddleware
from mabware.testing import TEST_KEYS

EXPERIMENTS = [
    Experiment("headline", {"control": "Welcome back", "bold": "Big sale today"}),
    Experiment("layout", ["grid", "list", "cards"]),
    Experiment("price", ["9", "12", "15", "19"]),
]


async def page(request: Request) -> PlainTextResponse:
    arms = request.scope.get("mabware")
    text = ",".join(a.arm for a in arms.values()) if arms else "hello"
    return PlainTextResponse(text)


async def session_page(request: Request) -> PlainTextResponse:
    request.session.setdefault("visits", 1)
    return PlainTextResponse(f"hello {request.session['visits']}")


class Passthrough:
    """A pure ASGI middleware that only wraps ``send``, as every cookie middleware must."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Any) -> None:
            await send(message)

        await self.app(scope, receive, wrapped)


plain = Starlette(routes=[Route("/", page)])
passthrough = Passthrough(Starlette(routes=[Route("/", page)]))
mabware = MabwareMiddleware(
    Starlette(routes=[Route("/", page)]), experiments=EXPERIMENTS, secret_keys=list(TEST_KEYS)
)
sessions = SessionMiddleware(Starlette(routes=[Route("/", session_page)]), secret_key="bench")
