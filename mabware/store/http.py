"""``http://HOST`` / ``https://HOST``: the standalone server's sync endpoint.

A ``Backend`` (``mabware.store.shared``) that asks a ``mabware serve``
process to do the merge: ``exchange`` posts this replica's push to
``POST {base}/sync`` as msgpack and gets the merged state back
(``merge.pack``); ``read`` fetches ``GET {base}/snapshot`` and revalidates
it with its ETag, so an unchanged state costs a 304. The server stores the
state in a file or Redis; this side keeps nothing but the last snapshot.

The bearer token is the ``token`` argument, else the URL's password
(``https://:TOKEN@sync.example/``), else ``$MABWARE_TOKEN``, else none. It is
taken out of the URL, never logged, and left out of ``repr``.

Failures raise, and the ``SharedStore`` counts them as "backend down": a
transport error or timeout (``httpx.TransportError``), a status other than
200 (``SyncServerError``), a body that is not a state (``StateError``). A 409
whose problem type names a retired replica is ``RetiredReplicaError``, with
the seq the server folded when the problem says it (member ``folded_seq``).
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Generator

import httpx
import msgpack

from mabware.exceptions import ConfigError, MabwareError
from mabware.store.merge import (
    Replica,
    RetiredReplicaError,
    SharedState,
    replica_to_wire,
    unpack,
)

__all__ = ["HttpBackend", "SyncServerError"]

MEDIA_TYPE = "application/msgpack"
TOKEN_ENV = "MABWARE_TOKEN"
_DETAIL_CHARS = 200  # of a problem's detail quoted in an error message


class SyncServerError(MabwareError):
    """The sync server answered, but not with a state (``payload``: the status)."""


class _Bearer(httpx.Auth):
    """``Authorization: Bearer``, with a repr that keeps the token out of logs."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "_Bearer(***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class HttpBackend:
    """The merged state held by a ``mabware serve`` process.

    Args:
        url: the server, ``http(s)://[:TOKEN@]HOST[:PORT][/PREFIX]``.
        token: the bearer token; overrides the URL's password and ``$MABWARE_TOKEN``.
        timeout: seconds allowed to connect, and to wait for each read or write.

    Raises:
        ConfigError: the URL is not an http(s) URL with a host, or the timeout is not > 0.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 2.0) -> None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ConfigError(f"not a sync server URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(
                "the sync server URL must be http(s)://HOST[:PORT], "
                f"got one with scheme {parsed.scheme!r} and host {parsed.host!r}"
            )
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if token is None:
            token = parsed.password or os.environ.get(TOKEN_ENV) or None
        base = parsed.copy_with(username=None, password=None, query=None, fragment=None)
        #: the server's URL without the credentials
        self.url = str(base).rstrip("/")
        self.timeout = float(timeout)
        self._auth = _Bearer(token) if token else None
        self._client = self._new_client()
        # the last snapshot and its ETag; replaced as one tuple, so a reader
        # on another thread never pairs one state with another's tag
        self._snapshot: tuple[str, SharedState] | None = None
        _after_fork(self)

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            auth=self._auth, timeout=httpx.Timeout(self.timeout), headers={"Accept": MEDIA_TYPE}
        )

    def _forked(self) -> None:
        """In a child after fork: a pool of its own.

        The inherited connections are the parent's: two processes writing
        requests on one socket would interleave them. They are dropped, not
        closed, since the parent's sync thread may have held the pool's lock
        at the fork.
        """
        self._client = self._new_client()

    def __repr__(self) -> str:
        return f"HttpBackend({self.url!r})"

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        """Post ``push`` to ``/sync``; the merged state the server answers.

        Raises:
            RetiredReplicaError: the server folded this replica into the retired totals.
            httpx.TransportError: the server could not be reached or timed out.
            SyncServerError: any status other than 200.
            StateError: the answer is not a whole state.
        """
        body = msgpack.packb(replica_to_wire(replica_id, push), use_bin_type=True)
        response = self._client.post(
            f"{self.url}/sync", content=body, headers={"Content-Type": MEDIA_TYPE}
        )
        if response.status_code == 409 and "retired" in _problem(response).get("type", ""):
            raise RetiredReplicaError(
                f"replica {replica_id} was retired by {self.url}",
                payload=replica_id,
                folded_seq=_folded_seq(response),
            )
        _expect(response, 200)
        return unpack(response.content)

    def read(self) -> SharedState:
        """``GET /snapshot``; the cached state when the server answers 304."""
        cached = self._snapshot
        headers = {"If-None-Match": cached[0]} if cached is not None else {}
        response = self._client.get(f"{self.url}/snapshot", headers=headers)
        if response.status_code == 304 and cached is not None:
            return cached[1]
        _expect(response, 200)
        state = unpack(response.content)
        etag = response.headers.get("ETag")
        self._snapshot = (etag, state) if etag else None
        return state

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _after_fork(backend: HttpBackend) -> None:
    ref = weakref.ref(backend)

    def child() -> None:
        alive = ref()
        if alive is not None:
            alive._forked()

    os.register_at_fork(after_in_child=child)


def _problem(response: httpx.Response) -> dict[str, str]:
    """The RFC 9457 problem body's string members, or {} if there is none."""
    if not response.headers.get("Content-Type", "").startswith("application/problem+json"):
        return {}
    try:
        doc = response.json()
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)}


def _folded_seq(response: httpx.Response) -> int | None:
    """The problem's ``folded_seq`` member: the push of ours the server folded, if it says."""
    try:
        seq = response.json().get("folded_seq")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return None
    return seq if type(seq) is int and seq >= 0 else None


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code == status:
        return
    request = response.request
    detail = _problem(response).get("detail", "")[:_DETAIL_CHARS]
    raise SyncServerError(
        f"{request.method} {request.url} answered {response.status_code} "
        f"{response.reason_phrase}" + (f": {detail}" if detail else ""),
        payload=response.status_code,
    )
