"""``file:PATH`` with real processes: crashes mid-write, contention, dead lock holders.

Long repetition counts of the same checks: ``bench/sync_faults.py``.
"""

from __future__ import annotations

import errno
import resource
import signal
from pathlib import Path

import pytest
from sync_helpers import (
    ARMS,
    CI,
    KEY,
    LIVENESS,
    STEPS,
    canonical,
    concurrent_merges,
    crash_trials,
    fork,
    join,
    kill_lock_holder,
    lock_held_by_thread,
    tally,
    temp_files,
    totals,
)

from mabware.store.file import FileBackend
from mabware.store.merge import (
    Replica,
    RetiredReplicaError,
    SharedState,
    StateError,
    pack,
    unpack,
)

NOW = 1_800_000_000.0


def push(seq: int, pulls: list[float]) -> Replica:
    return Replica(seq, NOW, {KEY: tally(ARMS, pulls)})


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "shared" / "mabware.state"


@pytest.mark.parametrize("step", STEPS)
def test_a_writer_killed_at_any_step_leaves_the_old_or_the_new_state_whole(
    path: Path, step: str
) -> None:
    crash_trials(path, step, CI.crashes_per_step)


def test_concurrent_processes_merge_exactly(path: Path) -> None:
    concurrent_merges(path, CI.processes, CI.merges)


@pytest.mark.parametrize("mid_write", [False, True], ids=["holding-the-lock", "mid-write"])
def test_a_process_killed_holding_the_lock_blocks_no_one(path: Path, mid_write: bool) -> None:
    for seq in range(1, CI.lock_kills + 1):
        assert kill_lock_holder(path, mid_write=mid_write, seq=seq) < LIVENESS


def _exchange_in_child(path: Path) -> None:
    FileBackend(path, clock=lambda: NOW).exchange("child", push(1, [0, 0, 4]))


def test_a_child_forked_while_a_thread_holds_the_lock_is_not_deadlocked(path: Path) -> None:
    # The child inherits the lock's open file description; if the parent
    # only closed its descriptor, the child would hold the lock forever
    # and wait for it itself.
    backend = FileBackend(path, clock=lambda: NOW)
    backend.exchange("parent", push(1, [1, 0, 0]))
    with lock_held_by_thread(backend) as release:
        child = fork(_exchange_in_child, path)
        release.set()
    assert join(child) == 0, "the forked child never got the lock"
    assert totals(backend.exchange("parent", push(2, [2, 0, 0]))) == [2, 0, 4]


def test_a_corrupted_state_file_is_reported_and_never_overwritten(path: Path) -> None:
    backend = FileBackend(path, clock=lambda: NOW)
    backend.exchange("a", push(1, [1, 2, 3]))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    for seq in (2, 3):
        with pytest.raises(StateError, match="checksum"):
            backend.exchange("a", push(seq, [2, 2, 3]))
        with pytest.raises(StateError):
            backend.read()
        assert path.read_bytes() == bytes(data)
    path.unlink()  # what the operator does after looking at it
    assert totals(backend.exchange("a", push(4, [3, 2, 3]))) == [3, 2, 3]


def _exchange_with_a_file_size_limit(path: Path, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        FileBackend(path, clock=lambda: NOW).exchange("big", push(1, [9, 9, 9]))
    except OSError as exc:
        raise SystemExit(7 if exc.errno == errno.EFBIG else 1) from exc


def test_a_short_write_fails_the_exchange_and_keeps_the_old_state(path: Path) -> None:
    # With the disk full or a file size limit, write() stores what fits and
    # reports it; the rest must be written or the exchange must fail, never
    # a truncated state renamed over the good one.
    backend = FileBackend(path, clock=lambda: NOW)
    backend.exchange("a", push(1, [1, 0, 0]))
    before = path.read_bytes()
    child = fork(_exchange_with_a_file_size_limit, path, len(before) + 16)
    assert join(child) == 7
    assert path.read_bytes() == before
    assert totals(unpack(before)) == [1, 0, 0]
    FileBackend(path)  # cleans the partial temp file
    assert temp_files(path) == []
    assert totals(backend.exchange("big", push(1, [9, 9, 9]))) == [10, 9, 9]


def test_read_before_any_exchange_is_an_empty_state_and_the_directory_is_made(
    path: Path,
) -> None:
    backend = FileBackend(path)
    assert path.parent.is_dir()
    assert canonical(backend.read()) == ({}, {}, {}, {})
    assert not path.exists()


def test_silent_replicas_are_retired_by_the_backend_clock(path: Path) -> None:
    now = [NOW]
    backend = FileBackend(path, retention=60.0, clock=lambda: now[0])
    backend.exchange("old", push(1, [1, 1, 0]))
    now[0] += 61
    state = backend.exchange("new", Replica(1, now[0], {KEY: tally(ARMS, [0, 0, 5])}))
    assert set(state.replicas) == {"new"}
    assert set(state.tombstones) == {"old"}
    assert totals(state) == [1, 1, 5]


class Writes:
    """The durable writes a backend made (its ``crash_at`` hook)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, step: str) -> None:
        if step == "dir_synced":
            self.count += 1


def test_exchange_many_lands_a_batch_in_one_write_refusing_only_the_retired(path: Path) -> None:
    writes = Writes()
    backend = FileBackend(path, clock=lambda: NOW, crash_at=writes)
    path.write_bytes(pack(SharedState(tombstones={"old": NOW})))
    state, outcomes = backend.exchange_many(
        [
            ("a", push(1, [1, 0, 0])),
            ("old", push(5, [9, 9, 9])),
            ("b", push(1, [0, 2, 0])),
            ("a", push(2, [3, 0, 0])),  # the same replica twice: the higher seq stays
            ("b", push(1, [0, 7, 0])),  # a replay: changes nothing
        ]
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], RetiredReplicaError)
    assert outcomes[2:] == [None, None, None]
    assert writes.count == 1
    assert totals(state) == totals(unpack(path.read_bytes())) == [3, 2, 0]
    assert set(state.tombstones) == {"old"}


def test_a_batch_of_only_retired_replicas_writes_nothing(path: Path) -> None:
    writes = Writes()
    backend = FileBackend(path, clock=lambda: NOW, crash_at=writes)
    path.write_bytes(pack(SharedState(tombstones={"old": NOW})))
    before = path.read_bytes()
    _, outcomes = backend.exchange_many([("old", push(1, [1, 0, 0]))])
    assert isinstance(outcomes[0], RetiredReplicaError)
    with pytest.raises(RetiredReplicaError):
        backend.exchange("old", push(2, [1, 0, 0]))
    assert writes.count == 0
    assert path.read_bytes() == before


def test_a_state_another_backend_wrote_is_read_afresh(path: Path) -> None:
    # What a backend wrote last is no guide to what is on disk now.
    one, two = FileBackend(path, clock=lambda: NOW), FileBackend(path, clock=lambda: NOW)
    one.exchange("a", push(1, [1, 0, 0]))
    two.exchange("b", push(1, [0, 1, 0]))
    assert totals(one.exchange("a", push(2, [2, 0, 0]))) == [2, 1, 0]
    assert totals(two.read()) == [2, 1, 0]
    path.write_bytes(pack(SharedState()))  # an operator's reset
    assert totals(one.exchange("a", push(3, [3, 0, 0]))) == [3, 0, 0]
