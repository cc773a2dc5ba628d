"""Guardrails: the layer between a policy's allocation and the visitor.

Applied by ``Experiment.decide`` to every allocation, in this order:

1. default-arm fallback: a disabled experiment, a state older than
   ``stale_after``, a policy that raised, or a vector that is not a
   probability vector (non-finite, negative, mass on a non-live arm, sum
   off by more than 1e-9) sends all traffic to the default arm. Zero pulls
   is never a reason: cold start is exploration (DESIGN.md).
2. arm SLOs (``ArmSLO``): after ``min_pulls``, an arm whose mean reward,
   error rate or p95 latency breaches its threshold is disabled and its
   share goes to the others.
3. burn-in: until every live arm has ``min_pulls_per_arm`` pulls the
   allocation is uniform over the live arms.
4. exploration floor and cap: every live arm keeps at least ``floor``; the
   arms other than the leader (the policy's favourite) get at most ``cap``
   in total, once the leader has ``cap_min_pulls`` pulls.

Every step that changes the allocation records a ``Trip`` with its reason,
so the engine can log it once, count it and show it on the dashboard.
Functions here are pure: arrays in, arrays and trips out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.exceptions import ConfigError
from mabware.statistics import Statistics

# Trip reasons (stable strings: metrics labels and log keys use them).
DISABLED_EXPERIMENT = "disabled_experiment"
STALE_STATE = "stale_state"
POLICY_ERROR = "policy_error"
INVALID_ALLOCATION = "invalid_allocation"
NO_LIVE_ARMS = "no_live_arms"
ARM_DISABLED = "arm_disabled"
SLO_REWARD_RATE = "slo_reward_rate"
SLO_ERROR_RATE = "slo_error_rate"
SLO_LATENCY_P95 = "slo_latency_p95"
BURN_IN = "burn_in"
FLOOR = "floor"
CAP = "cap"

#: the reasons that send all traffic to the default arm
FALLBACK_REASONS = frozenset(
    {DISABLED_EXPERIMENT, STALE_STATE, POLICY_ERROR, INVALID_ALLOCATION, NO_LIVE_ARMS}
)

SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Trip:
    """One guardrail action: why the allocation differs from the policy's.

    Attributes:
        reason: one of the module's reason constants.
        arm: the arm concerned, if the trip is about one arm.
        detail: a human-readable explanation with the numbers involved.
    """

    reason: str
    arm: str | None = None
    detail: str = ""


def _check_fraction(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}", payload=value)


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}", payload=value)


@dataclass(frozen=True)
class ArmSLO:
    """Thresholds that disable an arm once it has enough data.

    Args:
        min_pulls: pulls (for the reward rate) or measured responses (for
            errors and latency) an arm needs before it can be judged.
        min_reward_rate: disable an arm whose mean reward, in the
            experiment's reward units, falls below this.
        max_error_rate: disable an arm whose share of 5xx responses exceeds this.
        max_p95_latency: disable an arm whose p95 latency (seconds, from the
            fixed histogram ``statistics.LATENCY_BOUNDS``) exceeds this.
    """

    min_pulls: int = 1000
    min_reward_rate: float | None = None
    max_error_rate: float | None = None
    max_p95_latency: float | None = None

    def __post_init__(self) -> None:
        _check_count("ArmSLO.min_pulls", self.min_pulls)
        if self.min_reward_rate is not None and not math.isfinite(self.min_reward_rate):
            raise ConfigError(
                f"ArmSLO.min_reward_rate must be finite, got {self.min_reward_rate!r}",
                payload=self.min_reward_rate,
            )
        _check_fraction("ArmSLO.max_error_rate", self.max_error_rate)
        p95 = self.max_p95_latency
        if p95 is not None and not (math.isfinite(p95) and p95 > 0):
            raise ConfigError(f"ArmSLO.max_p95_latency must be > 0 seconds, got {p95!r}")

    def breaches(self, stats: Statistics, arms: tuple[str, ...]) -> list[Trip]:
        """One trip per arm that breaches a threshold (the first one found)."""
        trips: list[Trip] = []
        means = stats.means()
        error_rates = np.zeros(stats.n_arms)
        np.divide(stats.errors, stats.responses, out=error_rates, where=stats.responses > 0)
        needs_p95 = self.max_p95_latency is not None
        p95 = stats.latency_quantile(0.95) if needs_p95 else None
        for i, arm in enumerate(arms):
            judged_on_reward = stats.pulls[i] >= self.min_pulls
            judged_on_responses = stats.responses[i] >= self.min_pulls
            if (
                self.min_reward_rate is not None
                and judged_on_reward
                and means[i] < self.min_reward_rate
            ):
                detail = f"mean reward {means[i]:.4g} < {self.min_reward_rate:.4g}"
                trips.append(Trip(SLO_REWARD_RATE, arm, detail))
            elif (
                self.max_error_rate is not None
                and judged_on_responses
                and error_rates[i] > self.max_error_rate
            ):
                detail = f"error rate {error_rates[i]:.4g} > {self.max_error_rate:.4g}"
                trips.append(Trip(SLO_ERROR_RATE, arm, detail))
            elif (
                p95 is not None
                and self.max_p95_latency is not None
                and judged_on_responses
                and p95[i] > self.max_p95_latency
            ):
                detail = f"p95 latency {p95[i]:.4g}s > {self.max_p95_latency:.4g}s"
                trips.append(Trip(SLO_LATENCY_P95, arm, detail))
        return trips


@dataclass(frozen=True)
class Guardrails:
    """Guardrail settings for one experiment; all off by default.

    Args:
        floor: minimum share of every live arm.
        cap: maximum total share of the arms other than the leader; None is off.
        cap_min_pulls: the cap acts only once the leader has this many pulls
            (before that there is no "best" to protect).
        min_pulls_per_arm: burn-in; uniform until every live arm has this many.
        slo: arm SLOs, or None.
        stale_after: seconds after which a state is too old to trust and the
            default arm is served; None (the middleware's default) is off.
    """

    floor: float = 0.0
    cap: float | None = None
    cap_min_pulls: int = 100
    min_pulls_per_arm: int = 0
    slo: ArmSLO | None = None
    stale_after: float | None = None

    def __post_init__(self) -> None:
        _check_fraction("floor", self.floor, allow_none=False)
        _check_fraction("cap", self.cap)
        _check_count("cap_min_pulls", self.cap_min_pulls)
        _check_count("min_pulls_per_arm", self.min_pulls_per_arm)
        if self.stale_after is not None and not self.stale_after > 0:
            raise ConfigError(f"stale_after must be > 0 seconds or None, got {self.stale_after!r}")

    def check_arm_count(self, n_arms: int) -> None:
        """Raise ConfigError when floor and cap cannot hold for ``n_arms`` arms."""
        if self.floor * n_arms > 1.0 + SUM_TOLERANCE:
            raise ConfigError(
                f"floor={self.floor} is impossible for {n_arms} arms: "
                f"floor x arms must be <= 1 (use floor <= {1.0 / n_arms:.4g})"
            )
        if self.cap is not None and self.floor * (n_arms - 1) > self.cap + SUM_TOLERANCE:
            raise ConfigError(
                f"cap={self.cap} is below what floor={self.floor} guarantees to the "
                f"{n_arms - 1} non-leading arms; raise cap or lower floor"
            )


def validate_allocation(p: FloatArray, live: BoolArray) -> str | None:
    """Why ``p`` is not a probability vector over the live arms, or None."""
    if p.shape != live.shape:
        return f"allocation has shape {p.shape}, expected {live.shape}"
    if p.ndim == 1:
        # Fast path in plain Python (cheaper than numpy calls at these sizes):
        # a NaN or inf makes the sum fail the test, a negative entry the
        # minimum; anything odd gets the checks below, which word the problem.
        values, alive = p.tolist(), live.tolist()
        if (
            abs(sum(values) - 1.0) <= SUM_TOLERANCE
            and min(values) >= 0.0
            and (all(alive) or not any(v for v, ok in zip(values, alive, strict=True) if not ok))
        ):
            return None
    if not np.isfinite(p).all():
        return "allocation has a non-finite entry"
    if (p < 0).any():
        return "allocation has a negative entry"
    if (p[~live] > 0).any():
        return "allocation gives traffic to a disabled arm"
    total = float(p.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        return f"allocation sums to {total!r}, not 1"
    return None


def apply_floor(p: FloatArray, live: BoolArray, floor: float) -> FloatArray:
    """Raise every live arm to ``floor``, taking the mass from arms above it.

    Arms above the floor give in proportion to their excess, so the
    policy's ranking among them is kept.
    """
    if floor <= 0.0:
        return p
    out = p.copy()
    target = np.where(live, floor, 0.0)
    deficit = np.clip(target - out, 0.0, None).sum()
    if deficit <= 0.0:
        return out
    out = np.maximum(out, target)
    excess = np.clip(out - target, 0.0, None)
    out -= excess * (deficit / excess.sum())
    return out


def apply_cap(p: FloatArray, leader: int, cap: float, floor: float) -> FloatArray:
    """Limit the total share of the non-leading arms to ``cap``.

    Mass moves to the leader from the other arms in proportion to what
    they hold above the floor, so the floor still holds afterwards.
    """
    others = 1.0 - float(p[leader])
    overflow = others - cap
    if overflow <= 0.0:
        return p
    out = p.copy()
    excess = np.clip(out - floor, 0.0, None)
    excess[leader] = 0.0
    out -= excess * (overflow / excess.sum())
    out[leader] += overflow
    return out


def one_hot(n_arms: int, index: int) -> FloatArray:
    """All traffic on one arm."""
    out = np.zeros(n_arms)
    out[index] = 1.0
    return out
