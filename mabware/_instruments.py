"""The Prometheus counters ``mabware.metrics`` updates as things happen.

``Instruments`` holds one process's event counters and the sync histogram;
``attach`` hooks them to an engine's listeners (``Engine.events``,
``Engine.rewards.events``, ``Engine.pull_listeners`` / ``reward_listeners``,
``SharedStore.sync_observers``). An event's counter child is looked up once
per cause and cached, so an occurrence costs a dict lookup and the
library's own increment. ``mabware.metrics`` documents the names.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from mabware import guardrails
from mabware._plans import TRIP
from mabware.cookies import REASONS as COOKIE_REASONS
from mabware.engine import (
    BOT,
    COOKIE_DROPPED,
    COOKIE_REJECTED,
    DUPLICATE_REWARD,
    NO_CONSENT,
    Engine,
)
from mabware.rewards import BAD_VALUE, UNKNOWN_ARM, UNKNOWN_EXPERIMENT
from mabware.store import SharedStore, Store

# Known label values, exported at 0 from the start: a series that exists
# before its first event lets ``rate()`` and ``increase()`` see that event.
TRIP_REASONS = (
    guardrails.DISABLED_EXPERIMENT,
    guardrails.STALE_STATE,
    guardrails.POLICY_ERROR,
    guardrails.INVALID_ALLOCATION,
    guardrails.NO_LIVE_ARMS,
    guardrails.ARM_DISABLED,
    guardrails.SLO_REWARD_RATE,
    guardrails.SLO_ERROR_RATE,
    guardrails.SLO_LATENCY_P95,
    guardrails.BURN_IN,
    guardrails.FLOOR,
    guardrails.CAP,
)
REWARD_REASONS = (UNKNOWN_EXPERIMENT, UNKNOWN_ARM, BAD_VALUE, DUPLICATE_REWARD)
UNCOUNTED_REASONS = (BOT, NO_CONSENT)
# Sync exchanges take milliseconds on a file, tens on HTTP or Redis, and up
# to a client timeout when the backend is away.
SYNC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Increment = Callable[[], None]


class Instruments:
    """One process's counters and histogram, not registered anywhere yet.

    ``register_engine`` registers ``collectors`` in the registry a user
    serves; in multiprocess mode the library writes every update to
    ``PROMETHEUS_MULTIPROC_DIR`` and nothing needs registering.
    """

    def __init__(self) -> None:
        arm = ["experiment", "arm"]
        self.assignments = Counter(
            "mabware_assignments", "Arms assigned (pulls counted) by this process.", arm,
            registry=None,
        )  # fmt: skip
        self.rewards = Counter(
            "mabware_rewards", "Rewards stored by this process.", arm, registry=None
        )
        # A gauge, not a counter: rewards may be negative (any declared range).
        self.reward_sum = Gauge(
            "mabware_reward_sum", "Sum of the reward values stored by this process.", arm,
            registry=None, multiprocess_mode="sum",
        )  # fmt: skip
        self.cookies_rejected = Counter(
            "mabware_cookies_rejected",
            "Cookies ignored (visitor reassigned), by reason.",
            ["reason"],
            registry=None,
        )
        self.cookies_truncated = Counter(
            "mabware_cookies_truncated",
            "Set-Cookie values that dropped assignments to fit 4093 bytes.",
            registry=None,
        )
        self.guardrail_trips = Counter(
            "mabware_guardrail_trips",
            "Guardrail trips as this process started applying them, by reason.",
            ["reason"],
            registry=None,
        )
        self.rewards_rejected = Counter(
            "mabware_rewards_rejected", "Rewards dropped, by reason.", ["reason"], registry=None
        )
        self.uncounted = Counter(
            "mabware_uncounted_requests",
            "Requests served default arms without counting (bots, no consent).",
            ["reason"],
            registry=None,
        )
        self.events = Counter(
            "mabware_events",
            "Other counted engine events (errors, hook failures, key rotation).",
            ["event"],
            registry=None,
        )
        self.sync_duration = Histogram(
            "mabware_sync_duration_seconds",
            "Seconds per exchange with the shared store, by outcome (ok, error).",
            ["outcome"],
            buckets=SYNC_BUCKETS,
            registry=None,
        )
        for reason in COOKIE_REASONS:
            self.cookies_rejected.labels(reason)
        for reason in TRIP_REASONS:
            self.guardrail_trips.labels(reason)
        for reason in REWARD_REASONS:
            self.rewards_rejected.labels(reason)
        for reason in UNCOUNTED_REASONS:
            self.uncounted.labels(reason)
        self._observe: dict[bool, Callable[[float], None]] = {}
        self._routes: dict[str, Increment] = {}

    def collectors(self) -> list[Collector]:
        """What a single-process registry serves."""
        return [
            self.assignments,
            self.rewards,
            self.reward_sum,
            self.cookies_rejected,
            self.cookies_truncated,
            self.guardrail_trips,
            self.rewards_rejected,
            self.uncounted,
            self.events,
            self.sync_duration,
        ]

    def attach(self, engine: Engine) -> None:
        """Listen to ``engine``'s events, pulls, rewards and syncs."""
        pulls: dict[str, list[Increment]] = {}
        rewards: dict[str, list[tuple[Increment, Callable[[float], None]]]] = {}
        for name, exp in engine.experiments.items():
            # Children bound up front: a pull then costs two lookups and an
            # increment, and every arm is exported (at 0) from the start.
            pulls[name] = [self.assignments.labels(name, arm).inc for arm in exp.arm_names]
            rewards[name] = [
                (self.rewards.labels(name, arm).inc, self.reward_sum.labels(name, arm).inc)
                for arm in exp.arm_names
            ]

        def on_pull(experiment: str, arm: int) -> None:
            pulls[experiment][arm]()

        def on_reward(experiment: str, arm: int, value: float) -> None:
            count, total = rewards[experiment][arm]
            count()
            total(value)

        engine.pull_listeners.append(on_pull)
        engine.reward_listeners.append(on_reward)
        engine.events.listeners.append(self.on_event)
        engine.rewards.events.listeners.append(self.on_reward_rejected)
        self.observe_syncs(engine.store)

    def observe_syncs(self, store: Store) -> None:
        """Time ``store``'s exchanges with its backend (nothing to time for ``memory:``)."""
        if isinstance(store, SharedStore):
            for ok, outcome in ((True, "ok"), (False, "error")):
                self._observe[ok] = self.sync_duration.labels(outcome).observe
            store.sync_observers.append(self.on_sync)

    def on_event(self, cause: str) -> None:
        """Count one engine event (``OncePerInterval`` listener)."""
        increment = self._routes.get(cause)
        if increment is None:
            increment = self._routes[cause] = self._route(cause)
        increment()

    def _route(self, cause: str) -> Increment:
        """The counter child an engine event cause goes to."""
        kind, _, detail = cause.partition(":")
        if kind == COOKIE_REJECTED:
            return self.cookies_rejected.labels(detail).inc
        if kind == TRIP:
            return self.guardrail_trips.labels(detail).inc
        if cause == COOKIE_DROPPED:
            return self.cookies_truncated.inc
        if cause == DUPLICATE_REWARD:
            return self.rewards_rejected.labels(cause).inc
        if cause in UNCOUNTED_REASONS:
            return self.uncounted.labels(cause).inc
        return self.events.labels(cause).inc

    def on_reward_rejected(self, reason: str) -> None:
        """Count one reward the gate dropped (``RewardGate.events`` listener)."""
        self.rewards_rejected.labels(reason).inc()

    def on_sync(self, seconds: float, ok: bool) -> None:
        """Time one exchange with the shared store (``SharedStore.sync_observers``)."""
        self._observe[ok](seconds)
