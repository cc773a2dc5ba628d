"""Settings validation and the registry: names, serialisation, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mabware import policies
from mabware.exceptions import ConfigError
from mabware.policies import (
    EXP3,
    GLRKLUCB,
    KLUCB,
    UCB1,
    DiscountedThompson,
    EpsilonGreedy,
    SlidingWindowUCB,
    Softmax,
    ThompsonSampling,
)

BAD = [
    (ThompsonSampling, "likelihood", "poisson"),
    (ThompsonSampling, "likelihood", None),
    (ThompsonSampling, "prior_alpha", 0.0),
    (ThompsonSampling, "prior_alpha", -1.0),
    (ThompsonSampling, "prior_alpha", math.inf),
    (ThompsonSampling, "prior_alpha", math.nan),
    (ThompsonSampling, "prior_alpha", "1"),
    (ThompsonSampling, "prior_beta", 0),
    (ThompsonSampling, "prior_beta", True),
    (ThompsonSampling, "method", "exact"),
    (ThompsonSampling, "draws", 0),
    (ThompsonSampling, "draws", 10.5),
    (ThompsonSampling, "draws", True),
    (ThompsonSampling, "grid", 15),
    (ThompsonSampling, "grid", 256.0),
    (ThompsonSampling, "exploration", 0.0),
    (ThompsonSampling, "exploration", math.inf),
    (UCB1, "c", -0.1),
    (UCB1, "c", math.inf),
    (UCB1, "c", None),
    (KLUCB, "c", -1.0),
    (KLUCB, "c", math.nan),
    (KLUCB, "budget", "sqrt"),
    (EpsilonGreedy, "epsilon", -0.01),
    (EpsilonGreedy, "epsilon", 1.01),
    (EpsilonGreedy, "epsilon", "0.1"),
    (EpsilonGreedy, "decay", "linear"),
    (EpsilonGreedy, "decay", True),
    (EpsilonGreedy, "decay_after", 0.0),
    (EpsilonGreedy, "decay_after", math.inf),
    (Softmax, "temperature", 0.0),
    (Softmax, "temperature", -0.5),
    (Softmax, "temperature", math.inf),
    (Softmax, "anneal", 1),
    (Softmax, "anneal", "yes"),
    (EXP3, "gamma", 0.0),
    (EXP3, "gamma", 1.5),
    (EXP3, "gamma", math.nan),
    (DiscountedThompson, "gamma", 0.0),
    (DiscountedThompson, "gamma", 1.0001),
    (DiscountedThompson, "prior_alpha", -2.0),
    (DiscountedThompson, "prior_beta", 0.0),
    (DiscountedThompson, "exploration", -1.0),
    (SlidingWindowUCB, "window", 0),
    (SlidingWindowUCB, "window", 2.5),
    (SlidingWindowUCB, "c", -3.0),
    (GLRKLUCB, "delta", 0.0),
    (GLRKLUCB, "delta", 1.0),
    (GLRKLUCB, "delta", "0.01"),
    (GLRKLUCB, "window", 1),
    (GLRKLUCB, "window", 10_080.0),
    (GLRKLUCB, "stride", 0),
    (GLRKLUCB, "stride", True),
]


@pytest.mark.parametrize(("cls", "field", "value"), BAD, ids=lambda x: repr(x))
def test_bad_setting_names_the_parameter_value_and_range(cls, field, value):
    with pytest.raises(ConfigError) as info:
        cls(**{field: value})
    message = str(info.value)
    assert field in message
    assert cls.__name__ in message
    assert repr(value) in message
    assert "must be" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            ThompsonSampling(likelihood="Gaussian", method="MONTE_CARLO"),
            ("gaussian", "monte-carlo"),
        ),
        (EpsilonGreedy(decay="Inverse"), ("inverse",)),
    ],
)
def test_choices_are_stored_in_canonical_form(policy, expected):
    assert tuple(v for v in policy.params().values() if isinstance(v, str)) == expected


def test_numbers_are_normalised_so_params_serialise_the_same_way():
    policy = UCB1(c=np.int64(2))
    assert policy.params() == {"c": 2.0}
    assert type(policy.c) is float
    assert type(ThompsonSampling(draws=np.int32(500)).draws) is int


def test_registry_names_are_exactly_the_canonical_ones():
    assert list(policies.POLICIES) == [
        "thompson",
        "ucb1",
        "kl-ucb",
        "epsilon-greedy",
        "softmax",
        "exp3",
        "discounted-thompson",
        "sw-ucb",
        "glr-thompson",
        "glr-kl-ucb",
    ]
    for name, cls in policies.POLICIES.items():
        assert cls.name == name
    with pytest.raises(TypeError):
        policies.POLICIES["mine"] = UCB1  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("THOMPSON", ThompsonSampling),
        ("epsilon_greedy", EpsilonGreedy),
        ("kl_ucb", KLUCB),
        (" Sw_UCB ", SlidingWindowUCB),
        ("Discounted-Thompson", DiscountedThompson),
        ("ucb1", UCB1),
    ],
)
def test_from_name_accepts_any_case_and_either_separator(name, cls):
    assert type(policies.from_name(name)) is cls


def test_from_name_passes_settings_through():
    assert policies.from_name("epsilon_greedy", epsilon=0.3) == EpsilonGreedy(epsilon=0.3)


@pytest.mark.parametrize("name", ["thompson-sampling", "ucb", "", 3, None])
def test_unknown_name_lists_the_known_ones(name):
    with pytest.raises(ConfigError) as info:
        policies.from_name(name)
    assert repr(name) in str(info.value)
    for known in policies.POLICIES:
        assert known in str(info.value)


def test_unknown_setting_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"'seed'.*epsilon, decay, decay_after"):
        policies.from_name("epsilon-greedy", seed=42)


def test_bad_setting_through_from_name_is_a_config_error():
    with pytest.raises(ConfigError, match="epsilon"):
        policies.from_name("epsilon-greedy", epsilon=2)


def test_to_dict_is_plain_data():
    assert policies.to_dict(SlidingWindowUCB(window=50)) == {
        "name": "sw-ucb",
        "params": {"window": 50, "c": 1.0},
    }


def test_from_dict_fills_defaults():
    assert policies.from_dict({"name": "softmax"}) == Softmax()
    assert policies.from_dict({"name": "softmax", "params": {"anneal": True}}) == Softmax(
        anneal=True
    )


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"name": 3},
        {"params": {}},
        {"name": "ucb1", "params": [1.0]},
        {"name": "ucb1", "params": {1: 2}},
        {"name": "ucb1", "extra": 1},
        {"name": "ucb1", "params": {"c": -1}},
        ["ucb1"],
        "ucb1",
    ],
)
def test_from_dict_rejects_garbage(data):
    with pytest.raises(ConfigError):
        policies.from_dict(data)


def test_bounded_rewards_follow_the_likelihood():
    assert ThompsonSampling.requires_bounded_rewards is True
    assert policies.needs_bounded_rewards(ThompsonSampling()) is True
    assert policies.needs_bounded_rewards(ThompsonSampling(likelihood="gaussian")) is False
    for cls in policies.POLICIES.values():
        assert cls.requires_bounded_rewards is True
        assert policies.needs_bounded_rewards(cls()) is True


def test_public_names_resolve():
    for name in policies.__all__:
        assert getattr(policies, name) is not None
    assert sorted(policies.__all__) == policies.__all__
