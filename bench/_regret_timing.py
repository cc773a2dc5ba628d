"""Per-round cost for bench/regret.py (d): mabware's hot paths vs MABWiser.

Every case is a block of ``n`` iterations timed with ``time.perf_counter``;
the cases run interleaved (case 1, case 2, ..., then again) so a noisy
neighbour on a shared machine slows all of them alike, and each case
reports the median per-iteration time over the repetitions.

Cases:

* ``decide + record``: what serving does per request once the allocation
  is computed: sample an arm from the precomputed cumulative table
  (``assign.sample`` with a ``random.Random``) and record the pull and a
  reward with its propensity in ``Counters``.
* ``allocation recompute``: ``Experiment.decide`` (policy -> guardrails ->
  cumulative table) on a snapshot with data, Thompson sampling (the
  default policy) at 3 and 50 arms, and UCB1 at 50 arms for scale.
* MABWiser ``predict`` + ``partial_fit`` of one decision: its per-request
  work, which includes the learning.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import numpy as np

from mabware import assign, policies
from mabware.experiment import Experiment
from mabware.statistics import Statistics

Block = Callable[[int], float]


def _data(n_arms: int, rng: np.random.Generator) -> Statistics:
    """Statistics after 100 pulls per arm at rates spread over [0.02, 0.2]."""
    rates = np.linspace(0.02, 0.2, n_arms)
    pulls = np.full(n_arms, 100.0)
    return Statistics.from_counts(pulls, rng.binomial(100, rates).astype(np.float64))


def decide_and_record(n_arms: int = 3) -> Block:
    experiment = Experiment("timing", [f"arm{i}" for i in range(n_arms)])
    counters = experiment.counters()
    allocation = experiment.decide(
        _data(n_arms, np.random.default_rng(1)), np.random.default_rng(2)
    )
    table, shares = allocation.cumulative, allocation.probabilities
    source = random.Random(3)
    sample, add_pull, add_reward = assign.sample, counters.add_pull, counters.add_reward

    def block(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            arm = sample(table, source)
            add_pull(arm)
            add_reward(arm, 1.0, shares[arm])
        return time.perf_counter() - start

    return block


def recompute(n_arms: int, policy: str = "thompson") -> Block:
    experiment = Experiment(
        "timing", [f"arm{i}" for i in range(n_arms)], policy=policies.from_name(policy)
    )
    stats = _data(n_arms, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    decide = experiment.decide

    def block(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            decide(stats, rng)
        return time.perf_counter() - start

    return block


def mabwiser_round(policy: str, n_arms: int) -> Block:
    from _regret_tasks import mabwiser_policy
    from mabwiser.mab import MAB

    arms = list(range(n_arms))
    data = _data(n_arms, np.random.default_rng(1))
    decisions = np.repeat(arms, 100)
    rewards = np.concatenate(
        [np.r_[np.ones(int(w)), np.zeros(100 - int(w))] for w in data.reward_sum]
    )
    bandit = MAB(arms, mabwiser_policy(policy), seed=7)
    bandit.fit(decisions, rewards)
    luck = np.random.default_rng(4)

    def block(n: int) -> float:
        flips = luck.random(n) < 0.1
        start = time.perf_counter()
        for k in range(n):
            arm = bandit.predict()
            bandit.partial_fit([arm], [1.0 if flips[k] else 0.0])
        return time.perf_counter() - start

    return block


def measure(cases: dict[str, tuple[Block, int]], repeats: int) -> dict[str, float]:
    """Median seconds per iteration of each case, cases interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for block, n in cases.values():  # warm-up, not recorded
        block(max(1, n // 10))
    for _ in range(repeats):
        for name, (block, n) in cases.items():
            samples[name].append(block(n) / n)
    return {name: statistics.median(values) for name, values in samples.items()}


def timing_cases(with_mabwiser: bool) -> dict[str, tuple[Block, int]]:
    cases: dict[str, tuple[Block, int]] = {
        "mabware decide + record (3 arms)": (decide_and_record(3), 5000),
        "mabware allocation recompute, thompson (3 arms)": (recompute(3), 300),
        "mabware allocation recompute, thompson (50 arms)": (recompute(50), 100),
        "mabware allocation recompute, ucb1 (50 arms)": (recompute(50, "ucb1"), 300),
    }
    if with_mabwiser:
        cases["MABWiser thompson predict + partial_fit (3 arms)"] = (
            mabwiser_round("thompson", 3),
            200,
        )
        cases["MABWiser ucb1 predict + partial_fit (3 arms)"] = (mabwiser_round("ucb1", 3), 200)
        cases["MABWiser thompson predict + partial_fit (50 arms)"] = (
            mabwiser_round("thompson", 50),
            50,
        )
    return cases
