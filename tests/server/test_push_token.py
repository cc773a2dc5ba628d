"""The push-only token: POST /sync for edge clients, held to the registry, reading nothing.

A push with the push token is merged exactly like one with the write
token, if every tally names an experiment, version and arms the registry
has; otherwise 422 naming what is wrong, and the state file stays
byte-identical. Its answer is ``{"seq": ...}``, never the merged state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from api_client import TOKEN, WRITE, Client, problem

from mabware.server import create_app
from mabware.statistics import Statistics
from mabware.store.merge import Replica, SharedState, Tally, combined, pack, replica_to_wire, unpack

PUSH_TOKEN = "pu5h-t0ken"
PUSH = {"Authorization": f"Bearer {PUSH_TOKEN}", "Content-Type": "application/msgpack"}
ARMS = ("control", "bold")


@pytest.fixture
def client(tmp_path) -> Iterator[Client]:
    client = Client(create_app(f"file:{tmp_path}/state", token=TOKEN, push_token=PUSH_TOKEN))
    created = client.post(
        "/experiments", json={"experiment_id": "headline", "arm_ids": list(ARMS)}, headers=WRITE
    )
    assert created.status_code == 201
    yield client
    client.close()


def push(
    replica: str,
    seq: int,
    tallies: dict[tuple[str, int], tuple[tuple[str, ...], list[float], list[float]]],
) -> bytes:
    wire = replica_to_wire(
        replica,
        Replica(
            seq,
            time.time(),
            {
                key: Tally(arms, Statistics.from_counts(pulls, rewards))
                for key, (arms, pulls, rewards) in tallies.items()
            },
        ),
    )
    return msgpack.packb(wire, use_bin_type=True)


def state_of(client: Client) -> SharedState:
    response = client.get("/snapshot", headers=WRITE)
    assert response.status_code == 200
    return unpack(response.content)


def test_an_accepted_push_is_counted_exactly_and_answers_its_seq(client):
    body = push("edge-1", 7, {("headline", 1): (ARMS, [5, 3], [2, 1])})
    response = client.post("/sync", content=body, headers=PUSH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(response.content) == {"seq": 7}
    stats = combined(state_of(client), ("headline", 1), ARMS, 0)
    assert (stats.pulls.tolist(), stats.reward_sum.tolist()) == ([5, 3], [2, 1])
    # a replay changes nothing; a later push replaces the replica's totals
    assert client.post("/sync", content=body, headers=PUSH).status_code == 200
    later = push("edge-1", 8, {("headline", 1): (("bold",), [4], [4])})
    assert client.post("/sync", content=later, headers=PUSH).status_code == 200
    stats = combined(state_of(client), ("headline", 1), ARMS, 0)
    assert (stats.pulls.tolist(), stats.reward_sum.tolist()) == ([0, 4], [0, 4])
    # the write token still gets the merged state back
    full = client.post("/sync", content=push("w", 1, {}), headers={**PUSH, **WRITE})
    assert combined(unpack(full.content), ("headline", 1), ARMS, 0).pulls.tolist() == [0, 4]


@pytest.mark.parametrize(
    ("tallies", "named"),
    [
        ({("nowhere", 1): (ARMS, [1, 1], [0, 0])}, "'nowhere' is not in the registry"),
        ({("headline", 2): (ARMS, [1, 1], [0, 0])}, "the push names version 2"),
        ({("headline", 1): (("control", "italic"), [1, 1], [0, 0])}, "no arm 'italic'"),
        (
            {("headline", 1): (ARMS, [1, 1], [0, 0]), ("other", 1): (ARMS, [1, 1], [0, 0])},
            "'other'",
        ),
    ],
)
def test_a_push_beyond_the_registry_is_422_and_changes_nothing(client, tmp_path, tallies, named):
    assert client.post("/sync", content=push("edge-1", 1, {}), headers=PUSH).status_code == 200
    before = (tmp_path / "state").read_bytes()
    refused = problem(client.post("/sync", content=push("edge-1", 2, tallies), headers=PUSH), 422)
    assert named in refused["detail"]
    assert "invalid-push" in refused["type"]
    assert (tmp_path / "state").read_bytes() == before


def test_a_push_of_an_earlier_version_is_allowed(client):
    assert client.post("/experiments/headline/reset", headers=WRITE).status_code == 200
    body = push("edge-1", 1, {("headline", 1): (ARMS, [1, 2], [0, 1]),
                              ("headline", 2): (("bold",), [1], [1])})  # fmt: skip
    assert client.post("/sync", content=body, headers=PUSH).status_code == 200
    assert combined(state_of(client), ("headline", 2), ARMS, 0).pulls.tolist() == [0, 1]


def test_the_push_token_reads_nothing_and_changes_no_experiment(client):
    auth = {"Authorization": PUSH["Authorization"]}
    for method, path, body in [
        ("GET", "/snapshot", None),
        ("GET", "/edge/snapshot", None),
        ("GET", "/experiments", None),
        ("GET", "/decision?experiment_id=headline", None),
        ("POST", "/experiments", {"experiment_id": "x", "arm_ids": ["a", "b"]}),
        ("POST", "/reward", {"experiment_id": "headline", "arm_id": "bold", "reward": 1}),
    ]:
        problem(client.request(method, path, json=body, headers=auth), 401)
    listed = client.get("/experiments", headers=WRITE).json()["experiments"]
    assert [e["experiment_id"] for e in listed] == ["headline"]
    problem(client.post("/sync", content=push("e", 1, {}), headers={**PUSH, **_wrong()}), 401)


def _wrong() -> dict[str, str]:
    return {"Authorization": "Bearer not-the-push-token"}


def test_a_retired_replica_is_409_with_the_push_token_too(tmp_path: Path):
    state = tmp_path / "state"
    state.write_bytes(pack(SharedState(tombstones={"old": time.time()}, folded_seqs={"old": 3})))
    client = Client(create_app(f"file:{state}", token=TOKEN, push_token=PUSH_TOKEN))
    try:
        created = client.post(
            "/experiments", json={"experiment_id": "headline", "arm_ids": list(ARMS)}, headers=WRITE
        )
        assert created.status_code == 201
        body = push("old", 9, {("headline", 1): (ARMS, [1, 1], [1, 1])})
        retired = problem(client.post("/sync", content=body, headers=PUSH), 409)
        assert "retired" in retired["type"]
        assert retired["folded_seq"] == 3
    finally:
        client.close()
