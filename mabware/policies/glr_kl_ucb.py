"""KL-UCB++ that restarts at detected changes (Bernoulli GLR test).

The change-point test is ``_change_points``'s, shared with
``GLRThompson``; the index is ``KLUCB(budget="kl-ucb++")``, computed on
the live arms' buckets after the most recent change. After a restart
every arm is untried again and gets an equal share until it has a pull,
then the KL-UCB++ budget ln+(N / (L n_i)) explores it as if the bandit had
just started. Like the test, the policy keeps no state.
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
from mabware.policies._change_points import counts_since_change
from mabware.policies.kl_ucb import KLUCB
from mabware.statistics import Statistics

_INDEX = KLUCB(budget="kl-ucb++")

#: one week of the experiment's default 60-second buckets
WEEK_OF_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class GLRKLUCB(Settings):
    """KL-UCB++ on the evidence since the last detected change.

    ``window`` is how many time buckets are kept and scanned: with no change
    detected, the index uses the whole window, so evidence older than the
    window is forgotten even in a stationary world. In a web app a bucket is
    ``bucket_seconds`` of wall time (60 by default), and the default window
    is a week of them, long enough to span a weekly cycle; with other bucket
    widths, scale it. In the simulator a bucket is one round, and the
    benchmark passes its own window.

    Args:
        delta: false-alarm level of the GLR test, in (0, 1); smaller detects
            later and falsely less often.
        window: time buckets kept and scanned, >= 2.
        stride: test a split every ``stride`` buckets, >= 1; the change is
            placed to within ``stride`` buckets (10 minutes by default), and
            the scan costs 1 / ``stride`` as much.
    """

    name: ClassVar[str] = "glr-kl-ucb"
    requires_bounded_rewards: ClassVar[bool] = True

    delta: float = 0.01
    window: int = WEEK_OF_MINUTES
    stride: int = 10

    def __post_init__(self) -> None:
        check_number(self, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
        check_integer(self, "window", low=2)
        check_integer(self, "stride", low=1)

    @property
    def buckets_needed(self) -> int:
        """The window."""
        return self.window

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """All mass on the highest KL-UCB++ index since the last change.

        Raises:
            PolicyError: ``stats.recent`` is None.
        """
        idx = np.flatnonzero(live)
        n, s = counts_since_change(recent_buckets(stats, self), idx, self.delta, self.stride)
        current = Statistics.from_counts(n, s)
        shares = _INDEX.allocate(current, np.ones(len(idx), dtype=np.bool_), rng)
        return scatter(stats.n_arms, idx, shares)
