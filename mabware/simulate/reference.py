"""A reproduction, for comparison only, of another project's regret benchmark.

The MAB E-Commerce Optimizer (a FastAPI + Redis bandit service) publishes a
"convergence benchmark": 20 synthetic 4-arm Bernoulli environments, 2,000
rounds each, seed 42, with mean final regret Thompson 20.89,
epsilon-greedy(0.1) 62.93, UCB1 93.68 and median convergence rounds 110,
110, 331. This module re-implements that protocol from its stated rules so
``bench/regret.py`` can print those numbers next to mabware's own. It is
*their* rules in a plain per-round loop, not mabware's policy path: nothing
in mabware depends on it.

The protocol:

* environments: ``rng = default_rng(42)``; for each of 20: ``rates =
  rng.uniform(0.03, 0.40, 4)``; ``w = rng.integers(0, 4)``; ``rates[w] =
  clip(max(rates) + rng.uniform(0.15, 0.30), 0, 0.95)``; every rate rounded
  to 3 decimals.
* environment ``i`` draws one uniform ``u`` per round from
  ``default_rng(42 + i)`` and pays 1.0 if ``u < rates[arm]``; the strategy
  has its own, separate ``default_rng(42 + i)`` (the same seed: the two
  streams are identical, a quirk kept for fidelity).
* strategies, per round:
  Thompson: a Beta(1 + wins, 1 + losses) draw per arm in arm order, the
  first strict maximum wins.
  Epsilon-greedy(0.1): ``rng.random() < 0.1`` explores with
  ``rng.choice(arms)``; otherwise the first strict maximum of the mean
  reward (0.0 for an unplayed arm).
  UCB1: while some arms are unplayed, ``rng.choice(unplayed arms)``; then
  the first strict maximum of ``mean + sqrt(2 ln N / n)``.
* per-round regret ``max(rates) - rates[arm]``; final regret is its sum;
  the result is the mean over the 20 environments. Convergence as in
  ``mabware.simulate.regret.convergence_round``, median over converged
  environments.

Reproduced: 20.89, 62.93, 93.68 (to 2 decimals) and convergence medians
109.5, 110, 331. Every environment converges, so each median is the mean
of the 10th and 11th of 20 rounds; for Thompson those are 109 and 110, and
the published table shows the resulting 109.5 as a whole number, 110
(``f"{109.5:.0f}"``, round half to even).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mabware.simulate.regret import convergence_round, median_or_none

__all__ = [
    "PUBLISHED",
    "STRATEGIES",
    "ReferenceResult",
    "reference_environments",
    "run_reference",
]

#: the published numbers: name -> (mean final regret, median convergence round)
PUBLISHED: dict[str, tuple[float, int]] = {
    "thompson": (20.89, 110),
    "epsilon-greedy": (62.93, 110),
    "ucb1": (93.68, 331),
}

SEED = 42
N_ENVIRONMENTS = 20
N_ARMS = 4
ROUNDS = 2000


def reference_environments(
    seed: int = SEED, count: int = N_ENVIRONMENTS
) -> list[tuple[float, ...]]:
    """The benchmark's environments: ``count`` tuples of 4 Bernoulli rates."""
    rng = np.random.default_rng(seed)
    environments = []
    for _ in range(count):
        rates = rng.uniform(0.03, 0.40, size=N_ARMS)
        w = int(rng.integers(0, N_ARMS))
        rates[w] = float(np.clip(max(rates) + rng.uniform(0.15, 0.30), 0.0, 0.95))
        environments.append(tuple(round(float(r), 3) for r in rates))
    return environments


class _Strategy(Protocol):
    def choose(self, rng: np.random.Generator) -> int: ...

    def update(self, arm: int, reward: float) -> None: ...


class _Counts:
    def __init__(self, n_arms: int) -> None:
        self.pulls = [0] * n_arms
        self.wins = [0.0] * n_arms

    def update(self, arm: int, reward: float) -> None:
        self.pulls[arm] += 1
        self.wins[arm] += reward


class _Thompson(_Counts):
    def choose(self, rng: np.random.Generator) -> int:
        best, arm = -1.0, 0
        for a, (n, w) in enumerate(zip(self.pulls, self.wins, strict=True)):
            draw = float(rng.beta(1.0 + w, 1.0 + n - w))
            if draw > best:
                best, arm = draw, a
        return arm


class _EpsilonGreedy(_Counts):
    epsilon = 0.1

    def choose(self, rng: np.random.Generator) -> int:
        if rng.random() < self.epsilon:
            return int(rng.choice(list(range(len(self.pulls)))))
        best, arm = -1.0, 0
        for a, (n, w) in enumerate(zip(self.pulls, self.wins, strict=True)):
            mean = w / n if n else 0.0
            if mean > best:
                best, arm = mean, a
        return arm


class _UCB1(_Counts):
    def choose(self, rng: np.random.Generator) -> int:
        unplayed = [a for a, n in enumerate(self.pulls) if n == 0]
        if unplayed:
            return int(rng.choice(unplayed))
        log_total = math.log(sum(self.pulls))
        best, arm = -math.inf, 0
        for a, (n, w) in enumerate(zip(self.pulls, self.wins, strict=True)):
            score = w / n + 1.0 * math.sqrt(2.0 * log_total / n)
            if score > best:
                best, arm = score, a
        return arm


STRATEGIES: dict[str, Callable[[int], _Strategy]] = {
    "thompson": _Thompson,
    "epsilon-greedy": _EpsilonGreedy,
    "ucb1": _UCB1,
}


@dataclass(frozen=True)
class ReferenceResult:
    """One strategy over the benchmark's environments.

    Attributes:
        strategy: a key of ``STRATEGIES``.
        regrets: final regret per environment.
        convergence: convergence round per environment (None: never).
    """

    strategy: str
    regrets: tuple[float, ...]
    convergence: tuple[int | None, ...]

    @property
    def mean_regret(self) -> float:
        return sum(self.regrets) / len(self.regrets)

    @property
    def median_convergence(self) -> float | None:
        return median_or_none(self.convergence)


def run_reference(strategy: str, rounds: int = ROUNDS) -> ReferenceResult:
    """Run one of ``STRATEGIES`` over ``reference_environments()``."""
    regrets: list[float] = []
    converged: list[int | None] = []
    for i, rates in enumerate(reference_environments()):
        env_rng = np.random.default_rng(SEED + i)
        own_rng = np.random.default_rng(SEED + i)
        player = STRATEGIES[strategy](N_ARMS)
        best_rate = max(rates)
        regret = 0.0
        choices = []
        for _ in range(rounds):
            arm = player.choose(own_rng)
            reward = 1.0 if env_rng.random() < rates[arm] else 0.0
            player.update(arm, reward)
            regret += best_rate - rates[arm]
            choices.append(arm)
        regrets.append(regret)
        converged.append(convergence_round(choices, rates.index(best_rate)))
    return ReferenceResult(strategy, tuple(regrets), tuple(converged))
