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


def test_the_ring_wraps_around_many_times():
    depth = 4
    c = Counters(2, n_buckets=depth)
    for b in range(1, 51):  # 12 laps of the ring
        c.add_pull(b % 2, bucket=b)
        c.add_reward(b % 2, float(b), bucket=b)
        s = c.snapshot()
        assert s.recent is not None
        assert s.recent.newest == b
        rows = [max(k, 0) for k in range(b, b - depth, -1)]  # bucket of each row; 0 unused
        assert s.recent.reward_sum.sum(axis=1).tolist() == [float(k) for k in rows]
        assert s.recent.pulls[:, 1].tolist() == [float(k % 2) for k in rows]
    assert s.pulls.tolist() == [25.0, 25.0]


@pytest.mark.parametrize("gap", [1, 2, 3, 4, 5, 1000])
def test_gaps_clear_exactly_the_expired_buckets_wherever_the_ring_stands(gap):
    depth = 4
    for laps in range(depth):  # start the gap from every head position
        c = Counters(1, n_buckets=depth)
        for b in range(1, 1 + depth + laps):
            c.add_pull(0, bucket=b)
            c.add_reward(0, float(b), bucket=b)
        last = depth + laps
        s = c.snapshot(bucket=last + gap)
        assert s.recent is not None
        # row k is bucket last + gap - k: written (its value is its index) once k >= gap
        expected = [float(last + gap - k) if k >= gap else 0.0 for k in range(depth)]
        assert s.recent.reward_sum[:, 0].tolist() == expected
        assert s.recent.pulls[:, 0].tolist() == [float(v > 0) for v in expected]


def test_buckets_older_than_the_ring_are_ignored_after_it_wraps():
    c = Counters(1, n_buckets=3)
    for b in range(10, 17):
        c.add_pull(0, bucket=b)
    c.add_pull(0, bucket=14)  # newest is 16: kept, row 2
    c.add_pull(0, bucket=13)  # row 3 does not exist: totals only
    c.add_pull(0, bucket=-5)
    s = c.snapshot()
    assert s.recent is not None
    assert s.recent.newest == 16
    assert s.recent.pulls[:, 0].tolist() == [1.0, 1.0, 2.0]
    assert s.pulls.tolist() == [10.0]


def test_snapshot_buckets_are_copies_in_newest_first_order():
    c = Counters(2, n_buckets=3)
    for b in range(5):
        c.add_pull(b % 2, bucket=b)
    s = c.snapshot()
    assert s.recent is not None
    before = s.recent.pulls.copy()
    c.add_pull(0, bucket=4)
    c.add_pull(1, bucket=9)
    assert s.recent.pulls.tolist() == before.tolist() == [[1, 0], [0, 1], [1, 0]]
    assert s.recent.pulls.flags.c_contiguous
    assert s.recent.reward_sum.flags.c_contiguous


class NaiveCounters:
    """The bucket semantics spelled out: a dict of bucket -> sums, no ring."""

    def __init__(self, n_arms: int, depth: int) -> None:
        self.n_arms, self.depth, self.newest = n_arms, depth, 0
        self.buckets: dict[int, list[list[float]]] = {}

    def add(self, kind: int, arm: int, value: float, bucket: int) -> None:
        self.newest = max(self.newest, bucket)
        if self.newest - bucket < self.depth:
            row = self.buckets.setdefault(bucket, [[0.0] * self.n_arms, [0.0] * self.n_arms])
            row[kind][arm] += value

    def rows(self, kind: int) -> list[list[float]]:
        empty = [[0.0] * self.n_arms, [0.0] * self.n_arms]
        return [self.buckets.get(self.newest - k, empty)[kind] for k in range(self.depth)]


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["pull", "reward", "snapshot"]),
        st.integers(-3, 60),  # bucket: mostly forward, sometimes late or far ahead
        st.integers(0, 2),  # arm
        st.sampled_from([0.0, 0.25, 1.0, 3.5]),  # reward
    ),
    max_size=80,
)


@given(depth=st.integers(1, 7), operations=OPERATIONS)
def test_the_ring_equals_a_naive_recount(depth, operations):
    c, naive = Counters(3, reward_range=(0.0, 4.0), n_buckets=depth), NaiveCounters(3, depth)
    for op, bucket, arm, value in operations:
        if op == "pull":
            c.add_pull(arm, bucket=bucket)
            naive.add(0, arm, 1.0, bucket)
        elif op == "reward":
            c.add_reward(arm, value, bucket=bucket)
            naive.add(1, arm, value, bucket)
        else:
            c.snapshot(bucket=bucket)
            naive.newest = max(naive.newest, bucket)
        s = c.snapshot()
        assert s.recent is not None
        assert s.recent.newest == naive.newest
        assert s.recent.pulls.tolist() == naive.rows(0)
        assert s.recent.reward_sum.tolist() == naive.rows(1)


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
