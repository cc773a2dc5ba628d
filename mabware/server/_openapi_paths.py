"""The REST API's ``paths`` in ``/openapi.json``: operations, answers, links.

Each operation lists the problems it can answer (``WHY`` says when) and
the links a client (or schemathesis' stateful phase) follows from its
answer: ``POST /experiments`` -> ``GET /decision`` (the new experiment's
id) -> ``POST /reward`` (the decision's id, or its arm).
"""

from __future__ import annotations

from typing import Any

from mabware.server._json import TEXT_PATTERN
from mabware.server._openapi_schemas import ID, ref

PROBLEM = {"application/problem+json": {"schema": ref("Problem")}}
WHY = {
    400: "The body or a parameter cannot be read (not JSON, bad Content-Length, "
    "an unknown query parameter).",
    401: "No bearer token, or not one that may do this.",
    404: "No such experiment (or arm).",
    409: "It exists already.",
    413: "The body is too large (decided while it streams in).",
    415: "The body is not of the media type this operation reads.",
    422: "A member is refused: `field`, `received` and `allowed` say which, "
    "what was sent and what may be.",
    503: "The server cannot read or write its state.",
}
_BODY_FROM_CREATE = "$response.body#/experiment_id"


def responses(ok: dict[str, Any], *statuses: int) -> dict[str, Any]:
    problems = {str(s): {"description": WHY[s], "content": PROBLEM} for s in statuses}
    return {**ok, **problems}


def json_ok(schema: str, description: str, status: int = 200, **more: Any) -> dict[str, Any]:
    content = {"application/json": {"schema": ref(schema)}}
    return {str(status): {"description": description, "content": content, **more}}


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(schema)}}}


def _path(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": ID,
        "description": description,
        "example": example,
    }


_EXPERIMENT = _path("experiment_id", "The experiment's id.", "cta-button-test")
_ARM = _path("arm_id", "One of the experiment's arm ids.", "green-button")


def _link(operation_id: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


# Links start only from a new experiment (to the README's operations on it)
# and from a decision (to its reward): a tool that follows links
# (schemathesis' stateful phase) starts its walks where links start, so its
# walks are create -> decision -> reward, not changes to experiments that
# do not exist.
_EXPERIMENT_LINKS = {
    "GetDecision": _link("getDecision", experiment_id=_BODY_FROM_CREATE),
    "GetExperiment": _link("getExperiment", experiment_id=_BODY_FROM_CREATE),
    "AddArms": _link("addArms", experiment_id=_BODY_FROM_CREATE),
    "Config": {"operationId": "postConfig", "requestBody": {"experiment_id": _BODY_FROM_CREATE}},
}
_DECISION_LINKS = {
    # exactly the decision: its id says which arm and with what propensity
    "RewardDecision": {
        "operationId": "postReward",
        "requestBody": {
            "experiment_id": "$response.body#/experiment_id",
            "decision_id": "$response.body#/decision_id",
            "reward": 1.0,
        },
        "x-schemathesis": {"merge_body": False},
    },
    # the MAB E-Commerce Optimizer's way: the arm, with a reward of the client's choosing
    "RewardArm": {
        "operationId": "postReward",
        "requestBody": {
            "experiment_id": "$response.body#/experiment_id",
            "arm_id": "$response.body#/arm_id",
        },
    },
}


def _switch(action: str) -> dict[str, Any]:
    on = action == "enable"
    return {
        "post": {
            "operationId": f"{action}Arm",
            "summary": f"Switch an arm {'back on' if on else 'off'}",
            "description": "A switched-off arm gets no new traffic; its data stays."
            if not on
            else "The arm takes traffic again.",
            "tags": ["experiments"],
            "parameters": [
                _EXPERIMENT,
                _path("arm_id", "One of the experiment's arm ids.", "green-button"),
            ],
            "responses": responses(json_ok("Experiment", "The experiment."), 401, 404),
        }
    }


def api_paths() -> dict[str, Any]:
    """The REST API (``mabware.server.api``)."""
    return {
        "/experiments": {
            "post": {
                "operationId": "createExperiment",
                "summary": "Create an experiment",
                "tags": ["experiments"],
                "requestBody": _json_body("CreateExperiment"),
                "responses": responses(
                    json_ok(
                        "Experiment",
                        "Created.",
                        201,
                        headers={"Location": {"schema": {"type": "string"}}},
                        links=_EXPERIMENT_LINKS,
                    ),
                    400,
                    401,
                    409,
                    413,
                    415,
                    422,
                ),
            },
            "get": {
                "operationId": "listExperiments",
                "summary": "List the experiments, with their statistics",
                "tags": ["experiments"],
                "responses": responses(json_ok("ExperimentList", "Every experiment."), 401),
            },
        },
        "/experiments/{experiment_id}": {
            "get": {
                "operationId": "getExperiment",
                "summary": "An experiment's settings and per-arm statistics",
                "tags": ["experiments"],
                "parameters": [_EXPERIMENT],
                "responses": responses(json_ok("Experiment", "The experiment."), 401, 404),
            }
        },
        "/experiments/{experiment_id}/arms": {
            "post": {
                "operationId": "addArms",
                "summary": "Add arms to a running experiment",
                "tags": ["experiments"],
                "parameters": [_EXPERIMENT],
                "requestBody": _json_body("AddArms"),
                "responses": responses(
                    json_ok("Experiment", "The experiment with its new arms."),
                    400,
                    401,
                    404,
                    413,
                    415,
                    422,
                ),
            }
        },
        "/experiments/{experiment_id}/arms/{arm_id}/disable": _switch("disable"),
        "/experiments/{experiment_id}/arms/{arm_id}/enable": _switch("enable"),
        "/experiments/{experiment_id}/reset": {
            "post": {
                "operationId": "resetExperiment",
                "summary": "Start a new version: visitors are assigned afresh",
                "description": "The old version's data stays stored; statistics restart.",
                "tags": ["experiments"],
                "parameters": [_EXPERIMENT],
                "responses": responses(
                    json_ok("Experiment", "The new version."),
                    401,
                    404,
                ),
            }
        },
        "/decision": {
            "get": {
                "operationId": "getDecision",
                "summary": "Which arm to show (counts a pull)",
                "tags": ["decisions"],
                "parameters": [
                    {"name": "experiment_id", "in": "query", "required": True, "schema": ID},
                    {
                        "name": "unit_id",
                        "in": "query",
                        "required": False,
                        "description": "A visitor's id: the same id gets the same arm "
                        "while the allocation holds. Without it, a random draw.",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 256,
                            "pattern": TEXT_PATTERN,
                        },
                    },
                ],
                "responses": responses(
                    json_ok(
                        "Decision",
                        "The arm, and a decision id to reward it by.",
                        links=_DECISION_LINKS,
                    ),
                    400,
                    401,
                    404,
                    422,
                ),
            }
        },
        "/reward": {
            "post": {
                "operationId": "postReward",
                "summary": "Report a reward for an arm or a decision",
                "tags": ["decisions"],
                "requestBody": _json_body("Reward"),
                "responses": responses(
                    json_ok("RewardResult", "Counted (or a retry, not counted twice)."),
                    400,
                    401,
                    413,
                    415,
                    422,
                ),
            }
        },
        "/config": {
            "post": {
                "operationId": "postConfig",
                "summary": "Hot-swap an experiment's policy; its data stays",
                "tags": ["experiments"],
                "requestBody": _json_body("Config"),
                "responses": responses(
                    json_ok("Experiment", "The experiment under its new policy."),
                    400,
                    401,
                    404,
                    413,
                    415,
                    422,
                ),
            }
        },
    }
