"""Each experiment's serving state, and when to recompute it.

A ``Plan`` holds what the request path reads for one experiment: the
current ``Allocation`` (with its cumulative table), the arms a guardrail has
switched off, and lookup tables. ``Plans.refresh`` is called once per
request; it returns at once unless ``recompute_interval`` has passed and an
experiment's statistics changed (or ``refresh_interval`` has passed, for
time-based guardrails and drift policies). Then one thread recomputes the
changed experiments while the others keep serving the previous tables.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mabware._ratelimit import OncePerInterval
from mabware.allocation import Allocation
from mabware.assignments import Assignment
from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.guardrails import CAP
from mabware.history import History
from mabware.store import Store
from mabware.summary import ExperimentSummary, summarize

TRIP = "trip"  # event prefix, suffixed ":<reason>"


class Plan:
    """One experiment's precomputed serving state."""

    __slots__ = ("allocation", "arm_index", "changes_seen", "default", "experiment", "off")

    def __init__(self, experiment: Experiment, allocation: Allocation) -> None:
        self.experiment = experiment
        self.arm_index = {name: i for i, name in enumerate(experiment.arm_names)}
        default = experiment.arm_names[experiment.default_index]
        #: what uncounted visitors (bots, no consent, disabled experiment) get
        self.default = Assignment(
            experiment.name, default, experiment.payloads[default], 0, counted=False
        )
        self.allocation = allocation
        self.off: frozenset[str] = frozenset()  # arms a guardrail switched off
        self.changes_seen = -1


class Plans:
    """Every experiment's plan, refreshed from the store when due.

    Args:
        experiments: the experiments, unique names.
        store: where the statistics are.
        events: the engine's once-per-interval log and counters.
        recompute_interval: least seconds between recomputes.
        refresh_interval: seconds after which plans are recomputed anyway.
        seed: seeds the generator policies draw from (None: from the OS).
    """

    def __init__(
        self,
        experiments: Sequence[Experiment],
        store: Store,
        events: OncePerInterval,
        *,
        recompute_interval: float,
        refresh_interval: float,
        seed: int | None,
    ) -> None:
        for name, value in (
            ("recompute_interval", recompute_interval),
            ("refresh_interval", refresh_interval),
        ):
            if not (isinstance(value, int | float) and value >= 0):
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
        self._store = store
        self._events = events
        self.recompute_interval = float(recompute_interval)
        self.refresh_interval = float(refresh_interval)
        self.reseed(seed)
        #: experiment -> arms an operator switched off (the server's registry sets it)
        self.disabled_arms: Mapping[str, frozenset[str]] = {}
        self._lock = threading.Lock()
        self._computed_at = -float("inf")
        #: rises whenever which arms are live changes (cached visitors are re-checked)
        self.generation = 0
        #: allocation and totals at each recompute, for the dashboard's charts
        self.history = History()
        uniform = {e.name: e.decide(store.statistics(e.name, 0.0), self._rng) for e in experiments}
        self.by_name = {e.name: Plan(e, uniform[e.name]) for e in experiments}

    def reseed(self, seed: int | None) -> None:
        """A new generator for the policies (after fork: each worker its own)."""
        self._rng = np.random.default_rng(seed)

    def refresh(self, now: float) -> None:
        """Recompute the plans whose statistics changed, if due. Never blocks."""
        age = now - self._computed_at
        if age < self.recompute_interval:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is on it; serve the current tables
        try:
            everything = age >= self.refresh_interval
            changes = self._store.changes
            for plan in self.by_name.values():
                seen = changes[plan.experiment.name]
                if everything or seen != plan.changes_seen:
                    self._recompute(plan, now, seen)
            self._computed_at = now
        finally:
            self._lock.release()

    def _recompute(self, plan: Plan, now: float, changes: int) -> None:
        exp = plan.experiment
        stats = self._store.statistics(exp.name, now)
        allocation = exp.decide(
            stats,
            self._rng,
            state_age=self._store.state_age(now),
            disabled_arms=self.disabled_arms.get(exp.name, frozenset()),
        )
        before = {(t.reason, t.arm) for t in plan.allocation.trips}
        for trip in allocation.trips:  # count and log a trip when it starts, not every recompute
            if (trip.reason, trip.arm) not in before:
                self._events(f"{TRIP}:{trip.reason}", f"{exp.name}: {trip.detail}", logging.INFO)
        off = frozenset(t.arm for t in allocation.trips if t.arm is not None and t.reason != CAP)
        if off != plan.off:
            plan.off = off
            self.generation += 1
        plan.allocation = allocation
        plan.changes_seen = changes
        self.history.record(allocation, stats, now)

    def summaries(self, now: float) -> list[ExperimentSummary]:
        """Every experiment's numbers (``mabware.summary``), plans refreshed first."""
        self.refresh(now)
        return [
            summarize(plan.experiment, self._store.statistics(name, now), plan.allocation)
            for name, plan in self.by_name.items()
        ]

    def report(self, now: float) -> dict[str, Any]:
        """What this process knows, as plain data (JSON-able).

        ``{"experiments": {name: {"version", "arms": {arm: {"pulls",
        "reward_sum", "share"}}, "trips": [...]}}}``; ``share`` is the
        current allocation (what new visitors are assigned by).
        """
        self.refresh(now)
        experiments: dict[str, Any] = {}
        for name, plan in self.by_name.items():
            stats = self._store.statistics(name, now)
            allocation = plan.allocation
            experiments[name] = {
                "version": plan.experiment.version,
                "arms": {
                    arm: {
                        "pulls": float(stats.pulls[i]),
                        "reward_sum": float(stats.reward_sum[i]),
                        "share": allocation.probabilities[i],
                    }
                    for i, arm in enumerate(plan.experiment.arm_names)
                },
                "trips": [
                    {"reason": t.reason, "arm": t.arm, "detail": t.detail} for t in allocation.trips
                ],
            }
        return {"experiments": experiments}
