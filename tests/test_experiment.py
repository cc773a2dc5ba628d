"""Experiment: configuration errors, reward checks, serialisation."""

from __future__ import annotations

import math

import pytest

from mabware import policies
from mabware.exceptions import ConfigError, RewardError
from mabware.experiment import Experiment
from mabware.guardrails import ArmSLO, Guardrails


def test_arms_as_mapping_keep_order_and_payloads():
    exp = Experiment("headline", {"control": "Welcome back", "bold": "Big sale today"})
    assert exp.arm_names == ("control", "bold")
    assert exp.arms["bold"] == "Big sale today"
    assert exp.default_arm == "control"
    assert exp.default_index == 0


def test_arms_as_list_and_explicit_default():
    exp = Experiment("price", ["9", "12", "15"], default_arm="12")
    assert exp.arms == {"9": "9", "12": "12", "15": "15"}
    assert exp.default_index == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": ""}, "experiment name"),
        ({"name": "x" * 121}, "experiment name"),
        ({"arms": ["only"]}, "at least 2 arms"),
        ({"arms": "ab"}, "not a str"),
        ({"arms": ["a", "a", "b"]}, "unique"),
        ({"arms": ["a", ""]}, "arm names"),
        ({"arms": ["a", 3]}, "arm names"),
        ({"default_arm": "zzz"}, "default_arm 'zzz'"),
        ({"reward_range": (1.0, 0.0)}, "low < high"),
        ({"reward_range": (0.0, math.nan)}, "low < high"),
        ({"reward_range": "wide"}, "reward_range"),
        ({"reward_range": (0.0, math.inf)}, "bounded reward_range"),
        ({"reward_mode": "twice"}, "reward_mode"),
        ({"version": -1}, "version"),
        ({"bucket_seconds": 0}, "bucket_seconds"),
        ({"policy": "thompson"}, "policy"),
    ],
)
def test_bad_configuration_says_what_to_change(kwargs, fragment):
    base = {"name": "exp", "arms": ["a", "b"]}
    with pytest.raises(ConfigError, match=fragment):
        Experiment(**{**base, **kwargs})


def test_unbounded_rewards_with_gaussian_thompson():
    exp = Experiment(
        "revenue",
        ["a", "b"],
        policy=policies.ThompsonSampling(likelihood="gaussian"),
        reward_range=(-math.inf, math.inf),
    )
    assert exp.check_reward(1234.5) == 1234.5


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 1e999, -0.01, 1.01, "0.5", True, None, {}, [1.0]]
)
def test_bad_rewards_are_rejected(value):
    exp = Experiment("exp", ["a", "b"])
    with pytest.raises(RewardError) as info:
        exp.check_reward(value)
    assert info.value.payload is value or info.value.payload == value


def test_rewards_in_range_pass_and_ints_become_floats():
    exp = Experiment("exp", ["a", "b"], reward_range=(0.0, 100.0))
    assert exp.check_reward(0) == 0.0
    assert exp.check_reward(100) == 100.0
    assert isinstance(exp.check_reward(42), float)


def test_unknown_arm_is_a_reward_error():
    exp = Experiment("exp", ["a", "b"])
    assert exp.arm_index("b") == 1
    with pytest.raises(RewardError, match="unknown arm 'c'"):
        exp.arm_index("c")


def test_round_trip_through_dict():
    exp = Experiment(
        "headline",
        {"control": "Welcome", "bold": "Sale"},
        policy=policies.from_name("epsilon-greedy", epsilon=0.2),
        default_arm="bold",
        guardrails=Guardrails(floor=0.05, cap=0.5, slo=ArmSLO(min_pulls=10, max_error_rate=0.2)),
        reward_mode="every",
        reward_range=(0.0, 5.0),
        version=3,
        bucket_seconds=30.0,
        enabled=False,
    )
    again = Experiment.from_dict(exp.to_dict())
    assert again.to_dict() == exp.to_dict()
    assert again.policy == exp.policy
    assert again.guardrails == exp.guardrails


def test_from_dict_rejects_garbage():
    with pytest.raises(ConfigError):
        Experiment.from_dict({"arms": ["a", "b"]})
    with pytest.raises(ConfigError):
        Experiment.from_dict({"name": "x", "arms": ["a", "b"], "guardrails": {"flor": 0.1}})


def test_rewards_are_rescaled_for_bounded_policies(rng):
    # revenue in [0, 50]: arm b earns 40 on average, arm a 10; the policy sees [0, 1]
    exp = Experiment("revenue", ["a", "b"], reward_range=(0.0, 50.0))
    counters = exp.counters()
    for _ in range(200):
        counters.add_pull(0)
        counters.add_reward(0, 10.0)
        counters.add_pull(1)
        counters.add_reward(1, 40.0)
    allocation = exp.decide(counters.snapshot(), rng)
    assert not allocation.fallback
    assert allocation.share("b") > 0.99
