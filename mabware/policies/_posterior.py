"""The probability that each posterior draw is the largest: Thompson's allocation.

Thompson sampling serves arm i with probability P(X_i = max_j X_j), the X_j
independent posterior draws. ``best_beta`` and ``best_normal`` compute it by
quadrature for Beta and Normal posteriors; ``sampled_best_beta`` and
``sampled_best_normal`` estimate it by Monte Carlo (ties split).

Quadrature integrates P(i best) = ∫ f_i(x) Π_{j≠i} F_j(x) dx on one grid
shared by all arms:

- Beta posteriors are handled on the logit scale, where every Beta density
  is smooth, log-concave and finite (no singularity at 0 or 1 whatever the
  prior); which draw is largest does not change under a monotone map.
- The grid spends its points where they matter: each posterior asks for
  ``_PER_SD`` points per (Laplace) standard deviation over its own range, the
  densest request wins where ranges overlap, and the total is scaled down to
  the ``grid`` budget if it is larger. A posterior much narrower than its
  neighbours still gets its own points; a wide one alone is not over-sampled.
- An arm whose range ends below the second-highest range start cannot be
  best (its share is below ~e^-20) and gets exactly 0.
- CDFs are cumulative sums by the derivative-corrected trapezoid rule
  (exact for cubics; the derivative of a log-density is analytic), so no
  special functions are needed. The product of CDFs is formed in log space.
  Nothing is normalised: f/F needs no constant, and the product's is common
  to all arms, so normalising the shares removes it. (The cost is numpy's
  per-call overhead, not arithmetic: hence few, whole-array calls.)
- The distinct posteriors are computed once each, in sorted order: arms with
  identical posteriors get exactly equal shares, and a permutation of the
  arms permutes the result exactly (Monte Carlo too, for one generator state).

Checked offline against scipy's adaptive quadrature on 150 random cases of
2-4 arms with 1 to 100,000 pulls each: median error 3e-6, worst 5e-5; the
tests compare with 400,000-draw Monte Carlo.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from mabware._types import FloatArray
from mabware.exceptions import PolicyError

IntArray = npt.NDArray[np.intp]
#: (parameters, one column per posterior; grid) -> (log-density up to a
#: constant per posterior, its derivative), both shaped (len(grid), n)
Family = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# Each posterior's range ends where its log-density is _TAIL below the peak:
# far enough that the Hermite correction on a coarse segment next to a narrow
# posterior sees a negligible slope. Arms are pruned with the tighter _PRUNE.
_TAIL = 30.0
_PRUNE = 20.0
_PER_SD = 2.0  # grid points per standard deviation, budget allowing
_MIN_SEGMENTS = 16
_FLOOR = 1e-12  # CDFs are floored here; see _integrate for why that is harmless
_ENDS = np.array([[-1.0], [1.0]])  # (start, end) of a range around its centre
_FLIP = np.array([[1.0], [-1.0]])
_SHRINK = math.sqrt(_PRUNE / _TAIL)


@lru_cache(maxsize=64)
def _steps(count: int) -> FloatArray:
    """``count`` evenly spaced points from 0 to 1 (read-only: shared between calls)."""
    steps: FloatArray = np.arange(count, dtype=np.float64) * (1.0 / (count - 1))
    steps.flags.writeable = False
    return steps


def _distinct(p: FloatArray, q: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    """Distinct (p, q) pairs in sorted order as a (2, k) array; multiplicities; arm -> pair.

    Sorting makes every later step see the same inputs in the same order
    whatever the order of the arms, so a permutation of the arms permutes the
    result exactly, and arms with equal posteriors share one exact value.
    (Complex numbers sort by real part, then imaginary: one key for the pair.)
    """
    key = p + 1j * q
    order = key.argsort()
    key = key[order]
    new = np.empty(len(p), dtype=bool)
    new[0] = False
    np.not_equal(key[1:], key[:-1], out=new[1:])
    ids = np.add.accumulate(new, dtype=np.intp)  # each arm's index among the distinct pairs
    new[0] = True
    inverse = np.empty(len(p), dtype=np.intp)
    inverse[order] = ids
    key = key[new]
    return np.array((key.real, key.imag)), np.bincount(ids).astype(np.float64), inverse


def _spread(shares: FloatArray, counts: FloatArray, inverse: IntArray) -> FloatArray:
    """Per-arm shares from per-posterior shares, normalised to sum to 1."""
    total = float(shares @ counts)
    if not 0.0 < total < math.inf:
        raise PolicyError(f"Thompson quadrature lost the probability mass (total {total})")
    out = shares[inverse]
    out /= total
    return out


def _grid(bounds: FloatArray, centre: FloatArray, rate: FloatArray, budget: int) -> FloatArray:
    """Points over the union of the ranges, ``rate`` per unit in each where possible."""
    lo, hi = bounds[0], bounds[1]
    span = hi - lo
    points: FloatArray
    per_range = math.ceil(max((span * rate).tolist())) + 1
    if per_range * len(lo) <= budget:
        # few posteriors: each gets its own evenly spaced points
        points = (lo[:, None] + span[:, None] * _steps(per_range)).ravel()
        points.sort()
        return points
    # many: the spacing anywhere is that of the narrowest range covering it,
    # scaled to the budget (range i covers the piece from edge j to j + 1 when
    # lo_i <= edge_j and edge_j+1 <= hi_i)
    edges = bounds.flatten()
    edges.sort()
    covers = (lo[:, None] <= edges[:-1]) & (edges[1:] <= hi[:, None])
    density = np.maximum.reduce(covers * rate[:, None], axis=0)
    # a gap that no range covers is crossed in about one segment
    first, last = edges[[0, -1]].tolist()
    np.maximum(density, 1.0 / (last - first), out=density)
    cumulative = np.zeros(len(edges))
    ((edges[1:] - edges[:-1]) * density).cumsum(out=cumulative[1:])
    area = float(cumulative[-1])
    wanted = math.ceil(area)
    segments = min(max(wanted, _MIN_SEGMENTS), budget - 1)
    points = np.interp(_steps(segments + 1) * area, cumulative, edges)
    if segments < wanted:
        # on a tight budget a narrow posterior could fall between two points:
        # make every mode a point
        points = np.concatenate((points, centre))
        points.sort()
    return points


def _integrate(
    params: FloatArray,
    centre: FloatArray,
    sd: FloatArray,
    inv: FloatArray | None,
    counts: FloatArray,
    family: Family,
    budget: int,
) -> FloatArray:
    """P(a given arm of each distinct posterior is best), by quadrature.

    One column per distinct posterior: its ``params`` for ``family``, its mode
    ``centre`` and (approximate) ``sd`` on the integration scale, ``inv`` =
    (1/a, 1/b) for Beta posteriors (None for Normal ones) and how many arms
    share it (``counts``); ``budget`` is the most grid points to use.
    """
    n, shares = len(counts), np.zeros(len(counts))
    rel: slice | IntArray = slice(None)
    # offsets from the centre where the log-density is _TAIL below its peak: sqrt(2
    # _TAIL) sd for a Gaussian; a Beta's exponential tails (rates a, b) may reach further
    reach = math.sqrt(2.0 * _TAIL) * sd
    reach = (reach if inv is None else np.maximum(reach, _TAIL * inv)) * _ENDS
    bounds = centre + reach
    if n > 2:
        # ranges to ~e^-_PRUNE (Gaussian reach scales with sqrt(tail), exponential with
        # tail: conservative for both); the top draw is almost surely above the
        # second-highest range start
        lo, hi = centre + reach * _SHRINK
        starts = lo.tolist()
        top = starts.index(max(starts))
        floor = starts[top] if counts[top] > 1 else sorted(starts)[-2]
        kept = (hi > floor).nonzero()[0]
        if len(kept) < n:
            if len(kept) == 1:
                shares[kept] = 1.0 / counts[kept]
                return shares
            params, centre, sd, counts = params[:, kept], centre[kept], sd[kept], counts[kept]
            bounds = bounds[:, kept]
            rel = kept
    x = _grid(bounds, centre, _PER_SD / sd, budget)
    # per segment: half its width and its width^2 / 12, then a zero segment
    widths = np.zeros((2, len(x)))
    np.multiply(np.subtract(x[1:], x[:-1], out=widths[0, :-1]), 0.5, out=widths[0, :-1])
    np.multiply(widths[0], widths[0] * (1.0 / 3.0), out=widths[1])
    half, twelfth = widths[0, :-1, None], widths[1, :-1, None]
    lrel, dl = family(params, x)
    f = np.exp(lrel)
    fd = f * dl
    # derivative-corrected trapezoid per segment; clipped so CDFs stay monotone
    seg = np.multiply(f[:-1] + f[1:], half)
    seg += np.multiply(np.subtract(fd[:-1], fd[1:], out=fd[:-1]), twelfth, out=fd[:-1])
    np.maximum(seg, 0.0, out=seg)
    cdf = seg.cumsum(axis=0)
    # From here on the grid starts at its second point: every density is ~e^-30 of
    # its peak at the first. F is floored at _FLOOR of its total: a floored factor
    # makes its product negligible anyway, and keeps the reverse hazard f/F finite.
    np.maximum(cdf, cdf[-1] * _FLOOR, out=cdf)
    hazard = np.divide(f[1:], cdf, out=f[1:])  # f_i / F_i
    # P_i = ∫ g_i, g_i = f_i Π_{j≠i} F_j = hazard_i Π_j F_j^counts_j, the
    # product scaled to 1 at the last point (where it is largest)
    everyone = np.log(cdf, out=cdf) @ counts
    everyone = np.exp(everyone - everyone[-1])
    slope = np.multiply(np.subtract(dl[1:], hazard, out=dl[1:]), hazard, out=dl[1:])
    # trapezoid and end-correction weights per point (the first segment's left end
    # counts as 0); g_i' = hazard_i (d_i - hazard_i + Σ_j counts_j hazard_j) Π
    trapezoid = (widths[0, 1:] + widths[0, :-1]) * everyone @ hazard
    ends = (widths[1, 1:] - widths[1, :-1]) * everyone
    correction = ends @ slope + (ends * (hazard @ counts)) @ hazard
    # The end correction refines a resolved integral by a little; on a grid
    # too coarse for some posterior (a tight budget) it can be wild, so it is
    # capped at half the trapezoid value, which it never nears otherwise.
    cap = 0.5 * trapezoid
    shares[rel] = trapezoid + np.minimum(np.maximum(correction, -cap), cap)
    return shares


def _beta_family(abp: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Log-density of logit(X), X ~ Beta(a, b): a log x + b log(1 - x) - peak.

    ``abp`` is (3, n): a, b and the log-density's maximum (so that exp
    cannot underflow everywhere).
    """
    logs = np.empty((3, len(y)))
    np.logaddexp(0.0, -y, out=logs[0])
    np.negative(logs[0], out=logs[0])  # log x, x = sigmoid(y)
    np.subtract(logs[0], y, out=logs[1])  # log(1 - x)
    logs[2] = -1.0
    lrel = logs.T @ abp
    # d/dy: a (1 - x) - b x
    dl = (np.exp(logs[1::-1]) * _FLIP).T @ abp[:2]
    return lrel, dl


def _normal_family(ms: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Log-density of Normal(mean, sd), ``ms`` rows mean and sd, and its derivative."""
    inv = 1.0 / ms[1]
    z = (x[:, None] - ms[0]) * inv
    return z * z * -0.5, z * -inv


def _sampled(samples: FloatArray, counts: FloatArray, inverse: IntArray) -> FloatArray:
    """Win shares per column (ties split), averaged over each posterior's columns."""
    wins = samples == samples.max(axis=1, keepdims=True)
    per_column = (wins / wins.sum(axis=1, keepdims=True)).mean(axis=0)
    starts = np.concatenate(([0], np.cumsum(counts[:-1]))).astype(np.intp)
    return _spread(np.add.reduceat(per_column, starts) / counts, counts, inverse)


def best_beta(alpha: FloatArray, beta: FloatArray, /, *, grid: int = 256) -> FloatArray:
    """P(each Beta(alpha_i, beta_i) draw is the largest), by quadrature.

    Args:
        alpha: first shape parameter per arm, > 0.
        beta: second shape parameter per arm, > 0.
        grid: the most quadrature points to use.

    Returns:
        A probability vector over the arms.

    Raises:
        PolicyError: the quadrature failed (not seen in testing; a guard).
    """
    ab, counts, inverse = _distinct(alpha, beta)
    if len(counts) == 1:
        return np.full(len(alpha), 1.0 / len(alpha))
    inv = 1.0 / ab
    sd = np.sqrt(inv[0] + inv[1])  # Laplace approximation on the logit scale
    # the mode: x = a / (a + b), y = log(a / b); a log x + b log(1 - x) is then the peak
    logs = np.log(ab / (ab[0] + ab[1]))
    centre = logs[0] - logs[1]
    logs *= ab
    abp = np.empty((3, len(counts)))
    abp[:2] = ab
    np.add(logs[0], logs[1], out=abp[2])
    shares = _integrate(abp, centre, sd, inv, counts, _beta_family, grid)
    return _spread(shares, counts, inverse)


def best_normal(mean: FloatArray, sd: FloatArray, /, *, grid: int = 256) -> FloatArray:
    """P(each Normal(mean_i, sd_i) draw is the largest), by quadrature; sd > 0."""
    ms, counts, inverse = _distinct(mean, sd)
    if len(counts) == 1:
        return np.full(len(mean), 1.0 / len(mean))
    shares = _integrate(ms, ms[0], ms[1], None, counts, _normal_family, grid)
    return _spread(shares, counts, inverse)


def sampled_best_beta(
    alpha: FloatArray, beta: FloatArray, /, *, draws: int, rng: np.random.Generator
) -> FloatArray:
    """``best_beta`` estimated from ``draws`` joint posterior draws."""
    ab, counts, inverse = _distinct(alpha, beta)
    a, b = np.repeat(ab, counts.astype(np.intp), axis=1)
    return _sampled(rng.beta(a, b, size=(draws, len(a))), counts, inverse)


def sampled_best_normal(
    mean: FloatArray, sd: FloatArray, /, *, draws: int, rng: np.random.Generator
) -> FloatArray:
    """``best_normal`` estimated from ``draws`` joint posterior draws."""
    ms, counts, inverse = _distinct(mean, sd)
    mu, s = np.repeat(ms, counts.astype(np.intp), axis=1)
    return _sampled(rng.normal(mu, s, size=(draws, len(mu))), counts, inverse)
