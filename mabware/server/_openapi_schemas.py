"""The JSON Schemas of ``/openapi.json`` (``components/schemas``).

Request schemas say exactly what the server accepts, from the same
constants the server checks with (``_json.ID_PATTERN``,
``_settings.STRATEGY_PATTERN``, the field lists), and refuse unknown
members (``additionalProperties: false``) where the server does. What no
schema can say (an arm that must be in ``arm_ids``, ``low < high``, an
experiment that must exist) is a 422 problem that names the field.
Response schemas list what every answer carries; they stay open, as JSON
answers may grow members.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal

from mabware import policies
from mabware.server import _json as j
from mabware.server import _settings as settings
from mabware.server._decision_ids import DECISION_ID_PATTERN

ID: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 120,
    "pattern": j.ID_PATTERN,
    "description": "1-120 characters, no control characters, no '/'",
}
NUMBER = {"type": "number"}
NULL = {"type": "null"}


def ref(name: str) -> dict[str, str]:
    """A reference to ``components/schemas/name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, NULL]}


def _obj(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool, **more: Any
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return {**schema, **more}


def _setting(annotation: Any) -> dict[str, Any]:
    """The schema of one policy setting, from its dataclass annotation."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return {"anyOf": [_setting(a) for a in args]}
    if typing.get_origin(annotation) is Literal:  # any case, - or _ (policies.check_choice)
        return {"type": "string", "pattern": "^(?:" + "|".join(map(settings.any_case, args)) + ")$"}
    kinds = {bool: "boolean", int: "integer", float: "number", type(None): "null"}
    return {"type": kinds[annotation]} if annotation in kinds else {}


def strategy_params() -> dict[str, Any]:
    """Every policy's settings (each policy takes its own: another's is a 422)."""
    properties: dict[str, Any] = {settings.SEED: _nullable({"type": "integer", "minimum": 0})}
    lines = []
    for name, cls in policies.POLICIES.items():
        hints = typing.get_type_hints(cls)
        fields = list(inspect.signature(cls).parameters)  # what policies.from_name takes
        for field in fields:
            properties.setdefault(field, _setting(hints[field]))
        lines.append(f"{name}: {', '.join(fields) or 'none'}")
    return {
        "type": ["object", "null"],
        "properties": properties,
        "additionalProperties": False,
        "description": "The policy's settings; seed is accepted and echoed for "
        "compatibility. Settings by strategy: " + "; ".join(lines),
    }


def _request_schemas() -> dict[str, Any]:
    arm_ids = {"type": "array", "items": ID, "maxItems": 100, "uniqueItems": True}
    fraction = {"type": "number", "minimum": 0, "maximum": 1}
    count = {"type": "integer", "minimum": 0}
    positive = {"type": "number", "exclusiveMinimum": 0}
    return {
        "Id": ID,
        "Strategy": {
            "type": "string",
            "pattern": settings.STRATEGY_PATTERN,
            "description": "one of " + ", ".join(policies.POLICIES) + " (any case, - or _)",
            "examples": ["thompson", "ucb1", "epsilon_greedy"],
        },
        "StrategyParams": strategy_params(),
        "ArmSLO": _obj(
            {
                "min_pulls": count,
                "min_reward_rate": _nullable(NUMBER),
                "max_error_rate": _nullable(fraction),
                "max_p95_latency": _nullable(positive),
            },
            closed=True,
        ),
        "Guardrails": _obj(
            {
                "floor": fraction,
                "cap": _nullable(fraction),
                "cap_min_pulls": count,
                "min_pulls_per_arm": count,
                "slo": _nullable(ref("ArmSLO")),
                "stale_after": _nullable(positive),
            },
            closed=True,
        ),
        "CreateExperiment": _obj(
            {
                "experiment_id": ID,
                "arm_ids": {**arm_ids, "minItems": 2},
                "strategy": _nullable(ref("Strategy")),
                "strategy_params": ref("StrategyParams"),
                "default_arm": _nullable(ID),
                "reward_range": {"type": "array", "items": NUMBER, "minItems": 2, "maxItems": 2},
                "reward_mode": {"enum": ["once", "every", None]},
                "guardrails": _nullable(ref("Guardrails")),
                "payloads": {
                    "type": ["object", "null"],
                    "description": "arm id -> any JSON value the arm carries",
                },
            },
            ("experiment_id", "arm_ids"),
            closed=True,
            examples=[
                {
                    "experiment_id": "cta-button-test",
                    "arm_ids": ["blue-button", "green-button", "red-button"],
                    "strategy": "thompson",
                }
            ],
        ),
        "AddArms": _obj({"arm_ids": {**arm_ids, "minItems": 1}}, ("arm_ids",), closed=True),
        "Config": _obj(
            {
                "experiment_id": ID,
                "strategy": ref("Strategy"),
                "strategy_params": ref("StrategyParams"),
            },
            ("experiment_id", "strategy"),
            closed=True,
        ),
        "Reward": _obj(
            {
                "experiment_id": ID,
                "arm_id": ID,
                "decision_id": {"type": "string", "pattern": DECISION_ID_PATTERN},
                "reward": {**NUMBER, "description": "in the experiment's reward_range"},
                "value": {**NUMBER, "description": "an alias of reward"},
            },
            ("experiment_id",),
            closed=True,
            # reward or value, not both; the arm, or the decision that chose it
            oneOf=[{"required": ["reward"]}, {"required": ["value"]}],
            anyOf=[{"required": ["arm_id"]}, {"required": ["decision_id"]}],
            examples=[
                {"experiment_id": "cta-button-test", "arm_id": "green-button", "reward": 1.0}
            ],
        ),
    }


def _response_schemas() -> dict[str, Any]:
    text = {"type": "string"}
    strings = {"type": "array", "items": text}
    pair = {"type": "array", "items": _nullable(NUMBER), "minItems": 2, "maxItems": 2}
    arm = _obj(
        {
            "arm": text,
            "pulls": NUMBER,
            "reward_sum": NUMBER,
            "mean": _nullable(NUMBER),
            "interval": _nullable(pair),
            "p_best": NUMBER,
            "share": NUMBER,
            "status": {**text, "description": '"live", or why a guardrail switched it off'},
            "detail": _nullable(text),
        },
        ("arm", "pulls", "reward_sum", "mean", "p_best", "share", "status"),
        closed=False,
    )
    experiment = _obj(
        {
            "experiment_id": text,
            "arm_ids": strings,
            "strategy": text,
            "strategy_params": {"type": "object"},
            "disabled_arms": strings,
            "version": {"type": "integer"},
            "policy": _obj({"name": text, "params": {"type": "object"}}, closed=False),
            "default_arm": text,
            "reward_range": pair,
            "enabled": {"type": "boolean"},
            "arms": {"type": "array", "items": ref("ArmSummary")},
            "trips": {"type": "array", "items": {"type": "object"}},
            "fallback": {"type": "boolean"},
        },
        ("experiment_id", "arm_ids", "strategy", "strategy_params", "version", "arms"),
        closed=False,
    )
    problem = _obj(
        {
            "type": text,
            "title": text,
            "status": {"type": "integer"},
            "detail": text,
            "field": {**text, "description": "the member refused (422)"},
            "received": {**_nullable(text), "description": "what was sent, as JSON text"},
            "allowed": {**text, "description": "what the member may hold"},
        },
        ("type", "title", "status", "detail"),
        closed=False,
        description="RFC 9457 problem details",
    )
    return {
        "Health": _obj({"status": {"const": "ok"}}, ("status",), closed=False),
        "ArmSummary": arm,
        "Experiment": experiment,
        "ExperimentList": _obj(
            {"experiments": {"type": "array", "items": ref("Experiment")}},
            ("experiments",),
            closed=False,
        ),
        "Decision": _obj(
            {
                "experiment_id": text,
                "arm_id": text,
                "strategy": text,
                "metadata": _obj({"arms": strings}, ("arms",), closed=False),
                "decision_id": {"type": "string", "pattern": DECISION_ID_PATTERN},
                "propensity": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "version": {"type": "integer"},
                "counted": {"type": "boolean"},
                "snapshot_seq": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "the seq of the published snapshot whose allocation "
                    "was walked (GET /edge/snapshot)",
                },
            },
            (
                "experiment_id",
                "arm_id",
                "strategy",
                "metadata",
                "decision_id",
                "propensity",
                "snapshot_seq",
            ),
            closed=False,
        ),
        "RewardResult": _obj(
            {
                "status": {"const": "ok"},
                "experiment_id": text,
                "arm_id": text,
                "strategy": text,
                "reward": NUMBER,
                "decision_id": _nullable(text),
                "counted": {"type": "boolean", "description": "false: a retry already counted"},
            },
            ("status", "experiment_id", "arm_id", "strategy", "reward", "counted"),
            closed=False,
        ),
        "Problem": problem,
    }


def schemas() -> dict[str, Any]:
    """``components/schemas``."""
    return {**_request_schemas(), **_response_schemas()}
