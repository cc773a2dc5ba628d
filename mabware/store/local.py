"""The per-process store: this replica's counters, guarded by one lock.

Every web worker thread writes here (a pull per new assignment, rewards,
response outcomes for the SLOs), and the engine reads a snapshot when it
recomputes an allocation. ``changes`` rises with every write, so the
engine recomputes only when something new has happened.

This class is the ``memory:`` backend as it stands; the shared backends
extend it with a push of these totals and a pull of everyone else's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from mabware.experiment import Experiment
from mabware.statistics import Counters, Statistics


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
        self.changes = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme}: {len(self._counters)} experiments>"

    def _counters_for(self, experiment: str) -> Counters:
        return self._counters[experiment]

    def add_pull(self, experiment: str, arm: int, now: float) -> None:
        """Count one assignment of ``arm``."""
        bucket = self._experiments[experiment].bucket_at(now)
        with self._lock:
            self._counters[experiment].add_pull(arm, bucket)
            self.changes += 1

    def add_reward(
        self, experiment: str, arm: int, value: float, propensity: float | None, now: float
    ) -> None:
        """Add one reward that the caller has already validated."""
        bucket = self._experiments[experiment].bucket_at(now)
        with self._lock:
            self._counters[experiment].add_reward(arm, value, propensity, bucket)
            self.changes += 1

    def add_response(self, experiment: str, arm: int, *, error: bool, latency: float) -> None:
        """Count one response served under ``arm`` (the arm SLOs read these)."""
        with self._lock:
            self._counters[experiment].add_response(arm, error=error, latency=latency)
            self.changes += 1

    def statistics(self, experiment: str, now: float) -> Statistics:
        """Everything known about ``experiment``, with its time buckets advanced to ``now``."""
        bucket = self._experiments[experiment].bucket_at(now)
        with self._lock:
            return self._counters[experiment].snapshot(bucket)

    def state_age(self, now: float) -> float | None:
        """Seconds since the shared state was last known fresh; None: nothing shared."""
        return None

    def start(self) -> None:
        """Begin background work (the shared backends' sync loop); idempotent."""

    def close(self) -> None:
        """Stop background work and flush what is not yet shared; idempotent."""
