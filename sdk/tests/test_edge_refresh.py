"""Refreshing: ETags, refusals and the last good snapshot, the cache file, the three modes."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest
from edge_support import NOW, PUBLIC_KEY, Clock, FakeTransport, signed

from mabware_edge import EdgeClient, Response

GOOD = signed(100)


def wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_fetch_then_304_with_the_etag() -> None:
    transport = FakeTransport(GOOD, etag='"abc"')
    edge = fetching(transport)
    assert edge.refresh() is True
    assert edge.snapshot is not None
    assert edge.snapshot.seq == 100
    assert "If-None-Match" not in transport.gets[0]
    assert edge.refresh() is True
    assert transport.gets[1]["If-None-Match"] == '"abc"'
    assert transport.gets[1]["Accept"] == "application/msgpack"
    assert edge.rejected == {}


def fetching(transport: FakeTransport, **settings: object) -> EdgeClient:
    return EdgeClient(
        "http://edge.test/edge/snapshot",
        public_key=PUBLIC_KEY,
        transport=transport,
        clock=settings.pop("clock", Clock()),  # type: ignore[arg-type]
        refresh=settings.pop("refresh", "manual"),  # type: ignore[arg-type]
        **settings,  # type: ignore[arg-type]
    )


def test_read_token_is_sent() -> None:
    transport = FakeTransport(GOOD)
    fetching(transport, read_token="r-token").refresh()
    assert transport.gets[0]["Authorization"] == "Bearer r-token"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (GOOD[:-3] + bytes([GOOD[-3] ^ 1]) + GOOD[-2:], "signature"),
        (signed(99), "rollback"),
        (b"\xc1", "malformed"),
        (GOOD + b"\x00", "malformed"),
    ],
)
def test_refused_bodies_keep_the_last_good_one(
    body: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = FakeTransport(GOOD, etag='"1"')
    edge = fetching(transport)
    assert edge.refresh()
    for n in range(3):
        transport.get_answers.append(Response(200, {"etag": f'"bad{n}"'}, body))
        with caplog.at_level(logging.WARNING, logger="mabware_edge"):
            assert edge.refresh() is False
    assert edge.rejected == {reason: 3}
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1  # logged once
    assert edge.snapshot is not None
    assert edge.snapshot.seq == 100
    assert edge.decide("headline", "u").reason == "assigned"


def test_a_refused_body_is_not_fetched_again_while_its_etag_stands() -> None:
    transport = FakeTransport(signed(5), etag='"same"')
    edge = fetching(transport)
    assert edge.load(GOOD)
    assert edge.refresh() is False  # rollback
    assert edge.refresh() is True  # 304 for the same bytes: nothing to count
    assert edge.rejected == {"rollback": 1}


def test_http_and_network_failures_are_counted_and_back_off() -> None:
    transport = FakeTransport(None)
    clock = Clock()
    edge = fetching(transport, clock=clock, refresh_interval=10.0)
    assert edge.refresh() is False
    assert edge.errors["refresh:network"] == 1
    first = edge._schedule.next_refresh - clock.now
    assert 5.0 <= first <= 10.0
    transport.get_answers.append(Response(503, {}, b""))
    assert edge.refresh() is False
    assert edge.errors["refresh:http_503"] == 1
    assert 10.0 <= edge._schedule.next_refresh - clock.now <= 20.0
    for _ in range(10):
        edge.refresh()
    assert edge._schedule.next_refresh - clock.now <= 60.0
    transport.snapshot = GOOD
    assert edge.refresh() is True
    assert 9.0 <= edge._schedule.next_refresh - clock.now <= 11.0  # jittered interval


def test_cache_file_cold_start(tmp_path: Path) -> None:
    cache = tmp_path / "mab.snap"
    edge = fetching(FakeTransport(GOOD), cache_path=cache)
    assert edge.refresh()
    assert cache.read_bytes() == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["mab.snap"]  # no temp file left
    cold = fetching(FakeTransport(None), cache_path=str(cache))
    assert cold.snapshot is not None
    assert cold.snapshot.seq == 100
    assert cold.decide("headline", "u").reason == "assigned"


def test_cache_file_is_verified_like_a_fetched_one(tmp_path: Path) -> None:
    cache = tmp_path / "mab.snap"
    cache.write_bytes(GOOD[:-1] + bytes([GOOD[-1] ^ 1]))
    edge = fetching(FakeTransport(None), cache_path=cache, defaults={"headline": "control"})
    assert edge.snapshot is None
    assert edge.rejected == {"signature": 1}
    assert edge.decide("headline").reason == "no_snapshot"


def test_cache_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "mab.snap"
    cache.write_bytes(GOOD)
    edge = fetching(FakeTransport(signed(101)), cache_path=cache)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    assert edge.refresh() is True  # held in memory all the same
    assert cache.read_bytes() == GOOD  # the old file whole, never a half-written one
    assert [p.name for p in tmp_path.iterdir()] == ["mab.snap"]
    assert edge.errors["cache:write"] == 1


def test_manual_mode_only_works_when_asked() -> None:
    transport = FakeTransport(GOOD)
    clock = Clock()
    edge = fetching(transport, clock=clock)
    assert edge.decide("headline", "u").reason == "no_snapshot"
    assert transport.gets == []
    edge.maybe_refresh()  # due at once
    assert edge.decide("headline", "u").reason == "assigned"
    edge.maybe_refresh()  # not due again yet
    assert len(transport.gets) == 1
    clock.advance(11.1)
    edge.maybe_refresh()
    assert len(transport.gets) == 2


class Gate(FakeTransport):
    """A transport whose GET waits until released: proves decide never waits on it."""

    def __init__(self, snapshot: bytes) -> None:
        super().__init__(snapshot)
        self.release = threading.Event()
        self.entered = threading.Event()

    def get(self, url: str, headers: object, timeout: float) -> Response:  # type: ignore[override]
        self.entered.set()
        assert self.release.wait(5)
        return super().get(url, headers, timeout)  # type: ignore[arg-type]


def test_lazy_mode_refreshes_on_a_short_lived_thread() -> None:
    transport = Gate(GOOD)
    edge = fetching(transport, refresh="lazy")
    assert transport.gets == []  # nothing at construction
    began = time.monotonic()
    d = edge.decide("headline", "u")  # due: starts the worker, does not wait for it
    assert time.monotonic() - began < 0.5
    assert d.reason == "no_snapshot"
    assert transport.entered.wait(5)
    assert edge.decide("headline", "u").reason == "no_snapshot"  # still fetching
    transport.release.set()
    wait_for(lambda: edge.snapshot is not None)
    wait_for(lambda: edge._schedule.due < float("inf"))  # the worker is done: due again later
    assert edge._schedule.due > NOW + 5
    assert edge.decide("headline", "u").reason == "assigned"
    assert len(transport.gets) == 1
    edge.close()


def test_lazy_mode_without_threads_waits_for_maybe_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_threads(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    transport = FakeTransport(GOOD)
    edge = fetching(transport, refresh="lazy")
    monkeypatch.setattr(threading.Thread, "start", no_threads)
    assert edge.decide("headline", "u").reason == "no_snapshot"
    assert transport.gets == []
    edge.maybe_refresh()
    assert edge.decide("headline", "u").reason == "assigned"


def test_thread_mode_refreshes_in_the_background() -> None:
    transport = FakeTransport(GOOD)
    edge = EdgeClient(
        "http://edge.test/edge/snapshot",
        public_key=PUBLIC_KEY,
        transport=transport,
        refresh_interval=0.05,
        stale_after=1e9,
    )
    try:
        wait_for(lambda: len(transport.gets) >= 3)
        assert edge.snapshot is not None
        assert transport.gets[1]["If-None-Match"] == '"v1"'
    finally:
        edge.close()
    count = len(transport.gets)
    time.sleep(0.15)
    assert len(transport.gets) == count  # stopped


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="refresh"):
        fetching(FakeTransport(), refresh="sometimes")
    with pytest.raises(ValueError, match="stale_after"):
        fetching(FakeTransport(), stale_after=0)
    with pytest.raises(ValueError, match="public_key"):
        EdgeClient(None, public_key="too-short", refresh="manual")
    assert NOW > 0
