"""Sliding-window UCB (Garivier & Moulines, 2011) for drifting rewards."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import (
    Settings,
    check_integer,
    check_number,
    recent_buckets,
    split_ties,
    uniform,
)
from mabware.policies.ucb import ucb_index
from mabware.statistics import Statistics


@dataclass(frozen=True)
class SlidingWindowUCB(Settings):
    """UCB1 on the statistics of the newest ``window`` time buckets only.

    Let n_i and S_i be arm i's pulls and reward sum over the newest
    ``window`` buckets, W the window pulls of all live arms and N the all-time
    pulls of all live arms. Live arms with no pull in the window come first
    (equal shares). Otherwise arm i's index is

        S_i / n_i + c * sqrt(2 * ln(max(1, min(N, W))) / n_i)

    and all mass goes to the highest index (exact ties split). The min(N, W)
    is the paper's log(min(t, tau)); W <= N whenever the counters agree. The
    window is in buckets: one round in the simulator, ``bucket_seconds`` of
    wall time in a web app.

    Args:
        window: buckets in the window, an integer >= 1.
        c: exploration weight, a finite number >= 0.
    """

    name: ClassVar[str] = "sw-ucb"
    requires_bounded_rewards: ClassVar[bool] = True

    window: int = 1000
    c: float = 1.0

    def __post_init__(self) -> None:
        check_integer(self, "window", low=1)
        check_number(self, "c", low=0.0)

    @property
    def buckets_needed(self) -> int:
        """The window: ``window`` buckets."""
        return self.window

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """All mass on the live arm(s) with the highest windowed index.

        Raises:
            PolicyError: ``stats.recent`` is None.
        """
        buckets = recent_buckets(stats, self)
        pulls = buckets.pulls[: self.window].sum(axis=0)
        rewards = buckets.reward_sum[: self.window].sum(axis=0)
        fresh = live & (pulls <= 0)
        if fresh.any():
            return uniform(fresh)
        horizon = min(float(stats.pulls[live].sum()), float(pulls[live].sum()))
        index = ucb_index(rewards, pulls, math.log(max(horizon, 1.0)), self.c)
        return split_ties(index, live)
