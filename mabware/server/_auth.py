"""Bearer-token check shared by the server's machine endpoints."""

from __future__ import annotations

import hmac

from starlette.requests import Request

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
