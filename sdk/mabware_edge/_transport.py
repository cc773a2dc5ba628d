"""HTTP for the client: a two-method protocol and its ``urllib`` implementation.

The client only ever GETs the snapshot and POSTs pushes, so a transport is
two methods. Tests and simulators pass their own (no sockets, no sleeping);
an app can wrap its own HTTP client (connection pooling, proxies, mTLS).

``urllib.request`` is imported by the first request, not with the SDK: with
``http.client``, ``email`` and ``ssl`` it would be most of a cold start, and
a process that decides from its cache file may never touch the network.
"""

# No ``from __future__ import annotations`` here, unlike the other modules: under it
# NamedTuple compile()s each field's annotation string, and the first compile() in a
# process sets up CPython's AST types (~1 ms). Every annotation here evaluates at
# import as it is: nothing in this module refers ahead.

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol


class Response(NamedTuple):
    """What a transport answers: any status, header names in lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """How the client reaches the network; raise (any exception) when it cannot."""

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        """``GET url``; every status is answered, not raised."""
        ...

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """``POST url`` with ``body``; every status is answered, not raised."""
        ...


class UrllibTransport:
    """The default transport: ``urllib.request``, one connection per request.

    Requests are a few per ``refresh_interval`` and ``push_interval``, so a
    connection pool would save little; pass your own ``Transport`` for one.
    """

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        """``GET url``."""
        return self._send("GET", url, None, headers, timeout)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """``POST url`` with ``body``."""
        return self._send("POST", url, body, headers, timeout)

    def _send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float
    ) -> Response:
        import urllib.error  # here, not at the top: see the module docstring
        import urllib.request

        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return Response(reply.status, _lower(reply.headers.items()), reply.read())
        except urllib.error.HTTPError as exc:  # 304, 4xx, 5xx: an answer, not a failure
            with exc:
                return Response(exc.code, _lower(exc.headers.items()), exc.read())


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}
