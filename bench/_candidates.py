"""Candidate policies for bench/regret.py's investigations: NOT part of mabware.

bench/regret.py runs these through the same simulate runner as mabware's
own policies, to show what a change to mabware's policies would buy before
anyone makes it. They implement the ``mabware.policies.Policy`` protocol
and reuse mabware's own helpers (KL bound, tie splitting), so the only
difference from the registered policy is the idea named below.

* ``kl-ucb++``: KL-UCB whose exploration budget for arm i is
  ``ln+(N / (K * n_i))`` instead of ``ln N + c ln ln N`` (N all pulls, K live
  arms, n_i the arm's pulls, ln+ = max(ln, 0)). This is the index of the
  anytime KL-UCB++ / KL-UCB-switch family (Menard & Garivier 2017;
  Garivier, Hadiji, Menard & Stoltz 2022), proven both minimax-optimal and
  asymptotically optimal for Bernoulli arms: an arm pulled more than its
  fair share N/K stops receiving an exploration bonus.
  (``per_arm=False`` gives ``ln+(N / n_i)``, KL-UCB+, a milder version.)
* ``glr-kl-ucb++``: ``kl-ucb++`` restarted at detected changes: every
  allocation runs a Bernoulli GLR change-point test (Besson, Kaufmann,
  Maillard & Seznec 2022) on each arm's time buckets (the newest
  ``window``), declares a change when ``max_s n1 kl(m1, m) + n2 kl(m2, m) >
  ln(3 n^1.5 / delta)`` (splits tried every ``stride`` buckets), and uses
  only the data after the latest change (searched again after it until
  none is left; a global restart). It is mabware's registered
  ``glr-thompson`` idea on the ``kl-ucb++`` index, to show what the better
  stationary index buys under drift. Like it, it detects changes in the
  arms it plays; an arm that improves while unplayed is found through the
  base policy's own exploration only.
* ``oracle-restart``: a yardstick for (b), not a policy: the base policy
  restarted exactly at the change points, which it is told.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies import ThompsonSampling
from mabware.policies._base import split_ties, uniform, untried
from mabware.policies.kl_ucb import kl_upper
from mabware.statistics import Statistics


@dataclass(frozen=True)
class KLUCBPlus:
    """KL-UCB with a per-arm budget ln+(N / (divisor * n_i)); see the module docstring."""

    name: ClassVar[str] = "kl-ucb+"
    requires_bounded_rewards: ClassVar[bool] = True
    per_arm: bool = False  # True: divide by the number of live arms (KL-UCB++)

    @property
    def buckets_needed(self) -> int:
        return 0

    def params(self) -> dict[str, Any]:
        return {"per_arm": self.per_arm}

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        fresh = untried(stats, live)
        if fresh.any():
            return uniform(fresh)
        total = float(stats.pulls[live].sum())
        pulls = np.maximum(stats.pulls, 1e-300)
        divisor = pulls * (float(live.sum()) if self.per_arm else 1.0)
        budget = np.maximum(np.log(total / divisor), 0.0)
        index = kl_upper(stats.reward_sum / pulls, budget / pulls)
        return split_ties(index, live)


def _loglik(s: FloatArray, n: FloatArray) -> FloatArray:
    """Maximised Bernoulli log-likelihood s ln(s/n) + (n-s) ln(1-s/n); 0 ln 0 = 0."""
    tiny = 1e-300  # 0 * ln(tiny / n) is 0: no masks needed
    f = n - s
    n_safe = np.maximum(n, tiny)
    out = s * np.log(np.maximum(s, tiny) / n_safe) + f * np.log(np.maximum(f, tiny) / n_safe)
    return np.asarray(out, dtype=np.float64)


def _latest_change(pulls: FloatArray, wins: FloatArray, delta: float, stride: int) -> int | None:
    """Start row of the data after the most likely change, over all arms; None if none.

    ``pulls`` and ``wins`` are (buckets, arms), oldest bucket first. Splits
    are tried every ``stride`` buckets (the paper's own speed-up).
    """
    if pulls.shape[0] < 2 * stride:
        return None
    n_cum, s_cum = np.cumsum(pulls, axis=0), np.cumsum(wins, axis=0)
    n, s = n_cum[-1], s_cum[-1]
    n1, s1 = n_cum[stride - 1 : -1 : stride], s_cum[stride - 1 : -1 : stride]
    if n1.shape[0] == 0:
        return None
    n2, s2 = n - n1, s - s1
    glr = _loglik(s1, n1) + _loglik(s2, n2) - _loglik(s, n)
    glr[(n1 <= 0) | (n2 <= 0)] = 0.0
    threshold = np.log(3.0 * np.maximum(n, 1.0) ** 1.5 / delta)
    best_split = glr.argmax(axis=0)
    detected = glr[best_split, np.arange(glr.shape[1])] > threshold
    if not detected.any():
        return None
    return (int(best_split[detected].max()) + 1) * stride


def _base(name: str) -> Any:
    return KLUCBPlus(per_arm=True) if name == "kl-ucb++" else ThompsonSampling()


def _rows(stats: Statistics) -> tuple[FloatArray, FloatArray, int]:
    """Bucket pulls and rewards, oldest first, empty (not yet used) buckets cut."""
    assert stats.recent is not None
    used = np.flatnonzero(stats.recent.pulls.any(axis=1))
    depth = int(used[-1]) + 1 if used.size else 0
    return stats.recent.pulls[:depth][::-1], stats.recent.reward_sum[:depth][::-1], depth


@dataclass(frozen=True)
class GLRRestart:
    """A base policy restarted at GLR-detected changes; see the module docstring."""

    name: ClassVar[str] = "glr"
    requires_bounded_rewards: ClassVar[bool] = True
    base: str = "thompson"  # or "kl-ucb++"
    window: int = 5000
    delta: float = 0.01
    stride: int = 10

    @property
    def buckets_needed(self) -> int:
        return self.window

    def params(self) -> dict[str, Any]:
        return {"base": self.base, "window": self.window, "delta": self.delta}

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        pulls, wins, _ = _rows(stats)
        start = 0
        while (
            change := _latest_change(pulls[start:], wins[start:], self.delta, self.stride)
        ) is not None:
            start += change
        current = Statistics.from_counts(pulls[start:].sum(axis=0), wins[start:].sum(axis=0))
        return _base(self.base).allocate(current, live, rng)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class OracleRestart:
    """A yardstick for (b), not a policy: the base policy restarted exactly at the
    environment's change points, which it is told. No drift policy can expect to
    beat it; it measures what re-learning each phase costs by itself."""

    name: ClassVar[str] = "oracle-restart"
    requires_bounded_rewards: ClassVar[bool] = True
    change_points: tuple[int, ...] = ()
    base: str = "thompson"
    window: int = 5000

    @property
    def buckets_needed(self) -> int:
        return self.window

    def params(self) -> dict[str, Any]:
        return {"change_points": list(self.change_points), "base": self.base}

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        assert stats.recent is not None
        now = stats.recent.newest  # one bucket per round in the simulator
        last = max((c for c in self.change_points if c <= now), default=0)
        keep = min(now - last, stats.recent.depth)  # rows 1..keep: rounds last..now-1
        current = Statistics.from_counts(
            stats.recent.pulls[: keep + 1].sum(axis=0),
            stats.recent.reward_sum[: keep + 1].sum(axis=0),
        )
        if last == 0:
            current = stats
        return _base(self.base).allocate(current, live, rng)  # type: ignore[no-any-return]


#: candidate name -> factory taking the candidate's settings as keywords
CANDIDATES: dict[str, Callable[..., Any]] = {
    "kl-ucb++": partial(KLUCBPlus, per_arm=True),
    "glr-kl-ucb++": partial(GLRRestart, base="kl-ucb++"),
    "oracle-restart": OracleRestart,
}
