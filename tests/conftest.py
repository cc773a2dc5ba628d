"""Shared fixtures and hypothesis profiles."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from mabware.statistics import Statistics

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclass(frozen=True)
class FixedPolicy:
    """A test double: returns a fixed vector (or raises), whatever the data."""

    name: ClassVar[str] = "fixed"
    requires_bounded_rewards: ClassVar[bool] = True
    vector: tuple[float, ...] = ()
    error: type[Exception] | None = None
    calls: list[int] = field(default_factory=list, compare=False)

    @property
    def buckets_needed(self) -> int:
        return 0

    def allocate(self, stats: Statistics, live: Any, rng: np.random.Generator) -> Any:
        self.calls.append(1)
        if self.error is not None:
            raise self.error("policy exploded")
        return np.array(self.vector, dtype=np.float64)

    def params(self) -> dict[str, Any]:
        return {"vector": list(self.vector)}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
