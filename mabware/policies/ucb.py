"""UCB1 (Auer, Cesa-Bianchi & Fischer, 2002): optimism in the face of uncertainty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import (
    Stationary,
    check_number,
    split_ties,
    uniform,
    untried,
)
from mabware.statistics import Statistics


def ucb_index(reward_sum: FloatArray, pulls: FloatArray, log_time: float, c: float) -> FloatArray:
    """mean + c * sqrt(2 * log_time / n) for arms with n > 0 (no division by 0)."""
    safe = np.maximum(pulls, 1e-300)  # callers serve untried arms before asking
    return reward_sum / safe + c * np.sqrt(2.0 * max(log_time, 0.0) / safe)


@dataclass(frozen=True)
class UCB1(Stationary):
    """Serve the arm with the highest upper confidence bound.

    Untried live arms come first (equal shares). Then every live arm i gets
    the index mean_i + c * sqrt(2 ln N / n_i), N the pulls of all live arms,
    and the whole allocation goes to the highest index (exact ties split).

    Args:
        c: exploration weight, a finite number >= 0 (1 is UCB1 as published;
            0 is greedy).
    """

    name: ClassVar[str] = "ucb1"
    requires_bounded_rewards: ClassVar[bool] = True

    c: float = 1.0

    def __post_init__(self) -> None:
        check_number(self, "c", low=0.0)

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """All mass on the live arm(s) with the highest index."""
        fresh = untried(stats, live)
        if fresh.any():
            return uniform(fresh)
        log_time = float(np.log(stats.pulls[live].sum()))
        return split_ties(ucb_index(stats.reward_sum, stats.pulls, log_time, self.c), live)
