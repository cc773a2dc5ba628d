"""Environments: reward frequencies, one draw per round, piecewise switching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mabware.exceptions import ConfigError
from mabware.simulate import (
    BernoulliEnvironment,
    Environment,
    GaussianEnvironment,
    Phase,
    PiecewiseEnvironment,
)


def test_bernoulli_frequencies_match_rates():
    rates = (0.1, 0.5, 0.9)
    env = BernoulliEnvironment(rates, rng=1)
    n = 20_000
    for arm, p in enumerate(rates):
        wins = sum(env.pull(arm, t) for t in range(n))
        assert abs(wins / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert isinstance(env, Environment)
    assert env.reward_range == (0.0, 1.0)
    assert env.change_points == ()
    assert env.means(123).tolist() == list(rates)


def test_bernoulli_draws_one_uniform_per_round_whatever_the_arm():
    env = BernoulliEnvironment((0.2, 0.6), rng=np.random.default_rng(9))
    u = np.random.default_rng(9).random(500)
    arms = np.random.default_rng(0).integers(0, 2, 500)
    got = [env.pull(int(a), t) for t, a in enumerate(arms)]
    expected = [1.0 if u[t] < (0.2, 0.6)[a] else 0.0 for t, a in enumerate(arms)]
    assert got == expected


@pytest.mark.parametrize("rates", [(0.5,), (0.1, 1.2), (-0.1, 0.5), (0.2, math.nan)])
def test_bernoulli_rejects_bad_rates(rates):
    with pytest.raises(ConfigError, match="rates"):
        BernoulliEnvironment(rates)


def test_gaussian_means_and_spread():
    env = GaussianEnvironment((0.0, 2.0), sd=0.5, rng=3)
    draws = np.array([env.pull(1, t) for t in range(20_000)])
    assert abs(draws.mean() - 2.0) < 0.02
    assert abs(draws.std() - 0.5) < 0.02
    assert env.reward_range == (-math.inf, math.inf)


@pytest.mark.parametrize(
    ("means", "sd"), [((0.0,), 1.0), ((0.0, math.inf), 1.0), ((0.0, 1.0), 0.0)]
)
def test_gaussian_rejects_bad_settings(means, sd):
    with pytest.raises(ConfigError):
        GaussianEnvironment(means, sd=sd)


def test_piecewise_switches_at_phase_boundaries():
    env = PiecewiseEnvironment([((0.9, 0.1), 3), Phase((0.1, 0.9), 2), ((0.5, 0.5), 4)], rng=0)
    assert env.change_points == (3, 5)
    assert env.horizon == 9
    best = [int(np.argmax(env.means(t))) for t in range(9)]
    assert best[:5] == [0, 0, 0, 1, 1]
    assert env.means(8).tolist() == [0.5, 0.5]
    assert env.means(100).tolist() == [0.5, 0.5]  # the last phase holds
    assert env.means(1).tolist() == [0.9, 0.1]  # looking back works too


def test_piecewise_rewards_follow_the_current_phase():
    env = PiecewiseEnvironment([((1.0, 0.0), 50), ((0.0, 1.0), 50)], rng=0)
    rewards = [env.pull(0, t) for t in range(100)]
    assert rewards == [1.0] * 50 + [0.0] * 50


@pytest.mark.parametrize(
    "phases",
    [[], [((0.1, 0.2), 0)], [((0.1, 0.2), 5), ((0.1, 0.2, 0.3), 5)], [((0.1, 2.0), 5)]],
)
def test_piecewise_rejects_bad_phases(phases):
    with pytest.raises(ConfigError):
        PiecewiseEnvironment(phases)
