"""What the merge works on: tallies, replicas, the shared state, and its errors.

``mabware.store.merge`` re-exports every public name here; this module
exists so that the arithmetic (``_sums``) and the codec (``_wire``) can
share the types without importing each other.

A tally's fixed per-arm sums (the ``SUMS``, then the latency histogram)
can live side by side in one ``(n_arms, WIDTH)`` float64 block, and its
``Statistics`` arrays can be column views of that block. Adding two tallies
of the same arms is then one numpy addition instead of seven, and a whole
decoded push is one block validated by one numpy call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from mabware._types import FloatArray
from mabware.exceptions import MabwareError
from mabware.statistics import LATENCY_BOUNDS, Buckets, Statistics

#: per-arm sums carried by a tally (latency_hist and the buckets besides)
SUMS = ("pulls", "reward_sum", "reward_sq_sum", "ipw_gain_sum", "responses", "errors")
#: columns of a tally's sums block: the SUMS, then the latency histogram's buckets
WIDTH = len(SUMS) + len(LATENCY_BOUNDS)
#: most time buckets a tally may carry (a week of minutes is 10,080)
MAX_BUCKETS = 100_000

#: an experiment's statistics are kept per (name, version): a bumped version starts afresh
Key = tuple[str, int]


class StateError(MabwareError, ValueError):
    """A push or a stored state that is malformed, non-finite or negative."""


class RetiredReplicaError(MabwareError):
    """The pushing replica was folded into the retired totals; restart under a new id.

    Attributes:
        folded_seq: the seq of the replica's push that the retired totals
            hold, so the replica knows which of its pushes was counted (one
            whose reply it never got, maybe); None when the backend does
            not say.
    """

    def __init__(
        self,
        message: str,
        *,
        payload: Any = None,
        original_error: BaseException | None = None,
        folded_seq: int | None = None,
    ) -> None:
        super().__init__(message, payload=payload, original_error=original_error)
        self.folded_seq = folded_seq


def stats_of(sums: FloatArray, recent: Buckets | None = None) -> Statistics:
    """Statistics whose arrays are column views of a ``(n_arms, WIDTH)`` block (no copy)."""
    return Statistics(
        pulls=sums[:, 0],
        reward_sum=sums[:, 1],
        reward_sq_sum=sums[:, 2],
        ipw_gain_sum=sums[:, 3],
        responses=sums[:, 4],
        errors=sums[:, 5],
        latency_hist=sums[:, len(SUMS) :],
        recent=recent,
    )


def sums_of(stats: Statistics) -> FloatArray:
    """The ``(n_arms, WIDTH)`` block of ``stats``' fixed sums (a copy)."""
    out = np.empty((stats.n_arms, WIDTH), dtype=np.float64)
    for column, name in enumerate(SUMS):
        out[:, column] = getattr(stats, name)
    out[:, len(SUMS) :] = stats.latency_hist
    return out


@dataclass(frozen=True)
class Tally:
    """One replica's (or the retired) statistics of one experiment, by arm name."""

    arms: tuple[str, ...]
    stats: Statistics

    @classmethod
    def of_sums(cls, arms: tuple[str, ...], sums: FloatArray, recent: Buckets | None) -> Tally:
        """A tally viewing ``sums`` (``(n_arms, WIDTH)``), which becomes its ``sums``."""
        tally = cls(arms, stats_of(sums, recent))
        tally.__dict__["sums"] = sums  # what the cached property would build, without a copy
        return tally

    @cached_property
    def sums(self) -> FloatArray:
        """The fixed per-arm sums side by side, ``(n_arms, WIDTH)``: SUMS, then latency_hist."""
        return sums_of(self.stats)

    def to_wire(self) -> dict[str, Any]:
        """Plain data; arrays as little-endian float64 bytes (exact and compact)."""
        from mabware.store._wire import tally_to_wire  # the codec imports this module

        return tally_to_wire(self)

    @classmethod
    def from_wire(cls, wire: Any) -> Tally:
        """Validate and build (this format or format 1's); StateError names what is wrong."""
        from mabware.store._wire import tally_from_wire

        return tally_from_wire(wire)


#: a tally's place in a packed block: its key and its arms, in block order
Layout = tuple[tuple[Key, tuple[str, ...]], ...]


class PackedTallies(Mapping[Key, Tally]):
    """Tallies whose fixed sums share one ``(rows, WIDTH)`` block, in ``layout`` order.

    What a decoded push or retired set is, and what ``SharedStore`` pushes.
    A ``Tally`` is built only when one is looked up: the file backend's
    exchange merges and writes without building any, and
    ``merge.combined_many`` adds a whole block at once when its layout is
    the one asked for. Immutable like every state: the block is made
    read-only, since the codec's memo may hand one object to many callers.

    Args:
        layout: (key, arms) of each tally, in the order of the block's rows.
        sums: the block; its rows are each tally's arms in turn.
        recent: each tally's time buckets (None for a stationary one).
    """

    def __init__(self, layout: Layout, sums: FloatArray, recent: Sequence[Buckets | None]) -> None:
        self.layout = layout
        self.sums = sums
        sums.flags.writeable = False  # a memo may hand this object to many callers
        self.recent = tuple(recent)
        if len(self.recent) != len(layout):
            raise ValueError("one time buckets (or None) per tally")
        self._built: dict[Key, Tally] = {}

    @cached_property
    def _rows(self) -> dict[Key, tuple[int, int, int]]:
        """key -> (index in layout, first row, end row); built on the first lookup."""
        rows: dict[Key, tuple[int, int, int]] = {}
        row = 0
        for index, (key, arms) in enumerate(self.layout):
            rows[key] = (index, row, row + len(arms))
            row += len(arms)
        if row != self.sums.shape[0]:
            raise ValueError("the layout does not describe the block")
        return rows

    @classmethod
    def of(cls, tallies: Mapping[Key, Tally]) -> PackedTallies:
        """``tallies`` packed into one block (the same object if already packed)."""
        if isinstance(tallies, PackedTallies):
            return tallies
        stats = [t.stats for t in tallies.values()]
        layout = tuple((key, t.arms) for key, t in tallies.items())
        sums = np.empty((sum(len(arms) for _, arms in layout), WIDTH), dtype=np.float64)
        if stats:  # a column at a time: eight numpy calls, not eight per tally
            for column, name in enumerate(SUMS):
                sums[:, column] = np.concatenate([getattr(s, name) for s in stats])
            sums[:, len(SUMS) :] = np.concatenate([s.latency_hist for s in stats])
        return cls(layout, sums, [s.recent for s in stats])

    def part(self, key: Key) -> tuple[tuple[str, ...], FloatArray, Buckets | None] | None:
        """The arms, the sums rows and the buckets of ``key``, without building a Tally."""
        where = self._rows.get(key)
        if where is None:
            return None
        index, start, end = where
        return self.layout[index][1], self.sums[start:end], self.recent[index]

    def __getitem__(self, key: Key) -> Tally:
        tally = self._built.get(key)
        if tally is None:
            part = self.part(key)
            if part is None:
                raise KeyError(key)
            tally = self._built[key] = Tally.of_sums(*part)
        return tally

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[Key]:
        return (key for key, _ in self.layout)

    def __len__(self) -> int:
        return len(self.layout)

    def __repr__(self) -> str:
        return f"PackedTallies({len(self)} tallies, {self.sums.shape[0]} rows)"


def part_of(
    tallies: Mapping[Key, Tally], key: Key
) -> tuple[tuple[str, ...], FloatArray, Buckets | None] | None:
    """``PackedTallies.part`` for any mapping of tallies."""
    if isinstance(tallies, PackedTallies):
        return tallies.part(key)
    tally = tallies.get(key)
    return None if tally is None else (tally.arms, tally.sums, tally.stats.recent)


@dataclass(frozen=True)
class Replica:
    """A replica's latest push: its sequence number, when it was seen, its tallies."""

    seq: int
    seen: float
    tallies: Mapping[Key, Tally]


@dataclass(frozen=True)
class SharedState:
    """Everything the shared store holds.

    ``tombstones`` and ``folded_seqs`` describe the retired replicas: when
    each was folded into ``retired``, and the seq of the push of it that
    ``retired`` holds (absent for a state written before format 2).
    """

    replicas: Mapping[str, Replica] = field(default_factory=dict)
    retired: Mapping[Key, Tally] = field(default_factory=dict)
    tombstones: Mapping[str, float] = field(default_factory=dict)  # replica id -> folded at
    folded_seqs: Mapping[str, int] = field(default_factory=dict)  # replica id -> seq folded
