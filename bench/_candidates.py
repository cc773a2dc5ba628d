"""Candidate policies and yardsticks for bench/regret.py: NOT part of mabware.

bench/regret.py runs these through the same simulate runner as mabware's
own policies, to show what a change to mabware's policies would buy before
anyone makes it. They implement the ``mabware.policies.Policy`` protocol
and reuse mabware's own policies and helpers, so the only difference from
a registered policy is the idea named below. A candidate that measures
well is promoted into mabware and leaves this module: the KL-UCB++ index
became ``KLUCB(budget="kl-ucb++")``, its GLR restart ``GLRKLUCB``
("glr-kl-ucb").

* ``oracle-restart``: a yardstick for (b), not a policy: the base policy
  (Thompson sampling, or ``base="kl-ucb++"``) restarted exactly at the
  change points, which it is told. No drift policy can expect to beat it;
  it measures what re-learning each phase costs by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mabware._types import BoolArray, FloatArray
from mabware.policies import KLUCB, Policy, ThompsonSampling
from mabware.statistics import Statistics


def _base(name: str) -> Policy:
    return KLUCB(budget="kl-ucb++") if name == "kl-ucb++" else ThompsonSampling()


@dataclass(frozen=True)
class OracleRestart:
    """A yardstick for (b), not a policy: the base policy restarted exactly at the
    environment's change points, which it is told. No drift policy can expect to
    beat it; it measures what re-learning each phase costs by itself."""

    name: ClassVar[str] = "oracle-restart"
    requires_bounded_rewards: ClassVar[bool] = True
    change_points: tuple[int, ...] = ()
    base: str = "thompson"
    window: int = 5000

    @property
    def buckets_needed(self) -> int:
        return self.window

    def params(self) -> dict[str, Any]:
        return {"change_points": list(self.change_points), "base": self.base}

    def allocate(self, stats: Statistics, live: BoolArray, rng: np.random.Generator) -> FloatArray:
        assert stats.recent is not None
        now = stats.recent.newest  # one bucket per round in the simulator
        last = max((c for c in self.change_points if c <= now), default=0)
        keep = min(now - last, stats.recent.depth)  # rows 1..keep: rounds last..now-1
        current = Statistics.from_counts(
            stats.recent.pulls[: keep + 1].sum(axis=0),
            stats.recent.reward_sum[: keep + 1].sum(axis=0),
        )
        if last == 0:
            current = stats
        return _base(self.base).allocate(current, live, rng)


#: candidate name -> factory taking the candidate's settings as keywords
CANDIDATES: dict[str, Callable[..., Any]] = {
    "oracle-restart": OracleRestart,
}
