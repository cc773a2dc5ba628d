"""reward(): validation like mabware/rewards.py, once de-duplication, the decision window."""

from __future__ import annotations

import math

import pytest
from edge_support import COOKIE_KEY, NOW, client, decode_push, experiment, signed

SNAP = signed(
    10,
    NOW,
    [
        experiment("headline"),
        experiment("revenue", reward_range=[-5.0, 20.0], reward_mode="every"),
    ],
)


def pushed_sums(edge: object) -> dict[tuple[str, int], dict[str, tuple[float, ...]]]:
    assert edge.push()  # type: ignore[attr-defined]
    body = edge._pusher.transport.posts[-1][1]  # type: ignore[attr-defined]
    return decode_push(body)["decoded"]  # type: ignore[no-any-return]


def test_reward_by_id_by_decision_and_by_arm() -> None:
    edge = client(SNAP)
    a = edge.decide("revenue", "user-1")
    b = edge.decide("revenue", "user-2")
    assert edge.reward(a.decision_id, 2.0) is True
    assert edge.reward(b, 4) is True
    assert edge.reward("revenue", arm="bold", value=-5.0) is True
    sums = pushed_sums(edge)[("revenue", 1)]
    expected: dict[str, list[float]] = {"control": [0.0] * 4, "bold": [0.0] * 4}
    for arm, value, propensity in ((a.arm, 2.0, a.propensity), (b.arm, 4.0, b.propensity)):
        row = expected[arm]  # type: ignore[index]
        row[0] += 1.0
        row[1] += value
        row[2] += value * value
        row[3] += (value + 5.0) / 25.0 / propensity
    expected["bold"][2] += 25.0
    expected["bold"][1] += -5.0
    # a reward by arm carries the current allocation's propensity; its gain is 0 at the low end
    assert {arm: list(row) for arm, row in sums.items()} == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "bad_value"),
        ("1", "bad_value"),
        (None, "bad_value"),
        (math.nan, "bad_value"),
        (math.inf, "bad_value"),
        (-0.01, "bad_value"),
        (1.01, "bad_value"),
        (10**400, "bad_value"),
    ],
)
def test_bad_values_are_dropped_and_counted(value: object, reason: str) -> None:
    edge = client(SNAP)
    d = edge.decide("headline", "u")
    assert edge.reward(d.decision_id, value) is False
    assert edge.dropped == {reason: 1}
    with pytest.raises(ValueError, match="reward"):
        client(SNAP, strict=True).reward("headline", value, arm="bold")


def test_unknown_targets_are_dropped_by_reason(caplog: pytest.LogCaptureFixture) -> None:
    edge = client(SNAP)
    assert edge.reward("nope", arm="a") is False
    assert edge.reward("headline", arm="nope") is False
    assert edge.reward("headline") is False  # an experiment needs its arm
    assert edge.reward(12345) is False
    assert edge.reward(1.5) is False  # type: ignore[arg-type]
    assert edge.dropped == {"unknown_experiment": 1, "unknown_arm": 2, "unknown_decision": 2}
    assert edge._ledger.changes == 0
    assert sum("reward dropped" in r.getMessage() for r in caplog.records) == 3  # once a cause


def test_once_rewards_count_once_per_decision() -> None:
    edge = client(SNAP, strict=True)
    d = edge.decide("headline", "u")
    assert edge.reward(d.decision_id, 1.0) is True
    assert edge.reward(d.decision_id, 1.0) is False  # not raised, even in strict mode
    assert edge.dropped == {"duplicate": 1}
    every = edge.decide("revenue", "u")
    assert edge.reward(every, 1.0) is True
    assert edge.reward(every, 1.0) is True
    assert edge.reward("headline", arm="bold") is True  # no decision: nothing to de-duplicate
    assert edge.reward("headline", arm="bold") is True


def test_decisions_are_remembered_for_a_window() -> None:
    edge = client(SNAP, decision_window=2)
    first, *_, fourth = [edge.decide("headline", f"u{i}") for i in range(4)]
    assert edge.reward(first, 1.0) is False
    assert edge.dropped == {"unknown_decision": 1}
    assert edge.reward(fourth, 1.0) is True


def test_uncounted_decisions_cannot_be_rewarded() -> None:
    edge = client(SNAP)
    assert edge.reward(edge.decide("headline", eligible=False), 1.0) is False
    assert edge.dropped == {"unknown_decision": 1}


def test_a_rewarded_cookie_entry_is_not_rewarded_again() -> None:
    edge = client(SNAP, secret_keys=[COOKIE_KEY])
    d = edge.decide("headline", "u")
    assert edge.reward(d, 1.0)
    header = edge.cookie_header([d], secure=False)
    assert header is not None
    token = header.split(";")[0].split("=", 1)[1]
    other = client(SNAP, secret_keys=[COOKIE_KEY])  # another process, as the middleware would
    cookie = other.read_cookie(token)
    assert cookie.entries["headline"].rewarded is True
    kept = other.decide("headline", cookie=cookie)
    assert other.reward(kept, 1.0) is False
    assert other.dropped == {"duplicate": 1}


def test_reward_after_a_version_bump_counts_under_the_decided_version() -> None:
    edge = client(SNAP)
    d = edge.decide("headline", "u")
    edge.load(signed(11, NOW, [experiment(version=2)]))
    assert edge.reward(d, 1.0)
    sums = pushed_sums(edge)
    assert sums[("headline", 1)][d.arm][:2] == (1.0, 1.0)  # type: ignore[index]
    assert ("headline", 2) not in sums  # nothing counted under version 2: left out


def test_a_cookie_decision_from_another_process_is_rewarded_once() -> None:
    edge = client(SNAP, secret_keys=[COOKIE_KEY])
    d = edge.decide("headline", "u")
    header = edge.cookie_header([d], secure=False)
    assert header is not None
    token = header.split(";")[0].split("=", 1)[1]
    other = client(SNAP, secret_keys=[COOKIE_KEY])  # never saw the decision: only its cookie
    kept = other.decide("headline", cookie=other.read_cookie(token))
    assert (kept.reason, kept.arm, kept.decision_id) == ("cookie", d.arm, d.decision_id)
    assert other.reward(kept, 1.0) is True
    assert other.reward(kept, 1.0) is False  # once: the second is a duplicate
    assert other.dropped == {"duplicate": 1}
    # a kept arm is no new pull (as in the middleware); the reward is counted
    assert pushed_sums(other)[("headline", 1)][d.arm][:2] == (0.0, 1.0)  # type: ignore[index]
    rewritten = other.cookie_header([kept], secure=False, cookie=other.read_cookie(token))
    assert rewritten is not None  # the rewarded flag travels back in the cookie
    assert other.read_cookie(rewritten.split(";")[0].split("=", 1)[1]).entries["headline"].rewarded


def test_a_decision_read_from_the_cookie_alone_is_rewardable() -> None:
    edge = client(SNAP, secret_keys=[COOKIE_KEY])
    d = edge.decide("headline", "u")
    header = edge.cookie_header([d], secure=False)
    assert header is not None
    other = client(SNAP, secret_keys=[COOKIE_KEY])  # a /buy handler: reads, never decides
    from_cookie = other.read_cookie("mabware=" + header.split(";")[0].split("=", 1)[1])
    assert other.reward(from_cookie["headline"], 1.0) is True
    assert other.reward(from_cookie["headline"], 1.0) is False
    assert pushed_sums(other)[("headline", 1)][d.arm][:2] == (0.0, 1.0)  # type: ignore[index]
