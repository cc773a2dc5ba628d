"""A bounded, in-process record of how each experiment's allocation moved.

The dashboard's charts (allocation over time, cumulative reward over time)
and its guardrail event list read it. ``Plans`` records into it at every
recompute, so a point is taken whenever the allocation may have changed
and at least every ``refresh_interval`` seconds.

It is deliberately small and local: at most one point per ``every``
seconds per experiment (a later record in the same slot replaces the
earlier one, so the newest numbers always show) and at most ``points``
points, the oldest dropped first. One process's history starts with that
process; the shared store holds the totals, not their past.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from mabware.allocation import Allocation
from mabware.exceptions import ConfigError
from mabware.statistics import Statistics


@dataclass(frozen=True)
class Series:
    """One experiment's recorded points, oldest first.

    Per-arm sequences are indexed ``[arm][point]`` (one row per arm, ready
    to chart): ``shares[j][k]`` is arm ``arms[j]``'s share at ``times[k]``.

    Attributes:
        times: when each point was recorded (clock seconds).
        arms: arm names, in experiment order.
        shares: allocation share per arm per point.
        pulls: cumulative pulls per arm per point.
        reward_sums: cumulative reward sum per arm per point.
    """

    times: tuple[float, ...]
    arms: tuple[str, ...]
    shares: tuple[tuple[float, ...], ...]
    pulls: tuple[tuple[float, ...], ...]
    reward_sums: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Event:
    """A guardrail trip that started or ended.

    Attributes:
        at: clock seconds of the record that saw the change.
        reason: the trip's reason (``guardrails`` constants).
        arm: the arm concerned, or None for an experiment-wide trip.
        detail: the trip's detail (for an end, the last detail seen).
        started: True when the trip started, False when it ended.
    """

    at: float
    reason: str
    arm: str | None
    detail: str
    started: bool


_Point = tuple[float, tuple[float, ...], tuple[float, ...], tuple[float, ...]]


class _Track:
    """One experiment's points, events and the trips active at its last record."""

    __slots__ = ("active", "arms", "events", "points", "slot")

    def __init__(self, arms: tuple[str, ...], points: int) -> None:
        self.arms = arms
        self.points: deque[_Point] = deque(maxlen=points)
        self.events: deque[Event] = deque(maxlen=points)
        self.slot: int | None = None  # the slot of the newest point
        self.active: dict[tuple[str, str | None], str] = {}  # (reason, arm) -> detail


class History:
    """Thread-safe, bounded allocation history per experiment.

    Args:
        every: seconds per slot: at most one point per slot per experiment.
        points: the most points (and, separately, events) kept per experiment.
    """

    def __init__(self, *, every: float = 1.0, points: int = 3600) -> None:
        if not (isinstance(every, int | float) and math.isfinite(every) and every > 0):
            raise ConfigError(f"History every must be a number of seconds > 0, got {every!r}")
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise ConfigError(f"History points must be an integer >= 1, got {points!r}")
        self.every = float(every)
        self.points = points
        self._lock = threading.Lock()
        self._tracks: dict[str, _Track] = {}

    def record(self, allocation: Allocation, stats: Statistics, now: float) -> None:
        """Record one experiment's allocation and totals at ``now``.

        A record in the same ``every`` slot as the previous one replaces
        it. A change of the experiment's arms starts its series afresh
        (events are kept). Trips that appeared or disappeared since the
        previous record become events, starts before ends.
        """
        point: _Point = (
            now,
            allocation.probabilities,
            tuple(stats.pulls.tolist()),
            tuple(stats.reward_sum.tolist()),
        )
        slot = math.floor(now / self.every)
        trips = {(t.reason, t.arm): t.detail for t in allocation.trips}
        with self._lock:
            track = self._tracks.get(allocation.experiment)
            if track is None:
                track = self._tracks[allocation.experiment] = _Track(allocation.arms, self.points)
            elif track.arms != allocation.arms:
                track.arms, track.slot = allocation.arms, None
                track.points.clear()
            if track.slot == slot and track.points:
                track.points[-1] = point
            else:
                track.points.append(point)
                track.slot = slot
            for key, detail in trips.items():
                if key not in track.active:
                    track.events.append(Event(now, key[0], key[1], detail, started=True))
            for key, detail in track.active.items():
                if key not in trips:
                    track.events.append(Event(now, key[0], key[1], detail, started=False))
            track.active = trips

    def series(self, experiment: str) -> Series:
        """The recorded points of ``experiment`` (empty if none)."""
        with self._lock:
            track = self._tracks.get(experiment)
            if track is None:
                return Series((), (), (), (), ())
            arms, points = track.arms, list(track.points)
        n = len(arms)
        return Series(
            times=tuple(p[0] for p in points),
            arms=arms,
            shares=tuple(tuple(p[1][j] for p in points) for j in range(n)),
            pulls=tuple(tuple(p[2][j] for p in points) for j in range(n)),
            reward_sums=tuple(tuple(p[3][j] for p in points) for j in range(n)),
        )

    def events(self, experiment: str) -> list[Event]:
        """The guardrail events of ``experiment``, oldest first."""
        with self._lock:
            track = self._tracks.get(experiment)
            return [] if track is None else list(track.events)
