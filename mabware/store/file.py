"""``file:PATH``: the embedded default, many processes on one host.

Every exchange takes an exclusive ``flock`` on a sidecar lock file
(``PATH.lock``), reads the state, merges the push (``mabware.store.merge``),
folds replicas silent past the retention, and writes the new state
atomically: a temporary file in the same directory, ``fsync``, ``rename``
over ``PATH``, ``fsync`` of the directory. A reader therefore sees the
whole old state or the whole new one, never a torn file; a process killed
while holding the lock loses the lock with its file descriptors, so it
blocks no one. The state carries a checksum (``merge.pack``); a state file
that fails it is reported, never silently replaced.

``exchange_many`` does the same for a batch of pushes under one lock and
one write: the sync server's group commit, where the durable write, not
the merge, is what each push would otherwise pay for.

Why a sidecar lock: the state file itself is replaced by every rename, so
a lock on it would guard an inode that no longer has the name.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mabware.store._durable import locked, write_atomically
from mabware.store.merge import (
    Replica,
    RetiredReplicaError,
    SharedState,
    StateError,
    compact,
    merge,
    pack,
    unpack,
)

#: how long a replica may stay silent before it is folded into the retired totals
DEFAULT_RETENTION = 3600.0
_TEMP_SUFFIX = ".tmp-"


class FileBackend:
    """The merged state in one file, guarded by ``flock``.

    Args:
        path: the state file (created with its directory if missing).
        retention: seconds of silence after which a replica is retired.
        clock: wall-clock seconds (compaction); injectable for tests.
        crash_at: test hook: a function called with the name of each step
            of the atomic write ("temp_written", "temp_synced", "renamed",
            "dir_synced"); the crash tests make it kill the process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention: float = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.time,
        crash_at: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.retention = retention
        self._clock = clock
        self._crash_at = crash_at or (lambda step: None)
        with self._locked():
            self._clean_temp_files()

    def __repr__(self) -> str:
        return f"FileBackend({str(self.path)!r})"

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.lock_path)

    def _clean_temp_files(self) -> None:
        """Remove temporary files left by writers that died mid-write (lock held)."""
        for stale in self.path.parent.glob(self.path.name + _TEMP_SUFFIX + "*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def _load(self) -> SharedState:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return SharedState()
        return unpack(data)

    def _write(self, state: SharedState) -> None:
        temp = self.path.with_name(f"{self.path.name}{_TEMP_SUFFIX}{os.getpid()}")
        write_atomically(self.path, pack(state), temp, self._crash_at)

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        """Merge ``push`` into the file under the lock; the merged state.

        Raises:
            RetiredReplicaError: the replica was retired; the file is unchanged.
        """
        state, (outcome,) = self.exchange_many([(replica_id, push)])
        if outcome is not None:
            raise outcome
        return state

    def exchange_many(
        self, pushes: Sequence[tuple[str, Replica]]
    ) -> tuple[SharedState, list[BaseException | None]]:
        """Merge many pushes under one lock and one durable write (group commit).

        Returns the merged state and, per push in order, None if it was taken
        in or the ``RetiredReplicaError`` that refused it: one retired replica
        refuses only its own push. When every push is refused nothing is
        written (nothing new to make durable), as for a single ``exchange``.

        Raises:
            StateError, OSError: the state cannot be read or written; no push landed.
        """
        with contextlib.suppress(StateError, OSError):
            # Read once before the lock: the decoded replicas are memoised
            # (mabware.store._wire), so under the lock only what landed in
            # between is decoded, and the lock is held about half as long.
            self._load()
        with self._locked():
            state, outcomes = merge_each(self._load(), pushes)
            if all(outcome is not None for outcome in outcomes):
                return state, outcomes
            state = compact(state, self._clock(), self.retention)
            self._write(state)
            return state, outcomes

    def read(self) -> SharedState:
        """The state as it is on disk (a whole one, thanks to the rename)."""
        return self._load()

    def close(self) -> None:
        """Nothing to release: every exchange opens and closes its own files."""


def merge_each(
    state: SharedState, pushes: Sequence[tuple[str, Replica]]
) -> tuple[SharedState, list[BaseException | None]]:
    """``state`` with every push merged in order, and each push's outcome.

    The outcome is None for a push taken in (or already there: a replay)
    and the ``RetiredReplicaError`` for a push refused; a refused push
    leaves the state as it was, so the others still land.
    """
    outcomes: list[BaseException | None] = []
    for replica_id, push in pushes:
        try:
            state = merge(state, replica_id, push)
        except RetiredReplicaError as exc:
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return state, outcomes
