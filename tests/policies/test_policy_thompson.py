"""Thompson sampling: the quadrature against Monte Carlo and exact answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_strategies import make_stats, scenarios

from mabware.policies import ThompsonSampling
from mabware.policies._posterior import best_beta, best_normal
from mabware.policies.thompson import normal_posterior
from mabware.statistics import Statistics

ALL = np.array([True, True, True])


def sampled_beta(alpha, beta, draws=400_000, seed=7):
    samples = np.random.default_rng(seed).beta(alpha, beta, size=(draws, len(alpha)))
    return np.bincount(samples.argmax(axis=1), minlength=len(alpha)) / draws


@pytest.mark.parametrize(
    ("alpha", "beta"),
    [
        ([1, 2], [1, 1]),  # uniform against a ramp
        ([2, 3, 1], [5, 2, 1]),
        ([0.5, 0.5, 1.5], [0.5, 1.5, 0.5]),  # densities unbounded at 0 and 1
        ([500_001, 3], [500_001, 2]),  # a needle (sd 0.0007) inside a wide arm
        ([500_001, 3, 20], [499_001, 2, 30]),
        ([1, 101, 1_001, 10_001], [1, 901, 9_001, 90_001]),  # same mean, 4 widths
        ([0.01, 1], [1, 1]),  # nearly all prior mass at 0
        ([31, 35, 29, 40, 33], [970, 966, 972, 961, 968]),  # five close rates
    ],
)
def test_quadrature_matches_a_400k_draw_monte_carlo(alpha, beta):
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    # 400k draws: the standard error of a share is at most 0.0008
    np.testing.assert_allclose(best_beta(alpha, beta), sampled_beta(alpha, beta), atol=0.005)


def test_quadrature_matches_monte_carlo_with_many_arms_of_mixed_widths():
    # too many ranges for one evenly spaced grid each: the shared adaptive grid
    rng = np.random.default_rng(4)
    pulls = np.array([2, 5, 30, 80, 200, 400, 900, 2e3, 5e3, 2e4, 1e5, 3e5])
    wins = np.round(pulls * rng.uniform(0.08, 0.12, len(pulls)))
    alpha, beta = 1 + wins, 1 + pulls - wins
    np.testing.assert_allclose(best_beta(alpha, beta), sampled_beta(alpha, beta), atol=0.005)
    # and a tight budget keeps a valid, roughly right answer
    np.testing.assert_allclose(best_beta(alpha, beta, grid=48), best_beta(alpha, beta), atol=0.02)


@pytest.mark.parametrize(
    ("alpha", "beta", "exact"),
    [
        ([1, 2], [1, 1], [1 / 3, 2 / 3]),  # P(U < max of U, V) for V ~ Beta(2, 1)
        ([1, 1], [2, 1], [1 / 3, 2 / 3]),
        ([1, 1, 1], [1, 1, 2], None),
    ],
)
def test_quadrature_matches_closed_forms(alpha, beta, exact):
    got = best_beta(np.asarray(alpha, float), np.asarray(beta, float))
    if exact is None:
        # Beta(1, 2) against two uniforms: integral of 2(1 - x) x^2 = 1/6
        exact = [5 / 12, 5 / 12, 1 / 6]
    np.testing.assert_allclose(got, exact, atol=1e-4)


def test_normal_quadrature_matches_a_closed_form_and_monte_carlo():
    # two normals: P(X2 > X1) = Phi((m2 - m1) / sqrt(s1^2 + s2^2)); here Phi(1) = 0.841345
    got = best_normal(np.array([0.0, 5.0]), np.array([3.0, 4.0]))
    np.testing.assert_allclose(got, [1 - 0.8413447, 0.8413447], atol=1e-4)
    mean, sd = np.array([0.0, 1e-3, 0.5]), np.array([1.0, 1e-4, 2.0])
    draws = np.random.default_rng(3).normal(mean, sd, size=(400_000, 3))
    mc = np.bincount(draws.argmax(axis=1), minlength=3) / len(draws)
    np.testing.assert_allclose(best_normal(mean, sd), mc, atol=0.005)


def test_identical_arms_get_exactly_equal_shares(rng):
    stats = make_stats([10, 10, 50, 10], [3, 3, 20, 3])
    p = ThompsonSampling().allocate(stats, np.array([True, True, True, True]), rng)
    assert p[0] == p[1] == p[3]
    two = ThompsonSampling().allocate(make_stats([7, 7], [2, 2]), np.array([True, True]), rng)
    assert two.tolist() == [0.5, 0.5]


def test_posterior_uses_successes_and_failures_with_fractional_rewards(rng):
    # 10 pulls earning 2.5 in [0, 1]: Beta(1 + 2.5, 1 + 7.5) against a Beta(3, 3)
    stats = make_stats([10, 4], [2.5, 2])
    p = ThompsonSampling().allocate(stats, np.array([True, True]), rng)
    np.testing.assert_allclose(p, best_beta(np.array([3.5, 3.0]), np.array([8.5, 3.0])))
    np.testing.assert_allclose(
        p, sampled_beta(np.array([3.5, 3.0]), np.array([8.5, 3.0])), atol=0.005
    )


def test_the_prior_matters_before_the_data():
    live = np.array([True, True])
    stats = make_stats([2, 0], [2, 0])
    rng = np.random.default_rng(0)
    optimistic = ThompsonSampling(prior_alpha=10, prior_beta=1).allocate(stats, live, rng)
    sceptical = ThompsonSampling(prior_alpha=1, prior_beta=10).allocate(stats, live, rng)
    assert sceptical[0] > optimistic[0]


def test_a_clear_winner_takes_almost_everything(rng):
    stats = make_stats([1000, 1000, 1000], [100, 200, 120])
    p = ThompsonSampling().allocate(stats, ALL, rng)
    # P(arm 2 beats arm 1) is about Phi(-0.08 / 0.0162) = 4e-7, arm 0's Phi(-6.3)
    assert p[2] == pytest.approx(4.4e-7, rel=0.2)
    assert p[0] == pytest.approx(1.5e-10, rel=0.2)
    many = make_stats([1e5, 1e5, 1e5], [5e3, 2e4, 1.2e4])
    p = ThompsonSampling().allocate(many, ALL, rng)
    assert p[0] == 0.0  # far below the runner-up's range: pruned, exactly zero
    assert p[2] < 1e-11  # CDFs are floored at 1e-12, so tinier shares are not resolved


def test_monte_carlo_agrees_with_quadrature_and_is_seeded():
    stats = make_stats([40, 50, 45], [10, 16, 14])
    quad = ThompsonSampling().allocate(stats, ALL, np.random.default_rng(0))
    mc = ThompsonSampling(method="monte-carlo", draws=200_000)
    first = mc.allocate(stats, ALL, np.random.default_rng(1))
    np.testing.assert_allclose(first, quad, atol=0.006)
    assert first.tolist() == mc.allocate(stats, ALL, np.random.default_rng(1)).tolist()


def test_monte_carlo_splits_ties_and_shares_equally_between_identical_arms():
    # a tiny prior with no successes draws exact zeros: every draw ties
    stats = make_stats([5, 5, 5], [0, 0, 0])
    policy = ThompsonSampling(prior_alpha=1e-3, method="monte-carlo", draws=1000)
    p = policy.allocate(stats, ALL, np.random.default_rng(2))
    assert p.tolist() == [1 / 3, 1 / 3, 1 / 3]
    mixed = make_stats([5, 5, 9], [1, 1, 4])
    q = ThompsonSampling(method="monte-carlo", draws=500).allocate(
        mixed, ALL, np.random.default_rng(5)
    )
    assert q[0] == q[1]


def test_monte_carlo_is_exactly_permutation_equivariant():
    stats = make_stats([40, 50, 45, 40], [10, 16, 14, 10])
    live = np.array([True, True, True, True])
    perm = np.array([2, 0, 3, 1])
    policy = ThompsonSampling(method="monte-carlo", draws=300)
    base = policy.allocate(stats, live, np.random.default_rng(9))
    permuted = policy.allocate(stats.take(perm), live[perm], np.random.default_rng(9))
    assert permuted.tolist() == base[perm].tolist()


@settings(max_examples=50)
@given(case=scenarios(), data=st.data())
def test_quadrature_is_exactly_permutation_equivariant(case, data):
    stats, live = case
    perm = np.array(data.draw(st.permutations(range(stats.n_arms))), dtype=np.intp)
    rng = np.random.default_rng(0)
    for policy in (ThompsonSampling(), ThompsonSampling(grid=16, prior_alpha=0.5)):
        base = policy.allocate(stats, live, rng)
        assert policy.allocate(stats.take(perm), live[perm], rng).tolist() == base[perm].tolist()


def test_gaussian_learns_unbounded_rewards(rng):
    # revenue: arm 1 earns about 120 a visit, arm 0 about 100, sd 30
    pulls = np.array([400.0, 400.0])
    sums = np.array([100.0, 120.0]) * pulls
    squares = (np.array([100.0, 120.0]) ** 2 + 30.0**2) * pulls
    stats = make_stats(pulls, sums, reward_sq_sum=squares)
    p = ThompsonSampling(likelihood="gaussian").allocate(stats, np.array([True, True]), rng)
    assert p[1] > 0.999


def test_gaussian_allocation_does_not_depend_on_units(rng):
    pulls = np.array([5.0, 12.0, 1.0, 0.0])
    sums = np.array([9.0, 30.0, 4.0, 0.0])
    squares = np.array([20.0, 90.0, 16.0, 0.0])
    live = np.array([True, True, True, True])
    policy = ThompsonSampling(likelihood="gaussian")
    base = policy.allocate(make_stats(pulls, sums, reward_sq_sum=squares), live, rng)
    # rewards r -> 100 r - 7 (cents, shifted)
    scaled = make_stats(
        pulls,
        100 * sums - 7 * pulls,
        reward_sq_sum=1e4 * squares - 1400 * sums + 49 * pulls,
    )
    np.testing.assert_allclose(policy.allocate(scaled, live, rng), base, atol=1e-7)
    assert base[3] > 0.2  # an untried arm has a wide posterior


def test_gaussian_posterior_shrinks_with_data():
    mean, sd = normal_posterior(
        np.array([0.0, 1.0, 100.0]), np.array([0.0, 3.0, 300.0]), np.array([0.0, 9.0, 1000.0])
    )
    assert sd[2] < sd[1] < sd[0]
    assert mean[2] == pytest.approx(3.0, abs=1e-3)
    # constant rewards: zero variance is floored, not divided by
    mean, sd = normal_posterior(
        np.array([4.0, 4.0]), np.array([20.0, 20.0]), np.array([100.0, 100.0])
    )
    assert np.isfinite(sd).all()
    assert (sd > 0).all()
    assert mean == pytest.approx([5.0, 5.0])


def test_grid_budget_is_respected_and_still_valid(rng):
    stats = make_stats([2, 90_000, 40, 1], [1, 45_000, 19, 0])
    live = np.array([True, True, True, True])
    coarse = ThompsonSampling(grid=16).allocate(stats, live, rng)
    fine = ThompsonSampling(grid=4096).allocate(stats, live, rng)
    assert abs(coarse.sum() - 1) < 1e-12
    np.testing.assert_allclose(coarse, fine, atol=0.05)


def test_exploration_scales_the_evidence(rng):
    stats = Statistics.from_counts([40.0, 40.0], [12.0, 8.0])
    live = np.array([True, True])
    textbook = ThompsonSampling().allocate(stats, live, rng)
    doubled = ThompsonSampling().allocate(
        Statistics.from_counts([80.0, 80.0], [24.0, 16.0]), live, rng
    )
    sharper = ThompsonSampling(exploration=0.5).allocate(stats, live, rng)
    wider = ThompsonSampling(exploration=2.0).allocate(stats, live, rng)
    # exploration=0.5 counts each observation twice: the same as twice the data
    np.testing.assert_allclose(sharper, doubled, atol=1e-9)
    assert wider[0] < textbook[0] < sharper[0]


def test_exploration_widens_gaussian_posteriors(rng):
    stats = Statistics.from_counts([30.0, 30.0], [33.0, 30.0], [40.0, 35.0])
    live = np.array([True, True])
    narrow = ThompsonSampling("gaussian", exploration=0.25).allocate(stats, live, rng)
    wide = ThompsonSampling("gaussian", exploration=4.0).allocate(stats, live, rng)
    assert narrow[0] > wide[0] > 0.5


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_live_subset_is_the_subset_alone_with_zeros_elsewhere(likelihood, rng):
    # all arms live skips the gather and scatter; a subset must give the same numbers
    pulls = np.array([40.0, 50.0, 45.0, 30.0, 60.0])
    sums = np.array([10.0, 16.0, 14.0, 9.0, 21.0])
    stats = make_stats(pulls, sums, reward_sq_sum=sums * 1.5)
    policy = ThompsonSampling(likelihood)
    live = np.array([True, False, True, True, False])
    subset = policy.allocate(stats.take([0, 2, 3]), np.ones(3, dtype=bool), rng)
    p = policy.allocate(stats, live, rng)
    assert p[~live].tolist() == [0.0, 0.0]
    assert p[live].tolist() == subset.tolist()
    assert abs(policy.allocate(stats, np.ones(5, dtype=bool), rng).sum() - 1.0) < 1e-12
