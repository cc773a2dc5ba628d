"""The policy contract and the small allocation helpers policies share.

A policy is a frozen dataclass of settings with one method::

    allocate(stats, live, rng) -> allocation

``stats`` are the experiment's ``Statistics`` (rewards already rescaled to
[0, 1] when the reward range is bounded), ``live`` is a boolean mask of the
arms that may be served, and ``rng`` is an injected
``numpy.random.Generator``. The result is a float64 vector over all arms:
finite, non-negative, zero on every arm that is not live, summing to 1.
Policies never see the web, the clock or the store.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from mabware._types import BoolArray, FloatArray
from mabware.exceptions import ConfigError, PolicyError
from mabware.statistics import Buckets, Statistics


@runtime_checkable
class Policy(Protocol):
    """What every policy provides (see the module docstring)."""

    #: the name used by the CLI, the server and serialised experiments
    name: ClassVar[str]
    #: True when rewards must lie in a bounded range (rescaled to [0, 1])
    requires_bounded_rewards: ClassVar[bool]

    @property
    def buckets_needed(self) -> int:
        """Time buckets this policy reads (0 for stationary policies)."""
        ...

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        """Map statistics to a probability vector over arms."""
        ...

    def params(self) -> dict[str, Any]:
        """The settings as a plain dict (the inverse of ``cls(**params)``)."""
        ...


def uniform(live: BoolArray) -> FloatArray:
    """Equal shares over the live arms."""
    share = live.astype(np.float64)
    share /= share.sum()
    return share


def split_ties(scores: FloatArray, live: BoolArray) -> FloatArray:
    """All mass on the best live score, split equally among exact ties.

    Splitting the mass is the allocation-level form of breaking ties at
    random: the arm drawn from the vector is a uniformly random leader.
    """
    masked = np.where(live, scores, -np.inf)
    best = masked.max()
    leaders = live & (masked == best)
    return uniform(leaders)


def untried(stats: Statistics, live: BoolArray) -> BoolArray:
    """Live arms without a single pull."""
    return live & (stats.pulls <= 0)


def recent_buckets(stats: Statistics, policy: object) -> Buckets:
    """``stats.recent``, or a PolicyError naming the policy when it is missing.

    The experiment keeps ``policy.buckets_needed`` buckets for any policy that
    asks for some, so this only fails on a wiring bug.
    """
    if stats.recent is None:
        raise PolicyError(
            f"{type(policy).__name__} reads time buckets but the statistics have none; "
            "keep policy.buckets_needed buckets for it"
        )
    return stats.recent


def needs_bounded_rewards(policy: Policy) -> bool:
    """Whether this policy instance needs rewards rescaled to [0, 1].

    ``requires_bounded_rewards`` is a class attribute, so it cannot follow a
    setting; a policy whose answer depends on its settings (Thompson
    sampling's ``likelihood``) also provides a ``needs_bounded_rewards``
    property, which wins. Callers should ask this function, not the class.
    """
    return bool(getattr(policy, "needs_bounded_rewards", policy.requires_bounded_rewards))


# -- settings -----------------------------------------------------------------
#
# Policies are frozen dataclasses; ``__post_init__`` validates every field
# with the helpers below and stores the normalised value (an int given for a
# float becomes a float, so ``params()`` serialises the same way every time).


def _store(policy: object, field: str, value: object) -> None:
    object.__setattr__(policy, field, value)  # frozen dataclass: normalise in place


def _fail(policy: object, field: str, allowed: str, value: object) -> ConfigError:
    return ConfigError(
        f"{type(policy).__name__}: {field} must be {allowed}, got {value!r}", payload=value
    )


def check_number(
    policy: object,
    field: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a real-valued setting, store it as a float and return it.

    Args:
        policy: the dataclass being validated.
        field: the attribute name (named in the error message).
        low: smallest allowed value, or None.
        high: largest allowed value, or None.
        low_open: exclude ``low`` itself.
        high_open: exclude ``high`` itself.

    Raises:
        ConfigError: the value is not a finite real number in the range.
    """
    value = getattr(policy, field)
    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    allowed = "a finite number" + (f" {lo}" if lo else "") + (f" and {hi}" if lo and hi else hi)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(policy, field, allowed, value)
    x = float(value)
    ok = math.isfinite(x)
    if ok and low is not None:
        ok = x > low if low_open else x >= low
    if ok and high is not None:
        ok = x < high if high_open else x <= high
    if not ok:
        raise _fail(policy, field, allowed, value)
    _store(policy, field, x)
    return x


def check_integer(policy: object, field: str, *, low: int) -> int:
    """Validate an integer setting ``>= low``, store it as an int and return it.

    Raises:
        ConfigError: the value is not an integer or is below ``low``.
    """
    value = getattr(policy, field)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _fail(policy, field, f"an integer >= {low}", value)
    _store(policy, field, int(value))
    return int(value)


def check_choice(
    policy: object, field: str, choices: tuple[str, ...], *, optional: bool = False
) -> str | None:
    """Validate a string setting against ``choices`` and store its canonical form.

    Case and ``_`` versus ``-`` do not matter: ``"Monte_Carlo"`` is
    ``"monte-carlo"``. With ``optional``, None is allowed too.

    Raises:
        ConfigError: the value is not one of ``choices``.
    """
    value = getattr(policy, field)
    if optional and value is None:
        return None
    canonical = value.strip().lower().replace("_", "-") if isinstance(value, str) else None
    if canonical not in choices:
        allowed = ("None or " if optional else "") + "one of " + ", ".join(map(repr, choices))
        raise _fail(policy, field, allowed, value)
    _store(policy, field, canonical)
    return canonical


def check_flag(policy: object, field: str) -> bool:
    """Validate a boolean setting (a real bool: ``1`` or ``"yes"`` is refused).

    Raises:
        ConfigError: the value is not True or False.
    """
    value = getattr(policy, field)
    if not isinstance(value, bool | np.bool_):
        raise _fail(policy, field, "True or False", value)
    _store(policy, field, bool(value))
    return bool(value)


def scatter(n_arms: int, index: npt.NDArray[np.intp], shares: FloatArray) -> FloatArray:
    """A vector over all arms: ``shares`` at the arms in ``index``, 0 elsewhere."""
    out = np.zeros(n_arms)
    out[index] = shares
    return out


class Settings:
    """Mixin for policy dataclasses: ``params()`` from the fields."""

    def params(self) -> dict[str, Any]:
        """The settings as a plain dict (``cls(**params())`` rebuilds the policy)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


class Stationary(Settings):
    """Mixin for policies that read only the totals, never time buckets."""

    @property
    def buckets_needed(self) -> int:
        """Stationary: no time buckets."""
        return 0
