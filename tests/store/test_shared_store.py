"""SharedStore on a real file: learning together, outages, fork, close, retirement."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from sync_helpers import FORK, LIVENESS, fork, join

from mabware import Experiment, policies
from mabware.store import SharedStore, Store, open_store
from mabware.store.file import FileBackend
from mabware.store.merge import StateError, combined
from mabware.testing import FakeClock, make_engine

BUCKET = 60.0


def experiments() -> list[Experiment]:
    return [
        Experiment("headline", ["a", "b", "c"]),
        Experiment(
            "drift",
            ["x", "y"],
            policy=policies.DiscountedThompson(gamma=0.5),  # 14 buckets
            bucket_seconds=BUCKET,
        ),
    ]


Opener = Callable[..., SharedStore]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "mabware.state"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_shared(path: Path, clock: FakeClock) -> Iterator[Opener]:
    """A factory of SharedStores on one file and one fake clock; all closed at the end."""
    made: list[SharedStore] = []

    def opener(*, retention: float = 3600.0, interval: float = 1.0) -> SharedStore:
        backend = FileBackend(path, retention=retention, clock=clock)
        store = SharedStore(
            experiments(), backend, scheme="file", sync_interval=interval, clock=clock
        )
        made.append(store)
        return store

    yield opener
    for store in made:
        store.close()


def pulls(store: Store, name: str = "headline", now: float | None = None) -> list[float]:
    return store.statistics(name, time.time() if now is None else now).pulls.tolist()


def own(store: SharedStore, name: str = "headline", now: float = 0.0) -> list[float]:
    """This process's own counters, without the others' pulled totals."""
    return Store.statistics(store, name, now).pulls.tolist()


def on_file(
    path: Path, name: str = "headline", arms: tuple[str, ...] = ("a", "b", "c")
) -> list[float]:
    state = FileBackend(path).read()
    return combined(state, (name, 1), arms, 0).pulls.tolist()


def record(store: Store, arm: int, times: int, now: float, reward: float = 1.0) -> None:
    for _ in range(times):
        store.add_pull("headline", arm, now)
        store.add_reward("headline", arm, reward, 0.5, now)


def test_two_stores_on_one_file_learn_together(open_shared: Opener, clock: FakeClock) -> None:
    one, two = open_shared(), open_shared()
    assert one.replica_id != two.replica_id
    record(one, 0, 3, clock.now)
    record(two, 2, 5, clock.now, reward=0.0)
    assert pulls(one, now=clock.now) == [3, 0, 0]  # its own unpushed counts at once
    assert pulls(two, now=clock.now) == [0, 0, 5]
    assert one.sync()
    assert two.sync()
    assert one.sync()
    for store in (one, two):
        stats = store.statistics("headline", clock.now)
        assert stats.pulls.tolist() == [3, 0, 5]
        assert stats.reward_sum.tolist() == [3, 0, 0]
        assert store.backend_up
        assert store.last_sync == clock.now
    record(one, 1, 1, clock.now)  # after a sync: still visible at once, and not twice
    assert pulls(one, now=clock.now) == [3, 1, 5]
    assert pulls(two, now=clock.now) == [3, 0, 5]


def test_rewards_below_zero_sync_through_the_file(path: Path, clock: FakeClock) -> None:
    """A reward range below 0 is allowed, so merged reward sums may be negative."""
    signed = [Experiment("headline", ["a", "b"], reward_range=(-1.0, 1.0), reward_mode="every")]
    stores = [
        SharedStore(signed, FileBackend(path, clock=clock), scheme="file", clock=clock)
        for _ in range(2)
    ]
    for store in stores:
        store.add_pull("headline", 0, clock.now)
        store.add_reward("headline", 0, -1.0, 0.5, clock.now)
        assert store.sync()
    assert stores[0].sync()
    assert stores[0].statistics("headline", clock.now).reward_sum.tolist() == [-2.0, 0.0]
    for store in stores:
        store.close()


def test_time_buckets_merge_across_stores(open_shared: Opener, clock: FakeClock) -> None:
    one, two = open_shared(), open_shared()
    one.add_pull("drift", 0, clock.now)
    clock.advance(BUCKET)
    two.add_pull("drift", 1, clock.now)
    two.add_pull("drift", 1, clock.now)
    assert one.sync()
    assert two.sync()
    assert one.sync()
    for store in (one, two):
        recent = store.statistics("drift", clock.now).recent
        assert recent is not None
        assert recent.newest == int(clock.now // BUCKET)
        assert recent.pulls[:3].tolist() == [[0, 2], [1, 0], [0, 0]]


def _break(path: Path) -> Path:
    """Make the state's directory unusable (a regular file in its place); even root fails."""
    away = path.parent.with_name(path.parent.name + ".away")
    path.parent.rename(away)
    path.parent.write_bytes(b"")
    return away


def _repair(path: Path, away: Path) -> None:
    path.parent.unlink()
    away.rename(path.parent)


def test_an_unreachable_backend_degrades_and_nothing_is_lost_or_doubled(
    open_shared: Opener, path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = open_shared(), open_shared()
    record(one, 0, 4, clock.now)
    record(two, 1, 2, clock.now)
    assert one.sync()
    assert two.sync()
    assert one.sync()
    away = _break(path)
    record(one, 0, 1, clock.now)
    record(two, 2, 7, clock.now)
    with caplog.at_level(logging.WARNING, logger="mabware.store"):
        for attempt in (1, 2, 3):
            assert not one.sync()
            assert one.sync_errors == attempt
    assert len(caplog.records) == 1  # once per cause per minute
    assert "file store unreachable" in caplog.records[0].getMessage()
    assert not one.backend_up
    assert not two.sync()
    assert not two.backend_up
    # serving goes on: the last known state plus this process's own counts
    assert pulls(one, now=clock.now) == [5, 2, 0]
    assert pulls(two, now=clock.now) == [4, 2, 7]
    _repair(path, away)
    assert one.sync()
    assert two.sync()
    assert one.sync()
    assert one.backend_up
    assert two.backend_up
    assert pulls(one, now=clock.now) == pulls(two, now=clock.now) == [5, 2, 7]
    assert on_file(path) == [5, 2, 7]


def test_a_corrupted_state_file_reports_the_backend_down(
    open_shared: Opener, path: Path, clock: FakeClock
) -> None:
    store = open_shared()
    record(store, 1, 2, clock.now)
    assert store.sync()
    path.write_bytes(path.read_bytes()[:-3])
    torn = path.read_bytes()
    record(store, 1, 1, clock.now)
    assert not store.sync()
    assert not store.backend_up
    assert store.sync_errors == 1
    assert path.read_bytes() == torn  # reported, never silently replaced
    with pytest.raises(StateError):
        store.backend.read()
    assert pulls(store, now=clock.now) == [0, 3, 0]


def _child_of_a_fork(store: SharedStore, parent_id: str, report: Connection) -> None:
    report.send((store.replica_id != parent_id, own(store)))
    store.add_pull("headline", 2, time.time())
    store.add_pull("headline", 2, time.time())
    if store._thread is not None:  # the sync loop was restarted here: wait for it to push
        deadline = time.monotonic() + LIVENESS
        while time.monotonic() < deadline and store.replica_id not in store.backend.read().replicas:
            time.sleep(0.01)
    else:
        store.sync()
    report.send(store.replica_id in store.backend.read().replicas)
    store.close()


@pytest.mark.parametrize("running", [False, True], ids=["idle", "sync-thread-running"])
def test_a_forked_child_is_a_new_replica_with_empty_counters(path: Path, running: bool) -> None:
    store = open_store(f"file:{path}", experiments(), sync_interval=0.02)
    assert isinstance(store, SharedStore)
    try:
        record(store, 0, 5, time.time())
        assert store.sync()
        if running:
            store.start()
        theirs, ours = FORK.Pipe()
        child = fork(_child_of_a_fork, store, store.replica_id, theirs)
        assert ours.poll(LIVENESS)
        new_id, counters = ours.recv()
        assert new_id, "the child must not push under the parent's replica id"
        assert counters == [0, 0, 0]
        assert ours.poll(LIVENESS)
        assert ours.recv(), "the child's counts never reached the file"
        assert join(child) == 0
        record(store, 1, 1, time.time())
    finally:
        store.close()
    assert on_file(path) == [5, 1, 2]


def test_close_pushes_a_last_time(open_shared: Opener, path: Path, clock: FakeClock) -> None:
    store = open_shared(interval=3600.0)
    store.start()  # the first sync happens at once; the next one would be in an hour
    deadline = time.monotonic() + LIVENESS
    while store.last_sync is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.last_sync is not None
    record(store, 2, 3, clock.now)
    store.close()
    assert on_file(path) == [0, 0, 3]
    store.close()  # idempotent
    assert on_file(path) == [0, 0, 3]


def test_a_retired_replica_rebases_and_keeps_exact_totals(
    open_shared: Opener, path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sleeper, other = open_shared(retention=100.0), open_shared(retention=100.0)
    record(sleeper, 0, 5, clock.now)
    sleeper.add_pull("drift", 0, clock.now)
    assert sleeper.sync()
    record(sleeper, 0, 2, clock.now)  # counted after the last acknowledged push
    sleeper.add_pull("drift", 0, clock.now)
    old_id = sleeper.replica_id
    clock.advance(101)  # the sleeper misses its syncs; the other's exchange retires it
    record(other, 1, 3, clock.now)
    assert other.sync()
    assert old_id in FileBackend(path).read().tombstones
    record(sleeper, 0, 1, clock.now)
    sleeper.add_pull("drift", 1, clock.now)
    with caplog.at_level(logging.WARNING, logger="mabware.store"):
        assert sleeper.sync()  # refused as retired, rebased, pushed again as a new replica
    assert sleeper.replica_id != old_id
    assert sleeper.seq == 1
    assert any("was retired" in r.getMessage() for r in caplog.records)
    assert own(sleeper) == [3, 0, 0]  # only what the retired totals do not hold
    assert pulls(sleeper, now=clock.now) == [8, 3, 0]
    assert on_file(path) == [8, 3, 0]
    assert other.sync()
    assert pulls(other, now=clock.now) == [8, 3, 0]
    drift = sleeper.statistics("drift", clock.now)
    assert drift.pulls.tolist() == [2, 1]
    assert drift.recent is not None
    assert drift.recent.pulls[:3].sum(axis=0).tolist() == [2, 1]
    state = FileBackend(path).read()
    merged = combined(state, ("drift", 1), ("x", "y"), 14)
    assert merged.pulls.tolist() == [2, 1]
    assert merged.recent is not None
    assert merged.recent.pulls.sum(axis=0).tolist() == [2, 1]


def test_between_the_rebase_and_the_next_pull_statistics_stay_whole(
    open_shared: Opener, clock: FakeClock
) -> None:
    sleeper, other = open_shared(retention=100.0), open_shared(retention=100.0)
    record(sleeper, 0, 5, clock.now)
    assert sleeper.sync()
    clock.advance(101)
    assert other.sync()
    record(sleeper, 0, 1, clock.now)

    exchange = sleeper.backend.exchange
    calls = []

    def refused_then_down(replica_id: str, push: object) -> object:
        calls.append(replica_id)
        if len(calls) == 1:
            return exchange(replica_id, push)  # type: ignore[arg-type]
        raise OSError("the backend went away right after")

    sleeper.backend.exchange = refused_then_down  # type: ignore[assignment,method-assign]
    assert not sleeper.sync()
    assert len(calls) == 2
    assert calls[0] != calls[1]
    assert own(sleeper) == [1, 0, 0]
    assert pulls(sleeper, now=clock.now) == [6, 0, 0]


def test_two_engines_on_one_file_learn_from_each_other(path: Path) -> None:
    headline = [Experiment("headline", {"control": "Welcome", "bold": "Big sale"})]
    learner = make_engine(headline, store=f"file:{path}", sync_interval=0.02)
    watcher = make_engine(headline, store=f"file:{path}", sync_interval=0.02)
    try:
        learner.start()
        watcher.start()
        assert watcher.report()["experiments"]["headline"]["arms"]["bold"]["share"] < 0.9
        for _ in range(300):
            visit = learner.begin(None)
            if visit["headline"].arm == "bold":
                visit.reward("headline", 1.0)
        deadline = time.monotonic() + LIVENESS
        while time.monotonic() < deadline:
            share = watcher.report()["experiments"]["headline"]["arms"]["bold"]["share"]
            if share > 0.99:
                break
            time.sleep(0.02)
        assert share > 0.99, "the watcher never learnt from the learner's rewards"
        watcher.begin(None)
    finally:
        learner.close()
        watcher.close()
    assert sum(on_file(path, arms=("control", "bold"))) == 301
    assert os.path.exists(path)


def test_close_delivers_the_last_counts_even_after_the_replica_was_retired(
    open_shared: Opener, path: Path, clock: FakeClock
) -> None:
    sleeper, other = open_shared(retention=100.0), open_shared(retention=100.0)
    record(sleeper, 0, 5, clock.now)
    assert sleeper.sync()
    clock.advance(101)
    assert other.sync()  # retires the sleeper
    record(sleeper, 2, 4, clock.now)
    sleeper.close()  # its one last push is refused as retired: it must rebase and push again
    assert on_file(path) == [5, 0, 4]


def _sync_in_child(store: SharedStore, report: Connection) -> None:
    def down(replica_id: str, push: object) -> object:
        raise OSError("down")

    store.backend.exchange = down  # type: ignore[assignment,method-assign]
    report.send(store.sync())  # a failed sync logs: the rate limiter's lock must be usable
    report.send(store.sync_errors)


def test_a_child_forked_while_the_log_lock_is_held_can_still_log(
    open_shared: Opener,
) -> None:
    store = open_shared()
    theirs, ours = FORK.Pipe()
    with store._log._lock:  # as if the sync thread were counting a failure at the fork
        child = fork(_sync_in_child, store, theirs)
    assert ours.poll(LIVENESS), "the child hung on a lock held at the fork"
    assert ours.recv() is False
    assert ours.recv() == 1
    assert join(child) == 0


# -- when to sync: next_sync_delay and the loop that follows it -----------------------------


def test_a_young_experiment_syncs_sooner_a_mature_one_every_interval(
    open_shared: Opener, clock: FakeClock
) -> None:
    store, veteran = open_shared(interval=1.0), open_shared(interval=1.0)
    assert store.next_sync_delay(clock.now) == 0.0  # never synced: at once
    assert store.sync()
    assert store.next_sync_delay(clock.now) == pytest.approx(0.1)
    clock.advance(0.5)
    assert store.next_sync_delay(clock.now) == pytest.approx(0.1)  # nothing new: just look again
    # young: this replica's one pull is all the pulls it knows of
    record(store, 0, 1, clock.now)
    assert store.next_sync_delay(clock.now) == 0.0
    assert store.sync()
    record(store, 0, 1, clock.now)
    clock.advance(0.04)  # never sooner than sync_interval / 10 after the last sync
    assert store.next_sync_delay(clock.now) == pytest.approx(0.06)
    clock.advance(0.06)
    assert store.next_sync_delay(clock.now) == 0.0
    # mature: the other replicas' thousand pulls dwarf what this one adds in a second
    record(veteran, 1, 1000, clock.now)
    assert veteran.sync()
    assert store.sync()
    for _ in range(9):
        record(store, 0, 5, clock.now)  # 45 by the end: < 5% of the 1,002 + 45 known
        clock.advance(0.1)
        assert 0.0 < store.next_sync_delay(clock.now) <= 0.1 + 1e-9
    clock.advance(0.1)
    assert store.next_sync_delay(clock.now) == 0.0  # sync_interval has passed
    assert store.sync()
    record(store, 0, 60, clock.now)  # >= 5% of the 1,107 known: early again
    clock.advance(0.1)
    assert store.next_sync_delay(clock.now) == 0.0
    clock.now -= 60  # the clock went back: sync now, and start counting from there
    assert store.next_sync_delay(clock.now) == 0.0


class LoopClock:
    """Stands in for the sync thread's stop event: each wait moves the fake clock on.

    ``traffic`` is called after every wait (pulls arriving meanwhile); the
    loop stops once ``seconds`` have passed.
    """

    def __init__(self, clock: FakeClock, seconds: float, traffic: Callable[[], None]) -> None:
        self.clock, self.traffic = clock, traffic
        self.end = clock.now + seconds  # not a multiple of 0.1 s: no doubt about the last look
        self.waits: list[float] = []

    def wait(self, delay: float) -> bool:
        self.waits.append(delay)
        self.clock.advance(delay)
        self.traffic()
        return self.clock.now >= self.end

    def set(self) -> None:
        pass


def run_loop(store: SharedStore, stop: object, clock: FakeClock) -> list[float]:
    """Run the sync loop with ``stop`` as its stop event; the clock readings of its exchanges."""
    exchanged: list[float] = []
    exchange = store.backend.exchange

    def recording(replica_id: str, push: object) -> object:
        exchanged.append(clock.now)
        return exchange(replica_id, push)  # type: ignore[arg-type]

    store.backend.exchange = recording  # type: ignore[assignment,method-assign]
    store._stop = stop  # type: ignore[assignment]
    store._run()
    return exchanged


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_the_loop_syncs_every_tenth_while_young_then_every_interval(
    open_shared: Opener, clock: FakeClock
) -> None:
    young = open_shared(interval=1.0)
    loop = LoopClock(clock, 0.95, lambda: young.add_pull("headline", 0, clock.now))
    times = run_loop(young, loop, clock)
    assert len(times) == 10  # alone with its first ten pulls: each one is 5% or more
    assert gaps(times) == pytest.approx([0.1] * 9)  # but never sooner than interval / 10
    assert loop.waits == pytest.approx([0.0] + [0.1] * 10)
    veteran = open_shared(interval=1.0)
    record(veteran, 1, 10_000, clock.now)
    assert veteran.sync()
    mature = open_shared(interval=1.0)
    loop = LoopClock(clock, 3.5, lambda: mature.add_pull("headline", 0, clock.now))
    times = run_loop(mature, loop, clock)
    assert gaps(times) == pytest.approx([1.0] * 3)  # a pull in 10,000: every sync_interval
    assert max(loop.waits) <= 0.1 + 1e-9  # the loop looks every sync_interval / 10


def test_the_loop_backs_off_on_failures_as_before(open_shared: Opener, clock: FakeClock) -> None:
    store = open_shared(interval=1.0)
    start = clock.now
    exchange = store.backend.exchange

    def down_for_20_seconds(replica_id: str, push: object) -> object:
        if clock.now - start < 20.0:
            raise OSError("down")
        return exchange(replica_id, push)  # type: ignore[arg-type]

    store.backend.exchange = down_for_20_seconds  # type: ignore[assignment,method-assign]
    loop = LoopClock(clock, 23.5, lambda: None)
    times = run_loop(store, loop, clock)
    # at once, then after 2, 4, 8, 8 intervals while down; every interval once back
    assert loop.waits[:5] == [0.0, 2.0, 4.0, 8.0, 8.0]
    assert [t - start for t in times] == pytest.approx([0, 2, 6, 14, 22, 23])
    assert store.backend_up


def test_a_stuck_clock_still_syncs_every_interval_of_real_waiting(
    open_shared: Opener, clock: FakeClock
) -> None:
    store = open_shared(interval=1.0)
    waits: list[float] = []

    class Frozen:  # waits pass, the store's clock does not move
        def wait(self, delay: float) -> bool:
            waits.append(delay)
            return sum(waits) >= 3.05

        def set(self) -> None:
            pass

    assert len(run_loop(store, Frozen(), clock)) == 4  # at 0, 1, 2 and 3 s of waiting
