"""decide(): every reason, staleness on a fake clock, sampling, cookies both ways."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from edge_support import COOKIE_KEY, NOW, Clock, client, experiment, signed

from mabware_edge import Decision

SNAP = signed(
    10,
    NOW,
    [
        experiment("headline"),
        experiment("off", status="disabled", allocation=[0.0, 1.0]),
        experiment("guarded", status="fallback", default=1, allocation=[0.0, 1.0]),
    ],
)


def test_assigned_is_deterministic_and_counted() -> None:
    edge = client(SNAP)
    first = edge.decide("headline", unit_id="user-42")
    again = edge.decide("headline", unit_id="user-42")
    assert first.reason == again.reason == "assigned"
    assert first.arm == again.arm
    assert first.decision_id != again.decision_id
    assert 0 <= first.decision_id < 2**63
    assert first.value == ("Welcome back" if first.arm == "control" else "Big sale today")
    assert first.propensity == (0.25 if first.arm == "control" else 0.75)
    assert (first.snapshot_seq, first.version, first.experiment) == (10, 1, "headline")
    assert first.assigned == int(NOW + 1)
    assert edge.decisions == {"assigned": 2}


def test_decision_is_a_frozen_slotted_record() -> None:
    d = client(SNAP).decide("headline", "u")
    assert isinstance(d, Decision)
    with pytest.raises(AttributeError):
        d.arm = "bold"  # type: ignore[misc]
    assert not hasattr(d, "__dict__")


def test_sampling_uses_the_injected_rng() -> None:
    class Fixed:
        def __init__(self, u: float) -> None:
            self.u = u

        def random(self) -> float:
            return self.u

    assert client(SNAP, rng=Fixed(0.2499)).decide("headline").arm == "control"
    assert client(SNAP, rng=Fixed(0.25)).decide("headline").arm == "bold"
    edge = client(SNAP, rng=random.Random(7))
    arms = Counter(edge.decide("headline").arm for _ in range(4000))
    assert 2700 < arms["bold"] < 3300
    assert edge.decisions == {"sampled": 4000}


@pytest.mark.parametrize(
    ("name", "arm", "reason", "propensity"),
    [
        ("off", "control", "disabled", 1.0),
        ("guarded", "bold", "fallback", 1.0),
        ("nope", None, "unknown_experiment", 0.0),
    ],
)
def test_default_arms_and_unknown(
    name: str, arm: str | None, reason: str, propensity: float
) -> None:
    edge = client(SNAP)
    d = edge.decide(name, unit_id="user-1")
    assert (d.arm, d.reason, d.propensity, d.snapshot_seq) == (arm, reason, propensity, 10)
    assert edge.decisions == {reason: 1}
    assert edge._ledger.changes == 0  # nothing learned


def test_ineligible_gets_the_default_and_is_not_counted() -> None:
    edge = client(SNAP)
    d = edge.decide("headline", unit_id="user-42", eligible=False)
    assert (d.arm, d.reason) == ("control", "ineligible")
    assert edge._ledger.changes == 0


def test_no_snapshot_uses_defaults() -> None:
    edge = client(defaults={"headline": "control"})
    d = edge.decide("headline", unit_id="u")
    assert (d.arm, d.value, d.reason, d.snapshot_seq, d.version) == (
        "control", None, "no_snapshot", None, None
    )  # fmt: skip
    assert edge.decide("other").arm is None
    assert edge.decisions == {"no_snapshot": 2}


def test_stale_after_the_issue_time() -> None:
    clock = Clock(NOW)
    edge = client(SNAP, clock=clock, stale_after=600.0)
    clock.advance(600.0)
    assert edge.decide("headline", "u").reason == "assigned"  # exactly 600 s old: not yet
    clock.advance(0.5)
    stale = edge.decide("headline", "u")
    assert (stale.arm, stale.reason, stale.propensity) == ("control", "stale", 1.0)
    assert edge.decisions == {"assigned": 1, "stale": 1}
    assert edge._ledger.changes == 1  # the stale one was not counted
    edge.load(signed(11, clock.now))  # a fresh issue ends it
    assert edge.decide("headline", "u").reason == "assigned"


def test_bad_unit_ids_are_sampled_as_the_middleware_does() -> None:
    edge = client(SNAP)
    assert edge.decide("headline", unit_id=42).reason == "sampled"  # type: ignore[arg-type]
    assert edge.decide("headline", unit_id="\ud800").reason == "sampled"  # lone surrogate
    assert edge.errors["bad_unit_id"] == 2


def test_a_broken_rng_or_clock_never_raises() -> None:
    class Broken:
        def random(self) -> float:
            return 1.5

    edge = client(SNAP, rng=Broken())
    d = edge.decide("headline")
    assert (d.arm, d.reason) == ("control", "fallback")
    assert edge.errors["decide"] == 1

    class BrokenClock(Clock):
        def __call__(self) -> float:
            if self.now > NOW + 10:
                raise OSError("no clock")
            return self.now

    clock = BrokenClock()
    edge = client(defaults={"headline": "bold"}, clock=clock)
    clock.advance(100)
    d = edge.decide("headline")
    assert (d.arm, d.reason) == ("bold", "fallback")


def test_cookie_round_trip_keeps_the_arm_and_entries() -> None:
    edge = client(SNAP, secret_keys=[COOKIE_KEY])
    d = edge.decide("headline", unit_id="user-42")
    header = edge.cookie_header([d], secure=True)
    assert header is not None
    assert header.startswith("mabware=")
    assert header.endswith("; Path=/; SameSite=Lax; HttpOnly; Secure")
    token = header.split(";")[0].split("=", 1)[1]
    cookie = edge.read_cookie(f"a=b; mabware={token}")
    assert cookie["headline"].arm == d.arm
    kept = edge.decide("headline", cookie=cookie)
    assert (kept.arm, kept.reason, kept.decision_id) == (d.arm, "cookie", d.decision_id)
    assert edge.cookie_header([kept], cookie=cookie) is None  # unchanged: no Set-Cookie
    assert edge.read_cookie(token).entries == cookie.entries  # the bare value works too


def test_cookie_of_another_version_or_arm_is_reassigned() -> None:
    edge = client(SNAP, secret_keys=[COOKIE_KEY])
    token = edge.cookie_header([edge.decide("headline", "u")], secure=False)
    assert token is not None
    value = token.split(";")[0]
    bumped = client(signed(11, NOW, [experiment(version=2)]), secret_keys=[COOKIE_KEY])
    cookie = bumped.read_cookie(value)
    assert dict(cookie) == {}
    assert "headline" in cookie.entries
    assert bumped.decide("headline", "u", cookie=cookie).reason == "assigned"


def test_refused_cookie_is_treated_as_absent_and_counted() -> None:
    edge = client(SNAP, secret_keys=[COOKIE_KEY])
    cookie = edge.read_cookie("mabware=not-a-token")
    assert (dict(cookie), cookie.reason) == ({}, "malformed")
    assert edge.cookie_rejected == {"malformed": 1}
    d = edge.decide("headline", cookie=cookie)
    assert d.reason == "sampled"
    assert edge.cookie_header([d], cookie=cookie) is not None  # the bad one is replaced
    assert edge.read_cookie(None).token is None
    assert edge.cookie_header([], cookie=edge.read_cookie("")) is None


def test_cookie_keeps_unknown_experiments_and_issue_time() -> None:
    clock = Clock(NOW + 5)
    edge = client(SNAP, clock=clock, secret_keys=[COOKIE_KEY])
    codec = edge._require_codec()
    from mabware_edge import CookieEntry

    foreign = {"ended": CookieEntry("x", 3, 99, int(NOW) - 50, False)}
    token = codec.encode(int(NOW) - 100, foreign)
    cookie = edge.read_cookie(token)
    d = edge.decide("headline", "u", cookie=cookie)
    header = edge.cookie_header([d], cookie=cookie, secure=False)
    assert header is not None
    back = codec.decode(header.split(";")[0].split("=", 1)[1])
    assert back.issued == int(NOW) - 100
    assert list(back.entries) == ["ended", "headline"]
    assert back.entries["headline"].decision == d.decision_id


def test_uncounted_decisions_are_not_written_to_the_cookie() -> None:
    edge = client(SNAP, secret_keys=[COOKIE_KEY])
    ineligible = edge.decide("headline", "u", eligible=False)
    assert edge.cookie_header([ineligible, edge.decide("off", "u")]) is None


def test_cookies_need_keys() -> None:
    with pytest.raises(ValueError, match="secret_keys"):
        client(SNAP).read_cookie("mabware=x")
