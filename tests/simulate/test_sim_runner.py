"""The runner: batching, regret arithmetic, buckets, the real path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest

from mabware import policies
from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.guardrails import Guardrails
from mabware.simulate import (
    BernoulliEnvironment,
    GaussianEnvironment,
    PiecewiseEnvironment,
    run,
    seeded_generators,
)
from mabware.statistics import Statistics


@dataclass(frozen=True)
class RoundRobin:
    """All traffic to the least-pulled live arm (lowest index on ties); records calls."""

    name: ClassVar[str] = "round-robin"
    requires_bounded_rewards: ClassVar[bool] = True
    buckets: int = 0
    seen: list[Statistics] = field(default_factory=list, compare=False)

    @property
    def buckets_needed(self) -> int:
        return self.buckets

    def allocate(self, stats: Statistics, live: Any, rng: np.random.Generator) -> Any:
        self.seen.append(stats)
        out = np.zeros(stats.n_arms)
        out[int(np.argmin(np.where(live, stats.pulls, np.inf)))] = 1.0
        return out

    def params(self) -> dict[str, Any]:
        return {"buckets": self.buckets}


@pytest.mark.parametrize(("batch", "expected"), [(1, 25), (10, 3), (7, 4), (25, 1), (100, 1)])
def test_allocation_is_recomputed_exactly_every_batch_rounds(batch, expected):
    policy = RoundRobin()
    result = run(policy, BernoulliEnvironment((0.2, 0.5, 0.9), rng=0), 25, batch=batch, rng=0)
    assert len(policy.seen) == expected == result.decisions
    assert result.fallbacks == 0
    # each decision saw exactly the pulls made before it
    assert [int(s.total_pulls) for s in policy.seen] == list(range(0, 25, batch))


def test_batched_allocation_is_reused_between_recomputes():
    # one-hot allocations: with batch 3 the arm changes only every 3 rounds
    result = run(RoundRobin(), BernoulliEnvironment((0.2, 0.5, 0.9), rng=0), 9, batch=3, rng=0)
    assert result.choices.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_regret_arithmetic_by_hand():
    env = BernoulliEnvironment((0.2, 0.5, 0.9), rng=0)
    result = run(RoundRobin(), env, 6, rng=0)
    assert result.choices.tolist() == [0, 1, 2, 0, 1, 2]
    # per round: 0.7, 0.4, 0.0, repeated
    assert result.regret.tolist() == pytest.approx([0.7, 1.1, 1.1, 1.8, 2.2, 2.2])
    assert result.final_regret == pytest.approx(2.2)
    u = np.random.default_rng(0).random(6)
    assert result.reward == sum(u[t] < (0.2, 0.5, 0.9)[t % 3] for t in range(6))
    assert result.convergence is None


def test_piecewise_regret_uses_the_per_round_best_and_reports_phase_delays():
    env = PiecewiseEnvironment([((0.9, 0.1), 200), ((0.1, 0.9), 200)], rng=0)
    result = run(policies.from_name("thompson"), env, 400, rng=1)
    per_round = np.diff(result.regret, prepend=0.0)
    picked_second = result.choices == 1
    assert np.allclose(per_round[:200], np.where(picked_second[:200], 0.8, 0.0))
    assert np.allclose(per_round[200:], np.where(picked_second[200:], 0.0, 0.8))
    assert result.convergence is None
    assert len(result.phase_convergence) == 2
    assert result.phase_convergence[0] is not None


def test_drift_policies_receive_time_buckets():
    policy = RoundRobin(buckets=4)
    run(policy, BernoulliEnvironment((0.0, 1.0), rng=0), 12, rng=0, rounds_per_bucket=2)
    stats = policy.seen[-1]  # decided before round 11, bucket 5
    assert stats.recent is not None
    assert stats.recent.newest == 5
    # buckets 5, 4, 3, 2: round 10 in bucket 5, rounds 8-9 in 4, ...
    assert stats.recent.pulls.sum(axis=1).tolist() == [1.0, 2.0, 2.0, 2.0]
    # round robin over (0.0, 1.0): arm 1 pays on every odd round
    assert stats.recent.reward_sum[:, 1].tolist() == [0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("name", ["discounted-thompson", "sw-ucb", "glr-thompson", "glr-kl-ucb"])
def test_real_drift_policies_get_buckets_through_the_experiment(name):
    policy = policies.from_name(name)
    assert policy.buckets_needed > 0
    experiment = Experiment("drift", ["a", "b"], policy=policy)
    assert experiment.counters().snapshot(0).recent is not None
    # distinct seeds: with the same seed the sampler's uniforms would be the
    # environment's, and the arm choice would decide the reward
    result = run(experiment, BernoulliEnvironment((0.1, 0.6), rng=0), 300, rng=1)
    assert result.choices[-100:].mean() > 0.5


def test_exp3_gets_propensities():
    env = BernoulliEnvironment((0.1, 0.9), rng=0)
    seen: list[Statistics] = []
    exp3 = policies.from_name("exp3")

    @dataclass(frozen=True)
    class Spy:
        name: ClassVar[str] = "spy"
        requires_bounded_rewards: ClassVar[bool] = True
        buckets_needed: int = 0

        def allocate(self, stats: Statistics, live: Any, rng: np.random.Generator) -> Any:
            seen.append(stats)
            return exp3.allocate(stats, live, rng)

        def params(self) -> dict[str, Any]:
            return {}

    run(Spy(), env, 50, rng=1)
    last = seen[-1]
    # importance-weighted gains exceed the raw reward sums (propensities < 1)
    assert last.ipw_gain_sum[1] > last.reward_sum[1] > 0


def test_guardrails_apply_in_simulation():
    experiment = Experiment(
        "floored", ["a", "b", "c"], policy=RoundRobin(), guardrails=Guardrails(floor=0.2)
    )
    result = run(experiment, BernoulliEnvironment((0.2, 0.5, 0.9), rng=0), 3000, rng=1)
    shares = np.bincount(result.choices, minlength=3) / 3000
    assert shares.min() > 0.15


def test_same_seeds_same_run_and_policies_share_the_reward_stream():
    a = run(policies.from_name("thompson"), BernoulliEnvironment((0.3, 0.5), rng=5), 500, rng=6)
    b = run(policies.from_name("thompson"), BernoulliEnvironment((0.3, 0.5), rng=5), 500, rng=6)
    assert a.choices.tolist() == b.choices.tolist()
    env_rng, policy_rng = seeded_generators(42, 3)
    assert env_rng.random() == np.random.default_rng([42, 3]).random()
    assert policy_rng.random() == np.random.default_rng([42, 3, 1]).random()


def test_thompson_learns_the_best_arm():
    result = run(policies.from_name("thompson"), BernoulliEnvironment((0.1, 0.3, 0.7), rng=0), 1500)
    assert result.convergence is not None
    assert result.final_regret < 60


def test_gaussian_rewards_with_the_gaussian_thompson_sampler():
    env = GaussianEnvironment((0.0, 0.5, 1.0), sd=1.0, rng=0)
    policy = policies.from_name("thompson", likelihood="gaussian")
    result = run(policy, env, 600, rng=1)
    assert result.fallbacks == 0
    assert np.bincount(result.choices[-200:], minlength=3).argmax() == 2


def test_gaussian_environment_needs_an_unbounded_experiment():
    env = GaussianEnvironment((0.0, 1.0), rng=0)
    bounded = Experiment("g", ["a", "b"], policy=RoundRobin())
    with pytest.raises(ConfigError, match="reward_range"):
        run(bounded, env, 10)


@pytest.mark.parametrize("kwargs", [{"rounds": 0}, {"batch": 0}, {"rounds_per_bucket": 0}])
def test_bad_counts_are_rejected(kwargs):
    args = {"rounds": 10, **kwargs}
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        run(RoundRobin(), BernoulliEnvironment((0.1, 0.2)), args.pop("rounds"), **args)


def test_arm_count_must_match():
    with pytest.raises(ConfigError, match="arms"):
        run(
            Experiment("x", ["a", "b", "c"], policy=RoundRobin()),
            BernoulliEnvironment((0.1, 0.2)),
            5,
        )


def test_policy_failures_show_up_as_fallbacks():
    @dataclass(frozen=True)
    class Broken(RoundRobin):
        def allocate(self, stats: Statistics, live: Any, rng: np.random.Generator) -> Any:
            raise RuntimeError("boom")

    result = run(Broken(), BernoulliEnvironment((0.2, 0.5), rng=0), 20, batch=5, rng=1)
    assert result.decisions == result.fallbacks == 4
    assert set(result.choices.tolist()) == {0}  # the default arm
