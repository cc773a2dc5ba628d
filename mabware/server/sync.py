"""``POST /sync`` and ``GET /snapshot``: how replicas on many hosts learn together.

A replica (``mabware.store.http.HttpBackend``) posts its push
(``merge.replica_to_wire`` as msgpack) and gets back the merged state of
all replicas (``merge.pack``). The server merges with the same code as the
file and Redis backends, so a duplicated, reordered or replayed push
changes nothing, and a rejected request changes nothing either.

The server stamps a push's ``seen`` with its own clock: retention is then
measured by one clock, and a replica whose host clock runs late is not
retired on arrival.

A push-only token (``mabware serve --push-token``, for edge clients) may
push but not read: its push must name experiments and arms the registry
has (``mabware.server._push_scope``; nothing of a push that does not is
merged), and its answer is not the merged state but ``{"seq": <the seq
pushed>}`` in msgpack, status 200: the client knows its push is durable.

Status codes, each with an RFC 9457 problem body:

* 401 no or wrong bearer token (``WWW-Authenticate: Bearer``);
* 409 the replica was retired (type ``RETIRED_REPLICA``): restart under a new id;
* 413 a body over ``max_body`` bytes;
* 415 a body that is not ``application/msgpack``;
* 422 a push that is not msgpack or not a valid push (type ``INVALID_PUSH``);
  the detail names the field (for the push token: the unknown experiment,
  version or arm);
* 503 the server's own state cannot be read or written (``STATE_UNAVAILABLE``).

The file backend blocks (``flock``, ``fsync``), so merges run in the thread
pool and the event loop stays free. They are group-committed: one write is
on its way at a time, pushes that arrive meanwhile queue up, and the next
write merges them all under one lock and one ``fsync`` (``_GroupCommit``):
reading, writing and syncing the state costs far more than merging one
push into it, so a batch costs little more than a single push. Each
request is still answered only once the write holding its push is
durable, with the state that write made, and with its own outcome: a
retired replica's 409 is its own. A backend without ``exchange_many``
gets one exchange per push.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence

import msgpack
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mabware._ratelimit import OncePerInterval
from mabware.server._auth import check_pusher, check_reader
from mabware.server._problems import (
    RETIRED_REPLICA,
    STATE_UNAVAILABLE,
    ProblemError,
)
from mabware.server._push_body import decode_push, invalid_push
from mabware.server._state import BatchBackend
from mabware.store.merge import (
    Replica,
    RetiredReplicaError,
    StateError,
    pack,
)
from mabware.store.shared import Backend

__all__ = ["MAX_BODY", "MEDIA_TYPE", "SyncEndpoints", "etag_matches"]

MEDIA_TYPE = "application/msgpack"
#: the largest push accepted, in bytes (a push is a few KiB per experiment)
MAX_BODY = 8 * 1024 * 1024

logger = logging.getLogger("mabware.server")


class SyncEndpoints:
    """The sync endpoints over one backend; ``routes`` mounts them.

    Args:
        backend: where the merged state lives (``mabware.server._state``).
        token: the write token: pushes need it (and it reads too); None: no check.
        read_token: a token that reads the snapshot but cannot push.
        push_token: a token that pushes, held to ``check_push``, and reads nothing.
        check_push: raises ProblemError for a push the push token may not make.
        max_body: the largest push accepted, in bytes.
        clock: wall-clock seconds, stamped on every push as ``seen``.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        token: str | None = None,
        read_token: str | None = None,
        push_token: str | None = None,
        check_push: Callable[[Replica], None] | None = None,
        max_body: int = MAX_BODY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self._token = token.encode() if token is not None else None
        self._read_token = read_token.encode() if read_token is not None else None
        self._push_token = push_token.encode() if push_token is not None else None
        self._check_push = check_push
        self.max_body = max_body
        self._clock = clock
        self._log = OncePerInterval(logger)
        self._group = _GroupCommit(backend) if isinstance(backend, BatchBackend) else None

    @property
    def routes(self) -> list[BaseRoute]:
        """``POST /sync`` and ``GET /snapshot`` (HEAD too)."""
        return [
            Route("/sync", self.sync, methods=["POST"]),
            Route("/snapshot", self.snapshot, methods=["GET"]),
        ]

    async def sync(self, request: Request) -> Response:
        """Merge the posted push; answer the merged state (the push token: its seq)."""
        push_only = check_pusher(request, self._token, self._push_token)
        media_type = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if not media_type and request.headers.get("Content-Length", "0") == "0":
            raise invalid_push("a push is required: the body is empty")
        if media_type != MEDIA_TYPE:
            raise ProblemError(
                415,
                f"a push is {MEDIA_TYPE}, got " + (repr(media_type) if media_type else "none"),
                headers={"Accept-Post": MEDIA_TYPE},
            )
        replica_id, push = decode_push(await self._body(request))
        if push_only and self._check_push is not None:
            self._check_push(push)
        push = Replica(push.seq, self._clock(), push.tallies)
        try:
            with self._state_guard():
                if self._group is not None:
                    data = await self._group.exchange(replica_id, push)
                else:
                    data = await run_in_threadpool(self._exchange, replica_id, push)
        except RetiredReplicaError as exc:
            raise ProblemError(
                409,
                f"replica {replica_id[:64]!r} was retired after a silence longer than the "
                "retention; restart it under a new id",
                type=RETIRED_REPLICA,
                title="Replica retired",
                # which of its pushes the retired totals hold: the client subtracts
                # exactly that one, even if its reply was lost (mabware.store.shared)
                extra={"folded_seq": exc.folded_seq},
            ) from None
        if push_only:
            data = msgpack.packb({"seq": push.seq})
        return Response(data, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})

    async def snapshot(self, request: Request) -> Response:
        """The merged state with a strong ETag; 304 if ``If-None-Match`` has it."""
        check_reader(request, self._read_token, self._token)
        data, etag = await run_in_threadpool(self._read)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag_matches(request.headers.get("If-None-Match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=MEDIA_TYPE, headers=headers)

    async def _body(self, request: Request) -> bytes:
        """The body, refused with 413 as soon as it is known to exceed ``max_body``."""
        declared = request.headers.get("Content-Length")
        too_large = ProblemError(413, f"a push is at most {self.max_body} bytes")
        if declared is not None:
            if not declared.isdigit():
                raise ProblemError(
                    400, f"Content-Length must be a number of bytes, got {declared!r}"
                )
            if int(declared) > self.max_body:
                raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():  # a chunked body declares no length
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _exchange(self, replica_id: str, push: Replica) -> bytes:
        return pack(self.backend.exchange(replica_id, push))

    def _read(self) -> tuple[bytes, str]:
        with self._state_guard():
            data = pack(self.backend.read())
        return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'

    @contextlib.contextmanager
    def _state_guard(self) -> Iterator[None]:
        """A state that cannot be read or written: logged once a minute, a 503."""
        try:
            yield
        except (StateError, OSError) as exc:
            self._log(type(exc).__name__, f"sync state unavailable: {exc}", logging.ERROR)
            raise ProblemError(
                503,
                "the server cannot read or write its state",
                type=STATE_UNAVAILABLE,
                title="State unavailable",
            ) from exc


class _GroupCommit:
    """Pushes that arrive while a write is under way all go into the next one.

    One writer task at a time. The first push starts it, and it writes at
    once: a lone push waits for no one. Pushes that arrive meanwhile queue
    up; when the write is durable the writer answers its batch and takes
    the whole queue into the next write, until the queue is empty.
    """

    def __init__(self, backend: BatchBackend) -> None:
        self._backend = backend
        self._queue: list[tuple[str, Replica, asyncio.Future[bytes]]] = []
        # A strong reference: the event loop keeps only a weak one to its tasks.
        self._writer: asyncio.Task[None] | None = None

    async def exchange(self, replica_id: str, push: Replica) -> bytes:
        """The packed state once the write holding ``push`` is durable; or its error."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queue.append((replica_id, push, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        batch: list[tuple[str, Replica, asyncio.Future[bytes]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                pushes = [(replica_id, push) for replica_id, push, _ in batch]
                try:
                    data, outcomes = await run_in_threadpool(self._exchange_many, pushes)
                except Exception as exc:  # the write failed: each push gets what one alone would
                    data, outcomes = b"", [exc] * len(batch)
                for (_, _, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # cancelled: its client is gone
                        continue
                    if outcome is None:
                        future.set_result(data)
                    else:
                        future.set_exception(outcome)
        finally:
            self._writer = None
            # Only if this task was cancelled (shutdown): no request waits forever.
            for _, _, future in (*batch, *self._queue):
                future.cancel()

    def _exchange_many(
        self, pushes: Sequence[tuple[str, Replica]]
    ) -> tuple[bytes, list[BaseException | None]]:
        state, outcomes = self._backend.exchange_many(pushes)
        return pack(state), outcomes  # packed once for the whole batch


def etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, ``*`` matches any."""
    if header is None:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)
