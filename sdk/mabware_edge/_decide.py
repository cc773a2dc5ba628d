"""The decision path: a snapshot's tables in, a ``Decision`` out, a pull counted.

``EdgeClient`` inherits it; it lives apart because it is the hot path, kept
to plain Python over tables precomputed once per snapshot: one clock read,
one BLAKE2b and one bisect for a unit id, one short lock to count the pull
and remember the decision for its reward. Every departure from that path
(no snapshot, stale, disabled, ineligible, a cookie's arm) is a short
branch before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from mabware_edge._assign import SCALE, blake2b
from mabware_edge._decision import (
    ASSIGNED,
    COOKIE,
    FALLBACK,
    INELIGIBLE,
    NO_SNAPSHOT,
    SAMPLED,
    STALE,
    UNKNOWN_EXPERIMENT,
    Cookie,
    CookieEntry,
    Decision,
)
from mabware_edge._events import Events
from mabware_edge._feed import Compiled, Feed, View
from mabware_edge._ledger import Ledger
from mabware_edge._schedule import Scheduler

if TYPE_CHECKING:
    from _random import Random

try:
    from _bisect import bisect_right  # bisect.bisect_right itself, without bisect.py's import
except ImportError:  # pragma: no cover - an interpreter without CPython's module
    from bisect import bisect_right

_new = tuple.__new__  # builds a Decision without NamedTuple's keyword handling


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1), e.g. ``random.Random``."""

    def random(self) -> float: ...


class Decider:
    """``EdgeClient.decide`` and its branches (the client sets every attribute)."""

    _counts: dict[str, int]  # decisions by reason (a plain dict: cheaper than a Counter)
    _feed: Feed
    _ledger: Ledger
    _schedule: Scheduler
    _clock: Callable[[], float]
    _stale_after: float
    _defaults: dict[str, str]
    _rng: RandomSource
    _ids: Random
    _errors: Events
    _stale_log: Events

    def decide(
        self,
        experiment: str,
        unit_id: str | None = None,
        *,
        eligible: bool = True,
        cookie: Cookie | None = None,
    ) -> Decision:
        """The arm of ``experiment`` for one visitor; never raises, never waits.

        Args:
            experiment: the experiment's name.
            unit_id: the app's stable id for the visitor (a user id): the same
                arm as the middleware gives it. None: sampled with ``rng``.
            eligible: False for visitors who must not be in experiments (bots,
                no consent): the default arm, not counted.
            cookie: the visitor's cookie (``read_cookie``): its arm is kept
                while the experiment version matches and the arm exists.

        Returns:
            The decision; ``reason`` says how it was made.
        """
        try:
            view = self._feed.view
            now = self._clock()
            if now >= self._schedule.due:
                self._schedule.kick()
            if view is None:
                return self._absent(experiment, NO_SNAPSHOT, None, now)
            e = view.experiments.get(experiment)
            if e is None:
                return self._absent(experiment, UNKNOWN_EXPERIMENT, view.seq, now)
            if now - view.issued > self._stale_after:
                age = now - view.issued
                self._stale_log("stale", f"snapshot {view.seq} is {age:.0f} s old: default arms")
                return self._default(e, view, STALE, now)
            if e.status != "active":
                return self._default(e, view, e.status, now)
            if not eligible:
                return self._default(e, view, INELIGIBLE, now)
            if cookie is not None:
                kept = cookie.entries.get(experiment)
                if kept is not None and kept.version == e.version and kept.arm in e.index:
                    return self._kept(e, view, kept)
            if type(unit_id) is str:
                try:  # _assign.unit_u, inlined: this is the hot path
                    u = unit_id.encode()
                    h = blake2b(e.head + len(u).to_bytes(4, "big") + u, digest_size=8).digest()
                    i, reason = bisect_right(e.table, (int.from_bytes(h) >> 11) * SCALE), ASSIGNED
                except (UnicodeEncodeError, OverflowError):
                    i, reason = self._sample(e, unit_id)
            elif unit_id is None:
                i, reason = bisect_right(e.table, self._random()), SAMPLED
            else:
                i, reason = self._sample(e, unit_id)
            did = self._ids.getrandbits(63)
            ledger = self._ledger
            lock = ledger.lock
            lock.acquire()  # not "with": a third of the cost, and nothing inside raises
            try:
                tally, slot = e.tally, e.slots[i]
                tally.pulls[slot] += 1.0
                if tally.depth:
                    tally.add_to_bucket(int(now // tally.bucket_seconds), slot, 1.0, 0.0)
                changes = ledger.changes = ledger.changes + 1
                records = ledger.records
                records[did] = e.records[i]
                if len(records) >= ledger.window:
                    ledger.older, ledger.records = records, {}
                self._counts[reason] += 1
            finally:
                lock.release()
            if changes >= ledger.push_at:
                self._schedule.kick()
            return _new(
                Decision,
                (
                    experiment,
                    e.arms[i],
                    e.payloads[i],
                    did,
                    e.allocation[i],
                    view.seq,
                    reason,
                    e.version,
                    int(now),
                ),
            )
        except Exception as exc:  # a broken clock or rng must not fail the request
            self._errors("decide", f"decide({experiment!r}) failed: {exc!r}; default arm")
            return self._fallback(experiment)

    @property
    def decisions(self) -> Counter[str]:
        """Decisions made so far, by reason (a copy)."""
        with self._ledger.lock:
            return +Counter(self._counts)

    def _random(self) -> float:
        u = self._rng.random()
        if not 0.0 <= u < 1.0:
            raise ValueError(f"rng.random() must be in [0, 1), got {u!r}")
        return u

    def _sample(self, e: Compiled, unit_id: object) -> tuple[int, str]:
        """A unit id the hash cannot take: sampled instead, as the middleware does."""
        self._errors("bad_unit_id", f"unit id of type {type(unit_id).__name__} unusable: sampled")
        return bisect_right(e.table, self._random()), SAMPLED

    def _kept(self, e: Compiled, view: View, entry: CookieEntry) -> Decision:
        arm, did, assigned = entry.arm, entry.decision, entry.assigned
        i = e.index[arm]
        ledger = self._ledger
        with ledger.lock:  # rewardable by id from here on (read_cookie noted a reward)
            if did not in ledger.records and did not in ledger.older:
                ledger.remember(did, e.records[i])
            self._counts[COOKIE] += 1
        return Decision(
            e.name, arm, e.payloads[i], did, e.allocation[i], view.seq, COOKIE, e.version, assigned
        )

    def _default(self, e: Compiled, view: View, reason: str, now: float) -> Decision:
        with self._ledger.lock:
            self._counts[reason] += 1
        i = e.default
        did = self._ids.getrandbits(63)
        return Decision(
            e.name, e.arms[i], e.payloads[i], did, 1.0, view.seq, reason, e.version, int(now)
        )

    def _absent(self, name: str, reason: str, seq: int | None, now: float) -> Decision:
        with self._ledger.lock:
            self._counts[reason] += 1
        arm = self._defaults.get(name) if reason == NO_SNAPSHOT else None
        did = self._ids.getrandbits(63)
        return Decision(name, arm, None, did, 1.0 if arm else 0.0, seq, reason, None, int(now))

    def _fallback(self, name: str) -> Decision:
        view = self._feed.view
        e = view.experiments.get(name) if view is not None else None
        arm = e.arms[e.default] if e is not None else self._defaults.get(name)
        value = e.payloads[e.default] if e is not None else None
        seq = view.seq if view is not None else None
        version = e.version if e is not None else None
        return Decision(name, arm, value, 0, 1.0 if arm else 0.0, seq, FALLBACK, version, 0)
