"""Hypothesis strategies and builders shared by the policy tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mabware import policies
from mabware.statistics import Buckets, Statistics

#: every registered policy with its defaults, plus the variants with their own code paths
VARIANTS: list[policies.Policy] = [cls() for cls in policies.POLICIES.values()] + [
    policies.ThompsonSampling(method="monte-carlo", draws=300),
    policies.ThompsonSampling(likelihood="gaussian"),
    policies.ThompsonSampling(likelihood="gaussian", method="monte-carlo", draws=300),
    policies.ThompsonSampling(prior_alpha=0.5, prior_beta=0.5, grid=16),
    policies.UCB1(c=0.0),
    policies.KLUCB(c=3.0),
    policies.EpsilonGreedy(epsilon=1.0),
    policies.EpsilonGreedy(decay="inverse", decay_after=10.0),
    policies.Softmax(temperature=1e-6, anneal=True),
    policies.EXP3(gamma=1.0),
    policies.DiscountedThompson(gamma=0.5),
    policies.SlidingWindowUCB(window=2, c=0.0),
    # scenarios have at most 6 buckets: split every one, and detect readily
    policies.GLRKLUCB(delta=0.9, stride=1),
]


def label(policy: policies.Policy) -> str:
    """A readable test id: the name and the settings that differ from the default."""
    default = type(policy)().params()
    changed = {k: v for k, v in policy.params().items() if default[k] != v}
    return policy.name + "".join(f"-{k}={v}" for k, v in changed.items())


def make_stats(
    pulls: list[float] | np.ndarray,
    reward_sum: list[float] | np.ndarray,
    *,
    reward_sq_sum: list[float] | np.ndarray | None = None,
    ipw_gain_sum: list[float] | np.ndarray | None = None,
    bucket_pulls: list[list[float]] | np.ndarray | None = None,
    bucket_rewards: list[list[float]] | np.ndarray | None = None,
) -> Statistics:
    """Statistics from plain lists; buckets are (depth, arms), row 0 newest."""
    base = Statistics.from_counts(pulls, reward_sum, reward_sq_sum)
    recent = None
    if bucket_pulls is not None:
        bp = np.asarray(bucket_pulls, dtype=np.float64)
        br = np.zeros_like(bp) if bucket_rewards is None else np.asarray(bucket_rewards, float)
        recent = Buckets(0, bp, br)
    ipw = base.ipw_gain_sum if ipw_gain_sum is None else np.asarray(ipw_gain_sum, float)
    return Statistics(
        base.pulls,
        base.reward_sum,
        base.reward_sq_sum,
        ipw,
        base.responses,
        base.errors,
        base.latency_hist,
        recent,
    )


# small pools make exact ties and identical arms common
_PULLS = st.sampled_from([0.0, 0.0, 1.0, 2.0, 7.0, 40.0, 1000.0])
_RATES = st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0.0, 1.0)
_OLDER = st.sampled_from([0.0, 0.0, 3.0, 100.0, 100_000.0])


@st.composite
def scenarios(draw: st.DrawFn, max_arms: int = 12) -> tuple[Statistics, np.ndarray]:
    """Statistics consistent with rewards in [0, 1] (with time buckets) and a live mask."""
    k = draw(st.integers(1, max_arms))
    depth = draw(st.integers(1, 6))
    bucket_pulls = draw(arrays(np.float64, (depth, k), elements=_PULLS))
    bucket_rewards = bucket_pulls * draw(arrays(np.float64, (depth, k), elements=_RATES))
    older = draw(arrays(np.float64, k, elements=_OLDER))
    pulls = bucket_pulls.sum(axis=0) + older
    reward_sum = bucket_rewards.sum(axis=0) + older * draw(arrays(np.float64, k, elements=_RATES))
    # with rewards in [0, 1], the sum of squares lies between (sum)^2 / n and sum
    least = np.divide(reward_sum**2, pulls, out=np.zeros(k), where=pulls > 0)
    squares = least + draw(arrays(np.float64, k, elements=st.floats(0, 1))) * (reward_sum - least)
    gains = draw(arrays(np.float64, k, elements=st.sampled_from([0.0, 1.0]) | st.floats(0, 1e4)))
    live = draw(arrays(np.bool_, k))
    live[draw(st.integers(0, k - 1))] = True
    stats = make_stats(
        pulls,
        reward_sum,
        reward_sq_sum=squares,
        ipw_gain_sum=gains,
        bucket_pulls=bucket_pulls,
        bucket_rewards=bucket_rewards,
    )
    return stats, live
