"""What an experiment looks like right now: per-arm numbers for people.

``summarize`` turns an experiment's statistics and current allocation into
an ``ExperimentSummary``: per arm the pulls, reward sum, mean, a 95%
interval of the mean, the probability that the arm is the best, its current
traffic share and whether a guardrail switched it off. The dashboard draws
it and the server's JSON answers it (``ExperimentSummary.to_json``), so both
always show the same numbers.

The interval and P(best) are statements about the arm's mean reward, not
about the policy: they are the same whichever policy serves the traffic.

Interval: with a bounded reward range the mean is mapped onto [0, 1] and
the Wilson score interval is taken there, then mapped back. Wilson is
exact-in-spirit for 0/1 rewards (it inverts the score test, keeps its
coverage near 0 and 1 and for a handful of pulls, where the Wald interval
collapses to a point) and conservative for any other reward in the range:
a variable in [0, 1] with mean m has variance at most m (1 - m), the
Bernoulli variance Wilson assumes. It never leaves the range. With an
unbounded range there is nothing to normalise by, so it is the normal
interval mean +- 1.96 s / sqrt(n) from the arm's own sample variance
(``reward_sq_sum``), which needs two pulls.

P(best): over the live arms (those no guardrail switched off), the
probability that each arm's posterior draw of its mean is the largest,
computed by quadrature (``policies._posterior``, accurate to ~1e-5) in one
call per summary. Bounded rewards use Beta(1 + s, 1 + f) posteriors, s the
range-normalised reward sum (a reward r counts r successes and 1 - r
failures, as Thompson sampling's Bernoulli likelihood does) and f = pulls -
s; unbounded ones use the Normal posterior of Thompson sampling's Gaussian
likelihood. Switched-off arms get 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mabware import policies
from mabware.allocation import Allocation
from mabware.experiment import Experiment
from mabware.guardrails import CAP, Trip
from mabware.policies._posterior import best_beta, best_normal
from mabware.policies.thompson import normal_posterior
from mabware.statistics import Statistics

LIVE = "live"

# two-sided 95%: the standard normal quantile at 0.975
_Z = 1.959963984540054


@dataclass(frozen=True)
class ArmSummary:
    """One arm's numbers.

    Attributes:
        arm: the arm's name.
        pulls: assignments counted.
        reward_sum: sum of its rewards, in the experiment's units.
        mean: ``reward_sum / pulls``; None with no pulls.
        interval: 95% interval of the mean, inside the reward range (see the
            module docstring); None with no pulls (or, for an unbounded
            range, fewer than two).
        p_best: probability that this arm has the highest mean (0 for an
            arm a guardrail switched off).
        share: its current share of new visitors (after guardrails).
        status: ``"live"``, or the reason of the guardrail trip that
            switched it off (``"arm_disabled"``, ``"slo_reward_rate"``, ...).
        detail: that trip's detail, or None when live.
    """

    arm: str
    pulls: float
    reward_sum: float
    mean: float | None
    interval: tuple[float, float] | None
    p_best: float
    share: float
    status: str
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        """A plain JSON-able dict; ``interval`` as ``[low, high]`` or None."""
        return {
            "arm": self.arm,
            "pulls": self.pulls,
            "reward_sum": self.reward_sum,
            "mean": self.mean,
            "interval": None if self.interval is None else list(self.interval),
            "p_best": self.p_best,
            "share": self.share,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ExperimentSummary:
    """One experiment's configuration and per-arm numbers.

    Attributes:
        experiment: the experiment's name.
        version: its version (salt).
        policy: ``policies.to_dict(experiment.policy)``.
        default_arm: the arm served on fallback.
        reward_range: (low, high) of valid rewards.
        enabled: False when the experiment serves its default arm to everyone.
        arms: per-arm numbers, in arm order.
        trips: the guardrail actions behind the current allocation.
        fallback: True when a guardrail sent all traffic to the default arm.
    """

    experiment: str
    version: int
    policy: dict[str, Any]
    default_arm: str
    reward_range: tuple[float, float]
    enabled: bool
    arms: tuple[ArmSummary, ...]
    trips: tuple[Trip, ...]
    fallback: bool

    def to_json(self) -> dict[str, Any]:
        """A plain JSON-able dict (strict JSON: an infinite range end is None)."""
        return {
            "experiment": self.experiment,
            "version": self.version,
            "policy": self.policy,
            "default_arm": self.default_arm,
            "reward_range": [v if math.isfinite(v) else None for v in self.reward_range],
            "enabled": self.enabled,
            "arms": [arm.to_json() for arm in self.arms],
            "trips": [{"reason": t.reason, "arm": t.arm, "detail": t.detail} for t in self.trips],
            "fallback": self.fallback,
        }


def summarize(
    experiment: Experiment, stats: Statistics, allocation: Allocation
) -> ExperimentSummary:
    """The numbers behind one experiment's dashboard section.

    Args:
        experiment: the experiment.
        stats: its merged statistics, in arm order.
        allocation: its current allocation (after guardrails).

    Returns:
        The summary; see the module docstring for the interval and P(best).
    """
    names = experiment.arm_names
    # a trip names the arm it switched off; the cap names the leader it protects
    off: dict[str, Trip] = {}
    for trip in allocation.trips:
        if trip.arm is not None and trip.reason != CAP:
            off.setdefault(trip.arm, trip)
    live = np.array([name not in off for name in names])
    low, high = experiment.reward_range
    bounded = math.isfinite(low) and math.isfinite(high)
    p_best = _p_best(stats, live, low, high, bounded)
    shares = allocation.probabilities if allocation.arms == names else (0.0,) * len(names)
    arms = []
    for i, name in enumerate(names):
        pulls, total = float(stats.pulls[i]), float(stats.reward_sum[i])
        switched_off = off.get(name)
        arms.append(
            ArmSummary(
                arm=name,
                pulls=pulls,
                reward_sum=total,
                mean=total / pulls if pulls > 0 else None,
                interval=(
                    _wilson(pulls, total, low, high)
                    if bounded
                    else _normal(pulls, total, float(stats.reward_sq_sum[i]))
                ),
                p_best=float(p_best[i]),
                share=float(shares[i]),
                status=LIVE if switched_off is None else switched_off.reason,
                detail=None if switched_off is None else switched_off.detail,
            )
        )
    return ExperimentSummary(
        experiment=experiment.name,
        version=experiment.version,
        policy=policies.to_dict(experiment.policy),
        default_arm=names[experiment.default_index],
        reward_range=(low, high),
        enabled=experiment.enabled,
        arms=tuple(arms),
        trips=allocation.trips,
        fallback=allocation.fallback,
    )


def _wilson(pulls: float, total: float, low: float, high: float) -> tuple[float, float] | None:
    """Wilson score interval of the mean, on the range mapped to [0, 1]."""
    if pulls <= 0:
        return None
    span = high - low
    # clipped: with reward_mode="every" an arm can earn more than one reward a pull
    p = min(max((total / pulls - low) / span, 0.0), 1.0)
    z2n = _Z * _Z / pulls
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = _Z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / pulls + z2n / (4.0 * pulls))
    # at p = 0 (or 1) the end is 0 (or 1) exactly; rounding would leave 1e-17
    lo = 0.0 if p == 0.0 else max(centre - half, 0.0)
    hi = 1.0 if p == 1.0 else min(centre + half, 1.0)
    return low + span * lo, low + span * hi


def _normal(pulls: float, total: float, squares: float) -> tuple[float, float] | None:
    """Normal interval of the mean from the arm's own sample variance (two pulls or more)."""
    if pulls < 2:
        return None
    mean = total / pulls
    variance = max(squares - total * mean, 0.0) / (pulls - 1.0)  # rounding never below 0
    half = _Z * math.sqrt(variance / pulls)
    return mean - half, mean + half


def _p_best(
    stats: Statistics, live: np.ndarray, low: float, high: float, bounded: bool
) -> np.ndarray:
    """P(each live arm's mean is the highest) under flat-prior posteriors; 0 elsewhere."""
    out = np.zeros(stats.n_arms)
    idx = live.nonzero()[0]
    if len(idx) == 0:
        return out
    if len(idx) == 1:
        out[idx] = 1.0
        return out
    pulls = stats.pulls[idx]
    if bounded:
        wins = np.clip((stats.reward_sum[idx] - low * pulls) / (high - low), 0.0, pulls)
        out[idx] = best_beta(1.0 + wins, 1.0 + pulls - wins)
    else:
        mean, sd = normal_posterior(pulls, stats.reward_sum[idx], stats.reward_sq_sum[idx])
        out[idx] = best_normal(mean, sd)
    return out
