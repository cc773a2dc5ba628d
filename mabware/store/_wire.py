"""The wire form of pushes and tallies (format 2), and its validation.

A push (``replica_to_wire``: what ``POST /sync`` and Redis carry) is::

    {"replica": id, "seq": int, "seen": float, **TALLIES}

and TALLIES (the retired totals too) is::

    {"tallies": [[name, version, {"arms": [arm, ...]}], ...],
     "buckets": [BUCKETS or nil, one per tally]  (absent when none has any),
     "columns": bit mask, "sums": one little-endian float64 block}

The block's rows are the arms of each tally in turn, its columns the
``WIDTH`` sums (the ``SUMS``, then the latency histogram) whose bit is set
in ``columns``; the others are zero in every row and left out. A push of a
hundred experiments is validated (finite; >= 0 but the reward sums) by one numpy call, not
seven per tally, and its "tallies" list, the same at every push of a
configuration, by one comparison with a list checked before. BUCKETS
(drift policies) is ``[newest, depth, pulls, reward sums]``, float64 rows
newest first, trailing all-zero rows left out.

Format 1 (seven arrays in each tally, buckets among them) is still read:
an upgrade keeps what was learnt (``mabware.store._stored``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

from mabware._types import FloatArray
from mabware.statistics import LATENCY_BOUNDS, Buckets, Statistics
from mabware.store._model import (
    MAX_BUCKETS,
    SUMS,
    WIDTH,
    Key,
    Layout,
    PackedTallies,
    Replica,
    StateError,
    Tally,
)

#: columns of the sums block that may be negative: the reward sum (SUMS[1])
_SIGNED = (SUMS.index("reward_sum"),)

#: what decoding malformed data raises, turned into StateError by the decoders
DECODE_ERRORS = (KeyError, TypeError, ValueError, msgpack.UnpackException)


# -- arrays ---------------------------------------------------------------------


def _bytes(arr: FloatArray) -> bytes:
    return np.ascontiguousarray(arr, dtype="<f8").tobytes()


def _floats(
    value: Any, shape: tuple[int, ...], name: str, signed: tuple[int, ...] = ()
) -> FloatArray:
    """Float64 bytes as a read-only array of ``shape`` (one -1 allowed), finite and >= 0.

    ``signed`` names the last-axis columns that may be negative (a reward sum:
    an experiment's reward range may reach below 0); they are still finite.
    """
    if not isinstance(value, bytes) or len(value) % 8:
        raise StateError(f"{name}: expected float64 bytes")
    arr = np.frombuffer(value, dtype="<f8").astype(np.float64, copy=False)
    known = math.prod(w for w in shape if w != -1)
    fits = (known > 0 and arr.size % known == 0) if -1 in shape else arr.size == known
    if not fits:
        raise StateError(f"{name}: {arr.size} numbers do not fit shape {shape}")
    arr = arr.reshape(tuple(arr.size // known if w == -1 else w for w in shape))
    # min and max carry a NaN through, so two reductions catch NaN, inf and negatives
    if arr.size and not (arr.min() >= 0.0 and arr.max() < math.inf):
        counts = np.delete(arr, signed, axis=-1) if signed else arr
        if not (np.isfinite(arr).all() and (counts.size == 0 or counts.min() >= 0.0)):
            raise StateError(f"{name}: counts must be finite and >= 0 (reward sums finite)")
    arr.flags.writeable = False  # shared through the memo: states are immutable
    return arr


def _widened(sums: FloatArray, columns: list[int]) -> FloatArray:
    out = np.zeros((sums.shape[0], WIDTH), dtype=np.float64)
    out[:, columns] = sums
    out.flags.writeable = False
    return out


def _buckets_to_wire(b: Buckets) -> list[Any]:
    used = np.flatnonzero(b.pulls.any(axis=1) | b.reward_sum.any(axis=1))
    rows = int(used[-1]) + 1 if used.size else 0  # older rows are all zeros
    return [b.newest, b.depth, _bytes(b.pulls[:rows]), _bytes(b.reward_sum[:rows])]


def _buckets_from_wire(wire: Any, n: int) -> Buckets:
    if not isinstance(wire, list):
        raise StateError("buckets must be [newest, depth, pulls, reward sums]")
    newest, depth, pulls, rewards = wire
    if type(newest) is not int or type(depth) is not int:
        raise StateError("buckets: newest and depth must be ints")
    if not 0 <= depth <= MAX_BUCKETS:  # a push must not make us allocate at will
        raise StateError(f"buckets: depth must be in 0..{MAX_BUCKETS}, got {depth}")
    return Buckets(
        newest,
        _padded(_floats(pulls, (-1, n), "buckets.pulls"), depth),
        _padded(_floats(rewards, (-1, n), "buckets.reward_sum", tuple(range(n))), depth),
    )


def _padded(rows: FloatArray, depth: int) -> FloatArray:
    if rows.shape[0] > depth:
        raise StateError(f"buckets: {rows.shape[0]} rows for a depth of {depth}")
    out = np.zeros((depth, rows.shape[1]), dtype=np.float64)
    out[: rows.shape[0]] = rows
    out.flags.writeable = False
    return out


#: arm lists already found valid, each as one shared tuple. Every push of a
#: configuration repeats the same lists, and checking them anew was most of
#: the cost of decoding a push; a shared tuple also compares fastest.
_known_arms: dict[tuple[str, ...], tuple[str, ...]] = {}
_KNOWN_ARMS_MAX = 10_000


def _arms(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):  # tuple("ab") would be two arms
        raise StateError("arms must be a list of names")
    arms = tuple(value)
    try:
        known = _known_arms.get(arms)  # only valid tuples of str are in, so equal is valid
    except TypeError:  # an unhashable name: no string
        known = None
    if known is not None:
        return known
    if arms and all(isinstance(a, str) for a in arms) and len(set(arms)) == len(arms):
        if len(_known_arms) >= _KNOWN_ARMS_MAX:  # bounded: a stream of odd pushes
            _known_arms.clear()
        _known_arms[arms] = arms
        return arms
    raise StateError("arms must be one or more unique strings")


def _key(name: Any, version: Any) -> Key:
    if not isinstance(name, str) or type(version) is not int:
        raise StateError("tally keys are (name: str, version: int)")
    return (name, version)


# -- tallies ------------------------------------------------------------------------


def tally_to_wire(tally: Tally) -> dict[str, Any]:
    """One tally alone: ``{"arms", "sums", "buckets"?}`` (``Tally.to_wire``)."""
    wire: dict[str, Any] = {"arms": list(tally.arms), "sums": _bytes(tally.sums)}
    if tally.stats.recent is not None:
        wire["buckets"] = _buckets_to_wire(tally.stats.recent)
    return wire


def tally_from_wire(wire: Any) -> Tally:
    """The inverse of ``tally_to_wire``, or a format 1 tally; StateError if malformed."""
    try:
        arms = _arms(wire["arms"])
        n = len(arms)
        buckets = wire.get("buckets")
        recent = None if buckets is None else _buckets_from_wire(buckets, n)
        if "sums" in wire:
            return Tally.of_sums(arms, _floats(wire["sums"], (n, WIDTH), "sums", _SIGNED), recent)
        sums = {  # format 1
            name: _floats(wire[name], (n,), name, tuple(range(n)) if name == "reward_sum" else ())
            for name in SUMS
        }
        hist = _floats(wire["latency_hist"], (n, len(LATENCY_BOUNDS)), "latency_hist")
        return Tally(arms, Statistics(latency_hist=hist, recent=recent, **sums))
    except DECODE_ERRORS as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed tally: {exc!r}") from exc


def tallies_to_wire(tallies: Mapping[Key, Tally]) -> dict[str, Any]:
    """TALLIES: each tally's key and arms, their buckets, and one block of all their sums."""
    packed = PackedTallies.of(tallies)
    wire: dict[str, Any] = {
        "tallies": [
            [name, version, {"arms": list(arms)}] for (name, version), arms in packed.layout
        ]
    }
    if any(recent is not None for recent in packed.recent):
        wire["buckets"] = [None if r is None else _buckets_to_wire(r) for r in packed.recent]
    # Columns that are zero in every row stay out: most experiments count no
    # errors, no latency, no IPW gain, and the state is written at every sync.
    columns = np.flatnonzero(packed.sums.any(axis=0))
    wire["columns"] = sum(1 << int(c) for c in columns)
    wire["sums"] = _bytes(packed.sums if columns.size == WIDTH else packed.sums[:, columns])
    return wire


def tallies_from_wire(wire: Any) -> Mapping[Key, Tally]:
    """The inverse of ``tallies_to_wire`` (or format 1's list); StateError if malformed."""
    try:
        if isinstance(wire, list):  # format 1: [[name, version, tally with its arrays], ...]
            out: dict[Key, Tally] = {}
            for name, version, tally in wire:
                out[_key(name, version)] = tally_from_wire(tally)
            return out
        if not isinstance(wire, dict):
            raise StateError("tallies must be a list beside one block of sums")
        layout = _layout(wire["tallies"])
        buckets = wire.get("buckets")
        if buckets is None:
            recent: list[Buckets | None] = [None] * len(layout)
        elif isinstance(buckets, list) and len(buckets) == len(layout):
            recent = [
                None if b is None else _buckets_from_wire(b, len(arms))
                for b, (_, arms) in zip(buckets, layout, strict=True)
            ]
        else:
            raise StateError("buckets must be a list with one entry (or nil) per tally")
        mask = wire["columns"]
        if type(mask) is not int or not 0 <= mask < 1 << WIDTH:
            raise StateError(f"columns must be a bit mask of {WIDTH} columns")
        columns = [c for c in range(WIDTH) if mask >> c & 1]
        rows = sum(len(arms) for _, arms in layout)
        signed = tuple(i for i, c in enumerate(columns) if c in _SIGNED)
        sums = _floats(wire["sums"], (rows, len(columns)), "sums", signed)
        if len(columns) < WIDTH:  # the columns left out are zeros
            sums = _widened(sums, columns)
        return PackedTallies(layout, sums, recent)
    except DECODE_ERRORS as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed tallies: {exc!r}") from exc


#: the "tallies" lists decoded last and their layouts: every push of a
#: configuration repeats one list, and comparing it (in C) with a known one
#: costs a fraction of checking it entry by entry
_known_layouts: list[tuple[list[Any], Layout]] = []
_KNOWN_LAYOUTS_MAX = 8


def _layout(entries: Any) -> Layout:
    """The validated (key, arms) of each ``[name, version, {"arms": [...]}]``."""
    global _known_layouts
    if not isinstance(entries, list):
        raise StateError("tallies must be a list of [name, version, {arms}]")
    known = _known_layouts
    for raw, layout in known:
        # equal, and the versions ints (1.0 and True equal 1): valid as that one was
        if raw == entries and all(type(e[1]) is int for e in entries):
            return layout
    found: list[tuple[Key, tuple[str, ...]]] = []
    for name, version, tally in entries:
        if not isinstance(tally, dict):
            raise StateError("a tally is a map of its arms")
        arms = _arms(tally["arms"])
        if len(tally) != 1:  # a format 1 array beside the block: a mixed push
            extra = min(tally.keys() - {"arms"})
            raise StateError(f"unexpected tally field {extra!r}: sums are in the block")
        found.append((_key(name, version), arms))
    if len({key for key, _ in found}) != len(found):
        raise StateError("tallies: a key appears twice")
    layout = tuple(found)
    # Compared later with a list of our own making, which no caller can change.
    raw = [[name, version, {"arms": list(arms)}] for (name, version), arms in layout]
    _known_layouts = [(raw, layout), *known[: _KNOWN_LAYOUTS_MAX - 1]]
    return layout


# -- pushes -------------------------------------------------------------------------


def replica_to_wire(replica_id: str, replica: Replica) -> dict[str, Any]:
    """A push as plain data (what POST /sync and Redis carry)."""
    return {
        "replica": replica_id,
        "seq": replica.seq,
        "seen": replica.seen,
        **tallies_to_wire(replica.tallies),
    }


def replica_from_wire(wire: Any) -> tuple[str, Replica]:
    """The inverse of ``replica_to_wire`` (or a format 1 push); StateError if malformed."""
    try:
        rid, seq, seen = wire["replica"], wire["seq"], wire["seen"]
        if not isinstance(rid, str) or not rid or type(seq) is not int or seq < 0:
            raise StateError("replica must be a non-empty str and seq an int >= 0")
        if isinstance(seen, bool) or not isinstance(seen, int | float) or not math.isfinite(seen):
            raise StateError("seen must be a finite number")
        tallies = tallies_from_wire(wire if "sums" in wire else wire["tallies"])
        return rid, Replica(seq, float(seen), tallies)
    except DECODE_ERRORS as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed push: {exc!r}") from exc
