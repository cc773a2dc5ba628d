"""``GET /openapi.json`` and ``GET /docs``.

The document must match the app (every route documented, nothing more),
publish the rules the server checks with (patterns, closed objects), say
who needs a token, and link create -> decision -> reward. The schemathesis
tox env then holds the server to it; these tests hold the document to the
code. ``/docs`` must work without JavaScript: forms for the GET
operations, curl lines for the others.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from api_client import TOKEN, WRITE, Client
from starlette.routing import Mount, Route

from mabware import policies
from mabware.server import _json, create_app
from mabware.server._decision_ids import DECISION_ID_PATTERN
from mabware.server._settings import CREATE_FIELDS, STRATEGY_PATTERN
from mabware.server.openapi import document

DOCS_ROUTES = {"/openapi.json", "/docs", "/docs/try/{operation_id}"}


@pytest.fixture
def client() -> Iterator[Client]:
    client = Client(create_app("memory:", token=TOKEN))
    yield client
    client.close()


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            yield path, method.upper(), op


def test_every_route_is_documented_and_every_operation_routed():
    app = create_app("memory:")
    routed = set()
    for route in app.routes:
        if isinstance(route, Mount):  # an app of its own (the dashboard): its page is GET
            routed.add((route.path + "/", "GET"))
            continue
        assert isinstance(route, Route)
        if route.path in DOCS_ROUTES:
            continue
        # the arm switch is one route; the document names its two actions
        paths = (
            [route.path.replace("{switch:str}", a) for a in ("disable", "enable")]
            if "{switch:str}" in route.path
            else [route.path]
        )
        routed |= {(p, m) for p in paths for m in route.methods or () if m != "HEAD"}
    documented = {(path, method) for path, method, _ in operations(document(secured=False))}
    assert documented == routed


def test_the_document_is_openapi_3_1_with_unique_operation_ids_and_resolvable_refs():
    doc = document(secured=True)
    assert doc["openapi"] == "3.1.0"
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    text = json.dumps(doc)
    for name in re.findall(r'"#/components/schemas/([^"]+)"', text):
        assert name in doc["components"]["schemas"]
    json.loads(text, parse_constant=pytest.fail)  # strict JSON: no NaN, no Infinity


def test_request_bodies_refuse_unknown_members_as_the_server_does():
    doc = document(secured=False)
    for path, _method, op in operations(doc):
        for media_type, content in op.get("requestBody", {}).get("content", {}).items():
            if media_type == "application/json":
                assert resolve(doc, content["schema"])["additionalProperties"] is False, path
    schemas = doc["components"]["schemas"]
    for name in ("Guardrails", "ArmSLO", "StrategyParams"):
        assert schemas[name]["additionalProperties"] is False


def test_the_published_rules_are_the_ones_the_server_checks_with():
    schemas = document(secured=False)["components"]["schemas"]
    assert schemas["Id"]["pattern"] == _json.ID_PATTERN
    assert schemas["Strategy"]["pattern"] == STRATEGY_PATTERN
    assert schemas["Reward"]["properties"]["decision_id"]["pattern"] == DECISION_ID_PATTERN
    assert set(schemas["CreateExperiment"]["properties"]) == set(CREATE_FIELDS)
    params = schemas["StrategyParams"]["properties"]
    for cls in policies.POLICIES.values():
        assert set(inspect.signature(cls).parameters) <= set(params)


@pytest.mark.parametrize("strategy", ["thompson", "UCB1", "Epsilon_Greedy", "kl-ucb", "SW_UCB"])
def test_the_strategy_pattern_reads_names_as_the_server_does(strategy):
    assert re.fullmatch(STRATEGY_PATTERN, strategy)
    assert not re.fullmatch(STRATEGY_PATTERN, f" {strategy}")


def test_a_secured_document_needs_the_bearer_token_but_for_people_and_monitors():
    doc = document(secured=True)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    assert doc["security"] == [{"bearer": []}]
    for path, _, op in operations(doc):
        if path in ("/health", "/metrics", "/dashboard/"):
            assert op["security"] == []
        else:
            assert "401" in op["responses"], path
    open_doc = document(secured=False)
    assert "security" not in open_doc
    assert all("401" not in op["responses"] for _, _, op in operations(open_doc))


def test_every_error_answer_is_a_problem():
    doc = document(secured=True)
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if status >= "400":
                schema = response["content"]["application/problem+json"]["schema"]
                assert resolve(doc, schema)["required"] == ["type", "title", "status", "detail"]
        assert any(s.startswith("2") for s in op["responses"]), (path, method)


def test_links_walk_create_then_decision_then_reward():
    ops = {op["operationId"]: op for _, _, op in operations(document(secured=False))}
    created = ops["createExperiment"]["responses"]["201"]["links"]["GetDecision"]
    assert created == {
        "operationId": "getDecision",
        "parameters": {"experiment_id": "$response.body#/experiment_id"},
    }
    decided = ops["getDecision"]["responses"]["200"]["links"]
    by_decision = decided["RewardDecision"]
    assert by_decision["operationId"] == "postReward"
    assert by_decision["requestBody"]["decision_id"] == "$response.body#/decision_id"
    by_arm = decided["RewardArm"]["requestBody"]
    assert by_arm == {
        "experiment_id": "$response.body#/experiment_id",
        "arm_id": "$response.body#/arm_id",
    }
    # every link names an operation that exists
    for op in ops.values():
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in ops


def test_openapi_json_is_served_without_a_token(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(document(secured=True)))


def test_docs_need_no_javascript(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script" not in html.lower()
    doc = document(secured=True)
    for path, method, op in operations(doc):
        assert f'id="{op["operationId"]}"' in html
        if method == "GET":
            assert f'<form method="get" action="/docs/try/{op["operationId"]}">' in html
        else:
            shown = path.replace("{experiment_id}", "cta-button-test")
            shown = shown.replace("{arm_id}", "green-button")
            assert f"curl -X POST http://testserver{shown}" in html
    assert "Authorization: Bearer $MABWARE_TOKEN" in html
    assert "-d &#39;{&#34;experiment_id&#34;: &#34;cta-button-test&#34;" in html  # escaped


def test_a_docs_form_goes_to_its_operation(client):
    client.post("/experiments", json={"experiment_id": "a b", "arm_ids": ["x", "y"]}, headers=WRITE)
    go = client.get("/docs/try/getExperiment", params={"experiment_id": "a b"})
    assert go.status_code == 303
    assert go.headers["Location"] == "/experiments/a%20b"
    assert client.get(go.headers["Location"], headers=WRITE).json()["experiment_id"] == "a b"
    decide = client.get("/docs/try/getDecision", params={"experiment_id": "a b", "unit_id": ""})
    assert decide.headers["Location"] == "/decision?experiment_id=a+b"
    assert client.get("/docs/try/getExperiment").status_code == 422
    assert client.get("/docs/try/postReward").status_code == 404
