"""The contract every registered policy keeps, whatever the statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_strategies import VARIANTS, label, make_stats, scenarios

from mabware import policies
from mabware.exceptions import PolicyError

pytestmark = pytest.mark.parametrize("policy", VARIANTS, ids=label)


def check_allocation(p: np.ndarray, live: np.ndarray) -> None:
    assert p.dtype == np.float64
    assert p.shape == live.shape
    assert np.isfinite(p).all()
    assert (p >= 0).all()
    assert (p[~live] == 0).all()
    assert abs(p.sum() - 1.0) <= 1e-12


@settings(max_examples=30)
@given(case=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_allocation_is_a_probability_vector_over_live_arms(policy, case, seed):
    stats, live = case
    check_allocation(policy.allocate(stats, live, np.random.default_rng(seed)), live)


@settings(max_examples=30)
@given(case=scenarios(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_permuting_arms_permutes_the_allocation(policy, case, seed, data):
    stats, live = case
    perm = np.array(data.draw(st.permutations(range(stats.n_arms))), dtype=np.intp)
    base = policy.allocate(stats, live, np.random.default_rng(seed))
    permuted = policy.allocate(stats.take(perm), live[perm], np.random.default_rng(seed))
    # Monte Carlo draws the distinct posteriors in sorted order, so it too is
    # equivariant for one generator state; the rest differ by rounding at most
    np.testing.assert_allclose(permuted, base[perm], rtol=0, atol=1e-9)


def test_cold_start_is_uniform_over_live_arms(policy, rng):
    live = np.array([True, False, True, True])
    stats = make_stats([0] * 4, [0] * 4, bucket_pulls=np.zeros((3, 4)))
    p = policy.allocate(stats, live, rng)
    np.testing.assert_allclose(p, [1 / 3, 0, 1 / 3, 1 / 3], rtol=0, atol=1e-12)


def test_a_single_live_arm_gets_everything(policy, rng):
    stats = make_stats([5, 9, 2], [1, 8, 2], bucket_pulls=[[1, 2, 1]], bucket_rewards=[[0, 1, 1]])
    p = policy.allocate(stats, np.array([False, True, False]), rng)
    assert p.tolist() == [0.0, 1.0, 0.0]


def test_settings_round_trip(policy):
    assert type(policy)(**policy.params()) == policy
    assert policies.from_dict(policies.to_dict(policy)) == policy
    assert policies.from_dict(json.loads(json.dumps(policies.to_dict(policy)))) == policy
    assert policies.POLICIES[policy.name] is type(policy)


def test_satisfies_the_protocol(policy):
    assert isinstance(policy, policies.Policy)
    assert isinstance(policy.buckets_needed, int)
    assert policy.buckets_needed >= 0
    assert isinstance(policies.needs_bounded_rewards(policy), bool)
    hash(policy)  # frozen settings can key a cache


def test_drift_policies_refuse_statistics_without_buckets(policy, rng):
    stats = make_stats([3, 4], [1, 2])
    if policy.buckets_needed == 0:
        check_allocation(policy.allocate(stats, np.array([True, True]), rng), np.array([1, 1]) > 0)
    else:
        with pytest.raises(PolicyError, match=type(policy).__name__):
            policy.allocate(stats, np.array([True, True]), rng)
