"""mabware's decisions anywhere: edge workers, batch jobs, services without the middleware.

::

    from mabware_edge import EdgeClient

    edge = EdgeClient("https://mab.example/edge/snapshot", public_key=PUB,
                      push_url="https://mab.example/sync", push_token=TOKEN,
                      cache_path="mab.snap", defaults={"headline": "control"})
    d = edge.decide("headline", unit_id="user-42")   # d.arm, d.value, d.reason, ...
    edge.reward(d.decision_id, 1.0)

The SDK needs the standard library, ``msgpack`` and ``cryptography`` only,
never ``mabware`` itself: it re-implements the specs ``mabware.edge.v1``
(the signed snapshot), ``mabware.assign.v1`` (unit hashing) and
``mabware.cookie.v1`` (the cookie) from their text, and the golden vectors
in the repository's ``tests/vectors/`` hold both sides to them.
"""

from mabware_edge._decide import RandomSource
from mabware_edge._decision import Cookie, CookieEntry, Decision
from mabware_edge._snapshot import Snapshot, SnapshotError, SnapshotExperiment, read_snapshot
from mabware_edge._transport import Response, Transport, UrllibTransport
from mabware_edge.client import EdgeClient

__all__ = [
    "Cookie",
    "CookieEntry",
    "Decision",
    "EdgeClient",
    "RandomSource",
    "Response",
    "Snapshot",
    "SnapshotError",
    "SnapshotExperiment",
    "Transport",
    "UrllibTransport",
    "read_snapshot",
]

__version__ = "0.1.0"
