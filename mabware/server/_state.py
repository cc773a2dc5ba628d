"""Where the server keeps the merged state: ``memory:`` or ``file:PATH``.

Both are ``Backend``s (``mabware.store.shared``): ``exchange`` merges a push
and compacts, ``read`` answers the state. ``file:`` is the store's own
``FileBackend`` (merge, compact and atomic write under ``flock``), so a
server and the processes of its host may share one file. ``memory:`` keeps
the state in this process under a lock (tests, demos: a restart forgets it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mabware.exceptions import ConfigError
from mabware.store.file import FileBackend
from mabware.store.merge import Replica, SharedState, compact, merge
from mabware.store.shared import Backend


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
        with self._lock:
            state = merge(self._state, replica_id, push)
            self._state = compact(state, self._clock(), self.retention)
            return self._state

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
    raise ConfigError(
        f"the server keeps its state in 'memory:' or 'file:PATH', got {store_url!r}",
        payload=store_url,
    )
