"""What ``POST /sync`` must refuse beyond a malformed push: the msgpack limits.

A push is a small map of strings, numbers and byte strings. msgpack can
say much more: maps nested thousands deep, keys that are not strings
(``bytes``, integers), extension types (timestamps, application types)
and bytes after the one object. The server must refuse each with 400 or
422 and change nothing, even where the push's own fields are valid and
the oddity hides in a member ``replica_from_wire`` ignores.

A push with no body at all is a missing push (422), like a JSON body
missing on the REST API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from api_client import Client, problem

from mabware.server import create_app
from mabware.statistics import Statistics
from mabware.store.merge import Replica, Tally, replica_to_wire

MSGPACK = {"Content-Type": "application/msgpack"}


def push(**extra: Any) -> dict[str, Any]:
    tally = Tally(("a", "b"), Statistics.from_counts([1.0, 2.0], [0.0, 1.0]))
    wire = replica_to_wire("r1", Replica(1, time.time(), {("exp", 1): tally}))
    return {**wire, **extra}


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def client(tmp_path) -> Iterator[Client]:
    client = Client(create_app(f"file:{tmp_path}/state", sync_interval=3600.0))
    client.state = tmp_path / "state"  # type: ignore[attr-defined]
    yield client
    client.close()


def refused(client: Client, body: bytes, statuses: tuple[int, ...] = (400, 422)) -> dict:
    path = client.state  # type: ignore[attr-defined]
    before = (path.read_bytes() if path.exists() else b"", client.get("/snapshot").content)
    response = client.post("/sync", content=body, headers=MSGPACK)
    assert response.status_code in statuses, (response.status_code, response.text)
    after = (path.read_bytes() if path.exists() else b"", client.get("/snapshot").content)
    assert after == before
    return problem(response, response.status_code)


def test_a_valid_push_is_taken(client):
    assert client.post("/sync", content=msgpack.packb(push()), headers=MSGPACK).status_code == 200


def test_bytes_after_the_push_are_refused(client):
    refused(client, msgpack.packb(push()) + b"\x00")


def test_integer_map_keys_are_refused(client):
    body = msgpack.packb({**push(), 1: "x"}, strict_types=False)
    refused(client, body)


@pytest.mark.parametrize("depth", [33, 1000])
def test_nesting_deeper_than_32_is_refused(client, depth):
    refused(client, msgpack.packb(push(extra=nested(depth))))


def test_nesting_of_32_is_no_reason_to_refuse(client):
    body = msgpack.packb(push(extra=nested(30)))  # the push map, its member, 30 lists
    assert client.post("/sync", content=body, headers=MSGPACK).status_code == 200


def test_bytes_map_keys_are_refused(client):
    refused(client, msgpack.packb({**push(), b"replica": "r2"}, use_bin_type=True))


@pytest.mark.parametrize(
    "value", [msgpack.ExtType(5, b"ab"), msgpack.Timestamp(1, 0)], ids=["ext", "timestamp"]
)
def test_extension_types_are_refused(client, value):
    refused(client, msgpack.packb(push(extra=value), use_bin_type=True))


def test_no_body_at_all_is_a_missing_push(client):
    path = client.state  # type: ignore[attr-defined]
    response = client.post("/sync")
    assert response.status_code == 422
    assert not path.exists()


def test_a_boolean_seen_is_refused(client):
    refused(client, msgpack.packb(push(seen=True)))
