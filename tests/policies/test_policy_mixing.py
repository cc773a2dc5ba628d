"""Epsilon-greedy, softmax and EXP3: the shares by formula."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from policy_strategies import make_stats

from mabware.policies import EXP3, EpsilonGreedy, Softmax

LIVE4 = np.array([True, True, False, True])


def test_epsilon_greedy_gives_epsilon_over_l_plus_the_rest_to_the_leader(rng):
    stats = make_stats([10, 10, 10, 10], [2, 7, 9, 5])  # arm 2 is best but not live
    p = EpsilonGreedy(epsilon=0.3).allocate(stats, LIVE4, rng)
    np.testing.assert_allclose(p, [0.1, 0.1 + 0.7, 0.0, 0.1], rtol=0, atol=1e-15)


def test_epsilon_greedy_splits_the_leader_share_between_ties(rng):
    stats = make_stats([10, 20, 10, 10], [5, 10, 9, 1])
    p = EpsilonGreedy(epsilon=0.3).allocate(stats, LIVE4, rng)
    np.testing.assert_allclose(p, [0.1 + 0.35, 0.1 + 0.35, 0.0, 0.1], rtol=0, atol=1e-15)


def test_epsilon_greedy_tries_untried_arms_first(rng):
    stats = make_stats([10, 0, 0, 3], [5, 0, 0, 3])
    assert EpsilonGreedy().allocate(stats, LIVE4, rng).tolist() == [0.0, 1.0, 0.0, 0.0]


def test_epsilon_greedy_decays_as_documented(rng):
    policy = EpsilonGreedy(epsilon=0.2, decay="inverse", decay_after=100.0)
    assert [policy.rate(n) for n in (0, 50, 100, 200, 1000, 10_000)] == pytest.approx(
        [0.2, 0.2, 0.2, 0.1, 0.02, 0.002]
    )
    assert EpsilonGreedy(epsilon=0.2).rate(10_000) == 0.2
    # 400 live pulls -> epsilon 0.05, spread over 3 live arms
    stats = make_stats([100, 200, 50, 100], [10, 90, 50, 20])
    p = policy.allocate(stats, LIVE4, rng)
    np.testing.assert_allclose(p, [0.05 / 3, 0.05 / 3 + 0.95, 0.0, 0.05 / 3], atol=1e-15)
    rates = [policy.rate(n) for n in range(0, 5000, 50)]
    assert all(b <= a for a, b in itertools.pairwise(rates))


def test_softmax_is_proportional_to_exp_mean_over_tau(rng):
    stats = make_stats([10, 10, 10, 20], [2, 5, 9, 16])
    weights = np.exp(np.array([0.2, 0.5, 0.8]) / 0.25)
    p = Softmax(temperature=0.25).allocate(stats, LIVE4, rng)
    np.testing.assert_allclose(p[LIVE4], weights / weights.sum(), rtol=1e-12)
    assert p[2] == 0.0


def test_softmax_anneals_as_documented(rng):
    policy = Softmax(temperature=0.5, anneal=True)
    assert policy.tau(0) == pytest.approx(0.5)
    assert policy.tau(1000) == pytest.approx(0.5 / math.log(1000 + math.e))
    stats = make_stats([500, 500, 1, 0], [100, 150, 0, 0])
    live = np.array([True, True, False, False])
    tau = 0.5 / math.log(1000 + math.e)
    weights = np.exp(np.array([0.2, 0.3]) / tau)
    np.testing.assert_allclose(policy.allocate(stats, live, rng)[:2], weights / weights.sum())


def test_softmax_is_stable_at_tiny_temperatures(rng):
    stats = make_stats([10, 10, 10, 10], [1, 9, 0, 8.9999])
    p = Softmax(temperature=1e-9).allocate(stats, LIVE4, rng)
    assert p.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_softmax_tries_untried_arms_first(rng):
    stats = make_stats([10, 0, 0, 3], [5, 0, 0, 3])
    assert Softmax().allocate(stats, LIVE4, rng).tolist() == [0.0, 1.0, 0.0, 0.0]


def test_exp3_follows_the_formula(rng):
    gains = np.array([3.0, 10.0, 50.0, 0.0])
    stats = make_stats([5, 5, 5, 5], [1, 1, 1, 1], ipw_gain_sum=gains)
    gamma, live_gains = 0.3, gains[LIVE4]
    weights = np.exp(gamma / 3 * live_gains)
    expected = (1 - gamma) * weights / weights.sum() + gamma / 3
    p = EXP3(gamma=gamma).allocate(stats, LIVE4, rng)
    np.testing.assert_allclose(p[LIVE4], expected, rtol=1e-12)
    assert p[2] == 0.0


def test_exp3_weights_follow_gains_and_keep_a_floor(rng):
    # exp(gamma G / L) alone would overflow; only the differences matter
    gains = np.array([1e6, 1e6 + 60, 0.0, 1e6 + 30])
    stats = make_stats([1, 1, 1, 1], [0, 0, 0, 0], ipw_gain_sum=gains)
    p = EXP3(gamma=0.1).allocate(stats, LIVE4, rng)
    weights = np.exp(np.array([0.0, 2.0, 1.0]))
    np.testing.assert_allclose(p[LIVE4], 0.9 * weights / weights.sum() + 0.1 / 3, rtol=1e-9)
    assert p[1] > p[3] > p[0] > 0.1 / 3
    far = make_stats([1, 1, 1, 1], [0, 0, 0, 0], ipw_gain_sum=[0, 1e9, 0, 0])
    p = EXP3(gamma=0.1).allocate(far, LIVE4, rng)
    assert p[0] == p[3] == pytest.approx(0.1 / 3)


def test_exp3_with_gamma_one_is_uniform(rng):
    stats = make_stats([1, 1, 1, 1], [0, 0, 0, 0], ipw_gain_sum=[5, 1, 2, 3])
    np.testing.assert_allclose(
        EXP3(gamma=1.0).allocate(stats, LIVE4, rng), [1 / 3, 1 / 3, 0, 1 / 3]
    )
