"""Policies by name: the registry behind the CLI, the server and serialisation.

Adding a policy is one new module, one entry in ``_CLASSES`` and its
re-export in ``__init__``; the registry name comes from the class's ``name``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mabware.exceptions import ConfigError
from mabware.policies._base import Policy
from mabware.policies.discounted_thompson import DiscountedThompson
from mabware.policies.epsilon_greedy import EpsilonGreedy
from mabware.policies.exp3 import EXP3
from mabware.policies.glr_kl_ucb import GLRKLUCB
from mabware.policies.glr_thompson import GLRThompson
from mabware.policies.kl_ucb import KLUCB
from mabware.policies.sliding_window_ucb import SlidingWindowUCB
from mabware.policies.softmax import Softmax
from mabware.policies.thompson import ThompsonSampling
from mabware.policies.ucb import UCB1

_CLASSES: tuple[type[Policy], ...] = (
    ThompsonSampling,
    UCB1,
    KLUCB,
    EpsilonGreedy,
    Softmax,
    EXP3,
    DiscountedThompson,
    SlidingWindowUCB,
    GLRThompson,
    GLRKLUCB,
)

#: canonical name -> policy class
POLICIES: Mapping[str, type[Policy]] = MappingProxyType({cls.name: cls for cls in _CLASSES})


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def from_name(name: str, /, **params: Any) -> Policy:
    """Build a policy from its name and settings.

    The name is matched in any case, with ``-`` and ``_`` alike:
    ``"THOMPSON"``, ``"epsilon_greedy"`` and ``"kl_ucb"`` all work.

    Raises:
        ConfigError: the name is unknown, a setting is unknown or out of range.
    """
    cls = POLICIES.get(_canonical(name)) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(
            f"unknown policy {name!r}; choose one of {', '.join(sorted(POLICIES))}",
            payload=name,
        )
    allowed = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{cls.__name__} has no setting {', '.join(map(repr, unknown))}; "
            f"its settings are {', '.join(allowed) or 'none'}",
            payload=unknown,
        )
    return cls(**params)


def to_dict(policy: Policy) -> dict[str, Any]:
    """``{"name": ..., "params": {...}}``, plain data for JSON or msgpack."""
    return {"name": policy.name, "params": dict(policy.params())}


def from_dict(data: Mapping[str, Any]) -> Policy:
    """The inverse of ``to_dict``.

    Raises:
        ConfigError: the dict is malformed, or ``from_name`` refuses it.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise ConfigError(f"a policy must be a dict with a 'name', got {data!r}", payload=data)
    extra = sorted(set(data) - {"name", "params"})
    if extra:
        raise ConfigError(
            f"a policy dict has only 'name' and 'params', got also {', '.join(map(repr, extra))}",
            payload=data,
        )
    params = data.get("params", {})
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ConfigError(f"policy params must be a dict, got {params!r}", payload=params)
    return from_name(data["name"], **params)
