"""The redis:// backend against a real redis-server on loopback.

Every test starts its own ``redis-server`` (AOF on, ``appendfsync always``,
in a temporary directory) and kills it by PID. Without the binary the tests
fail, not skip: CI installs it (``.ci/run``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis  # the redis extra; CI installs it (tox py311-core)
from redis_server import RedisServer, running_redis

from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.statistics import Statistics
from mabware.store import open_store
from mabware.store import redis as redis_store
from mabware.store.merge import (
    Replica,
    RetiredReplicaError,
    SharedState,
    StateError,
    Tally,
    combined,
)
from mabware.store.redis import RedisBackend
from mabware.store.shared import SharedStore
from mabware.testing import FakeClock

KEY = ("headline", 1)
ARMS = ("a", "b")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture
def experiments() -> list[Experiment]:
    return [Experiment("headline", list(ARMS))]


def _tally(pulls: list[float], rewards: list[float]) -> dict[tuple[str, int], Tally]:
    return {KEY: Tally(ARMS, Statistics.from_counts(pulls, rewards))}


def _raw_keys(server: RedisServer) -> dict[bytes, object]:
    """Every key and value in the server's database, as stored."""
    client = redis.Redis.from_url(server.url)
    try:
        return {
            key: client.hgetall(key) if client.type(key) == b"hash" else client.get(key)
            for key in client.scan_iter()
        }
    finally:
        client.close()


def _totals(backend: RedisBackend) -> Statistics:
    return combined(backend.read(), KEY, ARMS, 0)


# -- learning together -----------------------------------------------------------


def test_two_shared_stores_learn_together(
    redis_server: RedisServer, experiments: list[Experiment]
) -> None:
    one = SharedStore(experiments, RedisBackend(redis_server.url), scheme="redis")
    two = SharedStore(experiments, RedisBackend(redis_server.url), scheme="redis")
    now = time.time()
    for _ in range(3):
        one.add_pull("headline", 0, now)
        one.add_reward("headline", 0, 1.0, None, now)
    two.add_pull("headline", 1, now)
    assert one.sync()
    assert two.sync()
    assert one.sync()
    for store in (one, two):
        stats = store.statistics("headline", now)
        assert stats.pulls.tolist() == [3.0, 1.0]
        assert stats.reward_sum.tolist() == [3.0, 0.0]
        assert store.backend_up
    one.close()
    two.close()


def test_open_store_picks_the_redis_backend(
    redis_server: RedisServer, experiments: list[Experiment]
) -> None:
    store = open_store(redis_server.url, experiments)
    assert isinstance(store, SharedStore)
    assert isinstance(store.backend, RedisBackend)
    assert store.sync()
    store.close()


def test_concurrent_clients_merge_to_exact_totals(redis_server: RedisServer) -> None:
    """20 clients x 100 merges (bench/sync_redis.py runs 100 x 1000)."""
    clients, merges = 20, 100
    finals: dict[str, float] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(clients)

    def client(rid: str) -> None:
        backend = RedisBackend(redis_server.url)
        reward = 0.0
        try:
            start.wait()
            for seq in range(1, merges + 1):
                reward += 0.1  # cumulative totals, as a replica pushes them
                backend.exchange(rid, Replica(seq, time.time(), _tally([seq, 1], [reward, 0])))
            finals[rid] = reward
        except BaseException as exc:
            errors.append(exc)
        finally:
            backend.close()

    threads = [threading.Thread(target=client, args=(f"client-{i}",)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    backend = RedisBackend(redis_server.url)
    state = backend.read()
    assert {rid: r.seq for rid, r in state.replicas.items()} == dict.fromkeys(finals, merges)
    for rid, r in state.replicas.items():  # each float exactly as its client summed it
        assert r.tallies[KEY].stats.reward_sum[0] == finals[rid]
    assert _totals(backend).pulls.tolist() == [clients * merges, clients]
    backend.close()


def test_floats_travel_exactly(redis_server: RedisServer, experiments: list[Experiment]) -> None:
    store = SharedStore(experiments, RedisBackend(redis_server.url), scheme="redis")
    for _ in range(10):
        store.add_reward("headline", 0, 0.1, None, time.time())
        assert store.sync()
    backend = RedisBackend(redis_server.url)
    total = _totals(backend).reward_sum[0]
    assert total == sum([0.1] * 10)  # 0.9999999999999999, not rounded on the way
    assert total != 1.0
    backend.close()
    store.close()


# -- the merge rules -----------------------------------------------------------------


def test_replayed_and_lower_seq_pushes_change_nothing(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url)
    seen = time.time()
    backend.exchange("r", Replica(2, seen, _tally([2, 0], [1, 0])))
    before = _raw_keys(redis_server)
    backend.exchange("r", Replica(2, seen, _tally([2, 0], [1, 0])))  # replayed
    assert _raw_keys(redis_server) == before
    backend.exchange("r", Replica(2, seen, _tally([99, 0], [9, 0])))  # a duplicate seq
    backend.exchange("r", Replica(1, seen, _tally([1, 0], [0, 0])))  # an older push, late
    assert _raw_keys(redis_server) == before
    assert _totals(backend).pulls.tolist() == [2, 0]
    backend.exchange("r", Replica(3, seen, _tally([3, 0], [1, 0])))
    assert _totals(backend).pulls.tolist() == [3, 0]
    backend.close()


def test_a_malformed_stored_state_is_reported_not_replaced(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url, key_prefix="t")
    backend.exchange("r", Replica(1, time.time(), _tally([1, 0], [0, 0])))
    raw = redis.Redis.from_url(redis_server.url)
    raw.set("t:retired", b"\xc1 not msgpack")
    with pytest.raises(StateError):
        backend.exchange("r", Replica(2, time.time(), _tally([2, 0], [0, 0])))
    assert raw.get("t:retired") == b"\xc1 not msgpack"
    raw.close()
    backend.close()


# -- crashes and outages -------------------------------------------------------------


def test_acknowledged_merges_survive_sigkill(redis_server: RedisServer) -> None:
    """Writers run while the server is SIGKILLed; the AOF, replayed, has every acked push.

    A process kill is what can be staged here (``everysec`` would pass it
    too: Redis writes the AOF before replying, fsync aside); ``always``
    adds the fsync that carries the guarantee through a machine crash.
    """
    acked: dict[str, int] = {}
    stop = threading.Event()

    def writer(rid: str) -> None:
        backend = RedisBackend(redis_server.url)
        seq = 0
        try:
            while not stop.is_set():
                seq += 1
                backend.exchange(rid, Replica(seq, time.time(), _tally([seq, 0], [0, 0])))
                acked[rid] = seq
        except redis.RedisError:
            pass  # the server died under us
        finally:
            backend.close()

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    redis_server.kill()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) == 4
    assert min(acked.values()) > 1
    redis_server.start()
    backend = RedisBackend(redis_server.url)
    state = backend.read()
    for rid, seq in acked.items():
        stored = state.replicas[rid]
        assert stored.seq >= seq  # the one in flight may have landed too
        assert stored.tallies[KEY].stats.pulls[0] == stored.seq
    backend.close()


def test_serving_continues_while_redis_is_down(
    redis_server: RedisServer, experiments: list[Experiment]
) -> None:
    store = SharedStore(experiments, RedisBackend(redis_server.url), scheme="redis")
    now = time.time()
    store.add_pull("headline", 0, now)
    assert store.sync()
    redis_server.kill()
    store.add_pull("headline", 1, now)
    started = time.monotonic()
    assert store.sync() is False
    assert time.monotonic() - started < 5
    assert store.backend_up is False
    assert store.sync_errors >= 1
    store.add_reward("headline", 1, 1.0, None, now)  # serving goes on
    assert store.statistics("headline", now).pulls.tolist() == [1, 1]
    redis_server.start()
    assert store.sync()
    assert store.backend_up
    backend = RedisBackend(redis_server.url)
    totals = _totals(backend)
    assert totals.pulls.tolist() == [1, 1]
    assert totals.reward_sum.tolist() == [0, 1]
    backend.close()
    store.close()


# -- compaction ----------------------------------------------------------------------


def test_a_silent_replica_is_folded_and_then_refused(
    redis_server: RedisServer, experiments: list[Experiment]
) -> None:
    clock = FakeClock()

    def shared() -> SharedStore:
        backend = RedisBackend(redis_server.url, retention=60, clock=clock)
        return SharedStore(experiments, backend, scheme="redis", clock=clock)

    quiet, busy = shared(), shared()
    quiet.add_pull("headline", 0, clock())
    quiet.add_reward("headline", 0, 0.1, None, clock())
    busy.add_pull("headline", 1, clock())
    assert quiet.sync()
    assert busy.sync()
    retired_id = quiet.replica_id

    clock.advance(61)
    quiet.add_pull("headline", 0, clock())  # counted, not yet pushed
    assert busy.sync()  # busy's exchange folds quiet
    state = busy.backend.read()
    assert retired_id not in state.replicas
    assert retired_id in state.tombstones
    assert KEY in state.retired
    assert _totals(busy.backend).pulls.tolist() == [1, 1]  # unchanged by the fold
    assert _totals(busy.backend).reward_sum.tolist() == [0.1, 0]
    assert state.folded_seqs == {retired_id: 1}
    with pytest.raises(RetiredReplicaError) as refused:
        busy.backend.exchange(retired_id, Replica(99, clock(), _tally([5, 0], [0, 0])))
    assert refused.value.folded_seq == 1  # the push the retired totals hold

    assert quiet.sync()  # refused, so it continues as a new replica at once
    assert quiet.replica_id != retired_id
    assert quiet.sync()
    assert busy.sync()
    for store in (quiet, busy):
        assert store.statistics("headline", clock()).pulls.tolist() == [2, 1]
    assert _totals(busy.backend).reward_sum.tolist() == [0.1, 0]

    clock.advance(31 * 60)  # tombstones are forgotten after 30 retention periods
    assert busy.sync()
    state = busy.backend.read()
    assert retired_id not in state.tombstones
    assert list(state.replicas) == [busy.replica_id]
    assert _totals(busy.backend).pulls.tolist() == [2, 1]
    quiet.close()
    busy.close()


def test_a_push_that_landed_without_its_reply_is_not_counted_twice_after_retirement(
    redis_server: RedisServer, experiments: list[Experiment]
) -> None:
    """The lost reply, then the retirement: the folded seq travels back through Lua."""
    clock = FakeClock()

    def shared() -> SharedStore:
        backend = RedisBackend(redis_server.url, retention=60, clock=clock)
        return SharedStore(experiments, backend, scheme="redis", clock=clock)

    sleeper, other = shared(), shared()
    sleeper.add_pull("headline", 0, clock())
    assert sleeper.sync()  # acknowledged: 1
    sleeper.add_pull("headline", 0, clock())
    exchange = sleeper.backend.exchange

    def reply_lost(replica_id: str, push: Replica) -> SharedState:
        exchange(replica_id, push)  # merged in Redis ...
        raise redis.ConnectionError("connection reset")  # ... but the reply never arrives

    sleeper.backend.exchange = reply_lost  # type: ignore[method-assign]
    assert not sleeper.sync()
    assert _totals(other.backend).pulls.tolist() == [2, 0]
    sleeper.backend.exchange = exchange  # type: ignore[method-assign]
    clock.advance(61)
    other.add_pull("headline", 1, clock())
    assert other.sync()  # folds the sleeper's seq 2
    sleeper.add_pull("headline", 0, clock())
    assert sleeper.sync()  # refused with seq 2: rebased on it
    assert _totals(other.backend).pulls.tolist() == [3, 1]  # not 4: nothing twice
    assert sleeper.statistics("headline", clock()).pulls.tolist() == [3, 1]
    sleeper.close()
    other.close()


def test_a_tombstone_written_before_format_2_names_no_seq(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url, key_prefix="t")
    raw = redis.Redis.from_url(redis_server.url)
    raw.hset("t:tombstones", "old", repr(1_700_000_000.0))
    assert backend.read().tombstones == {"old": 1_700_000_000.0}
    assert backend.read().folded_seqs == {}
    with pytest.raises(RetiredReplicaError) as refused:
        backend.exchange("old", Replica(5, time.time(), _tally([1, 0], [0, 0])))
    assert refused.value.folded_seq is None
    raw.hset("t:tombstones", "old", b"soon 3")
    with pytest.raises(StateError, match="tombstone"):
        backend.read()
    raw.close()
    backend.close()


def test_compaction_gives_way_to_a_concurrent_push(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folded replica pushes between the compactor's read and its EXEC: no fold."""
    clock = FakeClock()
    compactor = RedisBackend(redis_server.url, retention=60, clock=clock)
    other = RedisBackend(redis_server.url, retention=60, clock=clock)
    other.exchange("paused", Replica(1, clock(), _tally([1, 0], [0, 0])))
    clock.advance(61)
    real_compact = redis_store.compact
    calls: list[int] = []

    def compact_racing(state: SharedState, now: float, retention: float) -> SharedState:
        calls.append(1)
        if len(calls) == 2:  # 1: the compactor's check; 2: under its WATCH
            other.exchange("paused", Replica(2, clock(), _tally([2, 0], [0, 0])))
        return real_compact(state, now, retention)

    monkeypatch.setattr(redis_store, "compact", compact_racing)
    compactor.exchange("me", Replica(1, clock(), _tally([0, 1], [0, 0])))
    assert len(calls) == 3  # the third: the paused replica's own check
    state = compactor.read()
    assert set(state.replicas) == {"paused", "me"}
    assert not state.tombstones
    assert not state.retired
    assert _totals(compactor).pulls.tolist() == [2, 1]  # counted once, live
    compactor.close()
    other.close()


# -- configuration -------------------------------------------------------------------


def test_repr_hides_the_password() -> None:
    backend = RedisBackend("redis://user:s3cret@127.0.0.1:1/0?password=s3cret&db=0")
    assert "s3cret" not in repr(backend)
    assert repr(backend) == "RedisBackend('redis://user:***@127.0.0.1:1/0?password=***&db=0')"
    backend.close()


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("memcached://127.0.0.1", {}),
        ("redis://x", {"retention": 0}),
        ("redis://x", {"key_prefix": ""}),
    ],
)
def test_bad_settings_raise_config_errors(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RedisBackend(url, **options)


def test_sums_arrive_as_float64(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url)
    backend.exchange("r", Replica(1, time.time(), _tally([1, 0], [0.3, 0])))
    stats = _totals(backend)
    assert stats.reward_sum.dtype == np.float64
    assert stats.reward_sum[0] == 0.3
    backend.close()
