"""WSGI middleware: the same engine, ``environ["mabware"]``.

The Set-Cookie header joins the app's headers in ``start_response``; the
response's status and latency (until the server closes the body) feed the
arm SLOs. The store's background work starts with the first request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mabware.engine import Engine

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class MabwareWSGIMiddleware:
    """Assign arms to every request of a WSGI app.

    Args:
        app: the WSGI app to wrap.
        experiments: the experiments (or give a ready ``engine``).
        unit_id: ``environ -> str | None``, the visitor's stable id.
        consent: ``environ -> bool``; False serves default arms, uncounted,
            with no cookie (also when the hook raises).
        engine: an ``Engine`` to use instead of building one.
        **options: ``Engine`` settings (``secret_keys`` is required).
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        experiments: Any = None,
        unit_id: Callable[[Environ], str | None] | None = None,
        consent: Callable[[Environ], bool] | None = None,
        engine: Engine | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.engine = engine if engine is not None else Engine(experiments, **options)
        self.unit_id = unit_id
        self.consent = consent
        self._started = False

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        engine = self.engine
        if not self._started:
            self._started = True
            engine.start()
        visit = engine.begin(
            environ.get("HTTP_COOKIE"),
            secure=engine.is_secure(
                environ.get("wsgi.url_scheme", "http"),
                environ.get("REMOTE_ADDR"),
                environ.get("HTTP_X_FORWARDED_PROTO"),
            ),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            path=environ.get("PATH_INFO", "/"),
            unit_id=self.unit_id and engine.call_hook("unit_id", self.unit_id, environ, None),
            consent=not self.consent or engine.call_hook("consent", self.consent, environ, False),
        )
        environ["mabware"] = visit
        outcome = {"status": 500}
        started = time.perf_counter()

        def start_with_cookie(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            code = int(status[:3])
            outcome["status"] = code
            set_cookie = engine.respond(visit, code)
            if set_cookie is not None:
                headers = [*headers, ("Set-Cookie", set_cookie)]
            return start_response(status, headers, *exc)

        def done() -> None:
            engine.finish(visit, outcome["status"], time.perf_counter() - started)

        try:
            body = self.app(environ, start_with_cookie)
        except BaseException:
            done()
            raise
        return _Body(body, done)


class _Body:
    """The app's body, calling ``done`` once when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._done is not None:
                done, self._done = self._done, None
                done()
