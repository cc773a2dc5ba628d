"""An experiment as a plain dict: the body of ``Experiment.to_dict`` / ``from_dict``.

The document is msgpack/JSON-able when the arm payloads are; the store, the
server and the CLI exchange experiments in this form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mabware import policies
from mabware.exceptions import ConfigError
from mabware.guardrails import ArmSLO, Guardrails

if TYPE_CHECKING:
    from mabware.experiment import Experiment


def to_dict(experiment: Experiment) -> dict[str, Any]:
    """``experiment``'s settings as a plain dict."""
    return {
        "name": experiment.name,
        "arms": list(experiment.arm_names),
        "payloads": dict(experiment.payloads),
        "policy": policies.to_dict(experiment.policy),
        "default_arm": experiment.default_arm,
        "guardrails": asdict(experiment.guardrails),
        "reward_mode": experiment.reward_mode,
        "reward_range": list(experiment.reward_range),
        "version": experiment.version,
        "bucket_seconds": experiment.bucket_seconds,
        "enabled": experiment.enabled,
    }


def _pair(value: Any) -> tuple[float, float]:
    low, high = value
    return (low, high)


def from_dict(cls: type[Experiment], data: Mapping[str, Any]) -> Experiment:
    """The inverse of ``to_dict``; ConfigError on a bad document."""
    try:
        rails = dict(data.get("guardrails") or {})
        if rails.get("slo") is not None:
            rails["slo"] = ArmSLO(**rails["slo"])
        payloads = data.get("payloads")
        arms = {a: payloads[a] for a in data["arms"]} if payloads else list(data["arms"])
        return cls(
            name=data["name"],
            arms=arms,
            policy=policies.from_dict(data["policy"])
            if "policy" in data
            else policies.ThompsonSampling(),
            default_arm=data.get("default_arm"),
            guardrails=Guardrails(**rails),
            reward_mode=data.get("reward_mode", "once"),
            reward_range=_pair(data.get("reward_range", (0.0, 1.0))),
            version=data.get("version", 1),
            bucket_seconds=data.get("bucket_seconds", 60.0),
            enabled=data.get("enabled", True),
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"not a valid experiment document: {exc}", original_error=exc) from exc
