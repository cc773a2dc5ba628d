"""Statistics snapshots and the Counters accumulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mabware.statistics import LATENCY_BOUNDS, Counters, Statistics


def test_counters_sum_pulls_rewards_and_squares():
    c = Counters(3)
    for arm, value in [(0, 1.0), (0, 0.5), (2, 0.25)]:
        c.add_pull(arm)
        c.add_reward(arm, value)
    c.add_pull(1)
    s = c.snapshot()
    assert s.pulls.tolist() == [2.0, 1.0, 1.0]
    assert s.reward_sum.tolist() == [1.5, 0.0, 0.25]
    assert s.reward_sq_sum.tolist() == [1.25, 0.0, 0.0625]
    assert s.means().tolist() == [0.75, 0.0, 0.25]
    assert s.total_pulls == 4.0


def test_snapshot_is_a_copy():
    c = Counters(2)
    s = c.snapshot()
    c.add_pull(0)
    assert s.pulls.tolist() == [0.0, 0.0]


def test_importance_weighted_gains_are_rescaled_to_unit_range():
    c = Counters(2, reward_range=(0.0, 10.0))
    c.add_reward(1, 5.0, propensity=0.25)  # gain 0.5 / 0.25
    c.add_reward(0, 5.0)  # no propensity: no gain recorded
    assert c.snapshot().ipw_gain_sum.tolist() == [0.0, 2.0]


def test_buckets_rotate_newest_first_and_drop_the_oldest():
    c = Counters(2, n_buckets=3)
    c.add_pull(0, bucket=10)
    c.add_pull(1, bucket=11)
    c.add_reward(1, 1.0, bucket=11)
    c.add_pull(1, bucket=12)
    s = c.snapshot()
    assert s.recent is not None
    assert s.recent.newest == 12
    assert s.recent.pulls.tolist() == [[0, 1], [0, 1], [1, 0]]
    assert s.recent.reward_sum.tolist() == [[0, 0], [0, 1], [0, 0]]
    later = c.snapshot(bucket=14)  # two empty buckets pushed in
    assert later.recent is not None
    assert later.recent.pulls.tolist() == [[0, 0], [0, 0], [0, 1]]
    # totals never forget
    assert later.pulls.tolist() == [1.0, 2.0]


def test_a_late_event_lands_in_its_own_bucket_or_only_in_totals():
    c = Counters(1, n_buckets=3)
    c.add_pull(0, bucket=20)
    c.add_pull(0, bucket=19)  # one bucket late: row 1
    c.add_pull(0, bucket=5)  # older than the ring: totals only
    s = c.snapshot()
    assert s.recent is not None
    assert s.recent.pulls[:, 0].tolist() == [1, 1, 0]
    assert s.pulls.tolist() == [3.0]


def test_a_jump_longer_than_the_ring_clears_it():
    c = Counters(1, n_buckets=3)
    for b in range(3):
        c.add_pull(0, bucket=b)
    s = c.snapshot(bucket=100)
    assert s.recent is not None
    assert s.recent.pulls.sum() == 0.0


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 1)), max_size=60))
def test_buckets_equal_a_recount_of_recent_events(events):
    depth = 5
    c = Counters(2, n_buckets=depth)
    newest = None
    for bucket, arm in sorted(events):
        c.add_pull(arm, bucket=bucket)
        newest = bucket
    s = c.snapshot()
    if newest is None:
        return
    assert s.recent is not None
    for row in range(depth):
        for arm in range(2):
            expected = sum(1 for b, a in events if b == newest - row and a == arm)
            assert s.recent.pulls[row, arm] == expected


def test_rescaled_maps_rewards_into_unit_range():
    c = Counters(2, reward_range=(10.0, 20.0))
    for v in (10.0, 20.0, 15.0):
        c.add_pull(0)
        c.add_reward(0, v)
    s = c.snapshot().rescaled(10.0, 20.0)
    assert s.reward_sum[0] == pytest.approx(1.5)
    assert s.reward_sq_sum[0] == pytest.approx(0 + 1 + 0.25)


def test_rescaled_identity_for_unit_range():
    s = Statistics.from_counts([2, 3], [1, 2])
    assert s.rescaled(0.0, 1.0) is s


def test_take_reorders_every_field():
    c = Counters(3, n_buckets=2)
    c.add_pull(2, bucket=0)
    c.add_reward(2, 1.0, propensity=0.5, bucket=0)
    c.add_response(2, error=True, latency=0.02)
    s = c.snapshot().take([2, 0, 1])
    assert s.pulls.tolist() == [1, 0, 0]
    assert s.reward_sum.tolist() == [1, 0, 0]
    assert s.ipw_gain_sum.tolist() == [2, 0, 0]
    assert s.errors.tolist() == [1, 0, 0]
    assert s.latency_hist[0].sum() == 1
    assert s.recent is not None
    assert s.recent.pulls[0].tolist() == [1, 0, 0]


def test_latency_quantile_reads_the_histogram():
    c = Counters(2)
    for i in range(100):
        c.add_response(0, error=False, latency=0.004 if i < 94 else 0.7)
    q = c.snapshot().latency_quantile(0.95)
    assert q[0] == 1.0  # the bucket (0.5, 1.0] holds the 95th response
    assert math.isnan(q[1])  # no responses measured


def test_latency_beyond_the_last_bound_is_counted():
    c = Counters(1)
    c.add_response(0, error=False, latency=1e6)
    assert c.snapshot().latency_hist[0, len(LATENCY_BOUNDS) - 1] == 1.0
    assert np.isinf(c.snapshot().latency_quantile(0.5)[0])
