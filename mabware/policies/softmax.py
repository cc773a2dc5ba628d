"""Softmax (Boltzmann) exploration: shares proportional to exp(mean / temperature)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import (
    Stationary,
    check_flag,
    check_number,
    scatter,
    uniform,
    untried,
)
from mabware.statistics import Statistics


@dataclass(frozen=True)
class Softmax(Stationary):
    """Give each live arm a share proportional to exp(mean / tau).

    Untried live arms come first (equal shares): an untried arm has no mean,
    and guessing one would either starve it (a low guess) or let the guess
    outlive the data (a high one). Then tau = ``temperature``, or with
    ``anneal`` tau_N = temperature / ln(N + e), N the pulls of all live arms:
    tau starts at ``temperature`` and cools slowly, so the allocation turns
    greedier as evidence accumulates. Rewards are in [0, 1], so a temperature
    of 0.1 means a mean 0.1 higher earns e times the traffic.

    Args:
        temperature: a finite number > 0.
        anneal: cool the temperature as above.
    """

    name: ClassVar[str] = "softmax"
    requires_bounded_rewards: ClassVar[bool] = True

    temperature: float = 0.1
    anneal: bool = False

    def __post_init__(self) -> None:
        check_number(self, "temperature", low=0.0, low_open=True)
        check_flag(self, "anneal")

    def tau(self, total_pulls: float) -> float:
        """The temperature after ``total_pulls`` pulls."""
        if not self.anneal:
            return self.temperature
        return self.temperature / math.log(total_pulls + math.e)

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """exp(mean / tau), normalised over the live arms."""
        fresh = untried(stats, live)
        if fresh.any():
            return uniform(fresh)
        idx = np.flatnonzero(live)
        pulls = stats.pulls[idx]
        logits = stats.reward_sum[idx] / pulls / self.tau(float(pulls.sum()))
        weights = np.exp(logits - logits.max())
        return scatter(stats.n_arms, idx, weights / weights.sum())
