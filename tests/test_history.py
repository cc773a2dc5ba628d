"""The allocation history behind the dashboard's charts: slots, bounds, events, the Plans hook."""

from __future__ import annotations

import threading

import pytest

from mabware import Allocation, Experiment, Statistics, Trip, assign
from mabware.exceptions import ConfigError
from mabware.guardrails import ARM_DISABLED, BURN_IN, SLO_REWARD_RATE, ArmSLO, Guardrails
from mabware.history import Event, History, Series
from mabware.testing import FakeClock, make_engine

ARMS = ("control", "bold")


def allocation(shares: tuple[float, ...], *trips: Trip, name: str = "headline") -> Allocation:
    arms = ARMS if len(shares) == 2 else tuple(f"arm{i}" for i in range(len(shares)))
    return Allocation(name, 1, arms, shares, assign.cumulative(list(shares)), trips)


def stats(pulls: list[float], rewards: list[float]) -> Statistics:
    return Statistics.from_counts(pulls, rewards)


def test_one_point_per_slot_the_latest_record_wins() -> None:
    history = History(every=1.0)
    history.record(allocation((0.5, 0.5)), stats([1, 1], [0, 0]), 100.2)
    history.record(allocation((0.4, 0.6)), stats([2, 3], [1, 1]), 100.9)  # same slot: replaces
    history.record(allocation((0.3, 0.7)), stats([4, 6], [1, 3]), 101.0)  # next slot
    series = history.series("headline")
    assert series == Series(
        times=(100.9, 101.0),
        arms=ARMS,
        shares=((0.4, 0.3), (0.6, 0.7)),
        pulls=((2.0, 4.0), (3.0, 6.0)),
        reward_sums=((1.0, 1.0), (1.0, 3.0)),
    )


def test_slots_follow_every() -> None:
    history = History(every=10.0)
    for t in (0.0, 3.0, 9.9, 10.0, 25.0, 29.0):
        history.record(allocation((0.5, 0.5)), stats([t, 0], [0, 0]), t)
    assert history.series("headline").times == (9.9, 10.0, 29.0)


def test_bounded_oldest_points_dropped_first() -> None:
    history = History(every=1.0, points=3)
    for t in range(10):
        history.record(allocation((0.5, 0.5)), stats([t, t], [0, 0]), float(t))
    series = history.series("headline")
    assert series.times == (7.0, 8.0, 9.0)
    assert series.pulls[0] == (7.0, 8.0, 9.0)


def test_experiments_are_kept_apart_and_unknown_ones_are_empty() -> None:
    history = History()
    history.record(allocation((1.0, 0.0), name="a"), stats([1, 0], [0, 0]), 1.0)
    history.record(allocation((0.2, 0.3, 0.5), name="b"), stats([1, 1, 1], [0, 0, 1]), 1.0)
    assert history.series("a").arms == ARMS
    assert history.series("b").shares == ((0.2,), (0.3,), (0.5,))
    assert history.series("nope") == Series((), (), (), (), ())
    assert history.events("nope") == []


def test_new_arms_start_the_series_afresh() -> None:
    history = History()
    history.record(allocation((0.5, 0.5)), stats([1, 1], [0, 0]), 1.0)
    history.record(allocation((0.2, 0.3, 0.5)), stats([1, 1, 1], [0, 0, 0]), 2.0)
    series = history.series("headline")
    assert series.times == (2.0,)
    assert series.arms == ("arm0", "arm1", "arm2")


def test_trips_that_start_and_end_become_events() -> None:
    history = History()
    slo = Trip(SLO_REWARD_RATE, "bold", "mean reward 0.01 < 0.05")
    off = Trip(ARM_DISABLED, "control", "disabled by operator")
    history.record(allocation((0.5, 0.5)), stats([1, 1], [0, 0]), 1.0)
    history.record(allocation((1.0, 0.0), slo), stats([9, 9], [0, 0]), 2.0)
    history.record(allocation((1.0, 0.0), slo), stats([9, 9], [0, 0]), 3.0)  # still on: no event
    later = Trip(SLO_REWARD_RATE, "bold", "mean reward 0.02 < 0.05")
    history.record(allocation((1.0, 0.0), later, off), stats([9, 9], [0, 0]), 4.0)
    history.record(allocation((0.5, 0.5)), stats([9, 9], [0, 0]), 5.0)
    assert history.events("headline") == [
        Event(2.0, SLO_REWARD_RATE, "bold", "mean reward 0.01 < 0.05", started=True),
        Event(4.0, ARM_DISABLED, "control", "disabled by operator", started=True),
        Event(5.0, SLO_REWARD_RATE, "bold", "mean reward 0.02 < 0.05", started=False),
        Event(5.0, ARM_DISABLED, "control", "disabled by operator", started=False),
    ]


def test_events_are_bounded_too() -> None:
    history = History(points=4)
    trip = Trip(ARM_DISABLED, "bold", "off")
    for t in range(10):
        tripped = (trip,) if t % 2 else ()
        history.record(allocation((1.0, 0.0), *tripped), stats([1, 1], [0, 0]), float(t))
    events = history.events("headline")
    assert len(events) == 4
    assert [(e.at, e.started) for e in events] == [
        (6.0, False),
        (7.0, True),
        (8.0, False),
        (9.0, True),
    ]


def test_concurrent_records_stay_consistent() -> None:
    history = History(every=1.0, points=50)
    barrier = threading.Barrier(8)

    def writer(k: int) -> None:
        barrier.wait()
        for t in range(200):
            history.record(allocation((0.5, 0.5)), stats([k, t], [0, 0]), float(t) + k / 10)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    series = history.series("headline")
    assert 0 < len(series.times) <= 50
    assert all(len(row) == len(series.times) for row in (*series.shares, *series.pulls))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": 0}, "every"),
        ({"every": float("inf")}, "every"),
        ({"points": 0}, "points"),
        ({"points": 1.5}, "points"),
        ({"points": True}, "points"),
    ],
)
def test_bad_settings_are_config_errors(options: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        History(**options)  # type: ignore[arg-type]


def test_the_engine_records_every_recompute() -> None:
    clock = FakeClock(1000.0)
    engine = make_engine(
        [
            Experiment(
                "headline",
                ["control", "bold"],
                guardrails=Guardrails(
                    min_pulls_per_arm=5, slo=ArmSLO(min_pulls=5, min_reward_rate=0.5)
                ),
            )
        ],
        clock=clock,
    )
    assert engine.history is engine.plans.history
    for _ in range(30):
        visit = engine.begin(None)
        if visit["headline"].arm == "control":
            visit.reward("headline", 1.0)
        engine.respond(visit, 200)
        clock.advance(0.5)
    engine.summaries()  # refreshes: the last visitor's numbers are recorded too
    series = engine.history.series("headline")
    assert series.arms == ("control", "bold")
    assert 10 <= len(series.times) <= 16  # 15 s of visits, one point a second
    assert series.times == tuple(sorted(series.times))
    last = {s.arm: s for s in engine.summaries()[0].arms}
    assert series.pulls[0][-1] + series.pulls[1][-1] == 30
    assert (series.pulls[0][-1], series.reward_sums[0][-1]) == (
        last["control"].pulls,
        last["control"].reward_sum,
    )
    assert series.shares[1][-1] == 0.0  # bold never earns: its SLO switched it off
    events = [(e.reason, e.arm, e.started) for e in engine.history.events("headline")]
    assert events == [
        (BURN_IN, None, True),  # from the first recompute: uniform until 5 pulls per arm
        (SLO_REWARD_RATE, "bold", True),  # at 5 pulls each: burn-in ends, bold is judged
        (BURN_IN, None, False),  # (within one record, starts come first)
    ]
