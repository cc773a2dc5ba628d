"""Drive the real decision path against a simulated environment.

Each round does what serving does for one visitor, with the same code::

    Experiment.decide(counters.snapshot()) -> Allocation     (every `batch` rounds)
    assign.sample(allocation.cumulative, rng) -> arm          (every round)
    counters.add_pull(arm); env.pull(arm) -> reward; counters.add_reward(...)

so policies, guardrails and assignment are exercised exactly as in
production. ``batch`` models feedback delay: with ``batch=1`` the
allocation is recomputed before every round (a single process that learns
after every reward); with ``batch=10`` it is recomputed at rounds 0, 10,
20, ... while rewards keep accumulating in the counters (many visitors
served from one allocation between syncs).

Time: one round is one unit of time, and the time bucket of round ``t``
is ``t // rounds_per_bucket``; the drift policies (DiscountedThompson,
SlidingWindowUCB) read those buckets, so their ``gamma`` and ``window`` are
per bucket. Every reward is recorded with the propensity of the chosen arm
(its share in the allocation it was drawn from), which EXP3 needs.

Seeding: ``seeded_generators(base, seed)`` gives the scheme the CLI and
``bench/regret.py`` use, so runs are reproducible from two integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from mabware import assign
from mabware._types import FloatArray
from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.policies import Policy
from mabware.simulate.environments import Environment
from mabware.simulate.regret import convergence_round, pseudo_regret

__all__ = ["RunResult", "run", "seeded_generators"]

IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class RunResult:
    """What one simulated run produced.

    Attributes:
        choices: the arm chosen at each round.
        regret: cumulative pseudo-regret after each round.
        reward: total reward collected.
        convergence: first round the best arm held >= 80% of a 100-round
            window (``regret.convergence_round``); None if never, and
            always None for a piecewise environment.
        phase_convergence: per phase of a piecewise environment, the
            convergence round counted from the start of the phase on that
            phase's choices (its adaptation delay); ``(convergence,)`` for
            a stationary one.
        decisions: how many times the allocation was recomputed.
        fallbacks: how many of those allocations were a guardrail fallback
            to the default arm (a policy error, for instance); 0 in a
            healthy run.
    """

    choices: IntArray
    regret: FloatArray
    reward: float
    convergence: int | None
    phase_convergence: tuple[int | None, ...]
    decisions: int
    fallbacks: int = 0

    @property
    def final_regret(self) -> float:
        """Cumulative pseudo-regret after the last round."""
        return float(self.regret[-1]) if self.regret.size else 0.0


def seeded_generators(base: int, seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The (environment, policy) generators for replicate ``seed`` of ``base``.

    Environment: ``default_rng([base, seed])``; policy and sampler:
    ``default_rng([base, seed, 1])``. The two streams are independent, and
    the environment stream does not depend on the policy, so policies run
    with the same ``(base, seed)`` face the same reward luck.
    """
    return np.random.default_rng([base, seed]), np.random.default_rng([base, seed, 1])


def _experiment_for(policy: Experiment | Policy, env: Environment) -> Experiment:
    if isinstance(policy, Experiment):
        experiment = policy
    else:
        experiment = Experiment(
            "simulation",
            arms=[f"arm{i}" for i in range(env.n_arms)],
            policy=policy,
            reward_range=env.reward_range,
        )
    if len(experiment.arm_names) != env.n_arms:
        raise ConfigError(
            f"experiment has {len(experiment.arm_names)} arms, environment has {env.n_arms}"
        )
    low, high = experiment.reward_range
    env_low, env_high = env.reward_range
    if env_low < low or env_high > high:
        raise ConfigError(
            f"environment rewards span {env.reward_range}, outside the experiment's "
            f"reward_range {experiment.reward_range}"
        )
    return experiment


def _segments(env: Environment, rounds: int) -> list[tuple[int, int]]:
    edges = [0, *(c for c in env.change_points if 0 < c < rounds), rounds]
    return list(pairwise(edges))


def run(
    policy: Experiment | Policy,
    env: Environment,
    rounds: int,
    *,
    batch: int = 1,
    rng: np.random.Generator | int | None = None,
    rounds_per_bucket: int = 1,
) -> RunResult:
    """Play ``rounds`` rounds of ``env`` through the real decision path.

    Args:
        policy: a policy (wrapped in an experiment with default guardrails
            and the environment's reward range) or a full ``Experiment``.
        env: the environment; it owns the reward randomness.
        rounds: number of rounds (>= 1).
        batch: recompute the allocation every ``batch`` rounds (>= 1).
        rng: the generator for the policy and the arm sampler, or a seed.
            Keep it independent of the environment's generator (see
            ``seeded_generators``): two generators with the same seed give
            the sampler and the reward the same uniforms, and then the arm
            choice decides the reward.
        rounds_per_bucket: rounds per time bucket (>= 1).

    Returns:
        Choices, cumulative pseudo-regret, convergence and decision count.

    Raises:
        ConfigError: bad counts, or an experiment that does not fit ``env``.
    """
    counts = {"rounds": rounds, "batch": batch, "rounds_per_bucket": rounds_per_bucket}
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an int >= 1, got {value!r}", payload=value)
    experiment = _experiment_for(policy, env)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    counters = experiment.counters()
    choices = np.empty(rounds, dtype=np.intp)
    total = 0.0
    decisions = fallbacks = 0
    table: tuple[float, ...] = ()
    shares: tuple[float, ...] = ()
    # Bound methods hoisted out of the loop: this is the simulator's hot path.
    decide, snapshot = experiment.decide, counters.snapshot
    add_pull, add_reward, pull = counters.add_pull, counters.add_reward, env.pull
    sample = assign.sample
    for t in range(rounds):
        bucket = t // rounds_per_bucket
        if t % batch == 0:
            allocation = decide(snapshot(bucket), gen)
            table, shares = allocation.cumulative, allocation.probabilities
            decisions += 1
            fallbacks += allocation.fallback
        arm = sample(table, gen)
        add_pull(arm, bucket)
        reward = pull(arm, t)
        add_reward(arm, reward, shares[arm], bucket)
        choices[t] = arm
        total += reward
    return _result(env, choices, total, decisions, fallbacks)


def _result(
    env: Environment, choices: IntArray, total: float, decisions: int, fallbacks: int
) -> RunResult:
    rounds = int(choices.shape[0])
    segments = _segments(env, rounds)
    if len(segments) == 1:
        means = env.means(0)
        regret = pseudo_regret(choices, means)
        converged = convergence_round(choices, int(np.argmax(means)))
        return RunResult(choices, regret, total, converged, (converged,), decisions, fallbacks)
    table = np.stack([env.means(t) for t in range(rounds)])
    regret = pseudo_regret(choices, table)
    delays = tuple(
        convergence_round(choices[start:end], int(np.argmax(table[start])))
        for start, end in segments
    )
    return RunResult(choices, regret, total, None, delays, decisions, fallbacks)
