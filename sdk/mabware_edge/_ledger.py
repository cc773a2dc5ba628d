"""This replica's totals, the decisions it may still be rewarded for, and the push body.

A replica pushes its *cumulative* totals per (experiment, version, arm):
pulls, reward sum, sum of squares and importance-weighted gain, plus time
buckets for drift policies. The server keeps the push with the highest
seq per replica and sums over replicas, so a lost push is made good by
the next one and a repeated one changes nothing. The body is push wire
format 2 of ``mabware/store/_wire.py``::

    {"replica": id, "seq": int, "seen": float,
     "tallies": [[name, version, {"arms": [...]}], ...],
     "buckets": [[newest, depth, pulls, rewards] or nil, ...]  (only if any),
     "columns": bit mask of the columns sent, "sums": little-endian float64 rows}

Columns are the server's SUMS order: pulls, reward_sum, reward_sq_sum,
ipw_gain_sum (then responses, errors and a latency histogram that the edge
never measures, so their bits stay clear and the server fills zeros).
"""

from __future__ import annotations

import struct
from _thread import allocate_lock  # threading.Lock itself, without importing threading
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

Key = tuple[str, int]
Record = tuple[str, int, str, float]  # experiment, version, arm, propensity
COLUMNS = 0b1111  # pulls, reward_sum, reward_sq_sum, ipw_gain_sum


class Tally:
    """One (experiment, version)'s per-arm sums; arms only ever get appended."""

    __slots__ = (
        "arms",
        "bucket_seconds",
        "depth",
        "gains",
        "pulls",
        "recent",
        "rewards",
        "squares",
    )

    def __init__(self, arms: Iterable[str], bucket_seconds: float, depth: int) -> None:
        self.arms: list[str] = list(arms)
        n = len(self.arms)
        self.pulls, self.rewards = [0.0] * n, [0.0] * n
        self.squares, self.gains = [0.0] * n, [0.0] * n
        self.bucket_seconds, self.depth = bucket_seconds, depth
        #: time bucket index -> [pulls per arm, rewards per arm]
        self.recent: dict[int, tuple[list[float], list[float]]] = {}

    def slots(self, arms: Iterable[str]) -> tuple[int, ...]:
        """Where each of ``arms`` is kept, appending those not kept yet."""
        arms = tuple(arms)
        if len(arms) == len(self.arms) and self.arms == list(arms):
            return tuple(range(len(arms)))  # the usual case, once per experiment per snapshot
        out = []
        for arm in arms:
            if arm not in self.arms:
                self.arms.append(arm)
                for column in (self.pulls, self.rewards, self.squares, self.gains):
                    column.append(0.0)
                for row in self.recent.values():
                    row[0].append(0.0)
                    row[1].append(0.0)
            out.append(self.arms.index(arm))
        return tuple(out)

    def add_to_bucket(self, bucket: int, slot: int, pulls: float, reward: float) -> None:
        row = self.recent.get(bucket)
        if row is None:
            n = len(self.arms)
            row = self.recent[bucket] = ([0.0] * n, [0.0] * n)
            for old in [b for b in self.recent if b <= bucket - self.depth]:
                del self.recent[old]  # past the policy's window: never read again
        row[0][slot] += pulls
        row[1][slot] += reward

    def copy(self) -> Tally:
        twin = Tally(self.arms, self.bucket_seconds, self.depth)
        twin.pulls, twin.rewards = self.pulls[:], self.rewards[:]
        twin.squares, twin.gains = self.squares[:], self.gains[:]
        twin.recent = {b: (p[:], r[:]) for b, (p, r) in self.recent.items()}
        return twin

    def subtract(self, pushed: Tally) -> None:
        """Take away an earlier push's counts, by arm name; never below zero."""
        for j, arm in enumerate(pushed.arms):
            if arm not in self.arms:
                continue
            i = self.arms.index(arm)
            for mine, theirs in (
                (self.pulls, pushed.pulls),
                (self.rewards, pushed.rewards),
                (self.squares, pushed.squares),
                (self.gains, pushed.gains),
            ):
                mine[i] = max(mine[i] - theirs[j], 0.0)
            for bucket, (their_pulls, their_rewards) in pushed.recent.items():
                row = self.recent.get(bucket)
                if row is not None:
                    row[0][i] = max(row[0][i] - their_pulls[j], 0.0)
                    row[1][i] = max(row[1][i] - their_rewards[j], 0.0)

    def empty(self) -> bool:
        columns = (self.pulls, self.rewards, self.squares, self.gains)
        timed = (any(p) or any(r) for p, r in self.recent.values())
        return not any(map(any, columns)) and not any(timed)

    def buckets_wire(self, now: float) -> list[Any]:
        """``[newest, depth, pulls, rewards]``: rows newest first, trailing zero rows left out."""
        newest = max([int(now // self.bucket_seconds), *self.recent])
        rows = [self.recent.get(newest - k) for k in range(self.depth)]
        used = [k for k, row in enumerate(rows) if row is not None and (any(row[0]) or any(row[1]))]
        rows = rows[: used[-1] + 1] if used else []
        zeros = [0.0] * len(self.arms)
        pulls = [x for row in rows for x in (row[0] if row else zeros)]
        rewards = [x for row in rows for x in (row[1] if row else zeros)]
        return [newest, self.depth, _float64(pulls), _float64(rewards)]


def _float64(values: Iterable[float]) -> bytes:
    # struct, not array: msgpack has imported it already, and "<" spells the byte order
    row = tuple(values)
    return struct.pack(f"<{len(row)}d", *row)


class Ledger:
    """Every tally of this replica and the decisions it may be rewarded for.

    ``lock`` guards both; the client holds it for a few list updates per
    decision or reward. ``changes`` rises with every count, so the pusher
    sees whether anything is new and the client when ``push_at`` is reached.

    Args:
        window: how many decisions are remembered for rewards (oldest forgotten first).
    """

    def __init__(self, window: int) -> None:
        self.lock = allocate_lock()
        self.tallies: dict[Key, Tally] = {}
        self.changes = 0
        self.push_at = float("inf")  # changes at which an early push is due
        self.window = window
        # Decisions and once-rewarded ids are kept in two generations each: the
        # newer fills up to ``window``, then becomes the older and the oldest
        # is dropped whole. So at least the last ``window`` are known (at
        # most twice that), at the cost of one dict insert per decision.
        #: decision id -> (experiment, version, arm, propensity)
        self.records: dict[int, Record] = {}
        self.older: dict[int, Record] = {}
        self._rewarded: set[int] = set()
        self._rewarded_older: set[int] = set()

    def remember(self, decision: int, record: Record) -> None:
        """Keep a decision for its rewards (the lock is held)."""
        self.records[decision] = record
        if len(self.records) >= self.window:
            self.older, self.records = self.records, {}

    def recall(self, decision: int) -> Record | None:
        """The decision's record, kept a window longer now that it is used (the lock is held)."""
        record = self.records.get(decision)
        if record is None:
            record = self.older.pop(decision, None)
            if record is not None:
                self.remember(decision, record)
        return record

    def rewarded(self, decision: int) -> bool:
        """Was a ``once`` reward counted for this decision (in the window)?"""
        return decision in self._rewarded or decision in self._rewarded_older

    def mark_rewarded(self, decision: int) -> bool:
        """Note a ``once`` reward; False if it was noted already (the lock is held)."""
        if self.rewarded(decision):
            return False
        self._rewarded.add(decision)
        if len(self._rewarded) >= self.window:
            self._rewarded_older, self._rewarded = self._rewarded, set()
        return True

    def tally(self, key: Key, arms: Iterable[str], bucket_seconds: float, depth: int) -> Tally:
        """The tally of ``key``, made if new; the lock is held by the caller."""
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = Tally(arms, bucket_seconds, depth)
        else:  # a later snapshot may change the bucket settings; arms only grow
            tally.bucket_seconds, tally.depth = bucket_seconds, depth
        return tally

    def copy(self) -> tuple[dict[Key, Tally], int]:
        """A copy of every tally, and ``changes`` as of that copy."""
        with self.lock:
            return {k: t.copy() for k, t in self.tallies.items()}, self.changes

    def subtract(self, pushed: Mapping[Key, Tally]) -> None:
        """Take away a push's totals (what the server already holds of an old replica id)."""
        with self.lock:
            for key, tally in pushed.items():
                mine = self.tallies.get(key)
                if mine is not None:
                    mine.subtract(tally)
            self.changes += 1


def push_body(replica: str, seq: int, seen: float, tallies: Mapping[Key, Tally]) -> bytes:
    """The msgpack body of ``POST /sync`` (module docstring), all-zero tallies left out."""
    kept = [(key, t) for key, t in tallies.items() if not t.empty()]
    body: dict[str, Any] = {
        "replica": replica,
        "seq": seq,
        "seen": seen,
        "tallies": [[name, version, {"arms": list(t.arms)}] for (name, version), t in kept],
    }
    if any(t.depth for _, t in kept):
        body["buckets"] = [t.buckets_wire(seen) if t.depth else None for _, t in kept]
    body["columns"] = COLUMNS
    body["sums"] = _float64(
        x
        for _, t in kept
        for row in zip(t.pulls, t.rewards, t.squares, t.gains, strict=True)
        for x in row
    )
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed
