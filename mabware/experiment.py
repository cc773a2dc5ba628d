"""Experiment: frozen configuration plus ``decide()``.

``decide`` is the whole learning path of one experiment::

    statistics -> policy -> guardrails -> Allocation

It is pure: the statistics, the random generator, the state's age and the
set of arms switched off by an operator all come in as arguments. The
engine, the server, the simulator and the edge SDK's publisher all call it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mabware import _experiment_dict, assign, policies
from mabware._types import FloatArray
from mabware.allocation import Allocation
from mabware.exceptions import ConfigError, RewardError
from mabware.guardrails import (
    ARM_DISABLED,
    BURN_IN,
    CAP,
    DISABLED_EXPERIMENT,
    FLOOR,
    INVALID_ALLOCATION,
    NO_LIVE_ARMS,
    POLICY_ERROR,
    STALE_STATE,
    Guardrails,
    Trip,
    apply_cap,
    apply_floor,
    one_hot,
    validate_allocation,
)
from mabware.policies import Policy, ThompsonSampling
from mabware.statistics import Counters, Statistics

RewardMode = Literal["once", "every"]
MAX_NAME_LENGTH = 120


@dataclass(frozen=True, eq=False)
class Experiment:
    """One experiment: its arms, policy, guardrails and reward rules.

    Args:
        name: unique name (1-120 characters); the cookie and the store key.
        arms: arm names in order, or a mapping name -> payload (the value
            handlers read as ``assignment.value``).
        policy: turns statistics into an allocation; Thompson sampling by default.
        default_arm: the arm served on fallback, to bots and to visitors
            without consent; the first arm by default.
        guardrails: floor, cap, burn-in, SLOs, staleness; all off by default.
        reward_mode: ``"once"`` counts one reward per assignment, ``"every"``
            counts every reward event.
        reward_range: (low, high) of valid rewards; rewards are rescaled to
            [0, 1] for policies that need it. Use ``(-inf, inf)`` only with a
            policy that accepts unbounded rewards.
        version: the salt; bump it to reassign every visitor (old data stays
            in the store for the report).
        bucket_seconds: width of the time buckets the drift policies read.
        enabled: False serves the default arm to everyone.
    """

    name: str
    arms: Mapping[str, Any] | Sequence[str]
    policy: Policy = field(default_factory=ThompsonSampling)
    default_arm: str | None = None
    guardrails: Guardrails = field(default_factory=Guardrails)
    reward_mode: RewardMode = "once"
    reward_range: tuple[float, float] = (0.0, 1.0)
    version: int = 1
    bucket_seconds: float = 60.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= MAX_NAME_LENGTH:
            raise ConfigError(
                f"experiment name must be a string of 1-{MAX_NAME_LENGTH} characters, "
                f"got {self.name!r}"
            )
        payloads = self._normalise_arms(self.arms)
        object.__setattr__(self, "arms", payloads)
        object.__setattr__(self, "payloads", payloads)
        names = tuple(payloads)
        object.__setattr__(self, "arm_names", names)
        default = names[0] if self.default_arm is None else self.default_arm
        if default not in payloads:
            raise ConfigError(
                f"{self.name}: default_arm {default!r} is not one of the arms {list(names)}"
            )
        object.__setattr__(self, "default_arm", default)
        object.__setattr__(self, "default_index", names.index(default))
        if not isinstance(self.policy, Policy):
            raise ConfigError(
                f"{self.name}: policy must be a mabware policy such as "
                f"policies.ThompsonSampling(), got {self.policy!r}"
            )
        self._check_reward_range()
        if self.reward_mode not in ("once", "every"):
            raise ConfigError(
                f"{self.name}: reward_mode must be 'once' or 'every', got {self.reward_mode!r}"
            )
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 0:
            raise ConfigError(f"{self.name}: version must be an integer >= 0, got {self.version!r}")
        if not (math.isfinite(self.bucket_seconds) and self.bucket_seconds > 0):
            raise ConfigError(
                f"{self.name}: bucket_seconds must be > 0, got {self.bucket_seconds!r}"
            )
        self.guardrails.check_arm_count(len(names))

    # Filled in by __post_init__; declared for type checkers.
    arm_names: tuple[str, ...] = field(init=False, repr=False)
    payloads: Mapping[str, Any] = field(init=False, repr=False)
    default_index: int = field(init=False, repr=False)

    def _normalise_arms(self, arms: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
        if isinstance(arms, str):
            raise ConfigError(f"{self.name}: arms must be a list of names or a mapping, not a str")
        items = list(arms.items()) if isinstance(arms, Mapping) else [(a, a) for a in arms]
        names = [name for name, _ in items]
        for name in names:
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
                raise ConfigError(
                    f"{self.name}: arm names must be strings of 1-{MAX_NAME_LENGTH} "
                    f"characters, got {name!r}"
                )
        if len(names) < 2:
            raise ConfigError(f"{self.name}: an experiment needs at least 2 arms, got {names}")
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"{self.name}: arm names must be unique; repeated: {dupes}")
        return dict(items)

    def _check_reward_range(self) -> None:
        try:
            low, high = (float(v) for v in self.reward_range)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{self.name}: reward_range must be (low, high), got {self.reward_range!r}"
            ) from None
        if math.isnan(low) or math.isnan(high) or not low < high:
            raise ConfigError(
                f"{self.name}: reward_range must have low < high, got {self.reward_range!r}"
            )
        bounded = math.isfinite(low) and math.isfinite(high)
        if not bounded and policies.needs_bounded_rewards(self.policy):
            raise ConfigError(
                f"{self.name}: {type(self.policy).__name__} needs a bounded reward_range; "
                f"got {self.reward_range!r}. Bound the range, or use "
                "policies.ThompsonSampling(likelihood='gaussian')"
            )
        object.__setattr__(self, "reward_range", (low, high))

    # -- rewards -----------------------------------------------------------

    def check_reward(self, value: object) -> float:
        """Return ``value`` as a float, or raise RewardError saying why not."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RewardError(
                f"{self.name}: reward must be a number, got {type(value).__name__}",
                payload=value,
            )
        reward = float(value)
        low, high = self.reward_range
        if not math.isfinite(reward):
            raise RewardError(f"{self.name}: reward must be finite, got {value!r}", payload=value)
        if not low <= reward <= high:
            raise RewardError(
                f"{self.name}: reward {reward!r} is outside the range [{low}, {high}]",
                payload=value,
            )
        return reward

    def arm_index(self, arm: str) -> int:
        """Index of ``arm``; RewardError for an unknown arm."""
        try:
            return self.arm_names.index(arm)
        except ValueError:
            raise RewardError(
                f"{self.name}: unknown arm {arm!r}; arms are {list(self.arm_names)}", payload=arm
            ) from None

    def counters(self) -> Counters:
        """An empty accumulator shaped for this experiment."""
        return Counters(len(self.arm_names), self.reward_range, self.policy.buckets_needed)

    def bucket_at(self, seconds: float) -> int:
        """The time-bucket index of a clock reading (seconds)."""
        return int(seconds // self.bucket_seconds)

    # -- deciding ----------------------------------------------------------

    def decide(
        self,
        stats: Statistics,
        rng: np.random.Generator,
        *,
        state_age: float | None = None,
        disabled_arms: frozenset[str] = frozenset(),
    ) -> Allocation:
        """Statistics -> policy -> guardrails -> allocation. Never raises.

        Args:
            stats: merged statistics in arm order (rewards in experiment units).
            rng: the process's generator, for Monte Carlo policies.
            state_age: seconds since the statistics were last known fresh;
                compared with ``guardrails.stale_after``.
            disabled_arms: arms switched off by an operator.
        """
        if stats.n_arms != len(self.arm_names):
            return self._fallback(
                INVALID_ALLOCATION,
                f"statistics have {stats.n_arms} arms, experiment has {len(self.arm_names)}",
            )
        rails = self.guardrails
        if not self.enabled:
            return self._fallback(DISABLED_EXPERIMENT, "experiment is disabled")
        stale = rails.stale_after
        if stale is not None and state_age is not None and state_age > stale:
            detail = f"state is {state_age:.1f}s old (stale_after={stale}s)"
            return self._fallback(STALE_STATE, detail)
        trips: list[Trip] = [
            Trip(ARM_DISABLED, a, "disabled by operator") for a in disabled_arms if a in self.arms
        ]
        if rails.slo is not None:
            trips += rails.slo.breaches(stats, self.arm_names)
        off = {t.arm for t in trips}  # usually none: then every arm is live
        names = self.arm_names
        live = np.array([a not in off for a in names]) if off else np.ones(len(names), bool)
        if off and not live.any():
            return self._fallback(NO_LIVE_ARMS, "every arm is disabled", trips)
        rescaled = self._policy_view(stats)
        if rails.min_pulls_per_arm and bool((stats.pulls[live] < rails.min_pulls_per_arm).any()):
            trips.append(Trip(BURN_IN, None, f"uniform until {rails.min_pulls_per_arm} pulls/arm"))
            p = live / live.sum()
        else:
            try:
                p = np.asarray(self.policy.allocate(rescaled, live, rng), dtype=np.float64)
            except Exception as exc:  # a policy bug must not reach the visitor
                return self._fallback(POLICY_ERROR, f"{type(exc).__name__}: {exc}", trips)
            problem = validate_allocation(p, live)
            if problem is not None:
                return self._fallback(INVALID_ALLOCATION, problem, trips)
        p = self._apply_floor_and_cap(p, live, stats, trips)
        return self._allocation(p, trips)

    def _policy_view(self, stats: Statistics) -> Statistics:
        low, high = self.reward_range
        if math.isfinite(low) and math.isfinite(high):
            return stats.rescaled(low, high)
        return stats

    def _apply_floor_and_cap(
        self, p: FloatArray, live: np.ndarray, stats: Statistics, trips: list[Trip]
    ) -> FloatArray:
        rails = self.guardrails
        if rails.floor > 0 and bool((p[live] < rails.floor).any()):
            p = apply_floor(p, live, rails.floor)
            trips.append(Trip(FLOOR, None, f"every live arm >= {rails.floor}"))
        if rails.cap is not None:
            leader = int(np.argmax(p))
            if stats.pulls[leader] >= rails.cap_min_pulls and 1.0 - p[leader] > rails.cap:
                p = apply_cap(p, leader, rails.cap, rails.floor)
                trips.append(Trip(CAP, self.arm_names[leader], f"non-leading arms <= {rails.cap}"))
        return p

    def _fallback(self, reason: str, detail: str, trips: Sequence[Trip] = ()) -> Allocation:
        p = one_hot(len(self.arm_names), self.default_index)
        return self._allocation(p, [*trips, Trip(reason, None, detail)])

    def _allocation(self, p: FloatArray, trips: Sequence[Trip]) -> Allocation:
        probabilities: list[float] = p.tolist()
        return Allocation(
            experiment=self.name,
            version=self.version,
            arms=self.arm_names,
            probabilities=tuple(probabilities),
            cumulative=assign.cumulative(probabilities),
            trips=tuple(trips),
        )

    # -- serialisation -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (msgpack/JSON-able when the payloads are)."""
        return _experiment_dict.to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        """The inverse of ``to_dict``; ConfigError on a bad document."""
        return _experiment_dict.from_dict(cls, data)
