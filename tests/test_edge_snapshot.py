"""mabware.edge_snapshot against the golden vectors the edge SDK reads too."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mabware.edge_snapshot import SPEC, EdgeSnapshot, SnapshotError, issue, public_key, read

VECTOR_DIR = Path(__file__).parent / "vectors"
DOCUMENT: dict[str, Any] = json.loads(
    (VECTOR_DIR / "edge_snapshot.json").read_text(encoding="utf-8")
)
VALID: list[dict[str, Any]] = DOCUMENT["valid"]
INVALID: list[dict[str, Any]] = DOCUMENT["invalid"]
KEY = public_key(DOCUMENT["public_key"])


def as_json(snapshot: EdgeSnapshot) -> dict[str, Any]:
    return {
        "seq": snapshot.seq,
        "issued": snapshot.issued,
        "experiments": [e.to_wire() for e in snapshot.experiments],
    }


def test_vector_file_covers_the_brief() -> None:
    assert DOCUMENT["spec"] == SPEC == "mabware.edge.v1"
    assert public_key(bytes.fromhex(DOCUMENT["public_key_hex"])) is not None
    assert {c["reason"] for c in INVALID} == {"signature", "spec", "format", "malformed"}
    notes = {c["note"] for c in INVALID}
    assert {"a body byte flipped", "signed by another key", "a byte after the map"} <= notes
    statuses = {e["status"] for c in VALID for e in c["snapshot"]["experiments"]}
    assert statuses == {"active", "disabled", "fallback"}
    assert any(e["buckets"] > 0 for c in VALID for e in c["snapshot"]["experiments"])
    assert [r["reason"] for r in DOCUMENT["rollback"]] == ["rollback"]


@pytest.mark.parametrize("case", VALID, ids=[c["note"] for c in VALID])
def test_valid_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["file_hex"])
    snapshot = read(data, KEY)
    assert as_json(snapshot) == case["snapshot"]
    assert read(data, None) == snapshot


@pytest.mark.parametrize("case", INVALID, ids=[f"{c['class']}: {c['note']}" for c in INVALID])
def test_invalid_vector(case: dict[str, Any]) -> None:
    with pytest.raises(SnapshotError) as info:
        read(bytes.fromhex(case["file_hex"]), KEY)
    assert info.value.reason == case["reason"]


def test_rollback_pair_is_valid_but_goes_back() -> None:
    for case in DOCUMENT["rollback"]:
        held = read(bytes.fromhex(case["held_hex"]), KEY)
        following = read(bytes.fromhex(case["next_hex"]), KEY)
        assert (held.seq, following.seq) == (case["held_seq"], case["next_seq"])
        assert following.seq < held.seq  # a reader refuses it: spec step 4, "rollback"


def test_issue_reproduces_the_valid_files() -> None:
    # Ed25519 is deterministic, so the issuer's bytes are pinned too
    label = "mabware.edge.v1 vectors 20261128 key issuer"
    issuer = Ed25519PrivateKey.from_private_bytes(hashlib.sha512(label.encode()).digest()[:32])
    for case in VALID[:-1]:  # the last is hand-built with keys issue() never writes
        snapshot = read(bytes.fromhex(case["file_hex"]), KEY)
        assert issue(snapshot, issuer).hex() == case["file_hex"]


def test_generator_reproduces_the_committed_file() -> None:
    script = VECTOR_DIR / "make_edge_snapshot_vectors.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
