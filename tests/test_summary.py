"""Per-arm numbers for people: mean, 95% interval, P(best), share, guardrail status."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mabware import Experiment, Guardrails, Statistics, policies
from mabware.guardrails import (
    ARM_DISABLED,
    CAP,
    DISABLED_EXPERIMENT,
    SLO_REWARD_RATE,
    ArmSLO,
)
from mabware.summary import LIVE, ArmSummary, ExperimentSummary, summarize
from mabware.testing import FakeClock, make_engine

RNG = np.random.default_rng(0)


def summary_of(experiment: Experiment, stats: Statistics, **decide: object) -> ExperimentSummary:
    allocation = experiment.decide(stats, RNG, **decide)  # type: ignore[arg-type]
    return summarize(experiment, stats, allocation)


def arm(summary: ExperimentSummary, name: str) -> ArmSummary:
    (found,) = [a for a in summary.arms if a.arm == name]
    return found


def beta_b_beats_a(a_alpha: int, a_beta: int, b_alpha: int, b_beta: int) -> float:
    """P(X_B > X_A), X ~ Beta, the closed form for an integer alpha_B (Evan Miller, 2015)."""

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    return sum(
        math.exp(
            log_beta(a_alpha + i, a_beta + b_beta)
            - math.log(b_beta + i)
            - log_beta(1 + i, b_beta)
            - log_beta(a_alpha, a_beta)
        )
        for i in range(b_alpha)
    )


def test_mean_and_wilson_interval_match_hand_computed_values() -> None:
    exp = Experiment("headline", ["a", "b", "c", "d"])
    stats = Statistics.from_counts([100, 50, 50, 0], [30, 0, 50, 0])
    s = summary_of(exp, stats)
    a, b, c, d = s.arms
    assert (a.pulls, a.reward_sum, a.mean) == (100.0, 30.0, 0.3)
    # Wilson score interval for 30/100, z = 1.96: 0.2189 .. 0.3958
    assert a.interval == pytest.approx((0.2189488529493276, 0.3958485463334666), abs=1e-12)
    # 0/50: the lower end is 0 and the upper z^2 / (n + z^2); never a zero-width interval
    assert b.mean == 0.0
    assert b.interval == pytest.approx((0.0, 0.07134759913335872), abs=1e-12)
    assert c.interval == pytest.approx((0.9286524008666414, 1.0), abs=1e-12)
    assert (d.mean, d.interval) == (None, None)


def test_interval_is_mapped_back_onto_the_reward_range() -> None:
    exp = Experiment("basket", ["a", "b"], reward_range=(10.0, 20.0))
    # rewards 10 + 10 x (0/1 with 30 ones in 100): the normalised mean is 0.3
    stats = Statistics.from_counts([100, 100], [1300.0, 1000.0], [100 * 70 + 400 * 30, 100 * 100])
    a, b = summary_of(exp, stats).arms
    assert a.mean == 13.0
    assert a.interval == pytest.approx((12.189488529493276, 13.958485463334666), abs=1e-9)
    assert b.interval is not None
    assert b.interval[0] == 10.0


def test_unbounded_rewards_get_a_normal_interval_from_the_sample_variance() -> None:
    exp = Experiment(
        "revenue",
        ["a", "b"],
        policy=policies.ThompsonSampling(likelihood="gaussian"),
        reward_range=(-math.inf, math.inf),
    )
    # arm a: rewards 1, 2, 3, 4 (mean 2.5, sample sd 1.291); arm b: one reward
    stats = Statistics.from_counts([4, 1], [10.0, 7.0], [30.0, 49.0])
    s = summary_of(exp, stats)
    a, b = s.arms
    assert a.mean == 2.5
    assert a.interval == pytest.approx((1.23484868811834, 3.76515131188166), abs=1e-12)
    assert b.mean == 7.0
    assert b.interval is None
    assert sum(x.p_best for x in s.arms) == pytest.approx(1.0)
    assert s.to_json()["reward_range"] == [None, None]  # strict JSON has no Infinity


@given(
    st.lists(
        st.tuples(st.integers(1, 10_000), st.floats(0.0, 1.0)),
        min_size=2,
        max_size=5,
    ),
    st.sampled_from([(0.0, 1.0), (-5.0, 5.0), (0.0, 250.0)]),
)
def test_interval_contains_the_mean_inside_the_range(
    arms: list[tuple[int, float]], reward_range: tuple[float, float]
) -> None:
    low, high = reward_range
    exp = Experiment("e", [f"arm{i}" for i in range(len(arms))], reward_range=reward_range)
    pulls = [float(n) for n, _ in arms]
    sums = [n * (low + (high - low) * q) for n, q in arms]
    s = summary_of(exp, Statistics.from_counts(pulls, sums))
    for a in s.arms:
        assert a.mean is not None
        assert a.interval is not None
        lo, hi = a.interval
        assert low <= lo <= hi <= high
        slack = 1e-9 * (high - low)
        assert lo - slack <= a.mean <= hi + slack
    assert sum(a.p_best for a in s.arms) == pytest.approx(1.0, abs=1e-9)


def test_p_best_is_the_beta_posterior_probability() -> None:
    exp = Experiment("headline", ["a", "b"])
    stats = Statistics.from_counts([40, 50], [10, 20])
    a, b = summary_of(exp, stats).arms
    # flat priors: Beta(1 + 10, 1 + 30) against Beta(1 + 20, 1 + 30)
    expected = beta_b_beats_a(11, 31, 21, 31)  # 0.930108 (also by fine trapezoid)
    assert b.p_best == pytest.approx(expected, abs=5e-5)  # the quadrature is good to ~1e-5
    assert a.p_best + b.p_best == pytest.approx(1.0, abs=1e-12)


def test_equal_arms_share_p_best_and_a_fresh_experiment_is_uniform() -> None:
    exp = Experiment("headline", ["a", "b", "c"])
    fresh = summary_of(exp, Statistics.zeros(3))
    assert [a.p_best for a in fresh.arms] == pytest.approx([1 / 3] * 3)
    assert all(a.mean is None and a.interval is None and a.status == LIVE for a in fresh.arms)
    same = summary_of(exp, Statistics.from_counts([10, 10, 30], [5, 5, 3]))
    assert same.arms[0].p_best == same.arms[1].p_best > same.arms[2].p_best


def test_an_operator_disabled_arm_has_its_status_and_no_p_best() -> None:
    exp = Experiment("headline", ["a", "b", "c"])
    stats = Statistics.from_counts([100, 100, 100], [10, 20, 90])
    s = summary_of(exp, stats, disabled_arms=frozenset({"c"}))
    c = arm(s, "c")
    assert (c.status, c.detail, c.p_best, c.share) == (ARM_DISABLED, "disabled by operator", 0, 0)
    assert c.mean == 0.9  # its data is still shown
    live = [a for a in s.arms if a.status == LIVE]
    assert [a.arm for a in live] == ["a", "b"]
    assert sum(a.p_best for a in live) == pytest.approx(1.0, abs=1e-12)
    assert [t.reason for t in s.trips] == [ARM_DISABLED]
    assert not s.fallback


def test_an_slo_breach_shows_as_the_arms_status() -> None:
    exp = Experiment(
        "headline",
        ["a", "b"],
        guardrails=Guardrails(slo=ArmSLO(min_pulls=50, min_reward_rate=0.1)),
    )
    s = summary_of(exp, Statistics.from_counts([60, 60], [2, 30]))
    a, b = s.arms
    assert a.status == SLO_REWARD_RATE
    assert a.detail is not None
    assert "< 0.1" in a.detail
    assert (a.p_best, a.share, b.p_best, b.share) == (0.0, 0.0, 1.0, 1.0)
    assert b.status == LIVE
    assert b.detail is None


def test_the_cap_leader_stays_live() -> None:
    exp = Experiment("headline", ["a", "b"], guardrails=Guardrails(cap=0.05, cap_min_pulls=10))
    s = summary_of(exp, Statistics.from_counts([100, 100], [50, 55]))
    assert any(t.reason == CAP and t.arm == "b" for t in s.trips)
    assert [a.status for a in s.arms] == [LIVE, LIVE]
    assert arm(s, "b").share == pytest.approx(0.95)


def test_a_disabled_experiment_is_a_fallback_to_the_default_arm() -> None:
    exp = Experiment("headline", ["a", "b"], default_arm="b", enabled=False)
    s = summary_of(exp, Statistics.from_counts([10, 10], [1, 2]))
    assert s.fallback
    assert not s.enabled
    assert [t.reason for t in s.trips] == [DISABLED_EXPERIMENT]
    assert [a.share for a in s.arms] == [0.0, 1.0]
    assert s.default_arm == "b"


def test_to_json_is_strict_json_with_the_documented_shape() -> None:
    exp = Experiment("headline", ["a", "b"], version=3)
    s = summary_of(exp, Statistics.from_counts([10, 0], [4, 0]), disabled_arms=frozenset({"b"}))
    doc = json.loads(json.dumps(s.to_json(), allow_nan=False))
    assert doc["experiment"] == "headline"
    assert doc["version"] == 3
    assert doc["policy"] == policies.to_dict(exp.policy)
    assert doc["reward_range"] == [0.0, 1.0]
    assert doc["enabled"] is True
    assert doc["fallback"] is False
    assert doc["trips"] == [{"reason": ARM_DISABLED, "arm": "b", "detail": "disabled by operator"}]
    first, second = doc["arms"]
    assert list(first) == [
        "arm", "pulls", "reward_sum", "mean", "interval", "p_best", "share", "status", "detail",
    ]  # fmt: skip
    assert first["interval"] == list(s.arms[0].interval or ())
    assert (first["mean"], second["mean"], second["interval"]) == (0.4, None, None)
    assert second["status"] == ARM_DISABLED


def test_engine_summaries_read_the_store_and_the_current_plan() -> None:
    clock = FakeClock()
    engine = make_engine(
        [Experiment("headline", ["control", "bold"]), Experiment("layout", ["grid", "list"])],
        clock=clock,
    )
    for i in range(40):
        visit = engine.begin(None)
        if i % 3 == 0:
            visit.reward("headline", 1.0)
        engine.respond(visit, 200)
        clock.advance(1.0)
    summaries = engine.summaries()
    assert [s.experiment for s in summaries] == ["headline", "layout"]
    report = engine.report()["experiments"]
    for s in summaries:
        for a in s.arms:
            assert a.pulls == report[s.experiment]["arms"][a.arm]["pulls"]
            assert a.reward_sum == report[s.experiment]["arms"][a.arm]["reward_sum"]
            assert a.share == engine.plans.by_name[s.experiment].allocation.share(a.arm)
    assert sum(a.pulls for a in summaries[0].arms) == 40
    assert sum(a.reward_sum for a in summaries[0].arms) == 14
