"""Per-arm sufficient statistics: the only thing a policy ever sees.

``Statistics`` is an immutable snapshot (arrays in arm order) that the
policies and guardrails read. ``Counters`` is the mutable accumulator a
process writes to; ``Counters.snapshot()`` turns it into ``Statistics``.
Every field is a plain sum, so snapshots from many replicas merge by
addition (the store's job; see DESIGN.md, "Data model").

Rewards are kept in the experiment's own units. ``Statistics.rescaled``
maps them onto [0, 1] for the policies that need bounded rewards.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from mabware._types import FloatArray

# Upper bounds (seconds) of the latency histogram behind the p95 SLO. Fixed
# bounds make histograms from different processes addable.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    math.inf,
)


def _zeros(*shape: int) -> FloatArray:
    return np.zeros(shape, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Buckets:
    """Time-bucketed pulls and rewards for the drift policies.

    Row 0 is the newest bucket, whose absolute index (clock time divided by
    the bucket width, floored) is ``newest``; row k is ``newest - k``.
    """

    newest: int
    pulls: FloatArray
    reward_sum: FloatArray

    @property
    def depth(self) -> int:
        return int(self.pulls.shape[0])


@dataclass(frozen=True, eq=False)
class Statistics:
    """Immutable per-arm sums for one experiment, in arm order.

    Attributes:
        pulls: assignments counted per arm.
        reward_sum: sum of rewards per arm (a pull without reward counts as
            the lower end of the reward range).
        reward_sq_sum: sum of squared rewards (Gaussian posteriors).
        ipw_gain_sum: sum of reward / propensity, rewards rescaled to
            [0, 1] (EXP3's importance-weighted gains).
        responses: responses measured per arm (SLO denominators).
        errors: of those, server errors (5xx).
        latency_hist: responses per latency bucket, ``LATENCY_BOUNDS``.
        recent: time buckets, or None for a stationary experiment.
    """

    pulls: FloatArray
    reward_sum: FloatArray
    reward_sq_sum: FloatArray
    ipw_gain_sum: FloatArray
    responses: FloatArray
    errors: FloatArray
    latency_hist: FloatArray
    recent: Buckets | None = None

    @classmethod
    def zeros(cls, n_arms: int, n_buckets: int = 0) -> Statistics:
        """Empty statistics for ``n_arms`` arms (and ``n_buckets`` buckets)."""
        recent = (
            Buckets(0, _zeros(n_buckets, n_arms), _zeros(n_buckets, n_arms)) if n_buckets else None
        )
        return cls(
            pulls=_zeros(n_arms),
            reward_sum=_zeros(n_arms),
            reward_sq_sum=_zeros(n_arms),
            ipw_gain_sum=_zeros(n_arms),
            responses=_zeros(n_arms),
            errors=_zeros(n_arms),
            latency_hist=_zeros(n_arms, len(LATENCY_BOUNDS)),
            recent=recent,
        )

    @classmethod
    def from_counts(
        cls,
        pulls: list[float] | FloatArray,
        reward_sum: list[float] | FloatArray,
        reward_sq_sum: list[float] | FloatArray | None = None,
    ) -> Statistics:
        """Statistics from plain pull and reward counts (tests, the report).

        Without ``reward_sq_sum`` rewards are taken as 0/1, so the sum of
        squares equals the reward sum.
        """
        p = np.asarray(pulls, dtype=np.float64)
        r = np.asarray(reward_sum, dtype=np.float64)
        sq = r.copy() if reward_sq_sum is None else np.asarray(reward_sq_sum, dtype=np.float64)
        base = cls.zeros(p.shape[0])
        return cls(p, r, sq, base.ipw_gain_sum, base.responses, base.errors, base.latency_hist)

    @property
    def n_arms(self) -> int:
        return int(self.pulls.shape[0])

    @property
    def total_pulls(self) -> float:
        return float(self.pulls.sum())

    def means(self, empty: float = 0.0) -> FloatArray:
        """Mean reward per arm; ``empty`` where an arm has no pulls."""
        out = np.full(self.n_arms, empty, dtype=np.float64)
        np.divide(self.reward_sum, self.pulls, out=out, where=self.pulls > 0)
        return out

    def rescaled(self, low: float, high: float) -> Statistics:
        """The same statistics with rewards mapped from [low, high] to [0, 1]."""
        if low == 0.0 and high == 1.0:
            return self
        span = high - low
        shifted = self.reward_sum - low * self.pulls
        squares = self.reward_sq_sum - 2 * low * self.reward_sum + low * low * self.pulls
        recent = None
        if self.recent is not None:
            b = self.recent
            recent = Buckets(b.newest, b.pulls, (b.reward_sum - low * b.pulls) / span)
        return Statistics(
            pulls=self.pulls,
            reward_sum=shifted / span,
            reward_sq_sum=squares / (span * span),
            ipw_gain_sum=self.ipw_gain_sum,
            responses=self.responses,
            errors=self.errors,
            latency_hist=self.latency_hist,
            recent=recent,
        )

    def take(self, order: list[int] | np.ndarray) -> Statistics:
        """The statistics of the arms in ``order`` (reordering or a subset)."""
        idx = np.asarray(order, dtype=np.intp)
        recent = None
        if self.recent is not None:
            b = self.recent
            recent = Buckets(b.newest, b.pulls[:, idx], b.reward_sum[:, idx])
        return Statistics(
            pulls=self.pulls[idx],
            reward_sum=self.reward_sum[idx],
            reward_sq_sum=self.reward_sq_sum[idx],
            ipw_gain_sum=self.ipw_gain_sum[idx],
            responses=self.responses[idx],
            errors=self.errors[idx],
            latency_hist=self.latency_hist[idx],
            recent=recent,
        )

    def latency_quantile(self, q: float) -> FloatArray:
        """Per-arm upper bound of the latency bucket holding quantile ``q``.

        NaN for an arm with no measured responses.
        """
        counts = self.latency_hist
        totals = counts.sum(axis=1)
        cumulative = np.cumsum(counts, axis=1)
        bounds = np.asarray(LATENCY_BOUNDS)
        out = np.full(self.n_arms, np.nan)
        for arm in np.flatnonzero(totals > 0):
            index = int(np.searchsorted(cumulative[arm], q * totals[arm], side="left"))
            out[arm] = bounds[min(index, len(bounds) - 1)]
        return out


@dataclass
class Counters:
    """Mutable per-arm sums one process accumulates between snapshots.

    Not thread-safe by itself: the owner serialises writes (the store holds
    a lock; the simulator is single-threaded).

    Args:
        n_arms: number of arms.
        reward_range: the experiment's declared reward range; used only to
            rescale importance-weighted gains onto [0, 1].
        n_buckets: time buckets to keep (0 for stationary policies).
    """

    n_arms: int
    reward_range: tuple[float, float] = (0.0, 1.0)
    n_buckets: int = 0
    _stats: Statistics = field(init=False, repr=False)
    # The time buckets are a ring, (pulls, reward sums) x n_buckets x arms:
    # bucket newest - k lives in row (head + k) % n_buckets. A new bucket
    # moves the head back over the rows that expire and zeroes only them.
    _ring: FloatArray = field(init=False, repr=False, compare=False)
    _head: int = field(init=False, repr=False, compare=False, default=0)
    _newest: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        self._stats = Statistics.zeros(self.n_arms)
        self._ring = _zeros(2, self.n_buckets, self.n_arms)

    def _bucket_row(self, bucket: int | None) -> int | None:
        """The ring row of ``bucket``, starting it first if it is new; None if not kept."""
        depth = self.n_buckets
        if bucket is None or not depth:
            return None
        age = self._newest - bucket
        if age >= 0:
            return (self._head + age) % depth if age < depth else None
        # a newer bucket: the -age oldest rows expire and become the newest
        head, start = self._head, self._head + age
        if -age >= depth:
            self._ring.fill(0.0)
        elif start >= 0:
            self._ring[:, start:head] = 0.0
        else:  # the expiring rows wrap around the end
            self._ring[:, start:] = 0.0
            self._ring[:, :head] = 0.0
        self._head = start % depth
        self._newest = bucket
        return self._head

    def add_pull(self, arm: int, bucket: int | None = None) -> None:
        """Count one assignment of ``arm``."""
        self._stats.pulls[arm] += 1.0
        row = self._bucket_row(bucket)
        if row is not None:
            self._ring[0, row, arm] += 1.0

    def add_reward(
        self,
        arm: int,
        value: float,
        propensity: float | None = None,
        bucket: int | None = None,
    ) -> None:
        """Add a reward (already validated against the range) to ``arm``."""
        s = self._stats
        s.reward_sum[arm] += value
        s.reward_sq_sum[arm] += value * value
        if propensity is not None and propensity > 0.0:
            low, high = self.reward_range
            if math.isfinite(low) and math.isfinite(high):
                s.ipw_gain_sum[arm] += (value - low) / (high - low) / propensity
        row = self._bucket_row(bucket)
        if row is not None:
            self._ring[1, row, arm] += value

    def add_sums(
        self,
        arm: int,
        bucket: int | None,
        pulls: float,
        reward_sum: float,
        reward_sq_sum: float,
        ipw_gain_sum: float,
    ) -> None:
        """Add sums tallied elsewhere (the store's plain-Python request path)."""
        s = self._stats
        s.pulls[arm] += pulls
        s.reward_sum[arm] += reward_sum
        s.reward_sq_sum[arm] += reward_sq_sum
        s.ipw_gain_sum[arm] += ipw_gain_sum
        row = self._bucket_row(bucket)
        if row is not None:
            self._ring[0, row, arm] += pulls
            self._ring[1, row, arm] += reward_sum

    def add_response(self, arm: int, *, error: bool, latency: float) -> None:
        """Count one response served under ``arm`` (for the arm SLOs)."""
        bucket = min(bisect_left(LATENCY_BOUNDS, latency), len(LATENCY_BOUNDS) - 1)
        self.add_response_in(arm, error=error, bucket=bucket)

    def add_response_in(self, arm: int, *, error: bool, bucket: int, count: int = 1) -> None:
        """``count`` responses with the latency's histogram bucket already found."""
        s = self._stats
        s.responses[arm] += count
        if error:
            s.errors[arm] += count
        s.latency_hist[arm, bucket] += count

    def subtract(self, earlier: Statistics) -> None:
        """Take away an earlier snapshot of these counters, leaving what came since.

        A shared store uses it when its replica restarts under a new id:
        the old id's totals are already counted in the shared state.
        """
        s = self._stats
        for mine, theirs in (
            (s.pulls, earlier.pulls),
            (s.reward_sum, earlier.reward_sum),
            (s.reward_sq_sum, earlier.reward_sq_sum),
            (s.ipw_gain_sum, earlier.ipw_gain_sum),
            (s.responses, earlier.responses),
            (s.errors, earlier.errors),
            (s.latency_hist, earlier.latency_hist),
        ):
            np.maximum(mine - theirs, 0.0, out=mine)  # float rounding never goes below 0
        if earlier.recent is not None and self.n_buckets:
            for age in range(earlier.recent.depth):
                row = self._bucket_row(earlier.recent.newest - age)
                if row is not None:
                    for layer, theirs in enumerate(
                        (earlier.recent.pulls, earlier.recent.reward_sum)
                    ):
                        ring = self._ring[layer, row]
                        np.maximum(ring - theirs[age], 0.0, out=ring)

    def snapshot(self, bucket: int | None = None) -> Statistics:
        """An immutable copy; ``bucket`` first advances the ring to now."""
        self._bucket_row(bucket)
        s = self._stats
        recent = None
        if self.n_buckets:
            # newest first: rows head .. end, then 0 .. head - 1 (this copies)
            head = self._head
            rows = np.concatenate((self._ring[:, head:], self._ring[:, :head]), axis=1)
            recent = Buckets(self._newest, rows[0], rows[1])
        return Statistics(
            pulls=s.pulls.copy(),
            reward_sum=s.reward_sum.copy(),
            reward_sq_sum=s.reward_sq_sum.copy(),
            ipw_gain_sum=s.ipw_gain_sum.copy(),
            responses=s.responses.copy(),
            errors=s.errors.copy(),
            latency_hist=s.latency_hist.copy(),
            recent=recent,
        )
