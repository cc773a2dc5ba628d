"""Where the server keeps the merged state: ``memory:`` or ``file:PATH``.

Both are ``Backend``s (``mabware.store.shared``): ``exchange`` merges a push
and compacts, ``read`` answers the state; both are also ``BatchBackend``s,
whose ``exchange_many`` merges a batch of pushes in one write (the sync
server's group commit). ``file:`` is the store's own ``FileBackend`` (merge,
compact and atomic write under ``flock``), so a server and the processes of
its host may share one file. ``memory:`` keeps the state in this process
under a lock (tests, demos: a restart forgets it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from mabware.exceptions import ConfigError
from mabware.store.file import FileBackend, merge_each
from mabware.store.merge import Replica, SharedState, compact
from mabware.store.shared import Backend


@runtime_checkable
class BatchBackend(Backend, Protocol):
    """A ``Backend`` that can merge many pushes in one write (group commit)."""

    def exchange_many(
        self, pushes: Sequence[tuple[str, Replica]]
    ) -> tuple[SharedState, list[BaseException | None]]:
        """The merged state and, per push, None or the exception that refused it."""
        ...


class MemoryBackend:
    """The merged state in this process, one exchange at a time.

    Args:
        retention: seconds of silence after which a replica is retired.
        clock: wall-clock seconds (compaction); injectable for tests.
    """

    def __init__(self, *, retention: float, clock: Callable[[], float] = time.time) -> None:
        self.retention = retention
        self._clock = clock
        self._lock = threading.Lock()
        self._state = SharedState()

    def __repr__(self) -> str:
        return "MemoryBackend()"

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        """Merge ``push``, fold silent replicas; the merged state."""
        state, (outcome,) = self.exchange_many([(replica_id, push)])
        if outcome is not None:
            raise outcome
        return state

    def exchange_many(
        self, pushes: Sequence[tuple[str, Replica]]
    ) -> tuple[SharedState, list[BaseException | None]]:
        """Merge many pushes at once; the state and each push's outcome (``FileBackend``'s)."""
        with self._lock:
            state, outcomes = merge_each(self._state, pushes)
            if any(outcome is None for outcome in outcomes):
                self._state = compact(state, self._clock(), self.retention)
            return self._state, outcomes

    def read(self) -> SharedState:
        """The state as it is (states are immutable: no copy needed)."""
        return self._state

    def close(self) -> None:
        """Nothing to release."""


def open_backend(store_url: str, *, retention: float) -> Backend:
    """The backend ``store_url`` names; ConfigError for anything else."""
    scheme, sep, rest = store_url.partition(":") if isinstance(store_url, str) else ("", "", "")
    if sep and scheme.lower() == "memory" and not rest:
        return MemoryBackend(retention=retention)
    if sep and scheme.lower() == "file" and rest:
        return FileBackend(rest, retention=retention)
    if sep and scheme.lower() in ("redis", "rediss") and rest:
        try:
            from mabware.store.redis import RedisBackend
        except ImportError as exc:
            raise ConfigError(
                f"{store_url!r} needs redis-py: pip install 'mabware[redis]'", original_error=exc
            ) from exc
        return RedisBackend(store_url, retention=retention)
    raise ConfigError(
        "the server keeps its state in 'memory:', 'file:PATH' or 'redis://HOST', "
        f"got {store_url!r}",
        payload=store_url,
    )
