"""Work units of bench/regret.py: one simulated run each, picklable for a Pool.

Seed scheme (documented in the README next to the tables):

* stationary protocol (a), (c): environment ``i`` (0-19) of
  ``mabware.simulate.reference.reference_environments()``, replicate ``s``
  (0-49): rewards from ``default_rng([42 + i, s])``, the policy and the arm
  sampler from ``default_rng([42 + i, s, 1])``
  (``mabware.simulate.seeded_generators(42 + i, s)``). Every policy sees
  the same reward stream for the same (i, s), so comparisons are paired.
  (The original protocol seeds strategy and environment with the same
  ``default_rng(42 + i)``, i.e. two identical streams; the reference
  reproduction keeps that, the replicates do not.)
* piecewise (b): seed ``s`` (0-19): ``seeded_generators(PIECEWISE_BASE, s)``.
* MABWiser (d): the same reward stream as (a); MABWiser's own seed is
  ``1000 * (42 + i) + s``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from _candidates import CANDIDATES, OracleRestart

from mabware import policies
from mabware.simulate import (
    BernoulliEnvironment,
    PiecewiseEnvironment,
    convergence_round,
    run,
    seeded_generators,
)
from mabware.simulate.reference import reference_environments

ROUNDS = 2000
ENVIRONMENTS = reference_environments()

#: (b): 3 arms, the best arm changes every phase; gaps to the runner-up 0.10, 0.15, 0.20
PHASES: tuple[tuple[tuple[float, ...], int], ...] = (
    ((0.40, 0.30, 0.20), 3000),
    ((0.20, 0.45, 0.30), 3000),
    ((0.25, 0.15, 0.45), 3000),
)
PIECEWISE_BASE = 7

#: the investigation's risk check: close, conversion-like rates and a longer run,
#: where settling early on the wrong arm costs most
SMALL_GAP_RATES = (0.05, 0.07, 0.09)
SMALL_GAP_ROUNDS = 10_000
SMALL_GAP_BASE = 11


@dataclass(frozen=True)
class Config:
    """A policy with settings, as the benchmark names it."""

    policy: str
    params: tuple[tuple[str, Any], ...] = ()
    note: str = ""

    def make(self) -> policies.Policy:
        if self.policy in CANDIDATES:  # bench/_candidates.py, not in mabware
            return CANDIDATES[self.policy](**dict(self.params))  # type: ignore[no-any-return]
        return policies.from_name(self.policy, **dict(self.params))

    @property
    def candidate(self) -> bool:
        """True for the bench-only candidates of ``_candidates.py``."""
        return self.policy in CANDIDATES

    @property
    def settings(self) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.params) or "default"
        notes = [n for n in (self.note, self.policy in CANDIDATES and "bench candidate") if n]
        return f"{text} ({'; '.join(notes)})" if notes else text


# -- what runs ---------------------------------------------------------------

TS = Config("thompson")
#: (a): every registered stationary policy with its defaults, 50 replicates
STATIONARY = [
    TS,
    Config("ucb1"),
    Config("kl-ucb"),
    Config("kl-ucb", (("budget", "kl-ucb++"),)),
    Config("epsilon-greedy"),
    Config("softmax"),
    Config("exp3"),
]
#: (a) investigation: other standard settings and a candidate index, paired with TS
INVESTIGATE = [
    Config("thompson", (("prior_alpha", 0.5), ("prior_beta", 0.5)), "Jeffreys prior"),
    Config("thompson", (("exploration", 0.5),)),
    Config("ucb1", (("c", 0.5),)),
    Config("epsilon-greedy", (("decay", "inverse"),)),
    Config("kl-ucb", (("budget", "kl-ucb++"),)),
]
#: the small-gap check runs these (and the default kl-ucb, for its kl-ucb++ budget)
SMALL_GAP = [TS, Config("kl-ucb"), *INVESTIGATE]
#: (b), and (a) at fewer replicates for the "stationary regret <= 1.2x TS" check
DRIFT = [
    Config("discounted-thompson", (("gamma", 0.999),)),
    Config("discounted-thompson", (("gamma", 0.998),)),
    Config("sw-ucb", (("window", 1000),)),
    Config("sw-ucb", (("window", 500), ("c", 0.5)), "Garivier-Moulines tuning"),
    Config("glr-thompson", (("stride", 10),)),
    Config("glr-thompson", (("delta", 0.1), ("exploration", 0.5), ("stride", 10))),
    Config("glr-kl-ucb", note="its one-week window spans the whole run"),
]
#: (b) only: yardsticks told the change points (not policies; see _candidates)
ORACLES = [Config("oracle-restart"), Config("oracle-restart", (("base", "kl-ucb++"),))]
PIECEWISE = [TS, Config("ucb1"), *DRIFT, *ORACLES]
BATCHES = (1, 10, 100)
MABWISER = ("thompson", "ucb1", "epsilon-greedy")
#: mabware's counterpart of each MABWiser policy in (d)
OURS = {"thompson": TS, "ucb1": Config("ucb1"), "epsilon-greedy": Config("epsilon-greedy")}


@dataclass(frozen=True)
class Outcome:
    """One finished run, as a worker returns it.

    Attributes:
        kind: ``"stationary"``, ``"piecewise"`` or ``"mabwiser"``.
        policy: the ``Config`` (mabware, candidates) or MABWiser policy name.
        env: environment index for the stationary protocol, else -1.
        replicate: replicate (or piecewise seed) number.
        batch: feedback batch.
        regret: final pseudo-regret.
        convergence: ``(round,)`` for a stationary run, one per phase otherwise.
        fallbacks: allocations that fell back to the default arm (0 if healthy).
        rounds: rounds played.
        cpu: CPU seconds the run took in its worker.
        late_best_share: share of the last 10% of rounds given to the best
            arm (small-gap check; None elsewhere).
    """

    kind: str
    policy: Config | str
    env: int
    replicate: int
    batch: int
    regret: float
    convergence: tuple[int | None, ...]
    fallbacks: int
    rounds: int
    cpu: float
    late_best_share: float | None = None


def stationary(job: tuple[Config, int, int, int]) -> Outcome:
    """(config, environment index, replicate, batch) on the seed protocol."""
    config, i, s, batch = job
    started = time.process_time()
    env_rng, policy_rng = seeded_generators(42 + i, s)
    env = BernoulliEnvironment(ENVIRONMENTS[i], rng=env_rng)
    result = run(config.make(), env, ROUNDS, batch=batch, rng=policy_rng)
    return Outcome(
        "stationary",
        config,
        i,
        s,
        batch,
        result.final_regret,
        (result.convergence,),
        result.fallbacks,
        len(result.choices),
        time.process_time() - started,
    )


def phases(scale: float = 1.0) -> list[tuple[tuple[float, ...], int]]:
    """The piecewise phases, optionally shortened (``--quick``)."""
    return [(rates, max(1, int(rounds * scale))) for rates, rounds in PHASES]


def piecewise(job: tuple[Config, int, float]) -> Outcome:
    """(config, seed, phase-length scale) on the piecewise scenario."""
    config, s, scale = job
    started = time.process_time()
    env_rng, policy_rng = seeded_generators(PIECEWISE_BASE, s)
    env = PiecewiseEnvironment(phases(scale), rng=env_rng)
    policy = config.make()
    if isinstance(policy, OracleRestart):  # the yardstick is told the change points
        policy = replace(policy, change_points=env.change_points)
    result = run(policy, env, env.horizon, rng=policy_rng)
    return Outcome(
        "piecewise",
        config,
        -1,
        s,
        1,
        result.final_regret,
        result.phase_convergence,
        result.fallbacks,
        len(result.choices),
        time.process_time() - started,
    )


def small_gap(job: tuple[Config, int, int]) -> Outcome:
    """(config, seed, rounds) on ``SMALL_GAP_RATES``."""
    config, s, rounds = job
    started = time.process_time()
    env_rng, policy_rng = seeded_generators(SMALL_GAP_BASE, s)
    env = BernoulliEnvironment(SMALL_GAP_RATES, rng=env_rng)
    result = run(config.make(), env, rounds, rng=policy_rng)
    tail = result.choices[-max(1, rounds // 10) :]
    best = SMALL_GAP_RATES.index(max(SMALL_GAP_RATES))
    return Outcome(
        "small-gap",
        config,
        -1,
        s,
        1,
        result.final_regret,
        (result.convergence,),
        result.fallbacks,
        rounds,
        time.process_time() - started,
        float((tail == best).mean()),
    )


def mabwiser_policy(name: str) -> Any:
    """MABWiser's learning policy for one of our reference names."""
    from mabwiser.mab import LearningPolicy

    return {
        "thompson": LearningPolicy.ThompsonSampling(),
        "ucb1": LearningPolicy.UCB1(alpha=1.0),
        "epsilon-greedy": LearningPolicy.EpsilonGreedy(epsilon=0.1),
    }[name]


def mabwiser(job: tuple[str, int, int]) -> Outcome:
    """(MABWiser policy, environment index, replicate) on the seed protocol.

    MABWiser needs ``fit`` before ``predict``, and its UCB1 gives an arm it
    has never fitted an expectation of 0, so from an empty fit it would
    never try the other arms. Every MABWiser policy is therefore started
    by playing each arm once in arm order (those rounds count in the
    regret) and fitting on them; then ``predict`` + ``partial_fit`` per round.
    The reward stream is the one mabware's policies get for (i, s).
    """
    from mabwiser.mab import MAB

    name, i, s = job
    started = time.process_time()
    rates = ENVIRONMENTS[i]
    env_rng, _ = seeded_generators(42 + i, s)
    arms = list(range(len(rates)))
    best = max(rates)
    start = [1.0 if env_rng.random() < rates[a] else 0.0 for a in arms]
    bandit = MAB(arms, mabwiser_policy(name), seed=1000 * (42 + i) + s)
    bandit.fit(np.array(arms), np.array(start))
    regret = sum(best - rates[a] for a in arms)
    choices = list(arms)
    for _ in range(ROUNDS - len(arms)):
        arm = int(bandit.predict())
        reward = 1.0 if env_rng.random() < rates[arm] else 0.0
        bandit.partial_fit([arm], [reward])
        regret += best - rates[arm]
        choices.append(arm)
    converged = convergence_round(choices, rates.index(best))
    cpu = time.process_time() - started
    return Outcome("mabwiser", name, i, s, 1, regret, (converged,), 0, ROUNDS, cpu)
