"""RFC 9457 problem details: the body of every error the server answers.

An endpoint raises ``ProblemError`` wherever it finds something wrong; the
handlers ``create_app`` installs turn it, and Starlette's own 404/405, into
``application/problem+json``. ``type`` is ``about:blank`` when the status
says it all, and a mabware URI (below) when a client acts on the kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

MEDIA_TYPE = "application/problem+json"
ABOUT_BLANK = "about:blank"
#: a push the server cannot read; the detail names the field
INVALID_PUSH = "tag:mabware,2025:problem:invalid-push"
#: the replica was folded into the retired totals (``mabware.store.http`` looks for "retired")
RETIRED_REPLICA = "tag:mabware,2025:problem:retired-replica"
#: the server's own state cannot be read or written
STATE_UNAVAILABLE = "tag:mabware,2025:problem:state-unavailable"
#: a field the endpoint does not accept (members ``field``, ``received``, ``allowed``)
INVALID_FIELD = "tag:mabware,2025:problem:invalid-field"
#: the experiment named does not exist
UNKNOWN_EXPERIMENT = "tag:mabware,2025:problem:unknown-experiment"


class ProblemError(Exception):
    """An error answer: status, a detail that names what is wrong, a type URI."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str = ABOUT_BLANK,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        #: RFC 9457 extension members (e.g. ``field``, ``received``, ``allowed``)
        self.extra = dict(extra or {})

    def response(self) -> Response:
        """The problem as an ``application/problem+json`` response."""
        body = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }
        return JSONResponse(body, self.status, self.headers, media_type=MEDIA_TYPE)


def unknown_experiment(name: str) -> ProblemError:
    """404: no experiment ``name`` (not even after reading the registry again)."""
    return ProblemError(
        404, f"no experiment {name[:120]!r}", type=UNKNOWN_EXPERIMENT, title="Unknown experiment"
    )


async def handle_problem(request: Request, exc: Exception) -> Response:
    """Exception handler: ``ProblemError`` -> its response."""
    assert isinstance(exc, ProblemError)
    return exc.response()


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Exception handler: Starlette's 404 / 405 as problems too (Allow kept)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else ""
    problem = ProblemError(exc.status_code, detail or f"{request.method} {request.url.path}")
    problem.headers.update(exc.headers or {})
    return problem.response()
