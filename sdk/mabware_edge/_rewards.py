"""The gate every reward passes before it reaches this replica's totals.

As in ``mabware/rewards.py``: a reward for an unknown experiment or arm, or
whose value is not a finite number (bool excluded) within the experiment's
``reward_range``, is dropped, counted by reason and logged once a minute;
``strict=True`` raises ValueError instead. The edge adds two reasons of its
own: ``unknown_decision`` (an id never decided here, or forgotten past the
window) and ``duplicate`` (a second reward for one decision in ``once`` mode,
which is expected traffic, never raised).

What is added is the middleware's: the reward, its square, and the
importance-weighted gain, the reward rescaled to [0, 1] over the propensity
of the decision (``mabware/store/local.py``).
"""

from __future__ import annotations

import math
from collections import Counter

from mabware_edge._decision import COOKIE, Decision
from mabware_edge._events import DEBUG, Events
from mabware_edge._feed import Compiled, View
from mabware_edge._ledger import Ledger, Tally


class _DroppedError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class RewardDesk:
    """Validates rewards and adds the good ones to the ledger.

    Args:
        dropped: counts dropped rewards by reason.
        strict: raise ValueError instead of dropping.
    """

    def __init__(self, dropped: Events, strict: bool) -> None:
        self.dropped, self.strict = dropped, strict
        self._duplicates = Events(Counter(), level=DEBUG)  # counted in dropped too

    def reset_locks(self) -> None:
        """New locks, in a child after fork."""
        self.dropped.reset_lock()
        self._duplicates.reset_lock()

    def reward(
        self,
        ledger: Ledger,
        view: View | None,
        target: object,
        value: object,
        arm: str | None,
        now: float,
    ) -> bool:
        """Count one reward (``EdgeClient.reward``); False if dropped."""
        try:
            self._count(ledger, view, target, value, arm, now)
        except _DroppedError as exc:
            if exc.reason == "duplicate":
                self.dropped.counts["duplicate"] += 1  # not a fault: logged at debug only
                self._duplicates("duplicate", f"reward dropped: {exc}")
                return False
            if self.strict:
                raise ValueError(str(exc)) from None
            self.dropped(exc.reason, f"reward dropped: {exc}")
            return False
        return True

    def _count(
        self,
        ledger: Ledger,
        view: View | None,
        target: object,
        value: object,
        arm: str | None,
        now: float,
    ) -> None:
        record: tuple[str, int, str, float] | None = None
        carried: tuple[str, int, str, float] | None = None
        if isinstance(target, Decision):
            if target.reason == COOKIE and target.version is not None and target.arm is not None:
                # a decision from the visitor's cookie, made by another process (or
                # the middleware): it carries all a reward needs, as the cookie does
                carried = (target.experiment, target.version, target.arm, target.propensity)
            target = target.decision_id
        if type(target) is int:
            with ledger.lock:
                record = ledger.recall(target) or carried
            if record is None:
                raise _DroppedError("unknown_decision", f"no decision {target} in the last window")
            name, version, arm = record[0], record[1], record[2]
            decision_id: int | None = target
        elif isinstance(target, str):
            name, version, decision_id = target, None, None
        else:
            raise _DroppedError("unknown_decision", f"expected a decision id, got {type(target)}")
        e = view.experiments.get(name) if view is not None else None
        if e is None:
            raise _DroppedError("unknown_experiment", f"unknown experiment {name!r}")
        if record is None and (arm is None or arm not in e.index):
            arms = list(e.arms)
            raise _DroppedError("unknown_arm", f"{name}: unknown arm {arm!r}; arms are {arms}")
        assert arm is not None
        reward = _checked(e, value)
        propensity = record[3] if record is not None else e.allocation[e.index[arm]]
        low, high = e.reward_range
        gain = 0.0
        if propensity and math.isfinite(low) and math.isfinite(high):
            gain = (reward - low) / (high - low) / propensity
        with ledger.lock:
            once = e.mode == "once"
            if once and decision_id is not None and not ledger.mark_rewarded(decision_id):
                raise _DroppedError("duplicate", f"decision {target} was rewarded already")
            tally, slot = _slot(ledger, e, version if version is not None else e.version, arm)
            tally.rewards[slot] += reward
            tally.squares[slot] += reward * reward
            tally.gains[slot] += gain
            if tally.depth:
                tally.add_to_bucket(int(now // tally.bucket_seconds), slot, 0.0, reward)
            ledger.changes += 1


def _checked(e: Compiled, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _DroppedError("bad_value", f"{e.name}: reward must be a number, got {type(value)}")
    try:
        reward = float(value)
    except OverflowError:  # an int beyond the float range
        reward = math.inf
    low, high = e.reward_range
    if not math.isfinite(reward) or not low <= reward <= high:
        message = f"{e.name}: reward {value!r} is not within [{low}, {high}]"
        raise _DroppedError("bad_value", message)
    return reward


def _slot(ledger: Ledger, e: Compiled, version: int, arm: str) -> tuple[Tally, int]:
    """Where a reward of ``arm`` under ``version`` is kept (the lock is held)."""
    if version == e.version and arm in e.index:
        return e.tally, e.slots[e.index[arm]]
    # decided under another version, or the arm left the snapshot: its own tally
    tally = ledger.tally((e.name, version), (arm,), e.tally.bucket_seconds, e.tally.depth)
    return tally, tally.slots((arm,))[0]
