"""The stored state (``merge.pack``): what the file backend writes and the server answers.

``MABW``, the format byte, the CRC-32 of the body, and the msgpack body::

    {"replicas": [msgpack of a push, ...], "retired": msgpack of TALLIES,
     "tombstones": {id: [folded at, seq folded or nil]}}

(pushes and TALLIES as in ``mabware.store._wire``). Each push stays its own
blob so that, between two exchanges, a replica that has not pushed is
written back as the same bytes and read back without being decoded again
(``_Memo``): a file backend's exchange then decodes only the pushes that
are new since its last one. Format 1 (a push as plain data in the body,
tombstones as bare times) is still read.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from mabware.store._model import Key, PackedTallies, Replica, SharedState, StateError, Tally
from mabware.store._wire import (
    DECODE_ERRORS,
    replica_from_wire,
    replica_to_wire,
    tallies_from_wire,
    tallies_to_wire,
)

FORMAT = 2
_READABLE = (1, FORMAT)
_MAGIC = b"MABW"


def _unpackb(blob: Any, what: str) -> Any:
    if not isinstance(blob, bytes):
        raise StateError(f"{what}: expected msgpack bytes")
    try:
        return msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise StateError(f"{what}: malformed msgpack: {exc!r}") from exc


@dataclass(frozen=True)
class _Memo:
    """The blobs of the last state encoded or decoded, and what they stand for.

    Replicas that did not push since the last exchange are most of a state:
    their blob is written again as it is and, read back, not decoded again.
    Only packed tallies (immutable) are remembered, by identity, and the
    memo holds them, so an ``id`` cannot be reused while it is a key. A
    blob is looked up by its length and head (id, seq and seen: hashing a
    whole blob costs as much as a good part of decoding it), then compared
    whole. Each call replaces the memo: one state's worth, swapped at once.
    """

    replicas: Mapping[tuple[int, bytes], tuple[bytes, str, Replica]] = field(default_factory=dict)
    blobs: Mapping[tuple[str, int], tuple[Replica, bytes]] = field(default_factory=dict)
    retired: tuple[PackedTallies, bytes] | None = None

    def decoded(self, blob: bytes) -> tuple[str, Replica] | None:
        hit = self.replicas.get(_head(blob))
        return (hit[1], hit[2]) if hit is not None and hit[0] == blob else None

    def encoded(self, replica_id: str, replica: Replica) -> bytes | None:
        hit = self.blobs.get((replica_id, id(replica)))
        return hit[1] if hit is not None and hit[0] is replica else None

    def with_replicas(self, done: Iterable[tuple[str, Replica, bytes]]) -> _Memo:
        kept = [(rid, r, blob) for rid, r, blob in done if isinstance(r.tallies, PackedTallies)]
        return _Memo(
            {_head(blob): (blob, rid, r) for rid, r, blob in kept},
            {(rid, id(r)): (r, blob) for rid, r, blob in kept},
            self.retired,
        )


def _head(blob: bytes) -> tuple[int, bytes]:
    return len(blob), blob[:96]


_memo = _Memo()


def encode_replicas(replicas: Mapping[str, Replica]) -> list[bytes]:
    """Each replica as the msgpack blob of its push (the memo's when it has it)."""
    global _memo
    memo = _memo
    done = [
        (rid, r, memo.encoded(rid, r) or _packb(replica_to_wire(rid, r)))
        for rid, r in replicas.items()
    ]
    _memo = memo.with_replicas(done)
    return [blob for _, _, blob in done]


def decode_replicas(blobs: Sequence[Any]) -> dict[str, Replica]:
    """The replicas of push blobs (validated; the memo's when it has them)."""
    global _memo
    if not isinstance(blobs, list):
        raise StateError("replicas must be a list of msgpack blobs")
    memo, done = _memo, []
    for blob in blobs:
        if not isinstance(blob, bytes):
            raise StateError("replicas: expected msgpack bytes")
        rid, replica = memo.decoded(blob) or replica_from_wire(_unpackb(blob, "replica"))
        done.append((rid, replica, blob))
    replicas = {rid: replica for rid, replica, _ in done}
    if len(replicas) != len(done):
        raise StateError("a replica appears twice")
    _memo = memo.with_replicas(done)
    return replicas


def encode_tallies(tallies: Mapping[Key, Tally]) -> bytes:
    """TALLIES as msgpack (the retired totals; the memo's blob when it has it)."""
    global _memo
    hit = _memo.retired
    if hit is not None and hit[0] is tallies:
        return hit[1]
    blob = _packb(tallies_to_wire(tallies))
    if isinstance(tallies, PackedTallies):
        _memo = dataclasses.replace(_memo, retired=(tallies, blob))
    return blob


def decode_tallies(blob: Any) -> Mapping[Key, Tally]:
    """The inverse of ``encode_tallies`` (or format 1's list, as msgpack)."""
    global _memo
    hit = _memo.retired
    if hit is not None and hit[1] == blob:
        return hit[0]
    tallies = tallies_from_wire(_unpackb(blob, "retired"))
    if isinstance(tallies, PackedTallies):
        _memo = dataclasses.replace(_memo, retired=(tallies, blob))
    return tallies


def _packb(doc: Any) -> bytes:
    blob: bytes = msgpack.packb(doc, use_bin_type=True)
    return blob


# -- the stored state ----------------------------------------------------------------


def pack(state: SharedState) -> bytes:
    """The stored form: magic, format, CRC-32 of the body, msgpack body."""
    tombstones = {rid: [at, state.folded_seqs.get(rid)] for rid, at in state.tombstones.items()}
    body = _packb(
        {
            "replicas": encode_replicas(state.replicas),
            "retired": encode_tallies(state.retired),
            "tombstones": tombstones,
        }
    )
    return _MAGIC + bytes([FORMAT]) + zlib.crc32(body).to_bytes(4, "big") + body


def unpack(data: bytes) -> SharedState:
    """The inverse of ``pack`` (format 1 too); StateError if not a whole, valid state."""
    if len(data) < 9 or data[:4] != _MAGIC:
        raise StateError("not a mabware state (bad magic)")
    if data[4] not in _READABLE:
        raise StateError(f"state format {data[4]} is not {FORMAT}; upgrade mabware")
    body = data[9:]
    if zlib.crc32(body).to_bytes(4, "big") != data[5:9]:
        raise StateError("state checksum mismatch (torn or corrupted write)")
    tombs: dict[str, tuple[float, int | None]]
    try:
        doc = msgpack.unpackb(body, raw=False, strict_map_key=False)
        if data[4] == 1:
            replicas = dict(replica_from_wire(w) for w in doc["replicas"])
            retired = tallies_from_wire(doc["retired"])
            tombs = {str(k): (float(v), None) for k, v in doc["tombstones"].items()}
        else:
            replicas = decode_replicas(doc["replicas"])
            retired = decode_tallies(doc["retired"])
            tombs = {str(k): _tombstone(v) for k, v in doc["tombstones"].items()}
    except (AttributeError, *DECODE_ERRORS) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed state: {exc!r}") from exc
    if not all(math.isfinite(at) for at, _ in tombs.values()):
        raise StateError("tombstone times must be finite")
    folded = {rid: seq for rid, (_, seq) in tombs.items() if seq is not None}
    return SharedState(replicas, retired, {rid: at for rid, (at, _) in tombs.items()}, folded)


def _tombstone(value: Any) -> tuple[float, int | None]:
    at, seq = value
    if seq is not None and (type(seq) is not int or seq < 0):
        raise StateError("a tombstone's seq must be an int >= 0 or nil")
    return float(at), seq
