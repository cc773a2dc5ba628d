"""Pushing this replica's totals to ``POST /sync``, exactly once each.

Every push carries the replica id, a seq that rises by one per new body,
and the cumulative totals. What the server answers decides what happens:

* 2xx: acknowledged. The next push is due after ``push_interval``.
* no answer, 408, 425, 429 or 5xx: the server may or may not hold it. The
  same body (same seq) is sent again after a back-off, so even if the first
  one landed the server counts it once; counts made meanwhile wait for the
  push after it.
* 409 whose problem ``type`` names a retired replica: the server folded this
  replica into its retired totals, holding the push ``folded_seq`` (a push
  whose reply was lost, maybe). The replica restarts under a new id with its
  totals minus exactly that push's, which is kept by seq until it is known
  not to matter, and pushes again at once.
* any other 4xx (bad token, a body refused): this body will never be
  accepted; it is dropped, the cause counted, and the next push is a new
  body with the next seq after a back-off.
"""

from __future__ import annotations

import os
from _thread import allocate_lock  # threading.Lock itself, without importing threading

from mabware_edge._events import Events
from mabware_edge._ledger import Key, Ledger, Tally, push_body
from mabware_edge._transport import Transport

_KEPT_ATTEMPTS = 6  # the acknowledged push, the first attempts after it, the latest
_TRANSIENT = frozenset({408, 425, 429})

Totals = dict[Key, Tally]


class Pusher:
    """One replica's pushes: its id, seq, the body in flight and what was acknowledged.

    Args:
        url: the ``POST /sync`` URL.
        token: the bearer token (a push token), or None.
        transport: how to post.
        timeout: seconds per request.
        ledger: the totals to push.
        push_after: counts after which a push is due early.
        errors: where failures are counted (causes ``push:...``).
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        transport: Transport,
        timeout: float,
        ledger: Ledger,
        push_after: int,
        errors: Events,
    ) -> None:
        self.url, self.transport, self.timeout = url, transport, timeout
        self.headers = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.ledger, self.push_after, self.errors = ledger, push_after, errors
        self.lock = allocate_lock()  # one push at a time
        self.new_replica(ledger)

    def new_replica(self, ledger: Ledger) -> None:
        """Start afresh under a new random id (at start, after fork, when retired)."""
        self.ledger = ledger
        self.replica_id = _uuid4_hex()
        self.seq = 0
        self.acked: Totals = {}
        self.acked_changes = 0  # the ledger's changes as of the acknowledged push
        self.attempted: dict[int, Totals] = {}  # seq -> totals the server may hold
        self.pending: tuple[int, bytes, int] | None = None  # seq, body, changes: to resend
        ledger.push_at = ledger.changes + self.push_after

    def due(self) -> bool:
        """Is there something the server has not acknowledged?"""
        return self.pending is not None or self.ledger.changes != self.acked_changes

    def push(self, now: float, *, retired_retry: bool = True) -> bool:
        """Send the body in flight, or a new one if there is news; True if acknowledged."""
        with self.lock:
            return self._push(now, retired_retry)

    def _push(self, now: float, retired_retry: bool) -> bool:
        if self.pending is None:
            if self.ledger.changes == self.acked_changes:
                return True  # nothing new
            totals, changes = self.ledger.copy()
            self.seq += 1
            self.attempted[self.seq] = totals
            if len(self.attempted) > _KEPT_ATTEMPTS:
                del self.attempted[list(self.attempted)[-2]]
            body = push_body(self.replica_id, self.seq, now, totals)
            self.pending = (self.seq, body, changes)
        seq, body, changes = self.pending
        try:
            answer = self.transport.post(self.url, body, self.headers, self.timeout)
        except Exception as exc:
            return self._failed("push:network", f"push to {self.url} failed: {exc!r}")
        status = answer.status
        if 200 <= status < 300:
            self.acked, self.acked_changes = self.attempted[seq], changes
            self.attempted = {seq: self.acked}  # the server holds this one or a later one
            self.pending = None
            self.ledger.push_at = changes + self.push_after
            return True
        problem = _problem(answer.body) if status == 409 else {}
        if "retired" in str(problem.get("type", "")):
            folded = problem.get("folded_seq")
            self.rebase(folded if type(folded) is int and folded >= 0 else None)
            return self._push(now, False) if retired_retry else False
        if status not in _TRANSIENT and 400 <= status < 500:
            self.pending = None  # never accepted as it is: the next push is a new body
        return self._failed(f"push:http_{status}", f"push to {self.url} answered {status}")

    def _failed(self, cause: str, message: str) -> bool:
        self.errors(cause, message + "; totals are kept for the next push")
        self.ledger.push_at = float("inf")  # the back-off decides, not the count
        return False

    def rebase(self, folded_seq: int | None) -> None:
        """Carry on as a new replica with the counts the retired totals lack.

        The server holds push ``folded_seq`` of ours: subtract exactly its
        totals. If it is no longer kept, the latest kept before it (which
        may count a difference twice, but never takes out a count the
        server lacks); if none, or the server does not say, the
        acknowledged push.
        """
        counted = self.acked
        if folded_seq is not None:
            earlier = [seq for seq in self.attempted if seq <= folded_seq]
            counted = self.attempted[max(earlier)] if earlier else counted
        old = self.replica_id
        self.ledger.subtract(counted)
        self.new_replica(self.ledger)
        self.acked_changes = -1  # push the remainder under the new id even if nothing is new
        self.errors("push:retired", f"replica {old} was retired; continuing as {self.replica_id}")


def _uuid4_hex() -> str:
    """``uuid.uuid4().hex``, without importing ``uuid`` (a few ms of a cold start)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    return raw.hex()


def _problem(body: bytes) -> dict[str, object]:
    """The RFC 9457 problem document in ``body``, or {} if it is not one."""
    import json  # only for a 409, never on a cold start

    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
