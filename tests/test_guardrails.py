"""Guardrails: fallback, SLOs, burn-in, floor and cap, each with its reason."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from conftest import FixedPolicy

from mabware import assign, guardrails
from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.guardrails import ArmSLO, Guardrails, apply_cap, apply_floor
from mabware.statistics import Counters, Statistics

ARMS = ["a", "b", "c", "d"]


def experiment(
    vector: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25), **kwargs: object
) -> Experiment:
    policy = kwargs.pop("policy", FixedPolicy(vector))
    return Experiment("exp", ARMS, policy=policy, **kwargs)  # type: ignore[arg-type]


def stats(pulls: list[float], rewards: list[float] | None = None) -> Statistics:
    return Statistics.from_counts(pulls, rewards if rewards is not None else [0.0] * len(pulls))


def reasons(allocation: object) -> list[str]:
    return [t.reason for t in allocation.trips]  # type: ignore[attr-defined]


# -- default-arm fallback ------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (FixedPolicy(error=RuntimeError), guardrails.POLICY_ERROR),
        (FixedPolicy((math.nan, 0.5, 0.25, 0.25)), guardrails.INVALID_ALLOCATION),
        (FixedPolicy((math.inf, 0.0, 0.0, 0.0)), guardrails.INVALID_ALLOCATION),
        (FixedPolicy((0.5, 0.5, 0.5, -0.5)), guardrails.INVALID_ALLOCATION),
        (FixedPolicy((0.25, 0.25, 0.25, 0.25 + 2e-9)), guardrails.INVALID_ALLOCATION),
        (FixedPolicy((0.5, 0.5)), guardrails.INVALID_ALLOCATION),
    ],
)
def test_bad_policy_output_falls_back_to_default_arm(policy, reason, rng):
    exp = Experiment("exp", ARMS, policy=policy, default_arm="c")
    allocation = exp.decide(stats([10, 10, 10, 10]), rng)
    assert allocation.probabilities == (0.0, 0.0, 1.0, 0.0)
    assert allocation.fallback
    assert reasons(allocation)[-1] == reason
    assert allocation.trips[-1].detail


@pytest.mark.parametrize(
    ("vector", "live", "problem"),
    [
        ((0.25, 0.25, 0.5, 0.0), (True, True, True, False), None),
        ((0.0, 1.0, 0.0, 0.0), (False, True, False, False), None),
        ((0.25, 0.25, 0.5, 0.0), (True, True, True, True), None),
        ((math.nan, 0.5, 0.25, 0.25), (True,) * 4, "non-finite"),
        ((math.inf, -math.inf, 1.0, 0.0), (True,) * 4, "non-finite"),
        ((0.5, 0.5, 0.5, -0.5), (True,) * 4, "negative"),
        ((0.25, 0.25, 0.25, 0.25), (True, True, True, False), "disabled arm"),
        ((0.25, 0.25, 0.5, 5e-324), (True, True, True, False), "disabled arm"),
        ((0.25, 0.25, 0.25, 0.25 + 2e-9), (True,) * 4, "sums to"),
        ((0.5, 0.5), (True,) * 4, "shape"),
    ],
)
def test_validate_allocation_names_the_problem(vector, live, problem):
    found = guardrails.validate_allocation(np.array(vector), np.array(live))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_sum_within_tolerance_is_accepted(rng):
    exp = experiment((0.25, 0.25, 0.25, 0.25 + 5e-10))
    allocation = exp.decide(stats([1, 1, 1, 1]), rng)
    assert not allocation.fallback


def test_disabled_experiment_serves_default(rng):
    exp = experiment(enabled=False, default_arm="b")
    allocation = exp.decide(stats([0, 0, 0, 0]), rng)
    assert allocation.probabilities == (0.0, 1.0, 0.0, 0.0)
    assert reasons(allocation) == [guardrails.DISABLED_EXPERIMENT]


def test_stale_state_serves_default_only_past_ttl(rng):
    exp = experiment(guardrails=Guardrails(stale_after=30.0))
    fresh = exp.decide(stats([5, 5, 5, 5]), rng, state_age=29.0)
    stale = exp.decide(stats([5, 5, 5, 5]), rng, state_age=31.0)
    unknown = exp.decide(stats([5, 5, 5, 5]), rng, state_age=None)
    assert not fresh.fallback
    assert not unknown.fallback
    assert stale.probabilities == (1.0, 0.0, 0.0, 0.0)
    assert reasons(stale) == [guardrails.STALE_STATE]


def test_zero_pulls_is_exploration_not_fallback(rng):
    exp = Experiment("cold", ARMS)  # the default policy: Thompson sampling
    allocation = exp.decide(exp.counters().snapshot(), rng)
    assert not allocation.fallback
    assert allocation.probabilities == pytest.approx([0.25] * 4, abs=1e-9)


def test_mismatched_statistics_fall_back_instead_of_raising(rng):
    allocation = experiment().decide(stats([1, 1, 1]), rng)
    assert allocation.fallback
    assert reasons(allocation) == [guardrails.INVALID_ALLOCATION]


# -- arm SLOs ----------------------------------------------------------------------


def test_reward_slo_disables_arm_after_min_pulls(rng):
    slo = ArmSLO(min_pulls=100, min_reward_rate=0.05)
    exp = Experiment("exp", ARMS, guardrails=Guardrails(slo=slo))
    bad = stats([200, 200, 200, 200], [40, 2, 40, 40])  # arm b: 1% < 5%
    allocation = exp.decide(bad, rng)
    assert allocation.share("b") == 0.0
    assert sum(allocation.probabilities) == pytest.approx(1.0)
    [trip] = allocation.trips
    assert (trip.reason, trip.arm) == (guardrails.SLO_REWARD_RATE, "b")
    assert "0.01" in trip.detail


def test_reward_slo_waits_for_min_pulls(rng):
    slo = ArmSLO(min_pulls=100, min_reward_rate=0.05)
    exp = Experiment("exp", ARMS, guardrails=Guardrails(slo=slo))
    allocation = exp.decide(stats([99, 99, 99, 99], [20, 0, 20, 20]), rng)
    assert allocation.share("b") > 0.0
    assert allocation.trips == ()


def test_error_rate_and_latency_slos(rng):
    slo = ArmSLO(min_pulls=50, max_error_rate=0.1, max_p95_latency=0.3)
    exp = Experiment("exp", ARMS, policy=FixedPolicy((0.25,) * 4), guardrails=Guardrails(slo=slo))
    counters = exp.counters()
    for i in range(100):
        counters.add_response(0, error=False, latency=0.02)
        counters.add_response(1, error=i % 5 == 0, latency=0.02)  # 20% errors
        counters.add_response(2, error=False, latency=2.0 if i % 10 == 0 else 0.02)  # p95 2 s
        counters.add_response(3, error=False, latency=0.2)
    allocation = exp.decide(counters.snapshot(), rng)
    tripped = {t.arm: t.reason for t in allocation.trips if t.arm is not None}
    assert tripped == {"b": guardrails.SLO_ERROR_RATE, "c": guardrails.SLO_LATENCY_P95}
    # a fixed policy that still gives the disabled arms traffic is invalid -> fallback
    assert allocation.fallback


def test_slo_disabled_arms_get_no_traffic_from_real_policy(rng):
    slo = ArmSLO(min_pulls=10, max_error_rate=0.5)
    exp = Experiment("exp", ARMS, guardrails=Guardrails(slo=slo))
    counters = exp.counters()
    for _ in range(20):
        counters.add_response(2, error=True, latency=0.01)
    allocation = exp.decide(counters.snapshot(), rng)
    assert allocation.share("c") == 0.0
    assert not allocation.fallback
    assert allocation.probabilities == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3], abs=1e-9)


def test_every_arm_disabled_falls_back(rng):
    slo = ArmSLO(min_pulls=10, min_reward_rate=0.5)
    exp = Experiment("exp", ARMS, guardrails=Guardrails(slo=slo), default_arm="d")
    allocation = exp.decide(stats([10, 10, 10, 10]), rng)
    assert allocation.probabilities == (0.0, 0.0, 0.0, 1.0)
    assert reasons(allocation)[-1] == guardrails.NO_LIVE_ARMS
    assert reasons(allocation).count(guardrails.SLO_REWARD_RATE) == 4


def test_operator_disabled_arm(rng):
    exp = Experiment("exp", ARMS)
    allocation = exp.decide(stats([0, 0, 0, 0]), rng, disabled_arms=frozenset({"a", "zzz"}))
    assert allocation.share("a") == 0.0
    assert [(t.reason, t.arm) for t in allocation.trips] == [(guardrails.ARM_DISABLED, "a")]


# -- burn-in, floor, cap ------------------------------------------------------------


def test_burn_in_is_uniform_until_every_arm_has_min_pulls(rng):
    policy = FixedPolicy((1.0, 0.0, 0.0, 0.0))
    exp = Experiment("exp", ARMS, policy=policy, guardrails=Guardrails(min_pulls_per_arm=5))
    early = exp.decide(stats([50, 50, 50, 4]), rng)
    assert early.probabilities == (0.25, 0.25, 0.25, 0.25)
    assert reasons(early) == [guardrails.BURN_IN]
    later = exp.decide(stats([50, 50, 50, 5]), rng)
    assert later.probabilities == (1.0, 0.0, 0.0, 0.0)


def test_floor_lifts_every_live_arm_and_keeps_ranking():
    live = np.ones(4, dtype=bool)
    out = apply_floor(np.array([0.9, 0.07, 0.02, 0.01]), live, 0.05)
    assert out.sum() == pytest.approx(1.0)
    assert (out >= 0.05 - 1e-12).all()
    assert out[0] > out[1] >= out[2] >= out[3]


def test_floor_ignores_disabled_arms():
    live = np.array([True, True, False, True])
    out = apply_floor(np.array([0.97, 0.02, 0.0, 0.01]), live, 0.1)
    assert out[2] == 0.0
    assert out[[1, 3]] == pytest.approx([0.1, 0.1])
    assert out.sum() == pytest.approx(1.0)


def test_cap_moves_mass_to_leader_and_keeps_floor():
    out = apply_cap(np.array([0.5, 0.3, 0.1, 0.1]), 0, cap=0.2, floor=0.05)
    assert out[0] == pytest.approx(0.8)
    assert out[1:].sum() == pytest.approx(0.2)
    assert (out >= 0.05 - 1e-12).all()
    assert out[1] > out[2]


def test_cap_waits_for_leader_min_pulls(rng):
    exp = experiment((0.4, 0.2, 0.2, 0.2), guardrails=Guardrails(cap=0.1, cap_min_pulls=100))
    before = exp.decide(stats([99, 10, 10, 10]), rng)
    after = exp.decide(stats([100, 10, 10, 10]), rng)
    assert before.probabilities == (0.4, 0.2, 0.2, 0.2)
    assert after.probabilities == pytest.approx([0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3])
    assert [(t.reason, t.arm) for t in after.trips] == [(guardrails.CAP, "a")]


@pytest.mark.parametrize(
    ("vector", "floor", "cap"),
    [
        ((0.7, 0.1, 0.1, 0.1), 0.02, 0.1),
        ((0.997, 0.001, 0.001, 0.001), 0.03, 0.2),
        ((0.25, 0.25, 0.25, 0.25), 0.05, 0.15),
        ((0.4, 0.6, 0.0, 0.0), 0.01, 0.05),
    ],
)
def test_floor_and_cap_hold_over_100k_assignments(vector, floor, cap, rng):
    exp = experiment(vector, guardrails=Guardrails(floor=floor, cap=cap, cap_min_pulls=0))
    allocation = exp.decide(stats([1000, 1000, 1000, 1000]), rng)
    leader = int(np.argmax(allocation.probabilities))
    draws = 100_000
    source = random.Random(7)
    counts = np.zeros(4)
    for _ in range(draws):
        counts[assign.walk(allocation.cumulative, source.random())] += 1
    non_best = (draws - counts[leader]) / draws
    sigma_cap = math.sqrt(cap * (1 - cap) / draws)
    assert non_best <= cap + 3 * sigma_cap
    sigma_floor = math.sqrt(floor * (1 - floor) / draws)
    assert (counts / draws >= floor - 3 * sigma_floor).all()


# -- settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"floor": -0.1}, "floor"),
        ({"floor": 1.5}, "floor"),
        ({"cap": 2.0}, "cap"),
        ({"cap": math.nan}, "cap"),
        ({"cap_min_pulls": -1}, "cap_min_pulls"),
        ({"min_pulls_per_arm": 1.5}, "min_pulls_per_arm"),
        ({"stale_after": 0}, "stale_after"),
    ],
)
def test_bad_guardrail_settings_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        Guardrails(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_pulls": -5}, "min_pulls"),
        ({"max_error_rate": 1.2}, "max_error_rate"),
        ({"max_p95_latency": 0.0}, "max_p95_latency"),
        ({"min_reward_rate": math.inf}, "min_reward_rate"),
    ],
)
def test_bad_slo_settings_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        ArmSLO(**kwargs)  # type: ignore[arg-type]


def test_floor_and_cap_checked_against_arm_count():
    with pytest.raises(ConfigError, match="floor"):
        experiment(guardrails=Guardrails(floor=0.3))
    with pytest.raises(ConfigError, match="cap"):
        experiment(guardrails=Guardrails(floor=0.1, cap=0.2))


def test_counters_feed_decide(rng):
    exp = Experiment("exp", ["x", "y"])
    counters: Counters = exp.counters()
    for _ in range(300):
        counters.add_pull(0)
        counters.add_reward(0, 1.0)
        counters.add_pull(1)
    allocation = exp.decide(counters.snapshot(), rng)
    assert allocation.share("x") > 0.999
