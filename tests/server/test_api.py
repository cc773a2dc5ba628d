"""The REST API, endpoint by endpoint, on both server stores (memory: and file:).

The first test is the MAB E-Commerce Optimizer's README, request for
request with its field names: its clients must work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from api_client import READ, READ_TOKEN, TOKEN, WRITE, Client, problem

from mabware.exceptions import ConfigError
from mabware.server import create_app

JSON = {"Content-Type": "application/json"}
CTA = ["blue-button", "green-button", "red-button"]


@pytest.fixture(params=["memory", "file"])
def serve(request, tmp_path) -> Iterator[Callable[..., Client]]:
    """A factory of clients on a fresh server; every store the server has."""
    clients: list[Client] = []

    def make(*, headers: dict[str, str] | None = None, **settings: Any) -> Client:
        store = "memory:" if request.param == "memory" else f"file:{tmp_path}/state"
        clients.append(Client(create_app(store, **settings), headers=headers))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def create(
    client: Client,
    name: str = "cta-button-test",
    arms: list[str] = CTA,
    headers: dict[str, str] | None = None,
    **more: Any,
) -> dict:
    body = {"experiment_id": name, "arm_ids": arms, **more}
    response = client.post("/experiments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def arm(body: dict, name: str) -> dict:
    return next(a for a in body["arms"] if a["arm"] == name)


def test_the_mab_ecommerce_optimizer_readme_flow(serve):
    client = serve()
    assert client.get("/health").json() == {"status": "ok"}

    # 1. create, with the README's request body
    body = {
        "experiment_id": "cta-button-test",
        "arm_ids": CTA,
        "strategy": "thompson",
        "strategy_params": {"seed": 42},
    }
    created = client.post("/experiments", json=body)
    assert created.status_code == 201
    assert created.headers["Location"] == "/experiments/cta-button-test"
    for field in ("experiment_id", "arm_ids", "strategy", "strategy_params"):
        assert created.json()[field] == body[field]

    # 2. details
    details = client.get("/experiments/cta-button-test")
    assert details.status_code == 200
    assert {k: details.json()[k] for k in body} == body

    # 3. decision
    decision = client.get("/decision", params={"experiment_id": "cta-button-test"})
    assert decision.status_code == 200
    answer = decision.json()
    assert answer["experiment_id"] == "cta-button-test"
    assert answer["arm_id"] in CTA
    assert answer["strategy"] == "thompson"
    assert answer["metadata"] == {"arms": CTA}

    # 4. reward, as the README's curl sends it
    reward = client.post(
        "/reward",
        content=b'{"experiment_id": "cta-button-test", "arm_id": "green-button", "reward": 1.0}',
        headers=JSON,
    )
    assert reward.status_code == 200
    assert {k: reward.json()[k] for k in ("status", "experiment_id", "arm_id", "strategy")} == {
        "status": "ok",
        "experiment_id": "cta-button-test",
        "arm_id": "green-button",
        "strategy": "thompson",
    }

    # 5. add arms: appended, in order
    more = client.post(
        "/experiments/cta-button-test/arms", json={"arm_ids": ["orange-button", "purple-button"]}
    )
    assert more.status_code == 200
    assert more.json()["arm_ids"] == [*CTA, "orange-button", "purple-button"]
    assert more.json()["strategy"] == "thompson"

    # 6. hot-swap: the data stays
    swapped = client.post("/config", json={"experiment_id": "cta-button-test", "strategy": "ucb1"})
    assert swapped.status_code == 200
    assert {k: swapped.json()[k] for k in ("experiment_id", "strategy", "strategy_params")} == {
        "experiment_id": "cta-button-test",
        "strategy": "ucb1",
        "strategy_params": {},
    }
    green = arm(swapped.json(), "green-button")
    assert green["reward_sum"] == 1.0
    assert sum(a["pulls"] for a in swapped.json()["arms"]) == 1.0  # the one decision


def test_the_readme_complete_workflow(serve):
    client = serve()
    arms = ["lifestyle-photo", "white-background", "in-use-photo"]
    create(client, "product-image-test", arms, strategy="thompson")
    assert client.get("/decision?experiment_id=product-image-test").json()["arm_id"] in arms
    for arm_id, value in (("lifestyle-photo", 1.0), ("white-background", 0.0)):
        sent = {"experiment_id": "product-image-test", "arm_id": arm_id, "reward": value}
        assert client.post("/reward", json=sent).status_code == 200
    status = client.get("/experiments/product-image-test").json()
    assert [a["reward_sum"] for a in status["arms"]] == [1.0, 0.0, 0.0]


def test_a_duplicate_is_409_and_keeps_the_first(serve):
    client = serve()
    create(client, arms=["a", "b"])
    again = client.post("/experiments", json={"experiment_id": "cta-button-test", "arm_ids": CTA})
    problem(again, 409)
    assert client.get("/experiments/cta-button-test").json()["arm_ids"] == ["a", "b"]


@pytest.mark.parametrize(
    "spelling", ["THOMPSON", "Epsilon_Greedy", "epsilon-greedy", "UCB1", "kl_ucb"]
)
def test_a_strategy_is_read_in_any_case_and_echoed_as_sent(serve, spelling):
    body = create(serve(), strategy=spelling)
    assert body["strategy"] == spelling
    assert body["policy"]["name"] == spelling.lower().replace("_", "-")


def test_the_policy_settings_are_applied_and_echoed(serve):
    body = create(serve(), strategy="epsilon_greedy", strategy_params={"epsilon": 0.3, "seed": 7})
    assert body["strategy_params"] == {"epsilon": 0.3, "seed": 7}
    assert body["policy"]["params"]["epsilon"] == 0.3


def test_a_reward_by_decision_id_counts_once(serve):
    client = serve()
    create(client)
    decision = client.get("/decision?experiment_id=cta-button-test").json()
    assert 0 < decision["propensity"] <= 1
    assert decision["counted"]
    sent = {"experiment_id": "cta-button-test", "decision_id": decision["decision_id"], "value": 1}
    first = client.post("/reward", json=sent).json()
    assert (first["arm_id"], first["counted"], first["reward"]) == (decision["arm_id"], True, 1.0)
    retry = client.post("/reward", json=sent).json()
    assert retry["counted"] is False  # reward_mode "once": a retry is not counted twice
    assert (
        arm(client.get("/experiments/cta-button-test").json(), decision["arm_id"])["reward_sum"]
        == 1.0
    )


def test_reward_mode_every_counts_every_reward(serve):
    client = serve()
    create(client, reward_mode="every", reward_range=[0, 10])
    decision = client.get("/decision?experiment_id=cta-button-test").json()
    sent = {"experiment_id": "cta-button-test", "decision_id": decision["decision_id"], "reward": 4}
    for _ in range(2):
        assert client.post("/reward", json=sent).json()["counted"]
    details = client.get("/experiments/cta-button-test").json()
    assert arm(details, decision["arm_id"])["reward_sum"] == 8.0
    assert details["reward_range"] == [0.0, 10.0]


def test_a_unit_id_gets_the_same_arm(serve):
    client = serve()
    create(client)
    arms = {
        client.get(
            "/decision", params={"experiment_id": "cta-button-test", "unit_id": "u-1"}
        ).json()["arm_id"]
        for _ in range(20)
    }
    assert len(arms) == 1


def test_a_disabled_arm_gets_no_traffic_until_enabled(serve):
    client = serve()
    create(client)
    off = client.post("/experiments/cta-button-test/arms/green-button/disable")
    assert off.json()["disabled_arms"] == ["green-button"]
    arms = {
        client.get("/decision?experiment_id=cta-button-test").json()["arm_id"] for _ in range(60)
    }
    assert arms == {"blue-button", "red-button"}
    on = client.post("/experiments/cta-button-test/arms/green-button/enable")
    assert on.json()["disabled_arms"] == []
    problem(client.post("/experiments/cta-button-test/arms/green-button/toggle"), 404)
    problem(client.post("/experiments/cta-button-test/arms/pink-button/disable"), 404)


def test_a_reset_starts_a_version_and_refuses_its_old_decisions(serve):
    client = serve()
    version = create(client)["version"]
    old = client.get("/decision?experiment_id=cta-button-test").json()
    reset = client.post("/experiments/cta-button-test/reset")
    assert reset.json()["version"] == version + 1
    assert sum(a["pulls"] for a in reset.json()["arms"]) == 0  # statistics restart
    sent = {"experiment_id": "cta-button-test", "decision_id": old["decision_id"], "reward": 1}
    assert problem(client.post("/reward", json=sent), 422)["field"] == "decision_id"
    new = client.get("/decision?experiment_id=cta-button-test").json()
    assert new["version"] == version + 1


def test_the_list_has_every_experiment(serve):
    client = serve()
    create(client, "one")
    create(client, "two", strategy="ucb1")
    listed = client.get("/experiments").json()["experiments"]
    assert [(e["experiment_id"], e["strategy"]) for e in listed] == [
        ("one", "thompson"),
        ("two", "ucb1"),
    ]


def test_any_text_id_but_a_slash_is_addressable(serve):
    client = serve()
    name = "größe test ✓ 日本"
    created = client.post("/experiments", json={"experiment_id": name, "arm_ids": ["ä", "b c"]})
    assert created.status_code == 201
    location = created.headers["Location"]
    assert location.isascii()  # a header is latin-1; the id is quoted
    assert client.get(location).json()["experiment_id"] == name
    assert client.get("/decision", params={"experiment_id": name}).json()["arm_id"] in ("ä", "b c")


def test_a_read_token_reads_but_cannot_change_anything(serve):
    client = serve(token=TOKEN, read_token=READ_TOKEN)
    create(client, headers=WRITE)
    reads = [
        ("GET", "/experiments"),
        ("GET", "/experiments/cta-button-test"),
        ("GET", "/decision?experiment_id=cta-button-test"),
    ]
    red = {"experiment_id": "cta-button-test", "arm_id": "red-button", "reward": 1}
    writes = [
        ("POST", "/experiments", {"experiment_id": "x", "arm_ids": ["a", "b"]}),
        ("POST", "/reward", red),
        ("POST", "/experiments/cta-button-test/arms", {"arm_ids": ["x"]}),
        ("POST", "/config", {"experiment_id": "cta-button-test", "strategy": "ucb1"}),
        ("POST", "/experiments/cta-button-test/arms/red-button/disable", None),
        ("POST", "/experiments/cta-button-test/reset", None),
    ]
    for method, path in reads:
        assert client.request(method, path, headers=READ).status_code == 200
        assert client.request(method, path, headers=WRITE).status_code == 200
        refused = client.request(method, path)
        problem(refused, 401)
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    before = client.get("/experiments", headers=WRITE).json()["experiments"]
    for method, path, body in writes:
        assert (
            "not valid"
            in problem(client.request(method, path, json=body, headers=READ), 401)["detail"]
        )
        problem(client.request(method, path, json=body), 401)
        wrong = {"Authorization": "Bearer wrong"}
        problem(client.request(method, path, json=body, headers=wrong), 401)
    after = client.get("/experiments", headers=WRITE).json()["experiments"]
    assert after == before
    assert client.post("/reward", json=red, headers=WRITE).status_code == 200
    for public in ("/health", "/openapi.json", "/docs"):
        assert client.get(public).status_code == 200


OPEN = {"health": "/health", "metrics": "/metrics", "dashboard": "/dashboard/",
        "docs": "/docs"}  # fmt: skip


def test_open_endpoints_answer_anyone_by_default(serve):
    client = serve(token=TOKEN, read_token=READ_TOKEN)
    for path in [*OPEN.values(), "/openapi.json"]:
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("protected", [["metrics"], ["health", "dashboard", "docs"]])
def test_protected_endpoints_need_a_reader(serve, protected):
    client = serve(token=TOKEN, read_token=READ_TOKEN, protect=protected)
    for name, path in OPEN.items():
        if name in protected:
            assert problem(client.get(path), 401)["status"] == 401, path
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get(path, headers=READ).status_code == 200, path
            assert client.get(path, headers=WRITE).status_code == 200, path
        else:
            assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("settings", "says"),
    [({"token": TOKEN, "protect": ["admin"]}, "protect names"),
     ({"token": TOKEN, "protect": "metrics"}, "protect names"),
     ({"protect": ["metrics"]}, "needs a token")],
)  # fmt: skip
def test_bad_protect_settings_are_config_errors(tmp_path, settings, says):
    with pytest.raises(ConfigError, match=says):
        create_app("memory:", **settings)


def test_only_a_write_token_means_reads_need_it_too(serve):
    client = serve(token=TOKEN)
    problem(client.get("/experiments"), 401)
    assert client.get("/experiments", headers=WRITE).status_code == 200


def test_unknown_paths_and_methods_are_problems_with_allow(serve):
    client = serve()
    problem(client.get("/nowhere"), 404)
    refused = problem(client.request("DELETE", "/experiments"), 405)
    assert refused["status"] == 405
    allowed = client.request("DELETE", "/experiments").headers["Allow"]
    assert {m.strip() for m in allowed.split(",")} >= {"GET", "POST"}
