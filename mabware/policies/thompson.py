"""Thompson sampling, served as the probability that each arm is best.

Instead of drawing once per visitor, the allocation gives every live arm the
probability that its posterior draw is the largest (computed by quadrature,
or estimated by Monte Carlo), which is exactly how often per-visitor
Thompson sampling would pick it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies._base import (
    Stationary,
    check_choice,
    check_integer,
    check_number,
    scatter,
)
from mabware.policies._posterior import (
    best_beta,
    best_normal,
    sampled_best_beta,
    sampled_best_normal,
)
from mabware.statistics import Statistics

# Gaussian model constants (see ThompsonSampling): pseudo-observations of the
# pooled variance per arm, and the prior variance of a mean in units of it.
_VARIANCE_WEIGHT = 2.0
_PRIOR_SCALE = 100.0


def normal_posterior(
    pulls: FloatArray, sums: FloatArray, squares: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and standard deviation of each arm's mean reward.

    The model behind ``ThompsonSampling(likelihood="gaussian")``; see there.
    """
    total = float(pulls.sum())
    grand = float(sums.sum()) / total if total > 0 else 0.0
    if total >= 2:
        pooled = (float(squares.sum()) - total * grand * grand) / (total - 1.0)
    else:
        pooled = 1.0 + grand * grand  # nothing to learn a scale from yet
    # floors keep constant rewards (zero variance) finite
    pooled = max(pooled, 1e-12 * grand * grand, 1e-200)
    means = np.zeros(len(pulls))
    np.divide(sums, pulls, out=means, where=pulls > 0)
    within = np.maximum(squares - sums * means, 0.0)
    noise = (within + _VARIANCE_WEIGHT * pooled) / (np.maximum(pulls - 1.0, 0.0) + _VARIANCE_WEIGHT)
    np.maximum(noise, 1e-12 * pooled, out=noise)
    prior_precision = 1.0 / (_PRIOR_SCALE * pooled)
    precision = prior_precision + pulls / noise
    mean = (grand * prior_precision + sums / noise) / precision
    return mean, 1.0 / np.sqrt(precision)


@dataclass(frozen=True)
class ThompsonSampling(Stationary):
    """Thompson sampling with Beta (0/1 or [0, 1] rewards) or Normal posteriors.

    Bernoulli: arm i's posterior is Beta(prior_alpha + S_i, prior_beta + n_i
    - S_i), S_i its reward sum (rewards rescaled to [0, 1]; a fractional
    reward r counts r successes and 1 - r failures).

    Gaussian, for unbounded rewards such as revenue: arm i's mean has a
    Normal posterior (a plug-in variance, not a Student t). The common scale
    is the variance of all rewards of the live arms around their common mean
    (1 + mean^2 until there are two rewards). An arm's noise variance is its
    own sample variance shrunk towards the common one, worth 2
    pseudo-observations, so an arm with fewer than two pulls borrows the
    common scale. The prior on a mean is Normal, centred on the common mean
    with 100 times the common variance (worth a hundredth of an
    observation), so an untried arm has a wide posterior. Being built from
    the data's own centre and scale, the model gives the same allocation in
    any currency or unit, rescaled or not. Variances are floored at 1e-12 of
    the scale, so constant rewards stay finite.

    ``requires_bounded_rewards`` is a class attribute and says True (the
    default likelihood needs it); ask ``needs_bounded_rewards`` (or
    ``policies.needs_bounded_rewards(policy)``) for a given instance.

    Args:
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        prior_alpha: Beta prior successes (Bernoulli only), > 0.
        prior_beta: Beta prior failures (Bernoulli only), > 0.
        method: ``"quadrature"`` (deterministic, accurate to ~1e-5) or
            ``"monte-carlo"`` (``draws`` joint posterior draws, ties split).
        draws: Monte Carlo draws, >= 1.
        grid: the most quadrature points, >= 16.
        exploration: how wide the posterior is held, > 0. 1 is textbook
            Thompson sampling. Below 1 every observation counts
            1/exploration times (0.5: twice), so traffic moves to the leader
            sooner: less regret when arms differ a lot, more risk of
            settling on the wrong arm when they differ little (bench/regret.py
            measures both). Above 1 explores longer.
    """

    name: ClassVar[str] = "thompson"
    requires_bounded_rewards: ClassVar[bool] = True

    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    method: Literal["quadrature", "monte-carlo"] = "quadrature"
    draws: int = 2000
    grid: int = 256
    exploration: float = 1.0

    def __post_init__(self) -> None:
        check_choice(self, "likelihood", ("bernoulli", "gaussian"))
        check_number(self, "prior_alpha", low=0.0, low_open=True)
        check_number(self, "prior_beta", low=0.0, low_open=True)
        check_choice(self, "method", ("quadrature", "monte-carlo"))
        check_integer(self, "draws", low=1)
        check_integer(self, "grid", low=16)
        check_number(self, "exploration", low=0.0, low_open=True)

    @property
    def needs_bounded_rewards(self) -> bool:
        """True for the Bernoulli likelihood, False for the Gaussian one."""
        return self.likelihood == "bernoulli"

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """P(each live arm's posterior draw is the largest); 0 elsewhere."""
        idx = live.nonzero()[0]
        every = len(idx) == len(live)  # the common case: no copies in or out
        pulls = stats.pulls if every else stats.pulls[idx]
        sums = stats.reward_sum if every else stats.reward_sum[idx]
        if self.likelihood == "bernoulli":
            wins = np.minimum(np.maximum(sums, 0.0), pulls)
            weight = 1.0 / self.exploration
            first = self.prior_alpha + weight * wins
            second = self.prior_beta + weight * (pulls - wins)
            exact, sampled = best_beta, sampled_best_beta
        else:
            squares = stats.reward_sq_sum if every else stats.reward_sq_sum[idx]
            first, sd = normal_posterior(pulls, sums, squares)
            second = sd * np.sqrt(self.exploration)
            exact, sampled = best_normal, sampled_best_normal
        if self.method == "monte-carlo":
            shares = sampled(first, second, draws=self.draws, rng=rng)
        else:
            shares = exact(first, second, grid=self.grid)
        return shares if every else scatter(stats.n_arms, idx, shares)
