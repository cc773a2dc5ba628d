"""POST /sync and GET /snapshot, in process (httpx.ASGITransport).

Every rejected request leaves the state file byte-identical; accepted
pushes merge by the replica rules (mabware.store.merge), so replays and
reorderings change nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import msgpack
import numpy as np
import pytest
from api_client import Client

from mabware.exceptions import ConfigError
from mabware.server import create_app
from mabware.server.sync import MAX_BODY
from mabware.statistics import Statistics
from mabware.store.merge import (
    Replica,
    SharedState,
    Tally,
    combined,
    pack,
    replica_to_wire,
    unpack,
)

TOKEN = "t0ken-for-tests"
KEY = ("headline", 1)
ARMS = ("control", "bold")
MSGPACK = {"Content-Type": "application/msgpack"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def push_wire(replica: str, seq: int, pulls: list[float], rewards: list[float]) -> dict:
    tally = Tally(ARMS, Statistics.from_counts(pulls, rewards))
    return replica_to_wire(replica, Replica(seq, time.time(), {KEY: tally}))


def body(replica: str, seq: int, pulls: list[float], rewards: list[float]) -> bytes:
    return msgpack.packb(push_wire(replica, seq, pulls, rewards), use_bin_type=True)


def totals(state: SharedState) -> tuple[list[float], list[float]]:
    stats = combined(state, KEY, ARMS, 0)
    return stats.pulls.tolist(), stats.reward_sum.tolist()


@pytest.fixture
def serve(tmp_path) -> Iterator[Callable[..., Client]]:
    """Factory: a client of a fresh app (file store in tmp_path unless told)."""
    clients: list[Client] = []

    def make(store: str | None = None, **kwargs: Any) -> Client:
        url = store if store is not None else f"file:{tmp_path / 'mabware.state'}"
        clients.append(Client(create_app(url, **kwargs)))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def post(client: Client, content: bytes, **headers: str):
    return client.post("/sync", content=content, headers={**MSGPACK, **AUTH, **headers})


def assert_problem(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    # RFC 9457's members; a retired replica's 409 also names the push it folded
    assert set(problem) - {"folded_seq"} == {"type", "title", "status", "detail"}
    assert problem["status"] == status
    for word in words:
        assert word in problem["detail"], problem
    return problem


@pytest.mark.parametrize("store", ["memory:", "file"])
def test_pushes_from_two_replicas_merge(serve, store):
    client = serve(None if store == "file" else store, token=TOKEN)
    first = post(client, body("a", 1, [3, 1], [1, 0]))
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/msgpack"
    assert totals(unpack(first.content)) == ([3, 1], [1, 0])
    second = post(client, body("b", 1, [2, 2], [0, 1]))
    assert totals(unpack(second.content)) == ([5, 3], [1, 1])
    assert totals(unpack(client.get("/snapshot", headers=AUTH).content)) == ([5, 3], [1, 1])


def test_duplicated_and_reordered_pushes_change_nothing(serve, tmp_path):
    client = serve(token=TOKEN)
    state_file = tmp_path / "mabware.state"
    first, second = body("a", 1, [1, 0], [0, 0]), body("a", 2, [4, 2], [1, 1])
    assert post(client, first).status_code == 200
    assert post(client, second).status_code == 200
    before = state_file.read_bytes()
    for replay in (second, first, second):  # a duplicate, then an older one late
        response = post(client, replay)
        assert response.status_code == 200
        assert totals(unpack(response.content)) == ([4, 2], [1, 1])
    assert state_file.read_bytes() == before


def test_the_server_stamps_seen_with_its_own_clock(serve):
    # a replica whose host clock runs an hour late is not retired on arrival
    client = serve("memory:")
    wire = push_wire("late", 1, [1, 1], [0, 0])
    wire["seen"] = time.time() - 7200
    response = client.post("/sync", content=msgpack.packb(wire), headers=MSGPACK)
    state = unpack(response.content)
    assert "late" in state.replicas
    assert abs(state.replicas["late"].seen - time.time()) < 60


@pytest.mark.parametrize("path", ["/sync", "/snapshot"])
def test_a_missing_or_wrong_token_is_401(serve, path):
    client = serve(token=TOKEN)

    def call(headers: dict[str, str]):
        if path == "/sync":
            return client.post(path, content=body("a", 1, [1, 0], [0, 0]), headers=headers)
        return client.get(path, headers=headers)

    missing = call(MSGPACK)
    assert_problem(missing, 401, "Bearer")
    assert missing.headers["www-authenticate"] == 'Bearer realm="mabware"'
    for wrong in ("Bearer nope", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "):
        response = call({**MSGPACK, "Authorization": wrong})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert call({**MSGPACK, "Authorization": f"bearer {TOKEN}"}).status_code == 200
    assert totals(unpack(client.get("/snapshot", headers=AUTH).content)) == (
        ([1, 0], [0, 0]) if path == "/sync" else ([0, 0], [0, 0])
    )


def test_no_token_configured_means_no_check(serve):
    client = serve("memory:")
    assert client.post("/sync", content=body("a", 1, [1, 0], [0, 0]), headers=MSGPACK).is_success
    assert client.get("/snapshot").status_code == 200


@pytest.mark.parametrize("content_type", [None, "application/json", "application/x-msgpack"])
def test_a_body_that_is_not_msgpack_typed_is_415(serve, tmp_path, content_type):
    client = serve(token=TOKEN)
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/sync", content=body("a", 1, [1, 0], [0, 0]), headers=headers)
    assert_problem(response, 415, "application/msgpack")
    assert not (tmp_path / "mabware.state").exists()


def test_media_type_parameters_and_case_are_accepted(serve):
    client = serve(token=TOKEN)
    response = post(
        client, body("a", 1, [1, 0], [0, 0]), **{"Content-Type": "Application/MsgPack; x=1"}
    )
    assert response.status_code == 200


def test_an_oversize_body_is_413_declared_or_chunked(serve, tmp_path):
    client = serve(token=TOKEN)
    assert post(client, body("a", 1, [1, 0], [0, 0])).status_code == 200
    before = (tmp_path / "mabware.state").read_bytes()
    big = b"\x00" * (MAX_BODY + 1)
    assert_problem(post(client, big), 413, str(MAX_BODY))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(9):
            yield b"\x00" * (1024 * 1024)

    assert_problem(post(client, chunks()), 413)
    assert (tmp_path / "mabware.state").read_bytes() == before


def _nan_bytes() -> bytes:
    return np.array([1.0, math.nan]).astype("<f8").tobytes()


def _with(**changes) -> bytes:
    wire = push_wire("a", 2, [1, 0], [0, 0])
    tally = wire["tallies"][0][2]
    for name, value in changes.items():
        if name in wire:
            wire[name] = value
        else:
            tally[name] = value
    return msgpack.packb(wire, use_bin_type=True)


def _without(name: str) -> bytes:
    wire = push_wire("a", 2, [1, 0], [0, 0])
    del wire[name]
    return msgpack.packb(wire, use_bin_type=True)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"\xc1", "msgpack"),  # a byte msgpack never uses
        (msgpack.packb([1, 2, 3]), "map"),
        (_without("seq"), "seq"),
        (_without("tallies"), "tallies"),
        (_with(seq=-1), "seq"),
        (_with(replica=""), "replica"),
        (_with(seen=math.nan), "seen"),
        (_with(seen=math.inf), "seen"),
        (_with(pulls=_nan_bytes()), "pulls"),
        (_with(reward_sum=np.array([1.0, -1.0]).tobytes()), "reward_sum"),
        (_with(pulls=np.array([1.0, 2.0, 3.0]).tobytes()), "pulls"),
        (_with(arms=["control", "control"]), "arms"),
        (_with(latency_hist=b"\x00" * 8), "latency_hist"),
    ],
)
def test_a_malformed_or_non_finite_push_is_422_and_changes_nothing(serve, tmp_path, content, named):
    client = serve(token=TOKEN)
    assert post(client, body("a", 1, [1, 0], [0, 0])).status_code == 200
    before = (tmp_path / "mabware.state").read_bytes()
    problem = assert_problem(post(client, content), 422, named)
    assert problem["type"] != "about:blank"
    assert (tmp_path / "mabware.state").read_bytes() == before


def test_snapshot_has_a_strong_etag_and_answers_304(serve):
    client = serve(token=TOKEN)
    first = client.get("/snapshot", headers=AUTH)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"')  # strong: no W/ prefix
    assert unpack(first.content) == SharedState()
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/snapshot", headers={**AUTH, "If-None-Match": header})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
    assert post(client, body("a", 1, [2, 0], [1, 0])).status_code == 200
    changed = client.get("/snapshot", headers={**AUTH, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert totals(unpack(changed.content)) == ([2, 0], [1, 0])


def test_a_retired_replica_is_409_and_changes_nothing(serve, tmp_path):
    state_file = tmp_path / "mabware.state"
    state_file.write_bytes(pack(SharedState(tombstones={"old": time.time()})))
    client = serve(token=TOKEN)
    before = state_file.read_bytes()
    problem = assert_problem(post(client, body("old", 9, [1, 1], [1, 1])), 409, "retired")
    assert "retired" in problem["type"]
    assert "folded_seq" in problem  # None: this tombstone predates folded seqs
    assert state_file.read_bytes() == before
    assert post(client, body("new", 1, [1, 1], [1, 1])).status_code == 200


def test_a_corrupt_state_file_is_503_not_replaced(serve, tmp_path):
    state_file = tmp_path / "mabware.state"
    client = serve(token=TOKEN)
    state_file.write_bytes(b"MABW\x01garbage")
    assert_problem(post(client, body("a", 1, [1, 0], [0, 0])), 503)
    assert_problem(client.get("/snapshot", headers=AUTH), 503)
    assert state_file.read_bytes() == b"MABW\x01garbage"


def test_unknown_paths_and_methods_are_problems_too(serve):
    client = serve("memory:")
    assert_problem(client.get("/nope"), 404)
    wrong_method = client.get("/sync")
    assert_problem(wrong_method, 405)
    assert "POST" in wrong_method.headers["allow"]


@pytest.mark.parametrize(
    ("store", "kwargs"),
    [
        ("http://localhost", {}),
        ("file:", {}),
        ("memory:x", {}),
        ("memory:", {"token": ""}),
        ("memory:", {"token": "two words"}),
        ("memory:", {"retention": 0}),
        ("memory:", {"retention": math.nan}),
    ],
)
def test_bad_settings_raise_at_start(store, kwargs):
    with pytest.raises(ConfigError):
        create_app(store, **kwargs)
