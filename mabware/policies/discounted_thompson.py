"""Discounted Thompson sampling (Raj & Kalyani, 2017) for drifting rewards."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import Settings, check_number, recent_buckets, scatter
from mabware.policies._posterior import best_beta
from mabware.statistics import Statistics

#: the most time buckets a discounting policy asks for (gamma = 1 would need all)
MAX_BUCKETS = 20_000
#: buckets whose weight gamma^k falls below this are not kept
NEGLIGIBLE_WEIGHT = 1e-4


@lru_cache(maxsize=32)
def _weights(gamma: float, depth: int) -> FloatArray:
    weights = gamma ** np.arange(depth, dtype=np.float64)
    weights.flags.writeable = False  # shared between calls
    return weights


@dataclass(frozen=True)
class DiscountedThompson(Settings):
    """Thompson sampling on exponentially discounted counts.

    Pulls and rewards are kept in time buckets (row 0 the newest); bucket k
    counts gamma^k times, so old evidence fades and the posterior
    Beta(prior_alpha + S, prior_beta + n - S) on the discounted sums n, S
    stays wide enough to notice change. The allocation is each live arm's
    probability of being best, by the same quadrature as ThompsonSampling.

    ``gamma`` is per bucket: in the simulator a bucket is one round; in a web
    app it is ``bucket_seconds`` of wall time, so the half-life of evidence
    is ln(2) / -ln(gamma) buckets (about 693 with the default 0.999).

    Args:
        gamma: discount per bucket, in (0, 1]; 1 never forgets.
        prior_alpha: Beta prior successes, > 0.
        prior_beta: Beta prior failures, > 0.
        exploration: posterior width, > 0; as in ThompsonSampling (1 is
            textbook; 0.5 counts each discounted observation twice).
    """

    name: ClassVar[str] = "discounted-thompson"
    requires_bounded_rewards: ClassVar[bool] = True

    gamma: float = 0.999
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    exploration: float = 1.0

    def __post_init__(self) -> None:
        check_number(self, "gamma", low=0.0, high=1.0, low_open=True)
        check_number(self, "prior_alpha", low=0.0, low_open=True)
        check_number(self, "prior_beta", low=0.0, low_open=True)
        check_number(self, "exploration", low=0.0, low_open=True)

    @property
    def buckets_needed(self) -> int:
        """The fewest buckets k with gamma^k < 1e-4, at most ``MAX_BUCKETS``."""
        if self.gamma >= 1.0:
            return MAX_BUCKETS
        k = math.floor(math.log(NEGLIGIBLE_WEIGHT) / math.log(self.gamma)) + 1
        return max(1, min(k, MAX_BUCKETS))

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """P(best) under the discounted Beta posteriors; 0 on non-live arms.

        Raises:
            PolicyError: ``stats.recent`` is None.
        """
        buckets = recent_buckets(stats, self)
        idx = np.flatnonzero(live)
        weights = _weights(self.gamma, buckets.depth)
        pulls = weights @ buckets.pulls[:, idx]
        wins = np.clip(weights @ buckets.reward_sum[:, idx], 0.0, pulls)
        weight = 1.0 / self.exploration
        shares = best_beta(
            self.prior_alpha + weight * wins, self.prior_beta + weight * (pulls - wins)
        )
        return scatter(stats.n_arms, idx, shares)
