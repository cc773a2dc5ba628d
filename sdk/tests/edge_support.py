"""Test doubles and snapshot builders for the SDK's tests (no mabware here)."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mabware_edge import EdgeClient, Response

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors"
SNAPSHOT_VECTORS: dict[str, Any] = json.loads((VECTORS / "edge_snapshot.json").read_text("utf-8"))
PUBLIC_KEY: str = SNAPSHOT_VECTORS["public_key"]
NOW = 1_767_225_600.0
COOKIE_KEY = "J7INaW9SNrV8bxKJmXGZ97gqw7bFPS7tC1OTLWzvpac"  # key k0 of cookie.json


def _key(label: str) -> Ed25519PrivateKey:
    # the vectors' documented derivation: Ed25519 seed = SHA-512(label)[:32]
    seed = hashlib.sha512(f"mabware.edge.v1 vectors 20261128 key {label}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


ISSUER = _key("issuer")


def experiment(name: str = "headline", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "version": 1,
        "arms": ["control", "bold"],
        "payloads": ["Welcome back", "Big sale today"],
        "default": 0,
        "reward_range": [0.0, 1.0],
        "reward_mode": "once",
        "status": "active",
        "allocation": [0.25, 0.75],
        "bucket_seconds": 60.0,
        "buckets": 0,
    }
    base.update(fields)
    return base


def signed(seq: int, issued: float = NOW, experiments: list[dict[str, Any]] | None = None) -> bytes:
    """A snapshot file signed by the vectors' issuer key (spec mabware.edge.v1, step 2)."""
    body = msgpack.packb(
        {
            "format": 1,
            "seq": seq,
            "issued": float(issued),
            "experiments": [experiment()] if experiments is None else experiments,
        }
    )
    signature = ISSUER.sign(b"mabware.edge.v1\x00" + body)
    packed: bytes = msgpack.packb({"spec": "mabware.edge.v1", "body": body, "signature": signature})
    return packed


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = NOW + 1.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeTransport:
    """Serves queued or fixed answers and records every request."""

    def __init__(self, snapshot: bytes | None = None, etag: str = '"v1"') -> None:
        self.snapshot, self.etag = snapshot, etag
        self.gets: list[dict[str, str]] = []
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []
        self.get_answers: list[Response | BaseException] = []
        self.post_answers: list[Response | BaseException] = []
        self.lock = threading.Lock()

    def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Response:
        with self.lock:
            self.gets.append(dict(headers))
            if self.get_answers:
                return _answer(self.get_answers.pop(0))
        if self.snapshot is None:
            raise OSError("no route to host")
        if headers.get("If-None-Match") == self.etag:
            return Response(304, {"etag": self.etag}, b"")
        return Response(200, {"etag": self.etag}, self.snapshot)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        with self.lock:
            self.posts.append((url, body, dict(headers)))
            if self.post_answers:
                return _answer(self.post_answers.pop(0))
        return Response(200, {}, msgpack.packb({"seq": decode_push(body)["seq"]}))


def _answer(item: Response | BaseException) -> Response:
    if isinstance(item, BaseException):
        raise item
    return item


def retired(folded_seq: int | None) -> Response:
    problem = {"type": "tag:mabware,2025:problem:retired-replica", "status": 409}
    if folded_seq is not None:
        problem["folded_seq"] = folded_seq
    return Response(409, {"content-type": "application/problem+json"}, json.dumps(problem).encode())


def decode_push(body: bytes) -> dict[str, Any]:
    """A push body with its float64 block read back as per-tally, per-arm rows."""
    wire: dict[str, Any] = msgpack.unpackb(body)
    columns = [c for c in range(18) if wire["columns"] >> c & 1]
    values = struct.unpack(f"<{len(wire['sums']) // 8}d", wire["sums"])
    rows = [values[i : i + len(columns)] for i in range(0, len(values), len(columns))]
    sums: dict[tuple[str, int], dict[str, tuple[float, ...]]] = {}
    for name, version, tally in wire["tallies"]:
        sums[(name, version)] = {arm: rows.pop(0) for arm in tally["arms"]}
    wire["decoded"] = sums
    return wire


def client(data: bytes | None = None, *, clock: Clock | None = None, **settings: Any) -> EdgeClient:
    """A manual-mode client with a fake transport and clock, holding ``data`` if given."""
    settings.setdefault("refresh", "manual")
    settings.setdefault("transport", FakeTransport())
    settings.setdefault("push_url", "http://sync.test/sync")
    edge = EdgeClient(None, public_key=PUBLIC_KEY, clock=clock or Clock(), **settings)
    if data is not None:
        assert edge.load(data)
    return edge


SNAP_FOR_EXIT = signed(10, NOW, [experiment("headline")])
