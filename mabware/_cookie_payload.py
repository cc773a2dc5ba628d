"""The cookie's contents and their MessagePack form (``mabware.cookies`` spec step 2).

Public names are re-exported by ``mabware.cookies``; this module only keeps
the schema code out of the codec's way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import msgpack

MAX_INT = 2**63 - 1


class CookieEntry(NamedTuple):
    """One experiment's assignment as the cookie carries it.

    A named tuple (not a frozen dataclass): a new visitor makes one per
    experiment on the request path, and a tuple is built several times
    faster.

    Attributes:
        arm: the arm's name.
        version: the experiment version the arm was assigned under, >= 0.
        decision: the decision id, random in ``0 .. 2**63 - 1``.
        assigned: unix seconds when the arm was assigned.
        rewarded: a reward was counted for this assignment (``reward_mode="once"``).
    """

    arm: str
    version: int
    decision: int
    assigned: int
    rewarded: bool = False


@dataclass(frozen=True, slots=True)
class CookieState:
    """Everything in one cookie.

    Attributes:
        issued: unix seconds when the cookie was first issued (kept on re-issue).
        entries: experiment name -> entry; a plain dict, to be treated as read-only.
    """

    issued: int
    entries: Mapping[str, CookieEntry]


class _Pairs(list[tuple[object, object]]):
    """A MessagePack map as its key-value pairs (so duplicate keys can be seen)."""


def unpack(plaintext: bytes) -> CookieState | None:
    """Spec step 2 in reverse: the state, or None when the schema does not hold."""
    limit = len(plaintext)
    obj = msgpack.unpackb(
        plaintext,
        raw=False,
        use_list=True,
        strict_map_key=True,
        object_pairs_hook=_Pairs,
        max_str_len=limit,
        max_bin_len=0,
        max_array_len=limit,
        max_map_len=limit,
        max_ext_len=0,
    )
    if type(obj) is not list or len(obj) != 2:
        return None
    issued, pairs = obj
    if type(issued) is not int or not 0 <= issued <= MAX_INT or type(pairs) is not _Pairs:
        return None
    entries: dict[str, CookieEntry] = {}
    for experiment, row in pairs:
        if type(experiment) is not str or experiment in entries:
            return None
        if type(row) is not list or len(row) != 5:
            return None
        arm, version, decision, assigned, rewarded = row
        if (
            type(arm) is not str
            or type(version) is not int
            or type(decision) is not int
            or type(assigned) is not int
            or type(rewarded) is not bool
            or not (0 <= version <= MAX_INT and 0 <= decision <= MAX_INT)
            or not 0 <= assigned <= MAX_INT
        ):
            return None
        entries[experiment] = CookieEntry(arm, version, decision, assigned, rewarded)
    return CookieState(issued, entries)


def int_ok(value: object) -> bool:
    """An int (not a bool) in ``0 .. 2**63 - 1``."""
    return type(value) is int and 0 <= value <= MAX_INT


def check(state: CookieState) -> None:
    """Raise ValueError unless ``state`` fits the schema (a bug in the caller)."""
    if not isinstance(state, CookieState) or not int_ok(state.issued):
        raise ValueError(f"expected a CookieState with issued in 0..2**63-1, got {state!r}")
    if not isinstance(state.entries, Mapping):
        raise ValueError("CookieState.entries must be a mapping of experiment name -> entry")
    for experiment, entry in state.entries.items():
        if not (
            type(experiment) is str
            and isinstance(entry, CookieEntry)
            and type(entry.arm) is str
            and int_ok(entry.version)
            and int_ok(entry.decision)
            and int_ok(entry.assigned)
            and type(entry.rewarded) is bool
        ):
            raise ValueError(f"invalid cookie entry for experiment {experiment!r}: {entry!r}")


def row(entry: CookieEntry) -> tuple[object, ...]:
    """An entry as its MessagePack array (a tuple packs as one)."""
    return tuple(entry)


def packb(obj: object) -> bytes:
    """``msgpack.packb`` as the spec writes it; ValueError for unencodable text."""
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
    except UnicodeEncodeError:
        raise ValueError("cookie strings must be encodable as UTF-8 (no lone surrogates)") from None
    return packed


def map_header_bytes(n: int) -> int:
    """Bytes of a MessagePack map header for ``n`` entries."""
    return 1 if n < 16 else 3 if n < 2**16 else 5
