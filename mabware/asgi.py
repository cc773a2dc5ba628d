"""Pure ASGI middleware: arms in ``scope["mabware"]``, the cookie on the way out.

A plain class in the shape of Starlette's own middlewares: ``__init__``
builds the engine (validating everything at start-up), ``__call__`` passes
non-``http`` scopes through, keeps per-request state in locals, and adds
its Set-Cookie header only on ``http.response.start``. Lifespan events
start and stop the store's background work.

Build the ``Engine`` (or this middleware) at import time, not lazily: a
``ConfigError`` raised inside a framework's first ASGI call is easy to
miss (uvicorn's ``--lifespan auto`` logs it as "lifespan unsupported").
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mabware.engine import Engine

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class MabwareMiddleware:
    """Assign arms to every HTTP request of an ASGI app.

    Args:
        app: the ASGI app to wrap.
        experiments: the experiments (or give a ready ``engine``).
        unit_id: ``scope -> str | None``, the visitor's stable id (e.g. a
            logged-in user's) for deterministic assignment.
        consent: ``scope -> bool``; False serves default arms, uncounted,
            with no cookie. If the hook raises, the visitor is treated as
            not consenting.
        engine: an ``Engine`` to use instead of building one.
        **options: ``Engine`` settings: ``secret_keys`` (required),
            ``store``, ``cookie_name``, ``rewards``, ``bot_pattern``,
            ``trusted_proxies``, ``strict``, ...
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        experiments: Any = None,
        unit_id: Callable[[Scope], str | None] | None = None,
        consent: Callable[[Scope], bool] | None = None,
        engine: Engine | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.engine = engine if engine is not None else Engine(experiments, **options)
        self.unit_id = unit_id
        self.consent = consent
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._on_startup(receive), self._on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        engine = self.engine
        if not self._started:  # servers run with lifespan off still get a store
            self._started = True
            engine.start()
        cookie = user_agent = forwarded = None
        for key, value in scope["headers"]:
            if key == b"cookie":
                text = value.decode("latin-1")
                cookie = text if cookie is None else f"{cookie}; {text}"
            elif key == b"user-agent":
                user_agent = value.decode("latin-1")
            elif key == b"x-forwarded-proto":
                forwarded = value.decode("latin-1")
        client = scope.get("client")
        visit = engine.begin(
            cookie,
            secure=engine.is_secure(scope.get("scheme", "http"), client and client[0], forwarded),
            user_agent=user_agent or "",
            path=scope.get("path", "/"),
            unit_id=self.unit_id and engine.call_hook("unit_id", self.unit_id, scope, None),
            consent=not self.consent or engine.call_hook("consent", self.consent, scope, False),
        )
        scope["mabware"] = visit
        status = 500  # if the app fails before answering, the server sends a 500
        started = time.perf_counter()

        async def send_with_cookie(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                set_cookie = engine.respond(visit, status)
                if set_cookie is not None:
                    headers = list(message.get("headers", ()))
                    headers.append((b"set-cookie", set_cookie.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            engine.finish(visit, status, time.perf_counter() - started)

    def _on_startup(self, receive: Receive) -> Receive:
        """Start the store when the server announces start-up."""

        async def receive_and_start() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._started = True
                self.engine.start()
            return message

        return receive_and_start

    def _on_shutdown(self, send: Send) -> Send:
        """Close the store once the app has finished its own shutdown handlers.

        Closing on ``lifespan.shutdown.complete`` (not on the server's
        ``lifespan.shutdown``) lets rewards recorded by the app's shutdown
        handlers still reach the store's final flush.
        """

        async def send_and_close(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self.engine.close()
            await send(message)

        return send_and_close
