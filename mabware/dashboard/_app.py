"""The dashboard as a tiny ASGI app, to mount in any ASGI app or serve alone.

A plain ASGI class, as STYLE.md asks of middlewares: ``GET`` or ``HEAD`` on
its root path answers the page, any other method there 405, any other path
404. The page is rendered in a worker thread: drawing the charts is
CPU-bound and must not stall the event loop that serves the app's visitors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from mabware.dashboard._page import check_refresh, render
from mabware.history import History
from mabware.summary import ExperimentSummary

if TYPE_CHECKING:
    from mabware.engine import Engine

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Source = Callable[[], tuple[Sequence[ExperimentSummary], History]]

# The page has no script by construction; the policy makes a browser hold it
# to that (inline styles remain: pygal's SVG carries its own).
_CSP = (
    b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


class Dashboard:
    """An ASGI app answering the dashboard page on its root path.

    Mount it (``Mount("/mabware", dashboard)``) or serve it alone.

    Args:
        source: called per request, returns the summaries to show and the
            history to chart (``lambda: (engine.summaries(), engine.history)``).
            Called in a worker thread.
        title: the page title.
        refresh: seconds between automatic reloads; None for none.
    """

    def __init__(self, source: Source, *, title: str = "mabware", refresh: int | None = 5) -> None:
        check_refresh(refresh)
        self.source = source
        self.title = title
        self.refresh = refresh

    def page(self) -> str:
        """The page as it stands now (what ``GET`` answers)."""
        summaries, history = self.source()
        return render(summaries, history, title=self.title, refresh=self.refresh)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # a websocket: refused before accept (403)
            await send({"type": "websocket.close", "code": 1008})
            return
        if _route_path(scope) not in ("", "/"):
            await _answer(send, 404, b"Not Found", b"text/plain; charset=utf-8")
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            allow = [(b"allow", b"GET, HEAD")]
            await _answer(send, 405, b"Method Not Allowed", b"text/plain; charset=utf-8", allow)
            return
        body = (await anyio.to_thread.run_sync(self.page)).encode("utf-8")
        await _answer(
            send,
            200,
            body,
            b"text/html; charset=utf-8",
            [(b"content-security-policy", _CSP), (b"x-content-type-options", b"nosniff")],
            head=method == "HEAD",
        )


def dashboard_app(engine: Engine, *, title: str = "mabware", refresh: int | None = 5) -> Dashboard:
    """The dashboard of one engine, for use inside an app.

    ::

        app = Starlette(routes=[..., Mount("/mabware", dashboard_app(middleware.engine))])

    Args:
        engine: the engine whose experiments to show (``MabwareMiddleware.engine``).
        title: the page title.
        refresh: seconds between automatic reloads; None for none.
    """
    return Dashboard(lambda: (engine.summaries(), engine.history), title=title, refresh=refresh)


def _route_path(scope: Scope) -> str:
    """The path below where the app is mounted.

    Starlette's ``Mount`` keeps the full ``path`` and extends ``root_path``;
    other routers strip the prefix from ``path``. Both end up here the same.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: Sequence[tuple[bytes, bytes]] = (),
    *,
    head: bool = False,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Served alone, the app has nothing to start or stop: acknowledge both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
