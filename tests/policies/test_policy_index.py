"""UCB1 and KL-UCB: the indexes by hand, untried arms first, ties split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_strategies import make_stats

from mabware.policies import KLUCB, UCB1
from mabware.policies.kl_ucb import kl_bernoulli, kl_upper

LIVE3 = np.array([True, True, True])


def test_ucb1_index_equals_a_hand_computation(rng):
    stats = make_stats([10, 20, 30], [3, 8, 20])
    n_total = 60
    index = [s / n + math.sqrt(2 * math.log(n_total) / n) for s, n in [(3, 10), (8, 20), (20, 30)]]
    # 0.3 + 0.905 = 1.205 beats 0.667 + 0.522 = 1.189 and 0.4 + 0.640 = 1.040
    assert int(np.argmax(index)) == 0
    assert UCB1().allocate(stats, LIVE3, rng).tolist() == [1.0, 0.0, 0.0]
    # half the exploration weight: the best mean wins
    assert UCB1(c=0.5).allocate(stats, LIVE3, rng).tolist() == [0.0, 0.0, 1.0]


def test_ucb1_counts_only_live_arms_in_n(rng):
    # arm 0 (0.2 over 10 pulls) overtakes arm 1 (0.6 over 100) once
    # c sqrt(2 ln N) > 1.85: with N = 110 that is 1.38, with N = 1e6 + 110 it is 2.37
    stats = make_stats([10, 100, 1e6], [2, 60, 0])
    assert UCB1(c=0.45).allocate(stats, np.array([True, True, False]), rng).tolist() == [0, 1, 0]
    assert UCB1(c=0.45).allocate(stats, LIVE3, rng).tolist() == [1.0, 0.0, 0.0]


def test_untried_live_arms_come_first_with_equal_shares(rng):
    stats = make_stats([10, 0, 4, 0], [10, 0, 4, 0])
    live = np.array([True, True, True, False])
    for policy in (UCB1(), KLUCB()):
        assert policy.allocate(stats, live, rng).tolist() == [0.0, 1.0, 0.0, 0.0]


def test_exact_ties_split_the_mass(rng):
    stats = make_stats([10, 10, 5], [5, 5, 0])
    for policy in (UCB1(), KLUCB()):
        assert policy.allocate(stats, LIVE3, rng).tolist() == [0.5, 0.5, 0.0]


@settings(max_examples=500)
@given(
    mean=st.sampled_from([0.0, 1.0, 0.5]) | st.floats(0.0, 1.0),
    pulls=st.integers(1, 10**7),
    budget=st.floats(1e-3, 40.0),
)
def test_kl_ucb_index_solves_the_kl_equation(mean, pulls, budget):
    bound = budget / pulls
    q = float(kl_upper(np.array([mean]), np.array([bound]))[0])
    assert mean <= q <= 1.0

    def kl(x: float) -> float:
        # written around d = x - mean so that it stays accurate for x near mean
        x = min(max(x, mean), 1.0)
        d = x - mean
        if mean == 0:
            left = 0.0
        elif d > mean:  # no cancellation to fear; d / mean may overflow
            left = mean * (math.log(mean) - math.log(x))
        else:
            left = -mean * math.log1p(d / mean)
        if mean == 1.0:
            return left
        if x == 1.0:
            return math.inf
        return left - (1 - mean) * math.log1p(-d / (1 - mean))

    # kl(mean, .) increases on [mean, 1], so the largest q inside the ball is
    # bracketed: to 1e-11 (the solver's own sums limit it near mean)
    assert kl(q - 1e-11) <= bound * (1 + 1e-9)
    assert q + 1e-11 >= 1.0 or kl(q + 1e-11) >= bound * (1 - 1e-9)


def test_kl_ucb_closed_forms():
    assert kl_bernoulli(np.array([0.5, 0.0, 1.0]), np.array([0.5, 0.5, 0.5])).tolist() == (
        pytest.approx([0.0, math.log(2), math.log(2)])
    )
    # mean 0: kl(0, q) = -log(1 - q), so q = 1 - exp(-bound)
    assert kl_upper(np.array([0.0]), np.array([0.7]))[0] == pytest.approx(1 - math.exp(-0.7))
    assert kl_upper(np.array([1.0]), np.array([0.7]))[0] == 1.0
    assert kl_upper(np.array([0.3]), np.array([0.0]))[0] == 0.3


def test_kl_ucb_index_is_tighter_than_ucb1_and_shrinks_with_pulls():
    means = np.full(4, 0.1)
    bounds = math.log(1000) / np.array([10.0, 100.0, 1000.0, 10000.0])
    q = kl_upper(means, bounds)
    assert (np.diff(q) < 0).all()
    # Pinsker: the KL index never exceeds the Hoeffding index mean + sqrt(bound / 2)
    assert (q <= means + np.sqrt(bounds / 2)).all()


def test_kl_ucb_allocation_follows_the_index(rng):
    stats = make_stats([100, 5, 50], [10, 0, 9])
    log_n = math.log(155)
    index = kl_upper(np.array([0.1, 0.0, 0.18]), log_n / np.array([100.0, 5.0, 50.0]))
    p = KLUCB().allocate(stats, LIVE3, rng)
    assert p.tolist() == [float(i == np.argmax(index)) for i in range(3)]


def test_kl_ucb_log_log_term_only_from_n_at_least_e(rng):
    # N = 2: ln ln 2 < 0 must not shrink the index below the c = 0 one
    stats = make_stats([1, 1], [1, 0])
    assert KLUCB(c=3).allocate(stats, np.array([True, True]), rng).tolist() == [1.0, 0.0]


def test_kl_ucb_plus_plus_budget_is_per_arm(rng):
    # N = 300, L = 3: the fair share is 100 pulls
    stats = make_stats([200.0, 60.0, 40.0], [120.0, 30.0, 16.0])
    live = np.array([True, True, True])
    policy = KLUCB(budget="kl-ucb++")
    budgets = np.maximum(np.log(300.0 / (3.0 * stats.pulls)), 0.0)
    assert budgets[0] == 0.0  # more than its fair share: no bonus
    index = kl_upper(stats.reward_sum / stats.pulls, budgets / stats.pulls)
    assert index[0] == pytest.approx(0.6)
    expected = np.zeros(3)
    expected[int(np.argmax(index))] = 1.0
    np.testing.assert_array_equal(policy.allocate(stats, live, rng), expected)


def test_kl_ucb_plus_plus_explores_less_than_log_budget(rng):
    stats = make_stats([400.0, 50.0], [240.0, 22.5])  # means 0.6 and 0.45
    live = np.array([True, True])
    assert KLUCB().allocate(stats, live, rng)[1] == 1.0  # ln N bonus reaches the laggard
    assert KLUCB(budget="kl-ucb++").allocate(stats, live, rng)[0] == 1.0
