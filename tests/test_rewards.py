"""Bad rewards never reach the statistics; strict mode raises, production counts."""

from __future__ import annotations

import logging
import math

import pytest

from mabware._ratelimit import OncePerInterval
from mabware.exceptions import RewardError
from mabware.experiment import Experiment
from mabware.rewards import RewardGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_gate(strict: bool = False, clock: FakeClock | None = None):
    exp = Experiment("headline", ["control", "bold"], reward_range=(0.0, 10.0))
    counters = {"headline": exp.counters()}
    log = OncePerInterval(logging.getLogger("test.rewards"), 60.0, clock or FakeClock())
    return RewardGate({"headline": exp}, counters, strict=strict, log=log), counters["headline"]


BAD = [
    ("nope", "control", 1.0, "unknown_experiment"),
    ("headline", "italic", 1.0, "unknown_arm"),
    ("headline", "bold", math.nan, "bad_value"),
    ("headline", "bold", math.inf, "bad_value"),
    ("headline", "bold", -1.0, "bad_value"),
    ("headline", "bold", 10.5, "bad_value"),
    ("headline", "bold", "1", "bad_value"),
    ("headline", "bold", None, "bad_value"),
    ("headline", "bold", True, "bad_value"),
]


@pytest.mark.parametrize(("experiment", "arm", "value", "reason"), BAD)
def test_bad_reward_is_dropped_and_counted(experiment, arm, value, reason):
    gate, counters = make_gate()
    before = counters.snapshot()
    assert gate.record(experiment, arm, value) is False
    after = counters.snapshot()
    assert gate.rejected == {reason: 1}
    assert (after.reward_sum == before.reward_sum).all()
    assert (after.reward_sq_sum == before.reward_sq_sum).all()


@pytest.mark.parametrize(("experiment", "arm", "value", "reason"), BAD)
def test_strict_mode_raises(experiment, arm, value, reason):
    gate, counters = make_gate(strict=True)
    with pytest.raises(RewardError):
        gate.record(experiment, arm, value)
    assert counters.snapshot().reward_sum.sum() == 0.0


def test_good_reward_is_stored():
    gate, counters = make_gate()
    assert gate.record("headline", "bold", 7) is True
    assert gate.record("headline", "bold") is True  # default value 1.0
    assert counters.snapshot().reward_sum.tolist() == [0.0, 8.0]


def test_logged_once_per_cause_per_minute(caplog):
    clock = FakeClock()
    gate, _ = make_gate(clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.rewards"):
        for _ in range(100):
            gate.record("headline", "bold", math.nan)
        gate.record("headline", "italic", 1.0)
        clock.now = 61.0
        gate.record("headline", "bold", math.nan)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert gate.rejected == {"bad_value": 101, "unknown_arm": 1}
    assert "count=101" in lines[-1]
