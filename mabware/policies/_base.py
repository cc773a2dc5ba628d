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

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.statistics import Statistics


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

    def allocate(
        self, stats: Statistics, live: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        """Map statistics to a probability vector over arms."""
        ...

    def params(self) -> dict[str, Any]:
        """The settings as a plain dict (the inverse of ``cls(**params)``)."""
        ...


def uniform(live: BoolArray) -> FloatArray:
    """Equal shares over the live arms."""
    share = live.astype(np.float64)
    return share / share.sum()


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
