"""Bearer-token check shared by the server's machine endpoints."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mabware.server._problems import ProblemError

_REALM = 'Bearer realm="mabware"'


def check_bearer(request: Request, token: bytes | None) -> None:
    """Pass if the server has no token or the request carries it; else ProblemError 401.

    The comparison takes the same time wherever the tokens differ
    (``hmac.compare_digest``), so the answer's timing says nothing of the token.
    """
    if token is None:
        return
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ProblemError(
            401,
            "this server needs an 'Authorization: Bearer <token>' header",
            headers={"WWW-Authenticate": _REALM},
        )
    if not hmac.compare_digest(credentials.strip().encode(), token):
        raise ProblemError(
            401,
            "the bearer token is not valid",
            headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
        )


def check_reader(request: Request, read_token: bytes | None, write_token: bytes | None) -> None:
    """Pass if the request may read: it carries the read token or the write token.

    With only one of the two tokens configured, that one is needed (or none).
    """
    if read_token is None or write_token is None:
        check_bearer(request, read_token or write_token)
        return
    try:
        check_bearer(request, read_token)
    except ProblemError:
        check_bearer(request, write_token)


def check_pusher(request: Request, write_token: bytes | None, push_token: bytes | None) -> bool:
    """Pass if the request may push: the write token, or the push token; else ProblemError 401.

    Returns True for the push token alone (its push is held to the
    registry, and its answer holds no state: ``mabware.server._push_scope``).
    """
    if push_token is None:
        check_bearer(request, write_token)
        return False
    try:
        check_bearer(request, write_token)
        return False
    except ProblemError:
        check_bearer(request, push_token)
        return True


class ReadersOnly:
    """An ASGI app that only readers reach (``mabware serve --protect``).

    For the endpoints that are open by default (health, metrics, the
    dashboard, the docs): wrapped, each needs the read or the write token,
    and a request without one gets the same 401 problem as the API.
    """

    def __init__(self, app: ASGIApp, read_token: bytes | None, write_token: bytes | None) -> None:
        self.app = app
        self._read = read_token
        self._write = write_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                check_reader(Request(scope), self._read, self._write)
            except ProblemError as problem:
                await problem.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
