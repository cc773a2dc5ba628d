"""The published allocations: issued on a cadence, shared by every worker, walked per decision.

A snapshot (``mabware.edge_snapshot``) is each experiment's allocation
after guardrails, as the current runtime's ``Plans`` computed it, under a
rising sequence and an issue time. It is what ``GET /edge/snapshot``
serves, and what ``GET /decision`` walks: the server decides from the very
table its edge clients decide from, and answers its ``snapshot_seq``.

One snapshot is stored beside the store (``_edge_storage``), so every
worker of one server and every host on one Redis serve the same sequence
and allocations. When a snapshot is issued:

* every ``interval`` seconds after the stored one's issue time, even if
  nothing changed (a client measures staleness from it): each worker's
  ticker wakes then, and under the storage's lock looks again, so one
  worker issues and the others read what it stored;
* at once after a change of the registry (``changed``): a new experiment
  is published before its create answers;
* when a worker is asked about an experiment, or a version or arms, that
  the snapshot it holds lacks (``catch_up``): it reads the stored snapshot
  again and, if that lacks it too (the worker that changed the registry
  has not issued yet), issues one.

Each worker re-reads the stored snapshot when its revision changes, looked
at most every ``storage.recheck`` seconds (0.05 s for a file, 0.25 s for
Redis). The sequence is ``edge_snapshot.next_seq`` of the stored one, so it
rises across restarts. A storage that cannot be read or written is logged
once a minute; meanwhile the worker serves what it holds, and issues into
its own memory when its ticker finds that due.

Without a signing key the server still publishes, with an empty signature
(``_published.signed_bytes``): its decisions need the shared sequence, but
``GET /edge/snapshot`` has nothing to serve. With a key, a stored snapshot
that does not verify under it (written by a server without a key, or with
another one) is due at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mabware._ratelimit import OncePerInterval
from mabware.edge_snapshot import EdgeExperiment, EdgeSnapshot, SnapshotError, next_seq
from mabware.server._edge_storage import EdgeStorage
from mabware.server._published import Published, published, signed_bytes
from mabware.server._service import Runtime, Service

logger = logging.getLogger("mabware.server")

#: whether the stored snapshot (None: none, or unreadable) should be replaced
Due = Callable[[Published | None], bool]
_UNSEEN = object()


def _always(stored: Published | None) -> bool:
    return True


class Publisher:
    """Issues, stores and reads back the snapshot of one server's experiments.

    Args:
        service: the registry's runtime, whose plans are published.
        storage: where the snapshot lives (``_edge_storage.open_edge_storage``).
        key: the signing key; None: snapshots are stored unsigned.
        interval: seconds after which a snapshot is issued anew.
        monotonic: monotonic seconds (when to look at the storage again).
    """

    def __init__(
        self,
        service: Service,
        storage: EdgeStorage,
        *,
        key: Ed25519PrivateKey | None,
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.storage = storage
        self.key = key
        self._public = key.public_key() if key is not None else None
        self.interval = interval
        self._monotonic = monotonic
        self._log = OncePerInterval(logger)
        self._held: Published | None = None
        self._seen: object = _UNSEEN  # the storage revision last read
        self._checked = -float("inf")
        self._lock = threading.Lock()  # swaps what is held
        self._issuing = threading.Lock()  # one issue at a time in this process

    @property
    def signs(self) -> bool:
        """Whether this server has a signing key (``GET /edge/snapshot`` serves)."""
        return self.key is not None

    def current(self) -> Published | None:
        """What this worker holds, read again first if the stored one changed (throttled).

        The request path calls it: at most one revision check (a ``stat``,
        a Redis HGET) per ``storage.recheck`` seconds.
        """
        now = self._monotonic()
        if now - self._checked >= self.storage.recheck:
            self._checked = now
            self._refresh()
        return self._held

    def catch_up(self, name: str) -> tuple[Runtime, Published | None]:
        """The registry and the snapshot read again; a snapshot issued if it lacks ``name``.

        For a request about an experiment the held snapshot does not
        publish (at its version and arms). Blocks: run it in the thread pool.
        """
        runtime = self.service.current(reload=True)
        held = self._refresh()
        entry = runtime.entries.get(name)
        if entry is not None and (held is None or held.table(entry.experiment) is None):
            experiment = entry.experiment
            held = self.issue(lambda stored: stored is None or stored.table(experiment) is None)
            runtime = self.service.current()
        return runtime, held

    def changed(self) -> Published | None:
        """Issue at once: the registry changed. Blocks: run it in the thread pool."""
        return self.issue(_always)

    def signed(self) -> Published | None:
        """A snapshot signed by this server's key, issued if the held one is not."""
        held = self.current()
        if held is not None and held.signed:
            return held
        return self.issue(lambda stored: stored is None or not stored.signed)

    def tick(self) -> float:
        """Issue if the snapshot is due; the seconds until the next one is. Blocks; never raises."""
        held = self._refresh()
        if self._due(held):
            held = self.issue(self._due)
            if self._due(held):  # it could not be issued: try again an interval later
                return self.interval
        assert held is not None
        return max(0.0, held.snapshot.issued + self.interval - self.service.clock())

    def _due(self, stored: Published | None) -> bool:
        if stored is None or (self.key is not None and not stored.signed):
            return True
        return self.service.clock() - stored.snapshot.issued >= self.interval

    def issue(self, due: Due) -> Published | None:
        """Issue a snapshot of the current allocations if ``due`` says so of the stored one.

        Under the storage's lock, so that of many workers that find the
        snapshot due at once, one issues and the others read what it stored.
        """
        made: list[Published] = []

        def make(stored: bytes | None) -> bytes | None:
            previous = self._parse(stored)
            if not due(previous):
                return None
            made.append(self._build(runtime, previous))
            return made[-1].data

        with self._issuing:
            try:
                runtime = self.service.current_if_any()
                if runtime is not None:
                    runtime.plans.refresh(self.service.clock())
            except Exception as exc:  # the registry cannot be read: keep what is held
                self._log(type(exc).__name__, f"edge snapshot not issued: {exc}", logging.ERROR)
                return self._held
            try:
                revision, data = self.storage.replace(make)
            except Exception as exc:  # an outage, or a payload msgpack cannot carry
                self._log(type(exc).__name__, f"edge snapshot not stored: {exc}", logging.ERROR)
                self._issue_here(runtime)
            else:
                known = next((p for p in made if p.data == data), None)
                self._take(revision, data, known)
        return self._held

    def _build(self, runtime: Runtime | None, previous: Published | None) -> Published:
        now = self.service.clock()
        seqs = [p.seq for p in (previous, self._held) if p is not None]
        plans = runtime.plans.by_name.values() if runtime is not None else ()
        experiments = tuple(EdgeExperiment.of(p.experiment, p.allocation) for p in plans)
        snapshot = EdgeSnapshot(next_seq(max(seqs, default=None), now), now, experiments)
        return published(signed_bytes(snapshot, self.key), self._public)

    def _issue_here(self, runtime: Runtime | None) -> None:
        """The storage failed: hold a snapshot of this worker's own, stored nowhere."""
        try:
            fresh = self._build(runtime, None)
        except Exception as exc:
            self._log(type(exc).__name__, f"edge snapshot not issued: {exc}", logging.ERROR)
            return
        with self._lock:
            self._held = fresh

    def _refresh(self) -> Published | None:
        try:
            if self.storage.revision() != self._seen:
                self._take(*self.storage.load())
        except Exception as exc:  # an outage: serve what is held
            self._log(type(exc).__name__, f"edge snapshot storage unreadable: {exc}")
        return self._held

    def _parse(self, data: bytes | None) -> Published | None:
        if data is None:
            return None
        try:
            return published(data, self._public)
        except SnapshotError as exc:  # replaced by the next issue
            self._log("unreadable_snapshot", f"the stored edge snapshot is unreadable: {exc}")
            return None

    def _take(self, revision: object, data: bytes | None, known: Published | None = None) -> None:
        """Hold the stored snapshot, unless it is older than the one held (a copy put back)."""
        fresh = known if known is not None else self._parse(data)
        if fresh is not None and self.key is not None and not fresh.signed:
            self._log(
                "foreign_signature",
                "the stored edge snapshot does not verify under this server's key (unsigned, "
                "or another key: do all servers on this store have the same signing key?); "
                "a new one is issued",
            )
        with self._lock:
            held = self._held
            if fresh is not None and (held is None or fresh.seq >= held.seq):
                self._held = fresh
            self._seen = revision
