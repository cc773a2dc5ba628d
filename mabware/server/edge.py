"""``GET /edge/snapshot``: the signed snapshot the edge SDK decides from.

The bytes are the stored snapshot exactly (``mabware.server._publisher``),
as ``application/msgpack`` with a strong ETag (a ``If-None-Match`` that
has it is a 304) and ``Cache-Control: no-cache``: a client or a CDN may
keep a copy but asks again each time, and a new snapshot is at most one
``snapshot_interval`` away. HEAD answers the same headers.

The read token or the write token reads it, as ``GET /snapshot``. A
server started without a signing key answers 404 (the snapshot it keeps
for its own decisions is not signed).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mabware.server._auth import check_reader
from mabware.server._problems import STATE_UNAVAILABLE, ProblemError
from mabware.server._publisher import Publisher
from mabware.server.sync import MEDIA_TYPE, etag_matches

__all__ = ["NO_SIGNING_KEY", "EdgeEndpoints"]

#: the problem type of the 404 a server without a signing key answers
NO_SIGNING_KEY = "tag:mabware,2025:problem:no-signing-key"


class EdgeEndpoints:
    """``GET /edge/snapshot`` over a ``Publisher``.

    Args:
        publisher: the published snapshot.
        read_token: a token that reads it; None: the write token (if any).
        write_token: the write token (reads too).
    """

    def __init__(
        self, publisher: Publisher, *, read_token: str | None, write_token: str | None
    ) -> None:
        self.publisher = publisher
        self._read = read_token.encode() if read_token else None
        self._write = write_token.encode() if write_token else None

    @property
    def routes(self) -> list[Route]:
        """``GET /edge/snapshot`` (HEAD too)."""
        return [Route("/edge/snapshot", self.snapshot, methods=["GET"])]

    async def snapshot(self, request: Request) -> Response:
        """The signed snapshot; 304 if ``If-None-Match`` has its ETag."""
        check_reader(request, self._read, self._write)
        if not self.publisher.signs:
            raise ProblemError(
                404,
                "this server signs no snapshots: start it with --signing-key-file "
                "(or MABWARE_SIGNING_KEY)",
                type=NO_SIGNING_KEY,
                title="No signing key",
            )
        published = self.publisher.current()
        if published is None or not published.signed:  # none yet, or not signed by our key
            published = await run_in_threadpool(self.publisher.signed)
        if published is None or not published.signed:
            raise ProblemError(
                503,
                "the server cannot publish its snapshot",
                type=STATE_UNAVAILABLE,
                title="State unavailable",
            )
        headers = {"ETag": published.etag, "Cache-Control": "no-cache"}
        if etag_matches(request.headers.get("If-None-Match"), published.etag):
            return Response(status_code=304, headers=headers)
        return Response(published.data, media_type=MEDIA_TYPE, headers=headers)
