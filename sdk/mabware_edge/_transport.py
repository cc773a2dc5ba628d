"""HTTP for the client: a two-method protocol and its ``urllib`` implementation.

The client only ever GETs the snapshot and POSTs pushes, so a transport is
two methods. Tests and simulators pass their own (no sockets, no sleeping);
an app can wrap its own HTTP client (connection pooling, proxies, mTLS).
"""

from __future__ import annotations

import urllib.error
import urllib.request
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
        return self._send(urllib.request.Request(url, headers=dict(headers)), timeout)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """``POST url`` with ``body``."""
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        return self._send(request, timeout)

    def _send(self, request: urllib.request.Request, timeout: float) -> Response:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return Response(reply.status, _lower(reply.headers.items()), reply.read())
        except urllib.error.HTTPError as exc:  # 304, 4xx, 5xx: an answer, not a failure
            with exc:
                return Response(exc.code, _lower(exc.headers.items()), exc.read())


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}
