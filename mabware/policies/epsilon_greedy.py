"""Epsilon-greedy: explore uniformly with probability epsilon, else exploit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import (
    Stationary,
    check_choice,
    check_number,
    split_ties,
    uniform,
    untried,
)
from mabware.statistics import Statistics


@dataclass(frozen=True)
class EpsilonGreedy(Stationary):
    """Spread epsilon evenly over the live arms and the rest on the best mean.

    Untried live arms come first (equal shares). Then each of the L live
    arms gets epsilon_N / L and the arm(s) with the highest mean reward share
    1 - epsilon_N (exact ties split).

    Schedules (N = pulls of all live arms):

    - ``decay=None``: epsilon_N = epsilon.
    - ``decay="inverse"``: epsilon_N = epsilon * min(1, decay_after / N):
      constant for the first ``decay_after`` pulls, then falling as 1/N, the
      rate of the decaying schedule of Auer et al. (2002).

    Args:
        epsilon: exploration share, in [0, 1].
        decay: None or ``"inverse"``.
        decay_after: pulls before the inverse decay starts, a finite number > 0
            (ignored without decay).
    """

    name: ClassVar[str] = "epsilon-greedy"
    requires_bounded_rewards: ClassVar[bool] = True

    epsilon: float = 0.1
    decay: Literal["inverse"] | None = None
    decay_after: float = 1000.0

    def __post_init__(self) -> None:
        check_number(self, "epsilon", low=0.0, high=1.0)
        check_choice(self, "decay", ("inverse",), optional=True)
        check_number(self, "decay_after", low=0.0, low_open=True)

    def rate(self, total_pulls: float) -> float:
        """The exploration share epsilon_N after ``total_pulls`` pulls."""
        if self.decay is None or total_pulls <= self.decay_after:
            return self.epsilon
        return self.epsilon * self.decay_after / total_pulls

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """epsilon_N / L on every live arm plus 1 - epsilon_N on the leader(s)."""
        fresh = untried(stats, live)
        if fresh.any():
            return uniform(fresh)
        epsilon = self.rate(float(stats.pulls[live].sum()))
        return epsilon * uniform(live) + (1.0 - epsilon) * split_ties(stats.means(), live)
