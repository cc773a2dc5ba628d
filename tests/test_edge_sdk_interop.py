"""mabware and the edge SDK (sdk/, mabware_edge) read each other's bytes.

The vectors pin each spec on its own; these check the seams end to end: a
snapshot mabware issues is what the SDK decides from, with the same arms
for the same unit ids; cookies cross both ways; and a push the SDK makes
decodes, through the server's own wire code, to exactly the totals counted.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from mabware.assign import assign_unit, cumulative
from mabware.cookies import CookieCodec, CookieEntry, CookieState
from mabware.edge_snapshot import EdgeExperiment, EdgeSnapshot, issue
from mabware.store.merge import replica_from_wire

edge_sdk = pytest.importorskip("mabware_edge")
msgpack = pytest.importorskip("msgpack")
Ed25519PrivateKey = pytest.importorskip(
    "cryptography.hazmat.primitives.asymmetric.ed25519"
).Ed25519PrivateKey

NOW = 1_767_225_600.0
KEY = "J7INaW9SNrV8bxKJmXGZ97gqw7bFPS7tC1OTLWzvpac"


class Transport:
    def __init__(self) -> None:
        self.posts: list[bytes] = []

    def get(self, url: str, headers: object, timeout: float) -> object:
        raise OSError("offline")

    def post(self, url: str, body: bytes, headers: object, timeout: float) -> object:
        self.posts.append(body)
        return edge_sdk.Response(200, {}, b"")


def experiment(name: str, **fields: Any) -> EdgeExperiment:
    base: dict[str, Any] = {
        "name": name,
        "version": 3,
        "arms": ("a", "b", "c"),
        "payloads": ("A", {"x": 1}, None),
        "default": 0,
        "reward_range": (0.0, 10.0),
        "reward_mode": "every",
        "status": "active",
        "allocation": (0.2, 0.5, 0.3),
        "bucket_seconds": 60.0,
        "buckets": 0,
    }
    base.update(fields)
    return EdgeExperiment(**base)


@pytest.fixture
def signing() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes_raw()


def make_client(data: bytes, public: bytes, **settings: Any) -> Any:
    edge = edge_sdk.EdgeClient(
        None,
        public_key=public,
        refresh="manual",
        clock=lambda: NOW + 1,
        push_url="http://sync.test/sync",
        **settings,
    )
    assert edge.load(data)
    return edge


def test_sdk_decides_as_mabware_assigns(signing: tuple[Ed25519PrivateKey, bytes]) -> None:
    key, public = signing
    exp = experiment("headline")
    data = issue(EdgeSnapshot(7, NOW, (exp,)), key)
    edge = make_client(data, public, transport=Transport())
    table = cumulative(exp.allocation)
    rng = random.Random(3)
    for _ in range(500):
        unit = "".join(rng.choice("abcé中😀-_") for _ in range(rng.randrange(0, 12)))
        d = edge.decide("headline", unit_id=unit)
        assert d.arm == exp.arms[assign_unit(table, "headline", 3, unit)]
        assert d.snapshot_seq == 7


def test_cookies_cross_both_ways(signing: tuple[Ed25519PrivateKey, bytes]) -> None:
    key, public = signing
    data = issue(EdgeSnapshot(7, NOW, (experiment("headline"),)), key)
    edge = make_client(data, public, transport=Transport(), secret_keys=[KEY])
    mabware_codec = CookieCodec([KEY], clock=lambda: NOW + 1)
    # the SDK writes, mabware reads
    d = edge.decide("headline", unit_id="u-1")
    header = edge.cookie_header([d], secure=True)
    token = header.split(";")[0].split("=", 1)[1]
    decoded = mabware_codec.decode(token)
    assert decoded.state is not None
    assert decoded.state.entries["headline"] == CookieEntry(
        d.arm, 3, d.decision_id, int(NOW + 1), False
    )
    # mabware writes, the SDK reads and keeps the arm
    state = CookieState(int(NOW), {"headline": CookieEntry("c", 3, 42, int(NOW), True)})
    cookie = edge.read_cookie(f"mabware={mabware_codec.encode(state)}")
    kept = edge.decide("headline", cookie=cookie)
    assert (kept.arm, kept.reason, kept.decision_id) == ("c", "cookie", 42)


def test_a_push_decodes_to_the_exact_totals(signing: tuple[Ed25519PrivateKey, bytes]) -> None:
    key, public = signing
    exps = (experiment("plain"), experiment("drift", buckets=4, reward_mode="once"))
    transport = Transport()
    edge = make_client(issue(EdgeSnapshot(7, NOW, exps), key), public, transport=transport)
    expected: dict[tuple[str, str], list[float]] = {}
    for i in range(40):
        for name in ("plain", "drift"):
            d = edge.decide(name, unit_id=f"user-{i}")
            value = float(i % 11)
            row = expected.setdefault((name, d.arm), [0.0, 0.0, 0.0, 0.0])
            row[0] += 1.0
            if i % 2 and edge.reward(d, value):
                row[1] += value
                row[2] += value * value
                row[3] += value / 10.0 / d.propensity
    assert edge.push()
    replica_id, replica = replica_from_wire(msgpack.unpackb(transport.posts[-1]))
    assert replica_id == edge.replica_id
    assert replica.seq == 1
    for name in ("plain", "drift"):
        stats = replica.tallies[(name, 3)].stats
        arms = replica.tallies[(name, 3)].arms
        for i, arm in enumerate(arms):
            got = [
                float(stats.pulls[i]),
                float(stats.reward_sum[i]),
                float(stats.reward_sq_sum[i]),
                float(stats.ipw_gain_sum[i]),
            ]
            assert got == expected.get((name, arm), [0.0] * 4)
    recent = replica.tallies[("drift", 3)].stats.recent
    assert recent is not None
    assert (recent.newest, recent.depth) == (int((NOW + 1) // 60), 4)
    assert recent.pulls[0].sum() == 40.0
