"""Getting snapshots: fetch with an ETag, verify, refuse rollbacks, keep a cache file.

Whatever the source (the URL, the cache file at start, ``EdgeClient.load``),
a snapshot is verified the same way, and one that is refused (a reason of
spec step 4, or ``rollback``) is counted and logged while the last good one
stays. Each accepted snapshot is turned once into the tables that
``decide`` walks (``View``), and the file is written to ``cache_path``
atomically (temp file, fsync, rename) so that a cold start has it at once.
"""

from __future__ import annotations

import contextlib
import os
from _thread import allocate_lock  # threading.Lock itself, without importing threading
from itertools import repeat
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mabware_edge._assign import cumulative, prefix
from mabware_edge._events import Events
from mabware_edge._ledger import Ledger, Record, Tally
from mabware_edge._snapshot import Snapshot, SnapshotError, SnapshotExperiment, read_snapshot
from mabware_edge._transport import Transport

# tempfile.mkstemp's flags: only a new file, no symlink followed, no newline translation
_NEW_FILE = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
)


class Compiled:
    """One experiment, ready for ``decide``: everything precomputed once per snapshot."""

    __slots__ = (
        "allocation",
        "arms",
        "default",
        "head",
        "index",
        "mode",
        "name",
        "payloads",
        "records",
        "reward_range",
        "slots",
        "status",
        "table",
        "tally",
        "version",
    )

    def __init__(self, e: SnapshotExperiment, tally: Tally) -> None:
        self.name, self.version, self.status, self.mode = e.name, e.version, e.status, e.reward_mode
        self.arms: tuple[str, ...] = e.arms
        self.payloads: tuple[Any, ...] = e.payloads
        self.allocation: tuple[float, ...] = e.allocation
        self.default: int = e.default
        self.reward_range: tuple[float, float] = e.reward_range
        n = len(e.arms)
        self.index = dict(zip(e.arms, range(n), strict=True))
        self.table = cumulative(e.allocation)
        self.head = prefix(e.name, e.version)
        self.tally = tally
        self.slots = tally.slots(e.arms)  # arm index -> the tally's index
        #: what a decision of each arm is remembered as: (experiment, version, arm, propensity)
        self.records: tuple[Record, ...] = tuple(
            zip(repeat(e.name, n), repeat(e.version, n), e.arms, e.allocation, strict=True)
        )


class View:
    """A snapshot and its compiled experiments, replaced as one object (never changed)."""

    __slots__ = ("experiments", "issued", "seq", "snapshot")

    def __init__(
        self, snapshot: Snapshot, experiments: dict[str, Compiled], seq: int, issued: float
    ) -> None:
        self.snapshot, self.experiments, self.seq, self.issued = snapshot, experiments, seq, issued


def compile_view(snapshot: Snapshot, ledger: Ledger) -> View:
    """The tables of ``snapshot``, each tied to its tally in ``ledger``."""
    experiments = {}
    with ledger.lock:
        for e in snapshot.experiments:
            tally = ledger.tally((e.name, e.version), e.arms, e.bucket_seconds, e.buckets)
            experiments[e.name] = Compiled(e, tally)
    return View(snapshot, experiments, snapshot.seq, snapshot.issued)


class Feed:
    """The snapshot held, and how a new one is fetched and accepted.

    Args:
        url: ``GET`` URL of the signed snapshot, or None (cache file and ``load`` only).
        key: the issuer's public key.
        read_token: bearer token for the GET, or None.
        transport: how to get.
        timeout: seconds per request.
        cache_path: where the last good file is kept, or None.
        ledger: whose tallies the compiled experiments count into.
        rejected: counts refusals by reason.
        errors: counts fetch and cache failures (``refresh:...``, ``cache:...``).
    """

    def __init__(
        self,
        url: str | None,
        key: Ed25519PublicKey,
        read_token: str | None,
        transport: Transport,
        timeout: float,
        cache_path: str | None,
        ledger: Ledger,
        rejected: Events,
        errors: Events,
    ) -> None:
        self.url, self.key, self.transport, self.timeout = url, key, transport, timeout
        self.cache_path, self.ledger = cache_path, ledger
        self.rejected, self.errors = rejected, errors
        self.headers = {"Accept": "application/msgpack"}
        if read_token:
            self.headers["Authorization"] = f"Bearer {read_token}"
        self.etag: str | None = None
        self.view: View | None = None
        self.lock = allocate_lock()  # one snapshot accepted at a time: seqs only rise

    def load_cache(self) -> None:
        """Take the cache file's snapshot, verified like a fetched one, if there is one."""
        if self.cache_path is None:
            return
        try:
            with open(self.cache_path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.errors("cache:read", f"snapshot cache {self.cache_path} unreadable: {exc}")
            return
        self.load(data, source="cache")

    def fetch(self) -> bool:
        """GET the snapshot (If-None-Match); True if it answered a good one or 304."""
        if self.url is None:
            return False
        headers = dict(self.headers)
        if self.etag is not None:
            headers["If-None-Match"] = self.etag
        try:
            answer = self.transport.get(self.url, headers, self.timeout)
        except Exception as exc:
            self.errors("refresh:network", f"snapshot fetch from {self.url} failed: {exc!r}")
            return False
        if answer.status == 304 and self.etag is not None:
            return True
        if answer.status != 200:
            cause = f"refresh:http_{answer.status}"
            self.errors(cause, f"snapshot fetch from {self.url} answered {answer.status}")
            return False
        # the tag of a refused body too: it is not fetched (and counted) again until it changes
        self.etag = answer.headers.get("etag")
        return self.load(answer.body, source="fetch")

    def load(self, data: bytes, *, source: str) -> bool:
        """Accept ``data`` if it verifies and does not go back; True if it is (or was) held."""
        with self.lock:
            return self._load(data, source)

    def _load(self, data: bytes, source: str) -> bool:
        try:
            snapshot = read_snapshot(data, self.key)
            held = self.view
            if held is not None and snapshot.seq < held.seq:
                raise SnapshotError("rollback", f"seq {snapshot.seq} < {held.seq} held")
            if held is not None and snapshot.seq == held.seq:
                return True  # the same issue again
            view = compile_view(snapshot, self.ledger)
        except SnapshotError as exc:
            self.rejected(exc.reason, f"snapshot from {source} refused ({exc}); keeping the last")
            return False
        except ValueError as exc:  # a table the assign spec refuses (sums drift past 1e-9)
            self.rejected("malformed", f"snapshot from {source} refused ({exc}); keeping the last")
            return False
        self.view = view
        if source != "cache":
            self._write_cache(data)
        return True

    def _write_cache(self, data: bytes) -> None:
        if self.cache_path is None:
            return
        directory = os.path.dirname(os.path.abspath(self.cache_path))
        temp = None
        try:
            # made as tempfile.mkstemp makes one (random name, 0o600), without importing
            # tempfile and shutil: a few ms of every cold start, for a write that may not come
            name = os.path.join(directory, f".mabware-edge-{os.urandom(8).hex()}.tmp")
            fd = os.open(name, _NEW_FILE, 0o600)
            temp = name  # ours to remove from here on
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.cache_path)  # readers see the old file or the new, never half
        except OSError as exc:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            self.errors("cache:write", f"snapshot cache {self.cache_path} not written: {exc}")
            return
        with contextlib.suppress(OSError):  # the rename itself survives a crash
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
