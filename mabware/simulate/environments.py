"""Simulated reward environments: where a simulated visitor's reward comes from.

An environment owns its reward generator, knows the true mean reward of
every arm at every round (for pseudo-regret), and answers
``pull(arm, round) -> reward``. Each environment draws exactly one random
number per round whatever the arm, so two policies run against the same
seed see the same stream of "luck": a Bernoulli environment rewards arm
``a`` at round ``t`` with 1.0 exactly when ``u_t < p[a]``. Comparisons
between policies are then paired, and the reference reproduction in
``mabware.simulate.reference`` gets the reward stream it was published
with.

Rounds are 0-based and must be pulled in increasing order (one pull per
round); the runner does exactly that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from mabware._types import FloatArray
from mabware.exceptions import ConfigError

__all__ = [
    "BernoulliEnvironment",
    "Environment",
    "GaussianEnvironment",
    "Phase",
    "PiecewiseEnvironment",
]


@runtime_checkable
class Environment(Protocol):
    """What the runner needs from an environment."""

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        ...

    @property
    def reward_range(self) -> tuple[float, float]:
        """(low, high) of the rewards ``pull`` can return."""
        ...

    @property
    def change_points(self) -> tuple[int, ...]:
        """Rounds at which the means change (empty when stationary)."""
        ...

    def means(self, round: int) -> FloatArray:
        """True mean reward of every arm at ``round`` (do not modify)."""
        ...

    def pull(self, arm: int, round: int) -> float:
        """Draw the reward of ``arm`` at ``round``: one random draw per round."""
        ...


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _rates(name: str, values: Sequence[float]) -> FloatArray:
    """Validate Bernoulli rates: at least 2, each a finite number in [0, 1]."""
    rates = np.asarray([float(v) for v in values], dtype=np.float64)
    if rates.ndim != 1 or rates.shape[0] < 2:
        raise ConfigError(f"{name} needs at least 2 arms, got {list(values)!r}", payload=values)
    if not np.all((rates >= 0.0) & (rates <= 1.0)):  # also rejects NaN
        raise ConfigError(f"{name} must be in [0, 1], got {list(values)!r}", payload=values)
    rates.setflags(write=False)
    return rates


@dataclass(eq=False)
class BernoulliEnvironment:
    """Arm ``a`` pays 1.0 with probability ``rates[a]``, else 0.0.

    Each round draws one uniform ``u`` from ``rng`` and pays ``1.0 if u <
    rates[arm] else 0.0``.

    Args:
        rates: success probability of each arm, in [0, 1].
        rng: the environment's own generator, or a seed for one.
    """

    rates: Sequence[float]
    rng: np.random.Generator | int | None = None
    _p: FloatArray = field(init=False, repr=False)
    _gen: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._p = _rates("rates", self.rates)
        self._gen = _as_generator(self.rng)

    @property
    def n_arms(self) -> int:
        return int(self._p.shape[0])

    @property
    def reward_range(self) -> tuple[float, float]:
        return (0.0, 1.0)

    @property
    def change_points(self) -> tuple[int, ...]:
        return ()

    def means(self, round: int) -> FloatArray:
        return self._p

    def pull(self, arm: int, round: int) -> float:
        return 1.0 if self._gen.random() < self._p[arm] else 0.0


@dataclass(eq=False)
class GaussianEnvironment:
    """Arm ``a`` pays ``means[a] + sd * z``, one standard normal ``z`` per round.

    Rewards are unbounded, so the experiment's reward range is (-inf, inf)
    and the policy must accept unbounded rewards (e.g.
    ``ThompsonSampling(likelihood="gaussian")``).

    Args:
        arm_means: mean reward of each arm (finite).
        sd: standard deviation of every arm's reward (> 0).
        rng: the environment's own generator, or a seed for one.
    """

    arm_means: Sequence[float]
    sd: float = 1.0
    rng: np.random.Generator | int | None = None
    _mu: FloatArray = field(init=False, repr=False)
    _gen: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mu = np.asarray([float(v) for v in self.arm_means], dtype=np.float64)
        if mu.ndim != 1 or mu.shape[0] < 2 or not np.all(np.isfinite(mu)):
            raise ConfigError(
                f"arm_means must be at least 2 finite numbers, got {list(self.arm_means)!r}"
            )
        if not (math.isfinite(self.sd) and self.sd > 0.0):
            raise ConfigError(f"sd must be a finite number > 0, got {self.sd!r}", payload=self.sd)
        mu.setflags(write=False)
        self._mu = mu
        self._gen = _as_generator(self.rng)

    @property
    def n_arms(self) -> int:
        return int(self._mu.shape[0])

    @property
    def reward_range(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    @property
    def change_points(self) -> tuple[int, ...]:
        return ()

    def means(self, round: int) -> FloatArray:
        return self._mu

    def pull(self, arm: int, round: int) -> float:
        return float(self._mu[arm] + self.sd * self._gen.standard_normal())


@dataclass(frozen=True)
class Phase:
    """One stationary stretch of a piecewise environment.

    Args:
        rates: Bernoulli rate of each arm during the phase.
        rounds: length of the phase in rounds (>= 1).
    """

    rates: tuple[float, ...]
    rounds: int


@dataclass(eq=False)
class PiecewiseEnvironment:
    """Bernoulli rates that jump at known rounds: a sequence of phases.

    Phase ``k`` covers rounds ``[start_k, start_k + rounds_k)``; after the
    last phase the last rates hold. Rewards are drawn like
    ``BernoulliEnvironment``: one uniform per round.

    Args:
        phases: the phases in order, each a ``Phase`` or a
            ``(rates, rounds)`` pair; every phase has the same number of arms.
        rng: the environment's own generator, or a seed for one.
    """

    phases: Sequence[Phase | tuple[Sequence[float], int]]
    rng: np.random.Generator | int | None = None
    _table: list[FloatArray] = field(init=False, repr=False)
    _ends: tuple[int, ...] = field(init=False, repr=False)
    _gen: np.random.Generator = field(init=False, repr=False)
    _phase: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        if not self.phases:
            raise ConfigError("phases must not be empty")
        normalised: list[Phase] = []
        for k, ph in enumerate(self.phases):
            rates, rounds = (ph.rates, ph.rounds) if isinstance(ph, Phase) else ph
            if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
                raise ConfigError(f"phases[{k}].rounds must be an int >= 1, got {rounds!r}")
            normalised.append(Phase(tuple(float(r) for r in rates), rounds))
        self.phases = normalised
        self._table = [_rates(f"phases[{k}].rates", ph.rates) for k, ph in enumerate(normalised)]
        if len({t.shape[0] for t in self._table}) != 1:
            raise ConfigError("every phase must have the same number of arms")
        ends = np.cumsum([ph.rounds for ph in normalised])
        self._ends = tuple(int(e) for e in ends)
        self._gen = _as_generator(self.rng)

    @property
    def n_arms(self) -> int:
        return int(self._table[0].shape[0])

    @property
    def reward_range(self) -> tuple[float, float]:
        return (0.0, 1.0)

    @property
    def change_points(self) -> tuple[int, ...]:
        return self._ends[:-1]

    @property
    def horizon(self) -> int:
        """Total rounds over all phases."""
        return self._ends[-1]

    def phase_at(self, round: int) -> int:
        """Index of the phase that covers ``round``."""
        # Rounds mostly arrive in order: start from the last phase looked up.
        k = self._phase if self._phase < len(self._ends) else 0
        if k and round < self._ends[k - 1]:
            k = 0
        while k < len(self._ends) - 1 and round >= self._ends[k]:
            k += 1
        self._phase = k
        return k

    def means(self, round: int) -> FloatArray:
        return self._table[self.phase_at(round)]

    def pull(self, arm: int, round: int) -> float:
        return 1.0 if self._gen.random() < self.means(round)[arm] else 0.0
