"""The sans-IO engine: assignment, stickiness, the cookie, rewards, bots, SLOs."""

from __future__ import annotations

import pytest

from mabware import Experiment, Guardrails, RewardError, assign
from mabware.cookies import CookieCodec
from mabware.engine import Engine
from mabware.exceptions import ConfigError
from mabware.guardrails import ArmSLO
from mabware.testing import TEST_KEYS, FakeClock, make_engine


def headline(**kw: object) -> Experiment:
    return Experiment("headline", {"control": "Welcome", "bold": "Big sale"}, **kw)  # type: ignore[arg-type]


def layout(**kw: object) -> Experiment:
    return Experiment("layout", ["grid", "list", "cards"], **kw)  # type: ignore[arg-type]


def cookie_of(set_cookie: str | None) -> str:
    assert set_cookie is not None
    return set_cookie.split(";", 1)[0]  # "mabware=<token>"


def decoded(set_cookie: str | None, keys: object = TEST_KEYS, clock: object = None):  # type: ignore[no-untyped-def]
    token = cookie_of(set_cookie).split("=", 1)[1]
    codec = CookieCodec(list(keys), **({"clock": clock} if clock else {}))  # type: ignore[call-overload]
    result = codec.decode(token)
    assert result.reason is None, result.reason
    return result.state


def pulls(engine: Engine, name: str) -> list[float]:
    return engine.store.statistics(name, 0.0).pulls.tolist()


def test_new_visitor_gets_every_experiment_and_a_cookie() -> None:
    engine = make_engine([headline(), layout()])
    visit = engine.begin(None)
    assert set(visit) == {"headline", "layout"}
    assert visit["headline"].arm in ("control", "bold")
    assert (
        visit["headline"].value == {"control": "Welcome", "bold": "Big sale"}[visit["headline"].arm]
    )
    header = engine.respond(visit, 200)
    assert header is not None
    attrs = [a.strip() for a in header.split(";")]
    assert attrs[0].startswith("mabware=")
    assert {"Path=/", "HttpOnly", "SameSite=Lax"} <= set(attrs)
    assert "Secure" not in attrs
    assert any(a.startswith("Max-Age=") and int(a[8:]) <= 34_560_000 for a in attrs)
    state = decoded(header)
    assert {k: e.arm for k, e in state.entries.items()} == {k: a.arm for k, a in visit.items()}
    assert sum(pulls(engine, "headline")) == 1
    assert sum(pulls(engine, "layout")) == 1


def test_returning_visitor_keeps_arms_without_set_cookie_or_new_pulls() -> None:
    engine = make_engine([headline(), layout()])
    first = engine.begin(None)
    cookie = cookie_of(engine.respond(first, 200))
    for _ in range(20):
        again = engine.begin(f"other=1; {cookie}; theme=dark")
        assert {k: a.arm for k, a in again.items()} == {k: a.arm for k, a in first.items()}
        assert engine.respond(again, 200) is None
    assert sum(pulls(engine, "headline")) == 1


def test_bumped_version_and_removed_arm_are_reassigned() -> None:
    clock = FakeClock()
    old = make_engine([headline(), layout()], clock=clock)
    cookie = cookie_of(old.respond(old.begin(None), 200))
    arm_before = old.begin(cookie)["layout"].arm
    remaining = [a for a in ("grid", "list", "cards") if a != arm_before]
    new = make_engine([headline(version=2), Experiment("layout", remaining)], clock=clock)
    visit = new.begin(cookie)
    assert visit["layout"].arm in remaining
    state = decoded(new.respond(visit, 200), clock=clock)
    assert state.entries["headline"].version == 2
    assert state.entries["layout"].arm == visit["layout"].arm
    assert sum(pulls(new, "headline")) == 1  # the reassignment is a new pull
    assert sum(pulls(new, "layout")) == 1


def test_disabled_experiment_serves_default_uncounted_and_keeps_the_cookie_entry() -> None:
    clock = FakeClock()
    on = make_engine([headline()], clock=clock)
    header = on.respond(on.begin(None), 200)
    off = make_engine([headline(enabled=False, default_arm="bold")], clock=clock)
    visit = off.begin(cookie_of(header))
    assert visit["headline"].arm == "bold"
    assert not visit["headline"].counted
    assert visit.reward("headline") is False
    assert off.respond(visit, 200) is None
    assert sum(pulls(off, "headline")) == 0


@pytest.mark.parametrize(
    ("user_agent", "consent"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("facebookexternalhit/1.1", True),
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", False),
    ],
)
def test_bots_and_visitors_without_consent_get_defaults_no_cookie_no_counts(
    user_agent: str, consent: bool
) -> None:
    engine = make_engine([headline(default_arm="bold"), layout()])
    visit = engine.begin(None, user_agent=user_agent, consent=consent)
    assert visit["headline"].arm == "bold"
    assert visit["layout"].arm == "grid"
    assert not visit.counted
    assert visit.reward("headline", 1.0) is False
    assert engine.respond(visit, 200) is None
    engine.finish(visit, 500, 0.1)
    stats = engine.store.statistics("headline", 0.0)
    assert stats.pulls.sum() == 0
    assert stats.reward_sum.sum() == 0
    assert stats.responses.sum() == 0


def test_a_browser_is_not_a_bot_and_bot_detection_can_be_turned_off() -> None:
    engine = make_engine([headline()])
    assert not engine.is_bot("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36")
    assert not engine.is_bot("python-httpx/0.27.0")
    assert make_engine([headline()], bot_pattern=None).begin(None, user_agent="Googlebot").counted


def test_reward_once_counts_one_reward_per_assignment() -> None:
    engine = make_engine([headline()])
    visit = engine.begin(None)
    cookie = cookie_of(engine.respond(visit, 200))
    later = engine.begin(cookie)
    assert later.reward("headline", 1.0) is True
    rewarded_cookie = cookie_of(engine.respond(later, 200))  # the flag is written back
    assert rewarded_cookie != cookie
    assert later.reward("headline", 1.0) is False  # same request, second time
    again = engine.begin(rewarded_cookie)
    assert again.reward("headline", 1.0) is False  # a later request
    assert engine.store.statistics("headline", 0.0).reward_sum.sum() == 1.0


def test_reward_every_counts_each_event() -> None:
    engine = make_engine([headline(reward_mode="every", reward_range=(0.0, 100.0))])
    visit = engine.begin(None)
    assert visit.reward("headline", 30.0)
    assert visit.reward("headline", 12.5)
    arm = engine.experiments["headline"].arm_names.index(visit["headline"].arm)
    assert engine.store.statistics("headline", 0.0).reward_sum[arm] == 42.5


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), float("inf"), "1", None, True])
def test_bad_rewards_never_reach_the_statistics(value: object) -> None:
    strict = make_engine([headline()])
    with pytest.raises(RewardError):
        strict.begin(None).reward("headline", value)
    lenient = make_engine([headline()], strict=False)
    visit = lenient.begin(None)
    assert visit.reward("headline", value) is False
    assert visit.reward("nope", 1.0) is False
    assert lenient.store.statistics("headline", 0.0).reward_sum.sum() == 0
    assert lenient.rewards.rejected == {"bad_value": 1, "unknown_experiment": 1}


def test_reward_routes_reward_successful_responses_only() -> None:
    engine = make_engine([headline(), layout()], rewards={"/checkout/done": {"headline": 1.0}})
    cookie = cookie_of(engine.respond(engine.begin(None), 200))
    failed = engine.begin(cookie, path="/checkout/done")
    engine.respond(failed, 404)
    assert engine.store.statistics("headline", 0.0).reward_sum.sum() == 0
    done = engine.begin(cookie, path="/checkout/done")
    assert engine.respond(done, 200) is not None  # the rewarded flag changed the cookie
    assert engine.store.statistics("headline", 0.0).reward_sum.sum() == 1
    assert engine.store.statistics("layout", 0.0).reward_sum.sum() == 0


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"/done": {"nope": 1.0}}, "unknown experiment 'nope'"),
        ({"/done": {"headline": 2.0}}, "outside the range"),
        ({"done": {"headline": 1.0}}, "must start with '/'"),
    ],
)
def test_bad_reward_routes_fail_at_start_up(routes: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        make_engine([headline()], rewards=routes)


def test_unit_ids_assign_deterministically_by_the_shared_hash() -> None:
    arms = []
    for seed in range(3):
        engine = make_engine([layout()], seed=seed)
        visit = engine.begin(None, unit_id="user-42")
        table = engine._plans["layout"].allocation.cumulative  # type: ignore[union-attr]
        expected = assign.assign_unit(table, "layout", 1, "user-42")
        assert visit["layout"].arm == ("grid", "list", "cards")[expected]
        arms.append(visit["layout"].arm)
    assert len(set(arms)) == 1


def test_https_and_trusted_proxies_set_secure() -> None:
    engine = make_engine([headline()], trusted_proxies=["10.0.0.1"])
    assert engine.is_secure("https", "1.2.3.4", None)
    assert engine.is_secure("http", "10.0.0.1", "https")
    assert not engine.is_secure("http", "1.2.3.4", "https")  # anyone can send the header
    visit = engine.begin(None, secure=True)
    assert "Secure" in [a.strip() for a in (engine.respond(visit, 200) or "").split(";")]


def test_tampered_cookie_is_a_new_visitor_like_no_cookie() -> None:
    clean = make_engine([headline(), layout()], seed=7)
    tampered = make_engine([headline(), layout()], seed=7, strict=False)
    expected = clean.begin(None)
    got = tampered.begin("mabware=invalid")
    assert {k: a.arm for k, a in got.items()} == {k: a.arm for k, a in expected.items()}
    assert (
        decoded(tampered.respond(got, 200)).entries == decoded(clean.respond(expected, 200)).entries
    )
    assert tampered.events.counts["cookie_rejected:malformed"] == 1


def test_old_key_cookie_is_reissued_under_the_new_key_keeping_issue_time() -> None:
    clock = FakeClock()
    old = make_engine([headline()], secret_keys=[TEST_KEYS[1]], clock=clock)
    header = old.respond(old.begin(None), 200)
    clock.advance(100)
    rotated = make_engine([headline()], secret_keys=list(TEST_KEYS), clock=clock)
    visit = rotated.begin(cookie_of(header))
    new_header = rotated.respond(visit, 200)
    state = decoded(new_header, keys=[TEST_KEYS[0]], clock=clock)
    assert state.issued == decoded(header, keys=[TEST_KEYS[1]], clock=clock).issued
    assert state.entries["headline"].arm == visit["headline"].arm
    assert rotated.respond(rotated.begin(cookie_of(new_header)), 200) is None


def test_expired_cookie_is_a_new_visitor_even_from_the_cache() -> None:
    clock = FakeClock()
    engine = make_engine([headline()], clock=clock, max_age=3600)
    cookie = cookie_of(engine.respond(engine.begin(None), 200))
    assert engine.respond(engine.begin(cookie), 200) is None  # cached now
    clock.advance(3601)
    assert engine.respond(engine.begin(cookie), 200) is not None
    assert sum(pulls(engine, "headline")) == 2


def test_error_rate_slo_disables_an_arm_and_moves_its_visitors() -> None:
    slo = ArmSLO(min_pulls=5, max_error_rate=0.5)
    engine = make_engine([layout(guardrails=Guardrails(slo=slo))])
    cookies: dict[str, list[str]] = {"grid": [], "list": [], "cards": []}
    for _ in range(60):
        visit = engine.begin(None)
        arm = visit["layout"].arm
        cookies[arm].append(cookie_of(engine.respond(visit, 200)))
        engine.finish(visit, 503 if arm == "list" else 200, 0.01)
    after = engine.begin(cookies["list"][0])
    assert after["layout"].arm != "list"
    assert engine.respond(after, 200) is not None
    assert engine.events.counts["trip:slo_error_rate"] == 1  # counted when it starts
    for cookie in cookies["grid"][:3]:
        assert engine.begin(cookie)["layout"].arm == "grid"


def test_one_process_learns_from_its_own_rewards() -> None:
    engine = make_engine([headline()])
    for _ in range(400):
        visit = engine.begin(None)
        if visit["headline"].arm == "bold":
            visit.reward("headline", 1.0)
    allocation = engine._plans["headline"].allocation
    assert allocation is not None
    assert allocation.share("bold") > 0.99


@pytest.mark.parametrize(
    ("experiments", "message"),
    [([], "at least one"), (["headline"], "mabware.Experiment"), (None, "a list of")],
)
def test_bad_experiment_lists_fail_at_start_up(experiments: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_engine(experiments)  # type: ignore[arg-type]


def test_duplicate_experiment_names_fail_at_start_up() -> None:
    with pytest.raises(ConfigError, match="two experiments are named 'headline'"):
        make_engine([headline(), headline()])


def test_unknown_store_scheme_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="'memory:'"):
        make_engine([headline()], store="mongo://x")


@pytest.mark.parametrize(("status", "rewarded"), [(200, 1.0), (302, 1.0), (404, 0.0), (500, 0.0)])
def test_reward_on_success_needs_a_response_below_400(status: int, rewarded: float) -> None:
    engine = make_engine([headline()])
    visit = engine.begin(None)
    visit.reward_on_success("headline", 1.0)
    engine.respond(visit, status)
    assert engine.store.statistics("headline", 0.0).reward_sum.sum() == rewarded
