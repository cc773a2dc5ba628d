"""Allocation: the traffic split an experiment serves, after guardrails."""

from __future__ import annotations

from dataclasses import dataclass

from mabware.guardrails import FALLBACK_REASONS, Trip


@dataclass(frozen=True)
class Allocation:
    """The traffic split an experiment serves, after guardrails.

    Attributes:
        experiment: the experiment's name.
        version: the experiment's version (salt) when this was computed.
        arms: arm names in order.
        probabilities: share of each arm; what serving samples from and
            what the decision log records as propensities.
        cumulative: running sums for ``assign.walk`` (precomputed so the
            request path does no numpy work).
        trips: the guardrail actions behind this allocation.
    """

    experiment: str
    version: int
    arms: tuple[str, ...]
    probabilities: tuple[float, ...]
    cumulative: tuple[float, ...]
    trips: tuple[Trip, ...] = ()

    @property
    def fallback(self) -> bool:
        """True when a guardrail sent all traffic to the default arm."""
        return any(t.reason in FALLBACK_REASONS for t in self.trips)

    def share(self, arm: str) -> float:
        """The share of one arm."""
        return self.probabilities[self.arms.index(arm)]
