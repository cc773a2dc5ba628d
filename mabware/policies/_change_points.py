"""Change points in time buckets: the Bernoulli GLR test the restarting policies share.

Discounting forgets at a fixed rate whether or not anything changed, which
costs regret in a stationary world and reacts slowly to a sharp change. A
restarting policy keeps all the evidence since the last change instead:
this module scans the time buckets with a generalised likelihood ratio
(GLR) test for a change in any arm's mean (in the manner of Besson,
Kaufmann, Maillard & Seznec, "Efficient change-point detection for
tackling piecewise-stationary bandits", 2022) and returns the counts after
the most recent change. ``GLRThompson`` and ``GLRKLUCB`` run their index
on those counts.

The detection is recomputed from the buckets on every call, so a policy
keeps no state: the same statistics give the same allocation in every
process, and a restart is simply "use the buckets after the change".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mabware._types import FloatArray
from mabware.statistics import Buckets


def _loglik(s: FloatArray, n: FloatArray) -> FloatArray:
    """Maximised Bernoulli log-likelihood s ln(s/n) + (n-s) ln(1-s/n), 0 ln 0 = 0."""
    tiny = 1e-300  # 0 * ln(tiny / n) is 0: no masks needed
    f = n - s
    n_safe = np.maximum(n, tiny)
    out = s * np.log(np.maximum(s, tiny) / n_safe) + f * np.log(np.maximum(f, tiny) / n_safe)
    return np.asarray(out, dtype=np.float64)


def _latest_change(pulls: FloatArray, wins: FloatArray, delta: float, stride: int) -> int | None:
    """The first bucket after the most recent change, or None if no arm changed.

    For every split (every ``stride``-th bucket) and arm, the GLR statistic
    compares "one mean before the split and another after" with "one mean
    throughout": n_old kl(mean_old, mean) + n_new kl(mean_new, mean), the
    gain in maximised log-likelihood. An arm has changed when its largest
    statistic exceeds ln(3 n^1.5 / delta), n its pulls in the segment. Of
    the arms that changed, the latest of their best splits wins, so one pass
    goes as far towards the present as the evidence allows. (Cutting at the
    single strongest split instead leaves a newer change to the next pass of
    ``latest_segment_start``; on bench (b) the two rules played identical
    runs on 28 of 30 paired seeds, and the mean regret moved by under 1.)
    """
    cum_n = np.cumsum(pulls, axis=0)
    cum_s = np.cumsum(wins, axis=0)
    total_n, total_s = cum_n[-1], cum_s[-1]
    old_n = cum_n[stride - 1 : -1 : stride]
    old_s = cum_s[stride - 1 : -1 : stride]
    if old_n.shape[0] == 0:
        return None
    new_n, new_s = total_n - old_n, total_s - old_s
    glr = _loglik(old_s, old_n) + _loglik(new_s, new_n) - _loglik(total_s, total_n)
    glr[(old_n <= 0) | (new_n <= 0)] = 0.0
    best = np.argmax(glr, axis=0)
    changed = glr[best, np.arange(glr.shape[1])] > np.log(
        3.0 * np.maximum(total_n, 1.0) ** 1.5 / delta
    )
    if not changed.any():
        return None
    return (int(best[changed].max()) + 1) * stride


def latest_segment_start(pulls: FloatArray, wins: FloatArray, delta: float, stride: int = 1) -> int:
    """Index of the first bucket after the most recent detected change (0: none).

    ``pulls`` and ``wins`` are (buckets, arms), oldest bucket first. The
    search is binary segmentation towards the present: find a change, then
    look for another one after it, until none is left.
    """
    start = 0
    while pulls.shape[0] - start >= 2:
        split = _latest_change(pulls[start:], wins[start:], delta, stride)
        if split is None:
            break
        start += split
    return start


def counts_since_change(
    buckets: Buckets, arms: npt.NDArray[np.intp], delta: float, stride: int
) -> tuple[FloatArray, FloatArray]:
    """Pulls and rewards of ``arms`` over the buckets since the latest change.

    Only ``arms`` are scanned (a disabled arm's change must not restart the
    others). Rewards are taken as Bernoulli successes, so they must already
    lie in [0, 1].
    """
    # oldest first, from the first bucket with any pull (the ring may be
    # mostly empty early on, and empty buckets cannot move the test)
    used = np.flatnonzero(buckets.pulls.any(axis=1))
    depth = int(used[-1]) + 1 if len(used) else 0
    pulls = buckets.pulls[:depth][::-1, arms]
    wins = np.clip(buckets.reward_sum[:depth][::-1, arms], 0.0, pulls)
    start = latest_segment_start(pulls, wins, delta, stride)
    return pulls[start:].sum(axis=0), wins[start:].sum(axis=0)
