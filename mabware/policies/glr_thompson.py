"""Thompson sampling that restarts at detected changes (Bernoulli GLR test).

The change-point test is ``_change_points``'s, shared with ``GLRKLUCB``:
this policy runs Thompson sampling on the live arms' buckets after the
most recent change it finds, and like the test it keeps no state.
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
from mabware.policies._posterior import best_beta
from mabware.statistics import Statistics


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
        idx = np.flatnonzero(live)
        n, s = counts_since_change(recent_buckets(stats, self), idx, self.delta, self.stride)
        weight = 1.0 / self.exploration
        shares = best_beta(self.prior_alpha + weight * s, self.prior_beta + weight * (n - s))
        return scatter(stats.n_arms, idx, shares)
