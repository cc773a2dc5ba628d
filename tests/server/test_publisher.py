"""The publisher on each shared storage: one issue per due snapshot, whoever finds it due.

Several ``Publisher``s on one store are the workers of one server (or the
hosts on one Redis): when the snapshot is due they all tick, one issues
under the storage's lock and the others read what it stored. A real
``redis-server`` for the Redis storage.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import running_redis

from mabware import edge_snapshot
from mabware.experiment import Experiment
from mabware.server._edge_storage import open_edge_storage
from mabware.server._publisher import Publisher
from mabware.server._registry import Entry, open_registry
from mabware.server._service import Service
from mabware.server._state import open_backend

PAIR = edge_snapshot.generate_signing_keys()
INTERVAL = 0.2


@contextlib.contextmanager
def workers(store_url: str, count: int) -> Iterator[list[Publisher]]:
    opened: list[tuple[Service, Publisher]] = []
    try:
        for _ in range(count):
            backend = open_backend(store_url, retention=3600.0)
            service = Service(open_registry(store_url, backend), backend, scheme="x")
            storage = open_edge_storage(store_url, backend)
            key = edge_snapshot.private_key(PAIR["private_key"])
            opened.append((service, Publisher(service, storage, key=key, interval=INTERVAL)))
        yield [publisher for _, publisher in opened]
    finally:
        for service, _ in opened:
            service.close()
            service.backend.close()


@pytest.fixture(params=["file", "redis"])
def store_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "file":
        yield f"file:{tmp_path}/state"
        return
    with running_redis(tmp_path) as redis_server:
        yield redis_server.url


def test_one_issue_per_due_snapshot_and_every_worker_holds_it(store_url):
    with workers(store_url, 3) as (first, *others):
        entry = Entry(Experiment("hero", ["left", "right"]), "thompson")
        first.service.update(lambda entries: {**entries, "hero": entry})
        first.changed()
        held = first.current()
        assert held is not None
        assert [e.name for e in held.snapshot.experiments] == ["hero"]
        for publisher in others:  # not due: they read it, they do not issue
            assert publisher.tick() > 0
            assert publisher.current() == held
        while first.service.clock() - held.snapshot.issued < INTERVAL:
            time.sleep(0.02)  # until it is due
        everyone = [first, *others]
        threads = [threading.Thread(target=p.tick) for p in everyone]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seqs = {p.current().seq for p in everyone}  # type: ignore[union-attr]
        assert len(seqs) == 1
        assert seqs.pop() > held.seq


def test_a_worker_that_lacks_an_experiment_catches_up(store_url):
    with workers(store_url, 2) as (first, second):
        second.tick()
        entry = Entry(Experiment("hero", ["left", "right"]), "thompson")
        first.service.update(lambda entries: {**entries, "hero": entry})
        # before the first publishes, the second is asked about it: it issues itself
        runtime, held = second.catch_up("hero")
        assert held is not None
        assert held.table(runtime.entries["hero"].experiment) is not None
        first.tick()  # reads the stored one: not due, so it holds what the second issued
        assert first.current() == held


class _BrokenStorage:
    """A storage whose disk is full (what cannot be made to happen here for real)."""

    recheck = 0.0

    def revision(self) -> object:
        raise OSError(28, "No space left on device")

    def load(self) -> tuple[object, bytes | None]:
        raise OSError(28, "No space left on device")

    def replace(self, make: object) -> tuple[object, bytes | None]:
        raise OSError(28, "No space left on device")


def test_a_storage_outage_holds_a_snapshot_of_the_workers_own(tmp_path):
    backend = open_backend("memory:", retention=3600.0)
    service = Service(open_registry("memory:"), backend, scheme="memory")
    key = edge_snapshot.private_key(PAIR["private_key"])
    publisher = Publisher(service, _BrokenStorage(), key=key, interval=INTERVAL)
    try:
        entry = Entry(Experiment("hero", ["left", "right"]), "thompson")
        service.update(lambda entries: {**entries, "hero": entry})
        held = publisher.changed()
        assert held is not None
        assert held.signed
        assert held.table(entry.experiment) is not None
        assert 0 < publisher.tick() <= INTERVAL  # not due again before the interval
    finally:
        service.close()
