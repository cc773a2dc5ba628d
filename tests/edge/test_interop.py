"""The SDK beside a real ``mabware serve`` and a real middleware app: same arms, exact counts.

The experiment keeps a burn-in longer than the test, so its allocation is
uniform in the server's snapshot and in the middleware's own plans: the
same table, so a unit id must get the same arm from all three (the hash
of ``mabware.assign.v1``). Rewards the SDK pushes must show up in
``GET /experiments/{id}`` exactly.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from harness import (
    COOKIE_KEY,
    READ,
    Server,
    edge_client,
    middleware_app,
    signing_server,
    wait_for,
)

ARMS = ["control", "bold", "banner"]
UNITS = [f"user-{i}" for i in range(1000)]


@pytest.fixture
def server(tmp_path: Path):
    with signing_server(tmp_path) as running:
        yield running


def test_a_thousand_units_get_one_arm_from_sdk_middleware_and_server(
    server: Server, tmp_path: Path
) -> None:
    server.create("headline", ARMS, guardrails={"min_pulls_per_arm": 1_000_000})
    edge = edge_client(server)
    assert edge.refresh()
    settings = {"EDGE_ARMS": ",".join(ARMS), "EDGE_BURN_IN": "1000000"}
    with edge, middleware_app(server, tmp_path, **settings) as app, httpx.Client() as http:
        sdk = {unit: edge.decide("headline", unit) for unit in UNITS}
        assert {d.reason for d in sdk.values()} == {"assigned"}
        assert {d.snapshot_seq for d in sdk.values()} == {edge.snapshot.seq}  # type: ignore[union-attr]
        middleware = {}
        for unit in UNITS:  # each unit a new visitor: no cookie from the one before
            http.cookies.clear()
            middleware[unit] = http.get(app, params={"user": unit}).text
        assert {unit: d.arm for unit, d in sdk.items()} == middleware
        served = {}
        for unit in UNITS[:200]:  # the server walks the same published table
            answer = http.get(
                f"{server.url}/decision",
                params={"experiment_id": "headline", "unit_id": unit},
                headers=server.headers(READ),
            ).json()
            served[unit] = answer["arm_id"]
        assert served == {unit: sdk[unit].arm for unit in UNITS[:200]}
        assert len(set(middleware.values())) == len(ARMS)  # every arm drawn: a real split


def test_sdk_pulls_and_rewards_show_up_exactly_on_the_server(server: Server) -> None:
    server.create("subject", ["plain", "emoji"], reward_mode="every")
    edge = edge_client(server)
    assert edge.refresh()
    pulls = {"plain": 0, "emoji": 0}
    rewards = {"plain": 0.0, "emoji": 0.0}
    with edge:
        for i in range(500):
            d = edge.decide("subject", f"user-{i}")
            pulls[d.arm] += 1  # type: ignore[index]
            if i % 3 == 0:
                assert edge.reward(d.decision_id, 0.5)
                rewards[d.arm] += 0.5  # type: ignore[index]
        assert edge.reward("subject", arm="emoji", value=1.0)  # by arm, without a decision
        rewards["emoji"] += 1.0
        assert edge.push()
    # the server's own replica pulls the merged state at its next sync (0.2 s)
    assert wait_for(lambda: server.totals("subject") == (500, sum(rewards.values())))
    numbers = server.arms("subject")
    assert {arm: numbers[arm]["pulls"] for arm in pulls} == pulls
    assert {arm: numbers[arm]["reward_sum"] for arm in rewards} == rewards


def test_a_cookie_set_by_either_side_is_honoured_by_the_other(
    server: Server, tmp_path: Path
) -> None:
    server.create("headline", ARMS, guardrails={"min_pulls_per_arm": 1_000_000})
    edge = edge_client(server, secret_keys=[COOKIE_KEY])
    assert edge.refresh()
    settings = {"EDGE_ARMS": ",".join(ARMS), "EDGE_BURN_IN": "1000000"}
    with edge, middleware_app(server, tmp_path, **settings) as app:
        for visitor in range(30):
            # the middleware assigns and sets the cookie; the SDK keeps that arm
            with httpx.Client() as browser:
                arm = browser.get(app).text
                cookie = edge.read_cookie(f"mabware={browser.cookies['mabware']}")
                kept = edge.decide("headline", cookie=cookie)
                assert (kept.reason, kept.arm) == ("cookie", arm)
            # the SDK assigns and writes the cookie; the middleware keeps that arm
            d = edge.decide("headline", f"sdk-visitor-{visitor}")
            header = edge.cookie_header([d], secure=False)
            assert header is not None
            token = header.split(";")[0].split("=", 1)[1]
            with httpx.Client(cookies={"mabware": token}) as browser:
                answer = browser.get(app)
                assert answer.text == d.arm
                assert "set-cookie" not in answer.headers  # unchanged: not rewritten
        assert wait_for(lambda: server.arms("headline")["control"]["pulls"] > 0)
