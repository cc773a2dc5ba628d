"""POST /sync group commit: concurrent pushes share one durable write, each keeps its outcome.

The first write is held open (the backend's ``crash_at`` hook sleeps in it),
so every push that arrives meanwhile queues for the next write: the batches
are then known exactly, not left to the scheduler.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from mabware.server._problems import ProblemError, handle_http_exception, handle_problem
from mabware.server._state import MemoryBackend
from mabware.server.sync import SyncEndpoints
from mabware.statistics import Statistics
from mabware.store.file import FileBackend
from mabware.store.merge import Replica, SharedState, Tally, pack, replica_to_wire, unpack

KEY = ("headline", 1)
ARMS = ("control", "bold")
MSGPACK = {"Content-Type": "application/msgpack"}
HOLD = 0.3  # seconds the first write stays open: every concurrent push arrives meanwhile


def body(replica: str, seq: int) -> bytes:
    tally = Tally(ARMS, Statistics.from_counts([seq, 1], [1, 0]))
    wire = replica_to_wire(replica, Replica(seq, time.time(), {KEY: tally}))
    return msgpack.packb(wire, use_bin_type=True)  # type: ignore[no-any-return]


class Held:
    """A batch backend whose first ``exchange_many`` is held open; records every batch."""

    def __init__(self, inner: FileBackend | MemoryBackend) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []
        self._first = True

    def exchange_many(
        self, pushes: Sequence[tuple[str, Replica]]
    ) -> tuple[SharedState, list[BaseException | None]]:
        self.batches.append([replica_id for replica_id, _ in pushes])
        if self._first:
            self._first = False
            time.sleep(HOLD)
        return self.inner.exchange_many(pushes)

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        return self.inner.exchange(replica_id, push)

    def read(self) -> SharedState:
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


class OneAtATime:
    """A backend without ``exchange_many`` (as Redis would be): one exchange per push."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self.calls = 0

    def exchange(self, replica_id: str, push: Replica) -> SharedState:
        self.calls += 1
        return self.inner.exchange(replica_id, push)

    def read(self) -> SharedState:
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


def app(backend: Any) -> Starlette:
    return Starlette(
        routes=SyncEndpoints(backend).routes,
        exception_handlers={ProblemError: handle_problem, HTTPException: handle_http_exception},
    )


def post_all(backend: Any, bodies: Sequence[bytes]) -> list[httpx.Response]:
    """POST every body at once, the first a moment ahead so that it opens the first write."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app(backend))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def post(content: bytes, delay: float) -> httpx.Response:
                await asyncio.sleep(delay)
                return await client.post("/sync", content=content, headers=MSGPACK)

            return await asyncio.gather(
                *(post(content, 0.0 if i == 0 else HOLD / 3) for i, content in enumerate(bodies))
            )

    return asyncio.run(run())


class Writes:
    """Counts the file backend's durable writes (its ``crash_at`` hook)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, step: str) -> None:
        if step == "dir_synced":
            with self._lock:
                self.count += 1


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "mabware.state"


@pytest.mark.parametrize("store", ["file", "memory"])
def test_concurrent_pushes_all_land_exactly_in_fewer_writes(store: str, state_file: Path) -> None:
    writes = Writes()
    inner = (
        FileBackend(state_file, crash_at=writes)
        if store == "file"
        else MemoryBackend(retention=3600.0)
    )
    backend = Held(inner)
    replicas = [f"r{i:02d}" for i in range(16)]
    responses = post_all(backend, [body(rid, 10 + i) for i, rid in enumerate(replicas)])
    assert [r.status_code for r in responses] == [200] * 16
    assert backend.batches == [["r00"], replicas[1:]]  # the first alone, then all the others
    if store == "file":
        assert writes.count == 2
    for i, (rid, response) in enumerate(zip(replicas, responses, strict=True)):
        answered = unpack(response.content)
        assert answered.replicas[rid].seq == 10 + i  # each answer holds its own push
    state = inner.read()
    assert {rid: r.seq for rid, r in state.replicas.items()} == {
        rid: 10 + i for i, rid in enumerate(replicas)
    }
    assert responses[-1].content == pack(state)  # the answer is the state written


def test_a_retired_replica_in_a_batch_is_409_and_the_others_land(state_file: Path) -> None:
    state_file.write_bytes(pack(SharedState(tombstones={"old": time.time()})))
    writes = Writes()
    backend = Held(FileBackend(state_file, crash_at=writes))
    replicas = ["first", "a", "old", "b"]
    responses = post_all(backend, [body(rid, 1) for rid in replicas])
    assert [r.status_code for r in responses] == [200, 200, 409, 200]
    assert "retired" in responses[2].json()["type"]
    assert backend.batches == [["first"], ["a", "old", "b"]]
    assert writes.count == 2
    state = unpack(state_file.read_bytes())
    assert set(state.replicas) == {"first", "a", "b"}
    assert set(state.tombstones) == {"old"}


def test_a_batch_of_only_retired_replicas_writes_nothing(state_file: Path) -> None:
    state_file.write_bytes(pack(SharedState(tombstones={"old": time.time(), "older": 1.0})))
    before = state_file.read_bytes()
    writes = Writes()
    (response,) = post_all(FileBackend(state_file, crash_at=writes), [body("old", 3)])
    assert response.status_code == 409
    assert writes.count == 0
    assert state_file.read_bytes() == before


def test_a_push_rejected_before_queueing_changes_nothing(state_file: Path) -> None:
    writes = Writes()
    backend = Held(FileBackend(state_file, crash_at=writes))
    malformed = msgpack.packb({"replica": "bad", "seq": 1})  # no seen, no tallies
    responses = post_all(backend, [body("first", 1), malformed, body("a", 1), b"\xc1"])
    assert [r.status_code for r in responses] == [200, 422, 200, 422]
    assert backend.batches == [["first"], ["a"]]  # the rejected pushes never queued
    assert writes.count == 2
    assert set(unpack(state_file.read_bytes()).replicas) == {"first", "a"}


def test_a_failed_write_is_503_for_its_whole_batch_and_the_next_one_lands(
    state_file: Path,
) -> None:
    synced: list[str] = []

    def fail_the_first_write(step: str) -> None:
        if step == "temp_synced":
            synced.append(step)
            if len(synced) == 1:
                raise OSError("disk went away")

    backend = Held(FileBackend(state_file, crash_at=fail_the_first_write))
    responses = post_all(backend, [body(rid, 1) for rid in ("a", "b", "c")])
    assert [r.status_code for r in responses] == [503, 200, 200]
    assert set(unpack(state_file.read_bytes()).replicas) == {"b", "c"}


def test_a_backend_without_exchange_many_gets_one_exchange_per_push() -> None:
    backend = OneAtATime(MemoryBackend(retention=3600.0))
    responses = post_all(backend, [body(f"r{i}", 1) for i in range(5)])
    assert [r.status_code for r in responses] == [200] * 5
    assert backend.calls == 5
    assert len(backend.read().replicas) == 5
