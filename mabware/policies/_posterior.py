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
- Densities are normalised numerically and CDFs are cumulative sums, both by
  the derivative-corrected trapezoid rule (exact for cubics; the derivative
  of a log-density is analytic), so no special functions are needed. The
  product of CDFs is formed in log space.
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


def _distinct(p: FloatArray, q: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    """Distinct (p, q) pairs in sorted order as a (2, k) array; multiplicities; arm -> pair.

    Sorting makes every later step see the same inputs in the same order
    whatever the order of the arms, so a permutation of the arms permutes the
    result exactly, and arms with equal posteriors share one exact value.
    """
    order = np.lexsort((q, p))
    ps, qs = p[order], q[order]
    new = np.empty(len(p), dtype=bool)
    new[0] = True
    np.not_equal(ps[1:], ps[:-1], out=new[1:])
    new[1:] |= qs[1:] != qs[:-1]
    ids = new.cumsum() - 1
    inverse = np.empty(len(p), dtype=np.intp)
    inverse[order] = ids
    params = np.empty((2, int(ids[-1]) + 1))
    params[0], params[1] = ps[new], qs[new]
    return params, np.bincount(ids).astype(np.float64), inverse


def _spread(shares: FloatArray, counts: FloatArray, inverse: IntArray) -> FloatArray:
    """Per-arm shares from per-posterior shares, normalised to sum to 1."""
    total = float(shares @ counts)
    if not 0.0 < total < math.inf:
        raise PolicyError(f"Thompson quadrature lost the probability mass (total {total})")
    out = shares[inverse]
    out /= total
    return out


def _reach(sd: FloatArray, inv: FloatArray | None, tail: float) -> FloatArray:
    """(2, n) offsets from the centre where the log-density is ``tail`` below its peak.

    Gaussian: ``sqrt(2 tail)`` sd. With ``inv`` = (1/a, 1/b), a Beta's tails
    on the logit scale are exponential with rates a and b and may reach further.
    """
    z = math.sqrt(2.0 * tail) * sd
    reach: FloatArray = (z if inv is None else np.maximum(z, tail * inv)) * _ENDS
    return reach


def _grid(bounds: FloatArray, centre: FloatArray, sd: FloatArray, budget: int) -> FloatArray:
    """Points over the union of the ranges, at least ``_PER_SD`` per sd where possible."""
    lo, hi = bounds
    span = hi - lo
    points: FloatArray
    per_range = math.ceil(float((span / sd).max()) * _PER_SD) + 1
    if per_range * len(lo) <= budget:
        # few posteriors: each gets its own evenly spaced points
        steps = np.arange(per_range) * (1.0 / (per_range - 1))
        points = (lo[:, None] + span[:, None] * steps).ravel()
        points.sort()
        return points
    # many: the spacing anywhere is that of the narrowest range covering it,
    # scaled to the budget
    edges = bounds.flatten()
    edges.sort()
    mids = (edges[:-1] + edges[1:]) * 0.5
    covers = (lo[:, None] <= mids) & (mids <= hi[:, None])
    density = (covers * (_PER_SD / sd)[:, None]).max(axis=0)
    # a gap that no range covers is crossed in about one segment
    np.maximum(density, 1.0 / (edges[-1] - edges[0]), out=density)
    cumulative = np.zeros(len(edges))
    ((edges[1:] - edges[:-1]) * density).cumsum(out=cumulative[1:])
    wanted = math.ceil(cumulative[-1])
    segments = min(max(wanted, _MIN_SEGMENTS), budget - 1)
    targets = np.arange(segments + 1) * (cumulative[-1] / segments)
    points = np.interp(targets, cumulative, edges)
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

    Args:
        params: (2, n) parameters of the distinct posteriors, for ``family``.
        centre: each posterior's mode on the integration scale.
        sd: its (approximate) standard deviation there.
        inv: (1/a, 1/b) for Beta posteriors, None for Normal ones.
        counts: how many arms share each posterior.
        family: evaluates log-densities on the grid.
        budget: the most grid points to use.
    """
    n = len(counts)
    shares = np.zeros(n)
    rel: slice | IntArray = slice(None)
    reach = _reach(sd, inv, _TAIL)
    if n > 2:
        # ranges to ~e^-_PRUNE: the Gaussian part scales with sqrt(tail), the
        # exponential part with tail, so this shrink is conservative for both
        lo, hi = centre + reach * math.sqrt(_PRUNE / _TAIL)
        top = int(lo.argmax())
        # the largest draw is almost surely above the second-highest range start
        floor = lo[top] if counts[top] > 1 else sorted(lo.tolist())[-2]
        keep = hi > floor
        if not keep.all():
            kept = keep.nonzero()[0]
            if len(kept) == 1:
                shares[kept] = 1.0 / counts[kept]
                return shares
            params, centre, sd, counts = params[:, kept], centre[kept], sd[kept], counts[kept]
            reach = reach[:, kept]
            rel = kept
    x = _grid(centre + reach, centre, sd, budget)
    h = x[1:] - x[:-1]
    half = (h * 0.5)[:, None]
    twelfth = half * half * (1.0 / 3.0)
    lrel, dl = family(params, x)
    f = np.exp(lrel)
    fd = f * dl
    # derivative-corrected trapezoid per segment; clipped so CDFs stay monotone
    seg = (f[:-1] + f[1:]) * half + (fd[:-1] - fd[1:]) * twelfth
    np.maximum(seg, 0.0, out=seg)
    cdf = seg.cumsum(axis=0)
    total = cdf[-1].copy()
    # From here on the grid starts at its second point: every density is
    # ~e^-30 of its peak at the first. log F is floored at _FLOOR: a floored
    # factor makes its product negligible anyway, and the floor keeps the
    # reverse hazard f/F finite; where both meet, the floors cancel exactly.
    cdf /= total
    log_cdf = np.log(np.maximum(cdf, _FLOOR, out=cdf), out=cdf)
    log_ratio = lrel[1:] - log_cdf
    log_ratio -= np.log(total)
    hazard = np.exp(log_ratio, out=log_ratio)  # f_i / F_i
    # P_i = ∫ g_i, g_i = f_i Π_{j≠i} F_j = hazard_i Π_j F_j^counts_j, whose
    # log-derivative is dlog f_i + Σ_j counts_j hazard_j - hazard_i
    everyone = np.exp(log_cdf @ counts)
    slope = dl[1:] + (hazard @ counts)[:, None]
    slope -= hazard
    slope *= hazard
    # trapezoid and end-correction weights per point (the first segment's
    # left end counts as 0)
    w1 = np.empty(len(h))
    w1[:-1] = (x[2:] - x[:-2]) * 0.5
    w1[-1] = half[-1, 0]
    w2 = -twelfth[:, 0]
    w2[:-1] += twelfth[1:, 0]
    trapezoid = (everyone * w1) @ hazard
    # The end correction refines a resolved integral by a little; on a grid
    # too coarse for some posterior (a tight budget) it can be wild, so it is
    # capped at half the trapezoid value, which it never nears otherwise.
    cap = 0.5 * trapezoid
    correction = np.minimum(np.maximum((everyone * w2) @ slope, -cap), cap)
    shares[rel] = trapezoid + correction
    return shares


def _beta_family(abp: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Log-density of logit(X), X ~ Beta(a, b): a log x + b log(1 - x) - peak.

    ``abp`` is (3, n): a, b and the log-density's maximum (so that the
    largest value is 0 and exp cannot underflow everywhere).
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
    abp = np.empty((3, len(counts)))
    abp[:2] = ab
    # the mode is at x = a / (a + b); there a log x + b log(1 - x) is:
    abp[2] = (ab * np.log(ab / (ab[0] + ab[1]))).sum(axis=0)
    shares = _integrate(abp, np.log(ab[0] * inv[1]), sd, inv, counts, _beta_family, grid)
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
