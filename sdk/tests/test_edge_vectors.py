"""The three specs against the shared golden vectors in the repository's tests/vectors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from edge_support import (
    PUBLIC_KEY,
    SNAPSHOT_VECTORS,
    VECTORS,
    Clock,
    client,
    experiment,
    signed,
)

from mabware_edge import Decision, SnapshotError, read_snapshot
from mabware_edge._assign import cumulative, prefix, unit_u
from mabware_edge._cookie import CookieCodec, CookieEntry

ASSIGN: list[dict[str, Any]] = json.loads((VECTORS / "assign.json").read_text("utf-8"))["cases"]
COOKIES: dict[str, Any] = json.loads((VECTORS / "cookie.json").read_text("utf-8"))
KEYS: dict[str, str | bytes] = {
    row["label"]: row["text"] if "text" in row else bytes.fromhex(row["bytes_hex"])
    for row in COOKIES["keys"]
}


# -- mabware.assign.v1 ----------------------------------------------------------------


def test_assign_file_is_the_one_expected() -> None:
    assert len(ASSIGN) >= 200


@pytest.mark.parametrize("case", ASSIGN, ids=[str(i) for i in range(len(ASSIGN))])
def test_assign_vector(case: dict[str, Any]) -> None:
    u = unit_u(prefix(case["experiment"], case["version"]), case["unit_id"])
    assert u == case["u"]
    table = cumulative(case["allocation"])
    assert list(table) == case["cumulative"]
    assert next(i for i, c in enumerate(table) if u < c) == case["arm_index"]


def test_assign_vectors_through_decide() -> None:
    """Every case, decided by a client holding a snapshot of its allocation."""
    for index, case in enumerate(ASSIGN):
        arms = [f"a{i}" for i in range(len(case["allocation"]))]  # names need not be the file's
        exp = experiment(
            case["experiment"],
            version=case["version"],
            arms=arms,
            payloads=[None] * len(arms),
            allocation=case["allocation"],
        )
        edge = client(signed(index + 1, experiments=[exp]))
        d = edge.decide(case["experiment"], unit_id=case["unit_id"])
        assert (d.arm, d.reason) == (arms[case["arm_index"]], "assigned"), case["note"]
        assert d.propensity == case["allocation"][case["arm_index"]]


# -- mabware.cookie.v1 ----------------------------------------------------------------


def codec_for(case: dict[str, Any], **settings: Any) -> CookieCodec:
    now = case["now"]
    return CookieCodec(
        [KEYS[label] for label in case["secret_keys"]],
        name=case["name"],
        max_age=case["max_age"],
        skew=case["skew"],
        clock=lambda: now,
        **settings,
    )


@pytest.mark.parametrize("case", COOKIES["valid"], ids=[c["note"] for c in COOKIES["valid"]])
def test_cookie_valid_vector(case: dict[str, Any]) -> None:
    decoded = codec_for(case).decode(case["token"])
    assert decoded.reason is None
    assert decoded.rotated is case["rotated"]
    assert decoded.issued == case["state"]["issued"]
    expected = {
        e["experiment"]: CookieEntry(
            e["arm"], e["version"], e["decision"], e["assigned"], e["rewarded"]
        )
        for e in case["state"]["entries"]
    }
    assert decoded.entries == expected
    assert list(decoded.entries) == list(expected)
    # re-encoding under the sealing key with the vector's nonce gives the token exactly
    nonce = bytes.fromhex(case["nonce_hex"])
    encoder = CookieCodec(
        [KEYS[case["encrypted_with"]]], name=case["name"], random_bytes=lambda n: nonce
    )
    assert encoder.encode(decoded.issued, decoded.entries) == case["token"]


@pytest.mark.parametrize(
    "case", COOKIES["invalid"], ids=[f"{c['class']}: {c['note']}" for c in COOKIES["invalid"]]
)
def test_cookie_invalid_vector(case: dict[str, Any]) -> None:
    decoded = codec_for(case).decode(case["token"])
    assert (decoded.reason, decoded.entries) == (case["reason"], {})
    if case["token"].isascii():
        assert codec_for(case).decode(case["token"].encode("ascii")).reason == case["reason"]


def test_cookie_key_table() -> None:
    for row in COOKIES["keys"]:
        codec = CookieCodec([KEYS[row["label"]]])
        assert codec._keys[0][0].hex() == row["key_id_hex"]


def test_client_reads_a_vector_cookie_as_the_middleware_would() -> None:
    case = next(c for c in COOKIES["valid"] if c["note"] == "two entries, one rewarded")
    clock = Clock(case["now"])
    snap = signed(5, clock.now - 1, [experiment("headline"), experiment("pricing", version=3)])
    edge = client(snap, clock=clock, secret_keys=[KEYS["k0"]])
    cookie = edge.read_cookie(f"other=1; mabware={case['token']}; x=2")
    assert cookie.reason is None
    assert set(cookie) == {"headline"}  # pricing's arm "b" is not an arm of the snapshot's
    assert set(cookie.entries) == {"headline", "pricing"}
    d = edge.decide("headline", cookie=cookie)
    assert isinstance(d, Decision)
    assert (d.arm, d.reason, d.decision_id) == ("control", "cookie", 12345)


# -- mabware.edge.v1 ------------------------------------------------------------------


def as_json(snapshot: Any) -> dict[str, Any]:
    return {
        "seq": snapshot.seq,
        "issued": snapshot.issued,
        "experiments": [
            {
                "name": e.name,
                "version": e.version,
                "arms": list(e.arms),
                "payloads": list(e.payloads),
                "default": e.default,
                "reward_range": list(e.reward_range),
                "reward_mode": e.reward_mode,
                "status": e.status,
                "allocation": list(e.allocation),
                "bucket_seconds": e.bucket_seconds,
                "buckets": e.buckets,
            }
            for e in snapshot.experiments
        ],
    }


VALID = SNAPSHOT_VECTORS["valid"]
INVALID = SNAPSHOT_VECTORS["invalid"]


@pytest.mark.parametrize("case", VALID, ids=[c["note"] for c in VALID])
def test_snapshot_valid_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["file_hex"])
    assert as_json(read_snapshot(data, PUBLIC_KEY)) == case["snapshot"]
    raw = bytes.fromhex(SNAPSHOT_VECTORS["public_key_hex"])
    assert read_snapshot(data, raw) == read_snapshot(data, PUBLIC_KEY + "=")
    edge = client(data)
    assert edge.snapshot == read_snapshot(data, raw)


@pytest.mark.parametrize("case", INVALID, ids=[f"{c['class']}: {c['note']}" for c in INVALID])
def test_snapshot_invalid_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["file_hex"])
    with pytest.raises(SnapshotError) as info:
        read_snapshot(data, PUBLIC_KEY)
    assert info.value.reason == case["reason"]
    held = bytes.fromhex(VALID[0]["file_hex"])
    edge = client(held)
    assert edge.load(data) is False
    assert edge.rejected == {case["reason"]: 1}
    assert edge.snapshot == read_snapshot(held, PUBLIC_KEY)  # the last good one stays


def test_snapshot_rollback_vector() -> None:
    for case in SNAPSHOT_VECTORS["rollback"]:
        edge = client(bytes.fromhex(case["held_hex"]))
        assert edge.load(bytes.fromhex(case["next_hex"])) is False
        assert edge.rejected == {case["reason"]: 1}
        assert edge.snapshot is not None
        assert edge.snapshot.seq == case["held_seq"]


def test_snapshot_under_another_key_is_refused() -> None:
    other = bytes.fromhex(SNAPSHOT_VECTORS["other_public_key_hex"])
    data = bytes.fromhex(VALID[0]["file_hex"])
    with pytest.raises(SnapshotError, match="signature"):
        read_snapshot(data, other)
    with pytest.raises(ValueError, match="public_key"):
        read_snapshot(data, base64.urlsafe_b64encode(b"short").decode())
