"""Discounted Thompson sampling and sliding-window UCB read time buckets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from policy_strategies import make_stats

from mabware.policies import DiscountedThompson, SlidingWindowUCB, ThompsonSampling
from mabware.policies._posterior import best_beta
from mabware.policies.discounted_thompson import MAX_BUCKETS

LIVE = np.array([True, True, True])


def bucketed(bucket_pulls, bucket_rewards):
    """Statistics whose totals are exactly the sums of their buckets."""
    bp, br = np.asarray(bucket_pulls, float), np.asarray(bucket_rewards, float)
    return make_stats(bp.sum(0), br.sum(0), bucket_pulls=bp, bucket_rewards=br)


@pytest.mark.parametrize(
    ("gamma", "needed"),
    [
        (0.999, 9206),
        (0.5, 14),
        (0.9, 88),
        (0.01, 3),
        (1e-9, 1),
        (1.0, MAX_BUCKETS),
        (0.99999, MAX_BUCKETS),
    ],
)
def test_discounted_buckets_needed_is_the_first_negligible_weight(gamma, needed):
    assert DiscountedThompson(gamma=gamma).buckets_needed == needed
    if needed < MAX_BUCKETS:
        assert gamma**needed < 1e-4 <= gamma ** (needed - 1) or needed == 1


def test_undiscounted_equals_thompson_on_the_summed_buckets(rng):
    stats = bucketed([[3, 0, 5], [10, 2, 1], [0, 7, 4]], [[1, 0, 2.5], [6, 1, 0], [0, 3, 4]])
    live = np.array([True, False, True])
    discounted = DiscountedThompson(gamma=1.0, prior_alpha=2, prior_beta=3)
    plain = ThompsonSampling(prior_alpha=2, prior_beta=3)
    np.testing.assert_allclose(
        discounted.allocate(stats, live, rng), plain.allocate(stats, live, rng), atol=1e-15
    )


def test_discounting_weights_bucket_k_by_gamma_to_the_k(rng):
    stats = bucketed([[4, 2, 0], [10, 10, 10], [6, 0, 8]], [[4, 0, 0], [1, 9, 5], [0, 0, 8]])
    gamma = 0.7
    w = gamma ** np.arange(3)
    pulls, wins = w @ stats.recent.pulls, w @ stats.recent.reward_sum
    expected = best_beta(1 + wins, 1 + pulls - wins)
    got = DiscountedThompson(gamma=gamma).allocate(stats, LIVE, rng)
    np.testing.assert_allclose(got, expected, atol=1e-15)


def test_discounting_forgets_an_old_winner(rng):
    # arm 0 was far better long ago (rows 5..9); arm 1 is better lately (rows 0..4)
    bp = np.full((10, 2), 100.0)
    br = np.zeros((10, 2))
    br[5:, 0], br[5:, 1] = 90, 10
    br[:5, 0], br[:5, 1] = 40, 60
    stats = bucketed(bp, br)
    live = np.array([True, True])
    assert ThompsonSampling().allocate(stats, live, rng)[0] > 0.99
    assert DiscountedThompson(gamma=0.5).allocate(stats, live, rng)[1] > 0.99


def test_sw_ucb_ignores_buckets_older_than_the_window(rng):
    recent_p = np.array([[10, 10, 10], [10, 10, 10]])
    recent_r = np.array([[2, 7, 5], [3, 8, 5]])
    old = bucketed(np.vstack([recent_p, [[500, 0, 0]]]), np.vstack([recent_r, [[500, 0, 0]]]))
    other = bucketed(np.vstack([recent_p, [[0, 900, 0]]]), np.vstack([recent_r, [[0, 0, 0]]]))
    policy = SlidingWindowUCB(window=2)
    first = policy.allocate(old, LIVE, rng)
    assert first.tolist() == policy.allocate(other, LIVE, rng).tolist() == [0.0, 1.0, 0.0]
    # with a window that reaches the old bucket, arm 0's old record counts
    assert SlidingWindowUCB(window=3, c=0.0).allocate(old, LIVE, rng).tolist() == [1, 0, 0]


def test_sw_ucb_index_equals_a_hand_computation(rng):
    stats = bucketed([[4, 9, 1], [6, 1, 2], [90, 90, 90]], [[2, 5, 1], [1, 0, 2], [0, 90, 0]])
    n, s = np.array([10, 10, 3]), np.array([3, 5, 3])
    horizon = min(stats.total_pulls, 23)
    index = s / n + 0.3 * np.sqrt(2 * math.log(horizon) / n)
    # 0.3 + 0.237, 0.5 + 0.237, 1.0 + 0.433: arm 2
    expected = [float(i == np.argmax(index)) for i in range(3)]
    assert (
        SlidingWindowUCB(window=2, c=0.3).allocate(stats, LIVE, rng).tolist()
        == expected
        == [0, 0, 1]
    )


def test_sw_ucb_tries_arms_unseen_in_the_window_first(rng):
    stats = bucketed([[5, 0, 0], [5, 0, 3], [5, 5, 5]], [[1, 0, 0], [1, 0, 1], [1, 1, 1]])
    assert SlidingWindowUCB(window=2).allocate(stats, LIVE, rng).tolist() == [0, 1, 0]
    live = np.array([True, False, True])
    assert SlidingWindowUCB(window=1).allocate(stats, live, rng).tolist() == [0, 0, 1]


def test_sw_ucb_needs_the_window_in_buckets():
    assert SlidingWindowUCB(window=250).buckets_needed == 250


def test_discounted_exploration_counts_each_observation_more(rng):
    pulls = [[5, 5, 5], [20, 20, 20]]
    rewards = [[2, 1, 1], [8, 5, 4]]
    stats = bucketed(pulls, rewards)
    doubled = bucketed(np.multiply(pulls, 2), np.multiply(rewards, 2))
    sharper = DiscountedThompson(gamma=0.9, exploration=0.5).allocate(stats, LIVE, rng)
    reference = DiscountedThompson(gamma=0.9).allocate(doubled, LIVE, rng)
    np.testing.assert_allclose(sharper, reference, atol=1e-12)
    assert sharper[0] > DiscountedThompson(gamma=0.9).allocate(stats, LIVE, rng)[0]
