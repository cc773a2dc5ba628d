"""GLR change detection, and Thompson sampling and KL-UCB++ since the last change."""

from __future__ import annotations

import numpy as np
import pytest
from policy_strategies import make_stats

from mabware.policies import GLRKLUCB, KLUCB, GLRThompson, ThompsonSampling
from mabware.policies._change_points import _latest_change, latest_segment_start


def bernoulli_buckets(rates_by_phase, rounds, seed=0):
    """(buckets, arms) pulls and wins, oldest first, every arm pulled each bucket."""
    rng = np.random.default_rng(seed)
    rows = []
    for rates, length in zip(rates_by_phase, rounds, strict=True):
        for _ in range(length):
            rows.append((rng.random(len(rates)) < np.asarray(rates)).astype(float))
    wins = np.array(rows)
    return np.ones_like(wins), wins


def test_no_change_means_the_whole_window():
    pulls, wins = bernoulli_buckets([[0.3, 0.5]], [2000], seed=1)
    assert latest_segment_start(pulls, wins, delta=0.01) == 0


def test_a_sharp_change_is_found_near_where_it_happened():
    pulls, wins = bernoulli_buckets([[0.8, 0.3], [0.2, 0.3]], [600, 400], seed=2)
    start = latest_segment_start(pulls, wins, delta=0.01)
    assert 570 <= start <= 630


def test_the_latest_of_two_changes_wins():
    phases = [[0.7, 0.2], [0.2, 0.7], [0.7, 0.2]]
    pulls, wins = bernoulli_buckets(phases, [500, 500, 500], seed=3)
    start = latest_segment_start(pulls, wins, delta=0.01)
    assert 970 <= start <= 1030


def test_one_pass_cuts_at_the_latest_arm_change_not_the_strongest():
    # arm 0 changes sharply at 300, arm 1 less sharply but significantly at 700
    pulls, wins = bernoulli_buckets([[0.9, 0.3], [0.1, 0.3], [0.1, 0.6]], [300, 400, 300], seed=7)
    assert 670 <= _latest_change(pulls, wins, 0.01, 1) <= 730


def test_empty_buckets_do_not_count():
    pulls, wins = bernoulli_buckets([[0.8, 0.3], [0.2, 0.3]], [600, 400], seed=2)
    gaps = np.zeros((50, 2))
    padded_pulls = np.vstack([gaps, pulls])
    padded_wins = np.vstack([gaps, wins])
    assert latest_segment_start(padded_pulls, padded_wins, 0.01) == 50 + latest_segment_start(
        pulls, wins, 0.01
    )


def newest_first(pulls, wins):
    return make_stats(
        pulls.sum(0), wins.sum(0), bucket_pulls=pulls[::-1], bucket_rewards=wins[::-1]
    )


def test_allocation_follows_the_new_leader_after_a_change(rng):
    pulls, wins = bernoulli_buckets([[0.8, 0.3], [0.1, 0.6]], [1500, 300], seed=4)
    stats = newest_first(pulls, wins)
    live = np.array([True, True])
    cumulative_view = ThompsonSampling().allocate(stats, live, rng)
    glr = GLRThompson(window=5000).allocate(stats, live, rng)
    assert cumulative_view[0] > 0.99  # the totals still favour the old leader
    assert glr[1] > 0.99


def test_stationary_data_gives_thompson_on_the_window(rng):
    pulls, wins = bernoulli_buckets([[0.3, 0.35, 0.5]], [800], seed=5)
    stats = newest_first(pulls, wins)
    live = np.array([True, True, True])
    np.testing.assert_allclose(
        GLRThompson(window=800).allocate(stats, live, rng),
        ThompsonSampling().allocate(stats, live, rng),
        atol=1e-12,
    )


def test_disabled_arms_are_not_scanned_and_get_nothing(rng):
    pulls, wins = bernoulli_buckets([[0.8, 0.3, 0.5], [0.8, 0.3, 0.0]], [500, 500], seed=6)
    stats = newest_first(pulls, wins)
    live = np.array([True, True, False])
    out = GLRThompson(window=2000).allocate(stats, live, rng)
    assert out[2] == 0.0
    np.testing.assert_allclose(
        out, ThompsonSampling().allocate(stats, live, rng), atol=1e-12
    )  # the change was only in the disabled arm


@pytest.mark.parametrize("cls", [GLRThompson, GLRKLUCB])
@pytest.mark.parametrize(
    ("field", "value"), [("delta", 0.0), ("delta", 1.0), ("window", 1), ("stride", 0)]
)
def test_bad_settings(cls, field, value):
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})


KL_UCB_PP = KLUCB(budget="kl-ucb++")


def test_kl_ucb_restart_follows_the_new_leader(rng):
    pulls, wins = bernoulli_buckets([[0.8, 0.3], [0.1, 0.6]], [1500, 300], seed=4)
    stats = newest_first(pulls, wins)
    live = np.array([True, True])
    assert KL_UCB_PP.allocate(stats, live, rng).tolist() == [1.0, 0.0]  # the totals
    assert GLRKLUCB(window=5000).allocate(stats, live, rng).tolist() == [0.0, 1.0]


def test_kl_ucb_restart_treats_arms_unpulled_since_the_change_as_untried(rng):
    # arm 0 collapses at bucket 1000; after that only arm 0 was played
    pulls, wins = bernoulli_buckets([[0.8, 0.3, 0.5], [0.05, 0.3, 0.5]], [1000, 200], seed=8)
    pulls[1000:, 1:] = 0.0
    wins[1000:, 1:] = 0.0
    out = GLRKLUCB(window=5000).allocate(newest_first(pulls, wins), np.ones(3, bool), rng)
    np.testing.assert_array_equal(out, [0.0, 0.5, 0.5])


def test_kl_ucb_on_a_stationary_window_is_kl_ucb_plus_plus(rng):
    pulls, wins = bernoulli_buckets([[0.3, 0.35, 0.5]], [800], seed=5)
    stats = newest_first(pulls, wins)
    live = np.array([True, True, True])
    for stride in (1, 10):
        np.testing.assert_array_equal(
            GLRKLUCB(window=800, stride=stride).allocate(stats, live, rng),
            KL_UCB_PP.allocate(stats, live, rng),
        )


def test_kl_ucb_ignores_a_change_in_a_disabled_arm(rng):
    pulls, wins = bernoulli_buckets([[0.8, 0.3, 0.5], [0.8, 0.3, 0.0]], [500, 500], seed=6)
    stats = newest_first(pulls, wins)
    live = np.array([True, True, False])
    out = GLRKLUCB().allocate(stats, live, rng)
    np.testing.assert_array_equal(out, KL_UCB_PP.allocate(stats, live, rng))
    assert out[2] == 0.0


def test_kl_ucb_default_window_is_a_week_of_minute_buckets():
    assert GLRKLUCB().buckets_needed == 7 * 24 * 60


def test_stride_finds_the_change_to_within_a_stride():
    pulls, wins = bernoulli_buckets([[0.8, 0.3], [0.2, 0.3]], [600, 400], seed=2)
    exact = latest_segment_start(pulls, wins, 0.01)
    coarse = latest_segment_start(pulls, wins, 0.01, stride=10)
    assert coarse % 10 == 0
    assert abs(coarse - exact) <= 10
