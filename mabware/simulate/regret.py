"""Regret arithmetic and convergence: plain functions over recorded runs.

Pseudo-regret is measured against the environment's true means, not the
rewards drawn: at round ``t`` it is ``max(means_t) - means_t[arm_t]``, so
luck in the reward stream does not enter it. Cumulative pseudo-regret is
its running sum; the final regret is the last entry.

Convergence (the MAB E-Commerce Optimizer's definition, kept so numbers
compare): the first 0-based round ``t >= window`` at which the best arm
took at least ``threshold * window`` of the rounds ``t - window + 1 .. t``.
With the defaults: the first ``t >= 100`` where the best arm was chosen in
at least 80 of the last 100 rounds.

In a piecewise-stationary environment the best arm changes, so a single
convergence round says little. The runner reports, per phase, the
convergence round measured from the start of that phase on the choices
made during the phase (the adaptation delay); the whole-run convergence is
left None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mabware._types import FloatArray

__all__ = ["Summary", "convergence_round", "median_or_none", "pseudo_regret", "summarise"]


def convergence_round(
    choices: Sequence[int] | np.ndarray,
    best: int,
    window: int = 100,
    threshold: float = 0.8,
) -> int | None:
    """The first round ``t >= window`` where ``best`` took ``>= threshold`` of the window.

    Args:
        choices: the arm chosen at each round, 0-based rounds.
        best: the arm that counts as converged to.
        window: rounds in the sliding window (>= 1).
        threshold: share of the window the best arm needs, in (0, 1].

    Returns:
        The round (0-based), or None if the run never converged.

    Raises:
        ValueError: ``window`` < 1 or ``threshold`` outside (0, 1].
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window!r}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    hits = np.asarray(choices) == best
    if hits.shape[0] <= window:
        return None
    # hits in rounds t-window+1..t for every t >= window-1, via a running sum
    running = np.cumsum(hits, dtype=np.int64)
    in_window = running[window - 1 :].copy()
    in_window[1:] -= running[:-window]
    need = math.ceil(threshold * window - 1e-9)
    ok = np.flatnonzero(in_window[1:] >= need)  # index j <-> round j + window
    return int(ok[0]) + window if ok.size else None


def pseudo_regret(choices: Sequence[int] | np.ndarray, means: FloatArray) -> FloatArray:
    """Cumulative pseudo-regret of ``choices`` under per-round ``means``.

    Args:
        choices: arm chosen at each round.
        means: shape (rounds, arms) true means per round, or (arms,) when
            stationary.

    Returns:
        Cumulative regret after each round.
    """
    picked = np.asarray(choices, dtype=np.intp)
    table = np.asarray(means, dtype=np.float64)
    if table.ndim == 1:
        per_round = table.max() - table[picked]
    else:
        rows = np.arange(picked.shape[0])
        per_round = table.max(axis=1) - table[rows, picked]
    return np.cumsum(per_round)


@dataclass(frozen=True)
class Summary:
    """Distribution of one number over seeds."""

    mean: float
    median: float
    p10: float
    p90: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mean": self.mean,
            "median": self.median,
            "p10": self.p10,
            "p90": self.p90,
            "n": self.n,
        }


def summarise(values: Sequence[float] | FloatArray) -> Summary:
    """Mean, median and 10th/90th percentiles (numpy's linear interpolation)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("nothing to summarise")
    p10, p50, p90 = np.percentile(x, [10, 50, 90])
    return Summary(float(x.mean()), float(p50), float(p10), float(p90), int(x.size))


def median_or_none(values: Sequence[int | None]) -> float | None:
    """Median of the values that are not None (e.g. converged runs only)."""
    kept = [v for v in values if v is not None]
    return float(np.median(kept)) if kept else None
