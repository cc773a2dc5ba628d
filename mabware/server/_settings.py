"""Experiment settings from request bodies: create, config, arm changes.

What ``POST /experiments`` and ``POST /config`` describe becomes an
``Entry`` here, or a 422 that names the field. Each member is checked by
the rule ``/openapi.json`` publishes for it (``mabware.server.openapi``
builds its schemas from the same names and patterns), so a client that
follows the schema is refused only for what a schema cannot say: an arm
that is not in ``arm_ids``, ``low >= high``, a setting of another policy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import msgpack

from mabware import policies
from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.guardrails import ArmSLO, Guardrails
from mabware.server import _json as j
from mabware.server._registry import Entry

#: the members of a create body
CREATE_FIELDS = (
    "experiment_id",
    "arm_ids",
    "strategy",
    "strategy_params",
    "default_arm",
    "reward_range",
    "reward_mode",
    "guardrails",
    "payloads",
)
GUARDRAIL_FIELDS = ("floor", "cap", "cap_min_pulls", "min_pulls_per_arm", "slo", "stale_after")
SLO_FIELDS = ("min_pulls", "min_reward_rate", "max_error_rate", "max_p95_latency")
#: the MAB E-Commerce Optimizer's reproducibility knob: accepted and echoed, not a policy
#: setting (mabware decisions are reproducible through unit_id)
SEED = "seed"
#: a word of an Experiment's ConfigError -> the member it is about
_ABOUT = (
    ("reward_range", "reward_range"),
    ("floor", "guardrails"),
    ("cap", "guardrails"),
    ("strategy", "strategy"),
)


def any_case(name: str) -> str:
    """A pattern matching ``name`` in any case, ``-`` and ``_`` alike (``policies.from_name``)."""
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else "[-_]" if c in "-_" else re.escape(c)
        for c in name
    )


#: a policy name as ``policies.from_name`` reads it (no surrounding spaces)
STRATEGY_PATTERN = "^(?:" + "|".join(any_case(name) for name in policies.POLICIES) + ")$"
_STRATEGY = re.compile(STRATEGY_PATTERN)


def strategy(doc: Mapping[str, Any], *, required: bool) -> str:
    """The policy name (default ``thompson``), as the client spelled it."""
    allowed = "one of " + ", ".join(policies.POLICIES) + " (any case, - or _)"
    if doc.get("strategy") is None and not required:
        return "thompson"
    if "strategy" not in doc:
        j.missing("strategy", allowed)
    value = doc["strategy"]
    if not isinstance(value, str) or _STRATEGY.fullmatch(value) is None:
        j.invalid("strategy", value, allowed)
    return value


def policy(name: str, params: Mapping[str, Any]) -> policies.Policy:
    """The policy ``name`` with the settings ``params`` (less ``seed``); 422 naming the field."""
    if params.get(SEED) is not None:
        j.integer(params, SEED, 0, field=f"strategy_params.{SEED}")
    settings = {k: v for k, v in params.items() if k != SEED}
    try:
        return policies.from_name(name, **settings)
    except ConfigError as exc:
        j.invalid("strategy_params", dict(params), exc.message)
    except (TypeError, ValueError) as exc:
        j.invalid("strategy_params", dict(params), str(exc))


def replaced(exp: Experiment, blame: tuple[str, Any] | None = None, **changes: Any) -> Experiment:
    """``exp`` with new ``arms`` (name -> payload), ``policy`` or ``version``.

    A change the experiment's other settings refuse (more arms than its
    guardrail floor allows, a policy its reward range does not suit) is a
    422 naming ``blame``: (field, the value received).
    """
    doc = exp.to_dict()
    if "arms" in changes:
        doc["arms"] = list(changes["arms"])
        doc["payloads"] = dict(changes["arms"])
    if "policy" in changes:
        doc["policy"] = policies.to_dict(changes["policy"])
    if "version" in changes:
        doc["version"] = changes["version"]
    try:
        return Experiment.from_dict(doc)
    except ConfigError as exc:
        if blame is None:
            raise
        j.invalid(blame[0], blame[1], exc.message)


def entry(doc: Mapping[str, Any], name: str, arms: list[str], now: float) -> Entry:
    """The experiment a create body describes; 422 naming the field otherwise."""
    name_of_policy = strategy(doc, required=False)
    params = j.mapping(doc, "strategy_params")
    settings: dict[str, Any] = {"policy": policy(name_of_policy, params)}
    payloads = j.mapping(doc, "payloads")
    for arm in payloads:
        if arm not in arms:
            j.invalid("payloads", payloads, "an object keyed by ids of arm_ids")
    try:  # the edge snapshot carries payloads as MessagePack: refuse what it cannot
        msgpack.packb(payloads)
    except (OverflowError, TypeError, ValueError):
        j.invalid("payloads", payloads, "JSON values with integers of at most 64 bits")
    if doc.get("default_arm") is not None:
        settings["default_arm"] = j.string(doc, "default_arm", ident=True)
        if settings["default_arm"] not in arms:
            j.invalid("default_arm", doc["default_arm"], "one of arm_ids")
    if "reward_range" in doc:
        settings["reward_range"] = _reward_range(doc["reward_range"])
    if doc.get("reward_mode") is not None:
        if doc["reward_mode"] not in ("once", "every"):
            j.invalid("reward_mode", doc["reward_mode"], '"once" or "every"')
        settings["reward_mode"] = doc["reward_mode"]
    if doc.get("guardrails") is not None:
        settings["guardrails"] = _guardrails(j.mapping(doc, "guardrails"))
    try:
        experiment = Experiment(name, {a: payloads.get(a) for a in arms}, **settings)
    except ConfigError as exc:
        # What a schema cannot say: low < high, a range the policy needs
        # bounded, floor x arms <= 1. Name the member the message is about.
        field = next((f for word, f in _ABOUT if word in exc.message), "(body)")
        j.invalid(field, doc.get(field), exc.message)
    return Entry(experiment, name_of_policy, params, frozenset(), now)


def _reward_range(value: Any) -> tuple[float, float]:
    allowed = "[low, high], two numbers with low < high"
    if not isinstance(value, list) or len(value) != 2:
        j.invalid("reward_range", value, allowed)
    pair = {"low": value[0], "high": value[1]}
    low = j.number(pair, "low", field="reward_range")
    high = j.number(pair, "high", field="reward_range")
    if not low < high:
        j.invalid("reward_range", value, allowed)
    return low, high


def _guardrails(doc: dict[str, Any]) -> Guardrails:
    j.only(doc, GUARDRAIL_FIELDS, within="guardrails")
    settings: dict[str, Any] = {}
    if "floor" in doc:
        settings["floor"] = j.number(doc, "floor", 0.0, 1.0, field="guardrails.floor")
    if doc.get("cap") is not None:  # null: no cap
        settings["cap"] = j.number(doc, "cap", 0.0, 1.0, field="guardrails.cap")
    for name in ("cap_min_pulls", "min_pulls_per_arm"):
        if name in doc:
            settings[name] = j.integer(doc, name, 0, field=f"guardrails.{name}")
    if doc.get("stale_after") is not None:
        settings["stale_after"] = j.number(
            doc, "stale_after", 0.0, field="guardrails.stale_after", low_open=True
        )
    if doc.get("slo") is not None:
        slo = j.mapping(doc, "slo", field="guardrails.slo")
        j.only(slo, SLO_FIELDS, within="guardrails.slo")
        slo_settings: dict[str, Any] = {}
        if "min_pulls" in slo:
            field = "guardrails.slo.min_pulls"
            slo_settings["min_pulls"] = j.integer(slo, "min_pulls", 0, field=field)
        for name, low, high in (
            ("min_reward_rate", -math.inf, math.inf),
            ("max_error_rate", 0.0, 1.0),
            ("max_p95_latency", 0.0, math.inf),
        ):
            if slo.get(name) is not None:
                slo_settings[name] = j.number(
                    slo, name, low, high, field=f"guardrails.slo.{name}",
                    low_open=name == "max_p95_latency",
                )  # fmt: skip
        settings["slo"] = ArmSLO(**slo_settings)
    return Guardrails(**settings)
