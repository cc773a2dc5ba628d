"""Write ``edge_snapshot.json``, the golden vectors of the ``mabware.edge.v1`` spec.

The file is a frozen contract shared with the edge SDK (see README.md here).
This script is kept so that anyone can see how the cases were made and
check that it still reproduces the committed file::

    PYTHONPATH=. python tests/vectors/make_edge_snapshot_vectors.py --check

Without ``--check`` it writes the file, but refuses to replace an existing
file whose content differs: a changed vector means a changed spec, which
takes a new spec id and a new file, never a silent regeneration.

The output is deterministic: the keys are Ed25519 seeds
``SHA-512("mabware.edge.v1 vectors <SEED> key <label>")`` cut to 32 bytes,
and Ed25519 signatures are deterministic (RFC 8032). Valid files are made
by ``mabware.edge_snapshot.issue`` and checked against ``sign`` below, an
independent reading of the spec that also makes the hand-built cases.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
from _frozen import generate
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mabware.edge_snapshot import SPEC, EdgeExperiment, EdgeSnapshot, SnapshotError, issue, read

SEED = 20261128
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
OUTPUT = Path(__file__).with_name("edge_snapshot.json")
DESCRIPTION = (
    "Golden vectors for mabware.edge.v1 (spec text: the docstring of mabware/edge_snapshot.py). "
    "'public_key' is the issuer's Ed25519 key (url-safe base64 without padding, and hex). "
    "A valid case's file (file_hex) verifies under it and parses to 'snapshot' (seq, issued, "
    "experiments in order with every field). An invalid case's file is refused with 'reason' "
    "(the first failing check of spec step 4). In 'rollback', a reader holding 'held_hex' "
    "refuses 'next_hex' with reason 'rollback'. Keys: Ed25519 seed = SHA-512('mabware.edge.v1 "
    f"vectors {SEED} key <label>')[:32]. Integers go up to 2**63 - 1: parse them exactly. "
    "Frozen: never regenerate; a spec change gets a new spec id and file."
)
TAG = b"mabware.edge.v1\x00"

Case = dict[str, Any]


def private(label: str) -> Ed25519PrivateKey:
    seed = hashlib.sha512(f"mabware.edge.v1 vectors {SEED} key {label}".encode()).digest()[:32]
    return Ed25519PrivateKey.from_private_bytes(seed)


ISSUER, OTHER = private("issuer"), private("other")
PUBLIC = ISSUER.public_key()


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def packb(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def sign(body: bytes, *, key: Ed25519PrivateKey = ISSUER, spec: str = SPEC) -> bytes:
    """A file from raw body bytes, straight from spec step 2."""
    return packb({"spec": spec, "body": body, "signature": key.sign(TAG + body)})


def experiment(name: str = "headline", **fields: Any) -> EdgeExperiment:
    base: dict[str, Any] = {
        "name": name,
        "version": 1,
        "arms": ("control", "bold"),
        "payloads": ("Welcome back", "Big sale today"),
        "default": 0,
        "reward_range": (0.0, 1.0),
        "reward_mode": "once",
        "status": "active",
        "allocation": (0.25, 0.75),
        "bucket_seconds": 3600.0,
        "buckets": 0,
    }
    base.update(fields)
    return EdgeExperiment(**base)


def snapshot_json(snapshot: EdgeSnapshot) -> dict[str, Any]:
    """What a reader must parse: every field, as the wire carries it."""
    return {
        "seq": snapshot.seq,
        "issued": snapshot.issued,
        "experiments": [e.to_wire() for e in snapshot.experiments],
    }


def body_of(snapshot: EdgeSnapshot, **extra: Any) -> dict[str, Any]:
    body = {"format": 1, **snapshot_json(snapshot)}
    body.update(extra)
    return body


def valid(note: str, snapshot: EdgeSnapshot) -> Case:
    data = issue(snapshot, ISSUER)
    assert data == sign(packb(body_of(snapshot))), note  # issue() meets the spec text
    assert read(data, PUBLIC) == snapshot, note
    return {"note": note, "file_hex": data.hex(), "snapshot": snapshot_json(snapshot)}


def invalid(kind: str, note: str, data: bytes, reason: str) -> Case:
    try:
        read(data, PUBLIC)
    except SnapshotError as exc:
        found: str | None = exc.reason
    else:
        found = None  # accepted
    assert found == reason, (note, found)
    return {"class": kind, "note": note, "file_hex": data.hex(), "reason": reason}


ONE = EdgeSnapshot(1_767_225_600_000, NOW, (experiment(),))


def valid_cases() -> Iterator[Case]:
    yield valid("one experiment, two arms", ONE)
    yield valid("no experiments", EdgeSnapshot(0, 0.0, ()))
    yield valid(
        "every status and reward mode, time buckets, payloads of every JSON type",
        EdgeSnapshot(
            1_767_225_601_234,
            NOW + 1.234,
            (
                experiment("off", status="disabled", allocation=(1.0, 0.0)),
                experiment("guarded", status="fallback", default=1, allocation=(0.0, 1.0)),
                experiment(
                    "revenue",
                    version=7,
                    arms=("a", "b", "c"),
                    payloads=(None, {"price": 9.99, "tags": ["x", 1, True]}, [1, 2.5, "three"]),
                    default=2,
                    reward_range=(-5.0, 250.0),
                    reward_mode="every",
                    allocation=(0.2, 0.3, 0.5),
                    bucket_seconds=60.0,
                    buckets=1440,
                ),
                experiment("flags", payloads=(False, 0), allocation=(0.5, 0.5)),
            ),
        ),
    )
    arms = tuple(f"arm-{i:02d}" for i in range(50))
    fifty = [0.0 if i % 7 == 3 else 1.0 for i in range(50)]
    total = sum(fifty[:-1])
    yield valid(
        "50 arms, zero-probability arms inside and at the end",
        EdgeSnapshot(
            2,
            NOW,
            (
                experiment(
                    "wide",
                    arms=arms,
                    payloads=arms,
                    default=49,
                    allocation=(*(p / total for p in fifty[:-1]), 0.0),
                ),
            ),
        ),
    )
    yield valid(
        "unicode names, largest integers, allocation off 1 by 1e-10",
        EdgeSnapshot(
            2**63 - 1,
            NOW + 0.5,
            (
                experiment(
                    "Jos\u00e9 \u53d8\u4f53 \U0001f469\u200d\U0001f4bb",
                    version=2**63 - 1,
                    arms=("Jose\u0301", "\U0010ffff", ""),
                    payloads=("\u00e9", "", None),
                    allocation=(0.5, 0.25, 0.2500000001),
                ),
                experiment("", version=0, arms=("only",), payloads=(None,), allocation=(1.0,)),
            ),
        ),
    )


def extra_keys_case() -> Case:
    """Keys a reader does not know are ignored (spec step 4): hand-signed."""
    body = body_of(ONE, note="an issuer may add keys")
    body["experiments"][0]["owner"] = "growth team"
    data = sign(packb(body))
    assert read(data, PUBLIC) == ONE
    return {"note": "unknown keys in the body and an experiment", **_as_case(data, ONE)}


def _as_case(data: bytes, snapshot: EdgeSnapshot) -> dict[str, Any]:
    return {"file_hex": data.hex(), "snapshot": snapshot_json(snapshot)}


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def schema_breaks() -> Iterator[tuple[str, dict[str, Any]]]:
    """(note, body) pairs, each signed correctly but breaking spec step 3."""

    def with_experiment(**fields: Any) -> dict[str, Any]:
        body = body_of(ONE)
        body["experiments"][0].update(fields)
        return body

    yield "seq missing", {k: v for k, v in body_of(ONE).items() if k != "seq"}
    yield "seq negative", body_of(ONE, seq=-1)
    yield "seq 2**63", body_of(ONE, seq=2**63)
    yield "seq a float", body_of(ONE, seq=5.0)
    yield "issued an int", body_of(ONE, issued=1_767_225_600)
    yield "issued NaN", body_of(ONE, issued=float("nan"))
    yield "experiments a map", body_of(ONE, experiments={"headline": {}})
    yield "experiment names repeated", body_of(ONE, experiments=body_of(ONE)["experiments"] * 2)
    yield "arms empty", with_experiment(arms=[], payloads=[], allocation=[])
    yield "arms repeated", with_experiment(arms=["a", "a"])
    yield "arms a string", with_experiment(arms="ab")
    yield "an arm not a string", with_experiment(arms=["a", 2])
    yield "payloads not parallel", with_experiment(payloads=["x"])
    yield "allocation sums to 1.001", with_experiment(allocation=[0.25, 0.751])
    yield "allocation negative entry", with_experiment(allocation=[1.5, -0.5])
    yield "allocation an int entry", with_experiment(allocation=[0, 1])
    yield "default out of range", with_experiment(default=2)
    yield "default a bool", with_experiment(default=False)
    yield "version negative", with_experiment(version=-1)
    yield "reward_range reversed", with_experiment(reward_range=[1.0, 0.0])
    yield "reward_range of ints", with_experiment(reward_range=[0, 1])
    yield "reward_mode unknown", with_experiment(reward_mode="twice")
    yield "status unknown", with_experiment(status="paused")
    yield "bucket_seconds 0", with_experiment(bucket_seconds=0.0)
    yield "buckets negative", with_experiment(buckets=-1)
    yield (
        "a field missing",
        {
            **body_of(ONE),
            "experiments": [{k: v for k, v in experiment().to_wire().items() if k != "status"}],
        },
    )


def invalid_cases() -> Iterator[Case]:
    good = issue(ONE, ISSUER)
    outer = msgpack.unpackb(good, raw=False)
    body: bytes = outer["body"]
    at = good.index(body)
    yield invalid("signature", "a body byte flipped", flip(good, at + len(body) // 2), "signature")
    yield invalid(
        "signature", "the last signature byte flipped", flip(good, len(good) - 1), "signature"
    )
    yield invalid("signature", "signed by another key", sign(body, key=OTHER), "signature")
    yield invalid(
        "signature",
        "signed without the spec tag",
        packb({"spec": SPEC, "body": body, "signature": ISSUER.sign(body)}),
        "signature",
    )
    yield invalid(
        "signature",
        "a 63-byte signature",
        packb({"spec": SPEC, "body": body, "signature": outer["signature"][:63]}),
        "signature",
    )
    yield invalid("spec", "spec mabware.edge.v2", sign(body, spec="mabware.edge.v2"), "spec")
    yield invalid("spec", "spec missing its version", sign(body, spec="mabware.edge"), "spec")
    yield invalid("format", "format 2", sign(packb(body_of(ONE, format=2))), "format")
    yield invalid("format", "format 0", sign(packb(body_of(ONE, format=0))), "format")
    no_format = {k: v for k, v in body_of(ONE).items() if k != "format"}
    yield invalid("format", "format missing", sign(packb(no_format)), "format")
    yield invalid("format", "the body an array", sign(packb([1, 2, 3])), "format")
    yield invalid("malformed", "empty file", b"", "malformed")
    yield invalid("malformed", "not msgpack (reserved byte 0xc1)", b"\xc1", "malformed")
    yield invalid("malformed", "JSON text", b'{"spec": "mabware.edge.v1"}', "malformed")
    yield invalid("malformed", "truncated file", good[:-1], "malformed")
    yield invalid("malformed", "a byte after the map", good + b"\x00", "malformed")
    yield invalid("malformed", "an array, not a map", packb([SPEC, body, b"x" * 64]), "malformed")
    yield invalid(
        "malformed",
        "a fourth key in the map",
        packb({"spec": SPEC, "body": body, "signature": outer["signature"], "kid": 1}),
        "malformed",
    )
    yield invalid(
        "malformed",
        "signature missing",
        packb({"spec": SPEC, "body": body}),
        "malformed",
    )
    yield invalid(
        "malformed",
        "body a str, not bin",
        packb({"spec": SPEC, "body": "text", "signature": outer["signature"]}),
        "malformed",
    )
    yield invalid("malformed", "signed body not msgpack", sign(b"\xc1"), "malformed")
    yield invalid(
        "malformed", "signed body with a trailing byte", sign(body + b"\x00"), "malformed"
    )
    for note, broken in schema_breaks():
        yield invalid("schema", note, sign(packb(broken)), "malformed")


def rollback_case() -> Case:
    held = issue(ONE, ISSUER)
    older = EdgeSnapshot(ONE.seq - 1, ONE.issued + 10.0, ONE.experiments)  # later clock, lower seq
    return {
        "note": "a correctly signed snapshot whose seq is lower than the one held",
        "held_hex": held.hex(),
        "next_hex": issue(older, ISSUER).hex(),
        "held_seq": ONE.seq,
        "next_seq": older.seq,
        "reason": "rollback",
    }


def build() -> dict[str, Any]:
    valid_list = [*valid_cases(), extra_keys_case()]
    return {
        "spec": SPEC,
        "description": DESCRIPTION,
        "public_key": base64.urlsafe_b64encode(raw_public(ISSUER)).rstrip(b"=").decode(),
        "public_key_hex": raw_public(ISSUER).hex(),
        "other_public_key_hex": raw_public(OTHER).hex(),
        "valid": valid_list,
        "invalid": list(invalid_cases()),
        "rollback": [rollback_case()],
    }


def main(argv: list[str] | None = None) -> int:
    sections = ["valid", "invalid", "rollback"]
    return generate(__doc__ or "", build, OUTPUT, sections, _counts, argv)


def _counts(document: dict[str, Any]) -> str:
    return f"{len(document['valid'])} valid, {len(document['invalid'])} invalid cases"


if __name__ == "__main__":
    sys.exit(main())
