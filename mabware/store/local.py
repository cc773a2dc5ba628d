"""The per-process store: this replica's counters, guarded by one lock.

Every web worker thread writes here (a pull per new assignment, rewards,
response outcomes for the SLOs), and the engine reads a snapshot when it
recomputes an allocation. ``changes`` rises with every write, so the
engine recomputes only when something new has happened.

This class is the ``memory:`` backend as it stands; the shared backends
extend it with a push of these totals and a pull of everyone else's.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Sequence

from mabware.experiment import Experiment
from mabware.statistics import LATENCY_BOUNDS, Statistics

_LAST_BUCKET = len(LATENCY_BOUNDS) - 1


class Store:
    """Statistics of one process, per experiment.

    Args:
        experiments: the experiments whose statistics are kept.
    """

    scheme = "memory"

    def __init__(self, experiments: Sequence[Experiment]) -> None:
        self._experiments = {e.name: e for e in experiments}
        self._counters = {e.name: e.counters() for e in experiments}
        self._lock = threading.Lock()
        #: experiment -> writes so far; the engine recomputes when this moves
        self.changes = dict.fromkeys(self._counters, 0)
        # Responses arrive with every request, so they are tallied in plain
        # Python, one dict entry per (arms served, error, latency bucket),
        # and folded into the numpy counters when statistics are read.
        self._responses: dict[tuple[tuple[tuple[str, int], ...], bool, int], int] = {}
        #: experiments whose allocation depends on responses (an arm SLO)
        self._slo = frozenset(e.name for e in experiments if e.guardrails.slo is not None)
        # Pulls and rewards likewise: (experiment, arm, time bucket) ->
        # [pulls, reward sum, sum of squares, importance-weighted gain sum].
        self._sums: dict[tuple[str, int, int], list[float]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme}: {len(self._counters)} experiments>"

    def add_pull(self, experiment: str, arm: int, now: float) -> None:
        """Count one assignment of ``arm``."""
        key = (experiment, arm, self._experiments[experiment].bucket_at(now))
        with self._lock:
            sums = self._sums.get(key)
            if sums is None:
                self._sums[key] = [1.0, 0.0, 0.0, 0.0]
            else:
                sums[0] += 1.0
            self.changes[experiment] += 1

    def add_reward(
        self, experiment: str, arm: int, value: float, propensity: float | None, now: float
    ) -> None:
        """Add one reward that the caller has already validated."""
        exp = self._experiments[experiment]
        low, high = exp.reward_range
        gain = 0.0  # EXP3's gain: the reward rescaled to [0, 1], over its propensity
        if propensity and math.isfinite(low) and math.isfinite(high):
            gain = (value - low) / (high - low) / propensity
        key = (experiment, arm, exp.bucket_at(now))
        with self._lock:
            sums = self._sums.get(key)
            if sums is None:
                self._sums[key] = [0.0, value, value * value, gain]
            else:
                sums[1] += value
                sums[2] += value * value
                sums[3] += gain
            self.changes[experiment] += 1

    def add_responses(
        self, served: tuple[tuple[str, int], ...], *, error: bool, latency: float
    ) -> None:
        """Count one response under each (experiment, arm index) it was served with."""
        key = (served, error, min(bisect_left(LATENCY_BOUNDS, latency), _LAST_BUCKET))
        with self._lock:
            self._responses[key] = self._responses.get(key, 0) + 1
            for experiment, _arm in served:
                if experiment in self._slo:
                    self.changes[experiment] += 1

    def _fold(self) -> None:
        """Move the plain-Python tallies into the numpy counters (the lock is held)."""
        sums, self._sums = self._sums, {}
        for (experiment, arm, bucket), (pulls, total, squares, gains) in sums.items():
            self._counters[experiment].add_sums(arm, bucket, pulls, total, squares, gains)
        tallies, self._responses = self._responses, {}
        for (served, error, bucket), count in tallies.items():
            for experiment, arm in served:
                self._counters[experiment].add_response_in(
                    arm, error=error, bucket=bucket, count=count
                )

    def statistics(self, experiment: str, now: float) -> Statistics:
        """Everything known about ``experiment``, with its time buckets advanced to ``now``."""
        bucket = self._experiments[experiment].bucket_at(now)
        with self._lock:
            if self._sums or self._responses:
                self._fold()
            return self._counters[experiment].snapshot(bucket)

    def state_age(self, now: float) -> float | None:
        """Seconds since the shared state was last known fresh; None: nothing shared."""
        return None

    def start(self) -> None:
        """Begin background work (the shared backends' sync loop); idempotent."""

    def close(self) -> None:
        """Stop background work and flush what is not yet shared; idempotent."""
