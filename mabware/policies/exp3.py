"""EXP3 (Auer, Cesa-Bianchi, Freund & Schapire, 2002): adversarial bandits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import Stationary, check_number, scatter
from mabware.statistics import Statistics


@dataclass(frozen=True)
class EXP3(Stationary):
    """Exponential weights on importance-weighted gains, mixed with uniform.

    With L live arms and G_i = ``stats.ipw_gain_sum[i]`` (the sum of rescaled
    reward / propensity, the unbiased gain estimate EXP3 accumulates), arm i
    gets (1 - gamma) w_i / sum(w) + gamma / L with w_i = exp(gamma G_i / L),
    computed from the largest exponent down so it never overflows. Every live
    arm keeps at least gamma / L, which also bounds the importance weights.

    Args:
        gamma: exploration share, in (0, 1].
    """

    name: ClassVar[str] = "exp3"
    requires_bounded_rewards: ClassVar[bool] = True

    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_number(self, "gamma", low=0.0, high=1.0, low_open=True)

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """Exponential weights over the live arms, plus gamma spread evenly."""
        idx = np.flatnonzero(live)
        share = self.gamma / len(idx)
        exponent = share * stats.ipw_gain_sum[idx]
        weights = np.exp(exponent - exponent.max())
        shares = (1.0 - self.gamma) * weights / weights.sum() + share
        return scatter(stats.n_arms, idx, shares)
