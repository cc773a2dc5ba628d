"""Thompson sampling that restarts at detected changes (Bernoulli GLR test).

Discounting forgets at a fixed rate whether or not anything changed, which
costs regret in a stationary world and reacts slowly to a sharp change.
This policy keeps all the evidence since the last change instead: it scans
the time buckets with a generalised likelihood ratio (GLR) test for a
change in any live arm's mean (in the manner of Besson et al., "Efficient
change-point detection for tackling piecewise-stationary bandits", 2022),
and runs Thompson sampling on the buckets after the most recent change.

The detection is recomputed from the buckets on every call, so the policy
keeps no state: the same statistics give the same allocation in every
process, and a restart is simply "use the buckets after the change".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import (
    Settings,
    check_integer,
    check_number,
    recent_buckets,
    scatter,
)
from mabware.policies._posterior import best_beta
from mabware.statistics import Statistics

_EDGE = 1e-9  # keeps the Bernoulli KL finite at means of exactly 0 or 1


def _bernoulli_kl(p: FloatArray, q: FloatArray) -> FloatArray:
    p = np.clip(p, _EDGE, 1.0 - _EDGE)
    q = np.clip(q, _EDGE, 1.0 - _EDGE)
    return p * np.log(p / q) + (1.0 - p) * np.log((1.0 - p) / (1.0 - q))


def _strongest_change(pulls: FloatArray, wins: FloatArray, delta: float, stride: int) -> int | None:
    """The split (first bucket after it) with the largest GLR excess, or None.

    For every split s (every ``stride``-th bucket) and arm, the statistic
    compares "one mean before s and another after" with "one mean
    throughout": n_old * kl(mean_old, mean) + n_new * kl(mean_new, mean). A
    change is declared where it exceeds ln(3 n^1.5 / delta), n the arm's
    pulls in the segment.
    """
    cum_n = np.cumsum(pulls, axis=0)
    cum_s = np.cumsum(wins, axis=0)
    total_n, total_s = cum_n[-1], cum_s[-1]
    old_n = cum_n[stride - 1 : -1 : stride]
    old_s = cum_s[stride - 1 : -1 : stride]
    if old_n.shape[0] == 0:
        return None
    new_n, new_s = total_n - old_n, total_s - old_s
    both = (old_n > 0) & (new_n > 0)
    mean = total_s / np.maximum(total_n, 1e-300)
    glr = np.where(
        both,
        old_n * _bernoulli_kl(old_s / np.maximum(old_n, 1e-300), mean)
        + new_n * _bernoulli_kl(new_s / np.maximum(new_n, 1e-300), mean),
        0.0,
    )
    excess = glr - np.log(3.0 * np.maximum(total_n, 2.0) ** 1.5 / delta)
    flat = int(np.argmax(excess))
    if excess.flat[flat] <= 0.0:
        return None
    return (flat // int(pulls.shape[1]) + 1) * stride


def latest_segment_start(pulls: FloatArray, wins: FloatArray, delta: float, stride: int = 1) -> int:
    """Index of the first bucket after the most recent detected change.

    ``pulls`` and ``wins`` are (buckets, arms), oldest bucket first. The
    search is binary segmentation towards the present: find the strongest
    change, then look for another one after it, until none is left.
    """
    start = 0
    while pulls.shape[0] - start >= 2:
        split = _strongest_change(pulls[start:], wins[start:], delta, stride)
        if split is None:
            break
        start += split
    return start


@dataclass(frozen=True)
class GLRThompson(Settings):
    """Thompson sampling on the evidence since the last detected change.

    ``window`` is how many time buckets are kept and scanned (in a web app a
    bucket is ``bucket_seconds`` of wall time; in the simulator one round):
    with no change detected, the posterior uses the whole window.

    Args:
        delta: false-alarm level of the GLR test, in (0, 1); smaller detects
            later and falsely less often.
        window: time buckets kept and scanned, >= 2.
        stride: test a split every ``stride`` buckets, >= 1 (a speed-up for
            fine buckets: the simulator's are one round each).
        prior_alpha: Beta prior successes, > 0.
        prior_beta: Beta prior failures, > 0.
        exploration: posterior width, > 0, as in ThompsonSampling.
    """

    name: ClassVar[str] = "glr-thompson"
    requires_bounded_rewards: ClassVar[bool] = True

    delta: float = 0.05
    window: int = 2_000
    stride: int = 1
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    exploration: float = 1.0

    def __post_init__(self) -> None:
        check_number(self, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
        check_integer(self, "window", low=2)
        check_integer(self, "stride", low=1)
        check_number(self, "prior_alpha", low=0.0, low_open=True)
        check_number(self, "prior_beta", low=0.0, low_open=True)
        check_number(self, "exploration", low=0.0, low_open=True)

    @property
    def buckets_needed(self) -> int:
        """The window."""
        return self.window

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """P(best) under Beta posteriors on the buckets since the last change.

        Raises:
            PolicyError: ``stats.recent`` is None.
        """
        buckets = recent_buckets(stats, self)
        idx = np.flatnonzero(live)
        # oldest first, from the first bucket with any pull (the ring may be
        # mostly empty early on, and empty buckets cannot move the test)
        used = np.flatnonzero(buckets.pulls.any(axis=1))
        depth = int(used[-1]) + 1 if len(used) else 0
        pulls = buckets.pulls[:depth][::-1, idx]
        wins = np.clip(buckets.reward_sum[:depth][::-1, idx], 0.0, pulls)
        start = latest_segment_start(pulls, wins, self.delta, self.stride)
        n = pulls[start:].sum(axis=0)
        s = wins[start:].sum(axis=0)
        weight = 1.0 / self.exploration
        shares = best_beta(self.prior_alpha + weight * s, self.prior_beta + weight * (n - s))
        return scatter(stats.n_arms, idx, shares)
