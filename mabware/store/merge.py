"""Replica totals and their merge: the arithmetic of learning across processes.

DESIGN.md, "Data model": a replica is one process lifetime. Each push
carries the replica's id, a sequence number that rises with every push,
and the replica's *cumulative* totals since it started. The shared state
keeps, per replica, the entry with the highest sequence number, and the
global statistics are the sum over replicas. So:

* a duplicated, reordered or replayed push changes nothing (a lower or
  equal seq never replaces what is there);
* a push that is lost is made good by the next one (totals, not deltas);
* replicas silent for longer than the retention period are folded into one
  ``retired`` tally per experiment and remembered as tombstones, so the
  state stays small. A tombstoned replica that pushes again is refused
  (``RetiredReplicaError``): it restarts under a new id with only what it
  counted after its last acknowledged push, so nothing is counted twice.

Everything here is pure: states in, states out. The backends (file, HTTP
server, Redis) store ``pack(state)`` and call ``merge``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from mabware.exceptions import MabwareError
from mabware.statistics import LATENCY_BOUNDS, Buckets, Statistics

FORMAT = 1
#: per-arm sums carried by a tally (latency_hist and the buckets besides)
SUMS = ("pulls", "reward_sum", "reward_sq_sum", "ipw_gain_sum", "responses", "errors")
_MAGIC = b"MABW"
#: most time buckets a tally may carry (a week of minutes is 10,080)
MAX_BUCKETS = 100_000

#: an experiment's statistics are kept per (name, version): a bumped version starts afresh
Key = tuple[str, int]


class StateError(MabwareError, ValueError):
    """A push or a stored state that is malformed, non-finite or negative."""


class RetiredReplicaError(MabwareError):
    """The pushing replica was folded into the retired totals; restart under a new id."""


@dataclass(frozen=True)
class Tally:
    """One replica's (or the retired) statistics of one experiment, by arm name."""

    arms: tuple[str, ...]
    stats: Statistics

    def to_wire(self) -> dict[str, Any]:
        """Plain data; arrays as little-endian float64 bytes (exact and compact)."""
        s = self.stats
        wire: dict[str, Any] = {"arms": list(self.arms)}
        for name in SUMS:
            wire[name] = _bytes(getattr(s, name))
        wire["latency_hist"] = _bytes(s.latency_hist)
        if s.recent is not None:
            b = s.recent
            used = np.flatnonzero(b.pulls.any(axis=1) | b.reward_sum.any(axis=1))
            rows = int(used[-1]) + 1 if used.size else 0  # older rows are all zeros
            wire["buckets"] = [
                b.newest,
                b.depth,
                _bytes(b.pulls[:rows]),
                _bytes(b.reward_sum[:rows]),
            ]
        return wire

    @classmethod
    def from_wire(cls, wire: Any) -> Tally:
        """Validate and build; StateError names what is wrong."""
        try:
            if not isinstance(wire["arms"], list | tuple):  # tuple("ab") would be two arms
                raise StateError("arms must be a list of names")
            arms = tuple(wire["arms"])
            if not all(isinstance(a, str) for a in arms) or len(set(arms)) != len(arms):
                raise StateError("arms must be unique strings")
            n = len(arms)
            sums = {name: _array(wire[name], (n,), name) for name in SUMS}
            hist = _array(wire["latency_hist"], (n, len(LATENCY_BOUNDS)), "latency_hist")
            recent = None
            if wire.get("buckets") is not None:
                newest, depth, pulls, rewards = wire["buckets"]
                if type(newest) is not int or type(depth) is not int:
                    raise StateError("buckets: newest and depth must be ints")
                if not 0 <= depth <= MAX_BUCKETS:  # a push must not make us allocate at will
                    raise StateError(f"buckets: depth must be in 0..{MAX_BUCKETS}, got {depth}")
                recent = Buckets(
                    newest,
                    _padded(_array(pulls, (-1, n), "buckets.pulls"), depth),
                    _padded(_array(rewards, (-1, n), "buckets.reward_sum"), depth),
                )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, StateError):
                raise
            raise StateError(f"malformed tally: {exc!r}") from exc
        return cls(arms, Statistics(latency_hist=hist, recent=recent, **sums))


def _bytes(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr, dtype="<f8").tobytes()


def _array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Float64 bytes as an array of ``shape`` (one -1 allowed), finite and >= 0."""
    if not isinstance(value, bytes) or len(value) % 8:
        raise StateError(f"{name}: expected float64 bytes")
    arr = np.frombuffer(value, dtype="<f8").astype(np.float64)
    known = math.prod(w for w in shape if w != -1)
    if known == 0 or arr.size % known:
        raise StateError(f"{name}: {arr.size} numbers do not fit shape {shape}")
    arr = arr.reshape(tuple(arr.size // known if w == -1 else w for w in shape))
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise StateError(f"{name}: counts must be finite and >= 0")
    return arr


def _padded(rows: np.ndarray, depth: int) -> np.ndarray:
    if rows.shape[0] > depth:
        raise StateError(f"buckets: {rows.shape[0]} rows for a depth of {depth}")
    out = np.zeros((depth, rows.shape[1]), dtype=np.float64)
    out[: rows.shape[0]] = rows
    return out


@dataclass(frozen=True)
class Replica:
    """A replica's latest push: its sequence number, when it was seen, its tallies."""

    seq: int
    seen: float
    tallies: Mapping[Key, Tally]


@dataclass(frozen=True)
class SharedState:
    """Everything the shared store holds."""

    replicas: Mapping[str, Replica] = field(default_factory=dict)
    retired: Mapping[Key, Tally] = field(default_factory=dict)
    tombstones: Mapping[str, float] = field(default_factory=dict)  # replica id -> folded at


def merge(state: SharedState, replica_id: str, push: Replica) -> SharedState:
    """``state`` with ``push`` taken in, unless a push with a seq as high is there.

    Raises:
        RetiredReplicaError: ``replica_id`` was folded into the retired totals.
    """
    if replica_id in state.tombstones:
        raise RetiredReplicaError(f"replica {replica_id} was retired", payload=replica_id)
    current = state.replicas.get(replica_id)
    if current is not None and current.seq >= push.seq:
        return state
    return SharedState({**state.replicas, replica_id: push}, state.retired, state.tombstones)


def compact(state: SharedState, now: float, retention: float) -> SharedState:
    """Fold replicas not seen for ``retention`` seconds into ``retired``.

    Tombstones are forgotten after 30 retention periods: a replica silent
    that long is dead, not paused.
    """
    dead = [rid for rid, r in state.replicas.items() if now - r.seen > retention]
    old_tombs = [rid for rid, at in state.tombstones.items() if now - at > 30 * retention]
    if not dead and not old_tombs:
        return state
    retired = dict(state.retired)
    for rid in dead:
        for key, tally in state.replicas[rid].tallies.items():
            retired[key] = add(retired[key], tally) if key in retired else tally
    replicas = {rid: r for rid, r in state.replicas.items() if rid not in dead}
    tombstones = {rid: at for rid, at in state.tombstones.items() if rid not in old_tombs}
    tombstones.update(dict.fromkeys(dead, now))
    return SharedState(replicas, retired, tombstones)


def add(a: Tally, b: Tally) -> Tally:
    """The sum of two tallies of one experiment (arms united, buckets aligned)."""
    arms = a.arms + tuple(x for x in b.arms if x not in a.arms)
    depth = max(_depth(a), _depth(b))
    newest = max(_newest(a), _newest(b))
    return Tally(arms, _sum([a, b], arms, depth, newest))


def combined(
    state: SharedState,
    key: Key,
    arms: Sequence[str],
    depth: int,
    *,
    exclude: str | None = None,
) -> Statistics:
    """The global statistics of one experiment in ``arms`` order.

    Arms the tallies do not know are zeros; arms no longer in ``arms`` are
    left out. ``exclude`` leaves one replica out (the caller adds its own,
    fresher, totals instead). ``depth`` time buckets are kept (0: none).
    """
    tallies = [
        r.tallies[key] for rid, r in state.replicas.items() if rid != exclude and key in r.tallies
    ]
    if key in state.retired:
        tallies.append(state.retired[key])
    newest = max((_newest(t) for t in tallies), default=0)
    return _sum(tallies, tuple(arms), depth, newest)


def _depth(t: Tally) -> int:
    return t.stats.recent.depth if t.stats.recent is not None else 0


def _newest(t: Tally) -> int:
    return t.stats.recent.newest if t.stats.recent is not None else -(2**62)


def _sum(tallies: Sequence[Tally], arms: tuple[str, ...], depth: int, newest: int) -> Statistics:
    total = Statistics.zeros(len(arms), depth)
    position = {arm: i for i, arm in enumerate(arms)}
    for tally in tallies:
        pairs = [(i, position[a]) for i, a in enumerate(tally.arms) if a in position]
        if not pairs:
            continue
        src, dst = (np.array(x, dtype=np.intp) for x in zip(*pairs, strict=True))
        s = tally.stats
        for name in SUMS:
            getattr(total, name)[dst] += getattr(s, name)[src]
        total.latency_hist[dst] += s.latency_hist[src]
        if depth and s.recent is not None:
            shift = newest - s.recent.newest  # row k of the tally is row k + shift of the total
            rows = min(s.recent.depth, depth - shift) if shift < depth else 0
            if rows > 0:
                assert total.recent is not None
                total.recent.pulls[shift : shift + rows, dst] += s.recent.pulls[:rows, src]
                total.recent.reward_sum[shift : shift + rows, dst] += s.recent.reward_sum[
                    :rows, src
                ]
    if total.recent is not None:
        object.__setattr__(total.recent, "newest", newest if newest > -(2**62) else 0)
    return total


# -- the stored form -----------------------------------------------------------


def _tallies_to_wire(tallies: Mapping[Key, Tally]) -> list[Any]:
    return [[name, version, t.to_wire()] for (name, version), t in tallies.items()]


def _tallies_from_wire(wire: Any) -> dict[Key, Tally]:
    out: dict[Key, Tally] = {}
    for name, version, tally in wire:
        if not isinstance(name, str) or type(version) is not int:
            raise StateError("tally keys are (name: str, version: int)")
        out[(name, version)] = Tally.from_wire(tally)
    return out


def replica_to_wire(replica_id: str, replica: Replica) -> dict[str, Any]:
    """A push as plain data (what POST /sync and Redis carry)."""
    return {
        "replica": replica_id,
        "seq": replica.seq,
        "seen": replica.seen,
        "tallies": _tallies_to_wire(replica.tallies),
    }


def replica_from_wire(wire: Any) -> tuple[str, Replica]:
    """The inverse of ``replica_to_wire``; StateError on anything malformed."""
    try:
        rid, seq, seen = wire["replica"], wire["seq"], wire["seen"]
        if not isinstance(rid, str) or not rid or type(seq) is not int or seq < 0:
            raise StateError("replica must be a non-empty str and seq an int >= 0")
        if not isinstance(seen, int | float) or not math.isfinite(seen):
            raise StateError("seen must be a finite number")
        return rid, Replica(seq, float(seen), _tallies_from_wire(wire["tallies"]))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed push: {exc!r}") from exc


def pack(state: SharedState) -> bytes:
    """The stored form: magic, format, CRC-32 of the body, msgpack body."""
    body: bytes = msgpack.packb(
        {
            "replicas": [replica_to_wire(rid, r) for rid, r in state.replicas.items()],
            "retired": _tallies_to_wire(state.retired),
            "tombstones": dict(state.tombstones),
        },
        use_bin_type=True,
    )
    header = _MAGIC + bytes([FORMAT]) + zlib.crc32(body).to_bytes(4, "big")
    return header + body


def unpack(data: bytes) -> SharedState:
    """The inverse of ``pack``; StateError if the bytes are not a whole, valid state."""
    if len(data) < 9 or data[:4] != _MAGIC:
        raise StateError("not a mabware state (bad magic)")
    if data[4] != FORMAT:
        raise StateError(f"state format {data[4]} is not {FORMAT}; upgrade mabware")
    body = data[9:]
    if zlib.crc32(body).to_bytes(4, "big") != data[5:9]:
        raise StateError("state checksum mismatch (torn or corrupted write)")
    try:
        doc = msgpack.unpackb(body, raw=False, strict_map_key=False)
        replicas = dict(replica_from_wire(w) for w in doc["replicas"])
        tombstones = {str(k): float(v) for k, v in doc["tombstones"].items()}
        if not all(math.isfinite(at) for at in tombstones.values()):
            raise StateError("tombstone times must be finite")
        return SharedState(replicas, _tallies_from_wire(doc["retired"]), tombstones)
    except (AttributeError, KeyError, TypeError, ValueError, msgpack.UnpackException) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed state: {exc!r}") from exc
