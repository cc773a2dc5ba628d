"""The WSGI middleware, called in-process (real servers: tests/examples)."""

from __future__ import annotations

from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from mabware import Experiment, MabwareWSGIMiddleware
from mabware.testing import make_engine


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    arms = environ["mabware"]
    if environ["PATH_INFO"] == "/reward":
        arms.reward("headline", 1.0)
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("handler failed")
    status = "503 Service Unavailable" if environ["PATH_INFO"] == "/down" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [f"headline={arms['headline'].arm}".encode()]


def call(
    wsgi: Any, path: str = "/", cookie: str | None = None
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "HTTP_USER_AGENT": "Mozilla/5.0"}
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = wsgi(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        body.close()
    return seen["status"], seen["headers"], data


def test_first_visit_sets_cookie_and_returning_visitor_keeps_arm() -> None:
    engine = make_engine([Experiment("headline", ["control", "bold"])])
    wsgi = MabwareWSGIMiddleware(app, engine=engine)
    status, headers, body = call(wsgi)
    assert status == "200 OK"
    assert headers["Content-Type"] == "text/plain"
    cookie = headers["Set-Cookie"].split(";")[0]
    for _ in range(20):
        _, again, same = call(wsgi, cookie=cookie)
        assert same == body
        assert "Set-Cookie" not in again
    assert engine.store.statistics("headline", 0.0).pulls.sum() == 1


def test_reward_and_response_outcomes_reach_the_statistics() -> None:
    engine = make_engine([Experiment("headline", ["control", "bold"])])
    wsgi = MabwareWSGIMiddleware(app, engine=engine)
    cookie = call(wsgi)[1]["Set-Cookie"].split(";")[0]
    assert "Set-Cookie" in call(wsgi, "/reward", cookie)[1]
    call(wsgi, "/down", cookie)
    with pytest.raises(RuntimeError):
        call(wsgi, "/boom", cookie)
    stats = engine.store.statistics("headline", 0.0)
    assert stats.reward_sum.sum() == 1.0
    assert stats.responses.sum() == 4
    assert stats.errors.sum() == 2


def test_the_environ_object_is_the_same_kind_as_asgi() -> None:
    engine = make_engine([Experiment("headline", ["control", "bold"])])
    seen: list[Any] = []

    def spy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["mabware"])
        start_response("200 OK", [])
        return [b""]

    call(MabwareWSGIMiddleware(spy, engine=engine))
    assert type(seen[0]).__name__ == "Assignments"
    assert seen[0]["headline"].arm in ("control", "bold")
