"""SharedStore.sync on a real file: lost replies and retirement, and the sync observers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mabware import Experiment
from mabware.store import SharedStore, Store
from mabware.store.file import FileBackend
from mabware.store.merge import Replica, RetiredReplicaError, SharedState, combined
from mabware.testing import FakeClock

ARMS = ("a", "b", "c")
RETENTION = 100.0

Opener = Callable[[], SharedStore]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "mabware.state"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_shared(path: Path, clock: FakeClock) -> Iterator[Opener]:
    made: list[SharedStore] = []

    def opener() -> SharedStore:
        backend = FileBackend(path, retention=RETENTION, clock=clock)
        store = SharedStore(
            [Experiment("headline", list(ARMS))], backend, scheme="file", clock=clock
        )
        made.append(store)
        return store

    yield opener
    for store in made:
        store.close()


def record(store: Store, arm: int, times: int, now: float, reward: float = 1.0) -> None:
    for _ in range(times):
        store.add_pull("headline", arm, now)
        store.add_reward("headline", arm, reward, 0.5, now)


def on_file(path: Path) -> tuple[list[float], list[float]]:
    stats = combined(FileBackend(path).read(), ("headline", 1), ARMS, 0)
    return stats.pulls.tolist(), stats.reward_sum.tolist()


def own(store: SharedStore) -> list[float]:
    return Store.statistics(store, "headline", 0.0).pulls.tolist()


def lose_replies(store: SharedStore, landing: bool) -> Callable[[], None]:
    """From now on the store's exchanges fail: after landing, or before; returns the undo."""
    exchange = store.backend.exchange

    def failing(replica_id: str, push: Replica) -> SharedState:
        if landing:
            exchange(replica_id, push)  # the push lands in the file ...
        raise OSError("connection reset")  # ... but no answer comes back

    store.backend.exchange = failing  # type: ignore[method-assign]
    return lambda: setattr(store.backend, "exchange", exchange)


@pytest.mark.parametrize("failed_since", [0, 30], ids=["retired-at-once", "after-30-failures"])
def test_a_push_that_landed_without_its_reply_is_not_counted_twice_after_retirement(
    open_shared: Opener, path: Path, clock: FakeClock, failed_since: int
) -> None:
    """The lost reply, then the retirement: the rebase takes out the push that was folded."""
    sleeper, other = open_shared(), open_shared()
    record(sleeper, 0, 5, clock.now)
    assert sleeper.sync()  # acknowledged: 5
    old_id = sleeper.replica_id
    record(sleeper, 0, 2, clock.now)
    restore = lose_replies(sleeper, landing=True)
    assert not sleeper.sync()  # seq 2 landed, but the sleeper believes only 5 are in
    assert on_file(path) == ([7, 0, 0], [7, 0, 0])
    restore()
    restore = lose_replies(sleeper, landing=False)
    for _ in range(failed_since):  # the outage goes on: more pushes, none lands
        record(sleeper, 1, 1, clock.now, reward=0.0)
        assert not sleeper.sync()
    restore()
    clock.advance(RETENTION + 1)  # silent past the retention
    record(other, 2, 3, clock.now)
    assert other.sync()  # its exchange folds the sleeper, seq 2, into the retired totals
    state = FileBackend(path).read()
    assert state.folded_seqs == {old_id: 2}
    record(sleeper, 0, 1, clock.now)
    assert sleeper.sync()  # refused as retired: rebased on seq 2, pushed as a new replica
    assert sleeper.replica_id != old_id
    assert own(sleeper) == [1, failed_since, 0]  # what the retired totals do not hold
    expected = ([8, failed_since, 3], [8, 0, 3])  # 7 + 1, not 5 + 2 + 2 + 1
    assert on_file(path) == expected
    stats = sleeper.statistics("headline", clock.now)
    assert (stats.pulls.tolist(), stats.reward_sum.tolist()) == expected
    assert other.sync()
    assert other.statistics("headline", clock.now).pulls.tolist() == expected[0]


def test_a_backend_that_does_not_say_what_it_folded_rebases_on_the_acknowledged_push(
    open_shared: Opener, path: Path, clock: FakeClock
) -> None:
    """An older sync server's 409 names no seq: the acknowledged push is the likeliest."""
    sleeper, other = open_shared(), open_shared()
    record(sleeper, 0, 5, clock.now)
    assert sleeper.sync()
    clock.advance(RETENTION + 1)
    assert other.sync()  # folds the sleeper
    exchange = sleeper.backend.exchange

    def unsaid(replica_id: str, push: Replica) -> SharedState:
        try:
            return exchange(replica_id, push)
        except RetiredReplicaError as exc:
            exc.folded_seq = None
            raise

    sleeper.backend.exchange = unsaid  # type: ignore[method-assign]
    record(sleeper, 0, 1, clock.now)
    assert sleeper.sync()
    assert own(sleeper) == [1, 0, 0]
    assert on_file(path) == ([6, 0, 0], [6, 0, 0])


# -- sync observers -----------------------------------------------------------------------


def test_sync_observers_hear_each_sync_its_whole_time_and_its_outcome(
    open_shared: Opener, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store, other = open_shared(), open_shared()
    heard: list[tuple[float, bool]] = []
    store.sync_observers.append(lambda seconds, ok: heard.append((seconds, ok)))
    assert store.sync()
    restore = lose_replies(store, landing=False)
    assert not store.sync()
    restore()
    exchange = store.backend.exchange

    def slow(replica_id: str, push: Replica) -> SharedState:
        time.sleep(0.05)
        return exchange(replica_id, push)

    store.backend.exchange = slow  # type: ignore[method-assign]
    assert store.sync()
    assert [ok for _, ok in heard] == [True, False, True]
    assert all(seconds >= 0.0 for seconds, _ in heard)
    assert heard[2][0] >= 0.05
    # retired, rebased and pushed again: one sync, heard once, both exchanges timed
    clock.advance(RETENTION + 1)
    assert other.sync()
    assert store.sync()
    assert len(heard) == 4
    assert heard[3][0] >= 0.1
    assert heard[3][1] is True
    # an observer that raises is logged and counted; the others hear, the sync succeeds
    store.sync_observers.insert(0, lambda seconds, ok: 1 / 0)
    errors = store.sync_errors
    with caplog.at_level(logging.WARNING, logger="mabware.store"):
        assert store.sync()
        assert store.sync()
    assert [ok for _, ok in heard[4:]] == [True, True]
    assert store.sync_errors == errors + 2
    observer_lines = [r for r in caplog.records if "ZeroDivisionError" in r.getMessage()]
    assert len(observer_lines) == 1  # once per minute
    assert store.backend_up
