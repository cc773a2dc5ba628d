"""The gate every reward passes before it reaches the statistics.

A reward for an unknown experiment or arm, or a value that is not a finite
number inside the experiment's declared range, never reaches ``Counters``.
In strict mode (tests, development) it raises ``RewardError``; otherwise it
is dropped, counted by reason in ``rejected`` and logged once per reason
per minute, and the call returns False.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

from mabware._ratelimit import OncePerInterval
from mabware.exceptions import RewardError
from mabware.experiment import Experiment
from mabware.statistics import Counters

logger = logging.getLogger("mabware.rewards")

UNKNOWN_EXPERIMENT = "unknown_experiment"
UNKNOWN_ARM = "unknown_arm"
BAD_VALUE = "bad_value"


class RewardGate:
    """Validates rewards and adds the good ones to per-experiment counters.

    Args:
        experiments: experiment name -> experiment.
        counters: experiment name -> the counters ``record`` adds to
            (``check`` alone needs none).
        strict: raise RewardError instead of dropping bad rewards.
        log: the once-per-interval logger; made here by default.
    """

    def __init__(
        self,
        experiments: Mapping[str, Experiment],
        counters: Mapping[str, Counters] | None = None,
        *,
        strict: bool = False,
        log: OncePerInterval | None = None,
    ) -> None:
        self._experiments = experiments
        self._counters = counters or {}
        self.strict = strict
        self._log = log or OncePerInterval(logger)

    @property
    def rejected(self) -> Counter[str]:
        """Rejected rewards by reason (unknown_experiment, unknown_arm, bad_value)."""
        return self._log.counts

    @property
    def events(self) -> OncePerInterval:
        """The rejections' log and counters; ``events.listeners`` hear each one (metrics)."""
        return self._log

    def check(self, experiment: str, arm: str, value: object) -> tuple[int, float] | None:
        """The arm's index and the reward as a float, or None if it must be dropped.

        Raises:
            RewardError: in strict mode, instead of returning None.
        """
        exp = self._experiments.get(experiment)
        try:
            if exp is None:
                reason = UNKNOWN_EXPERIMENT
                raise RewardError(f"unknown experiment {experiment!r}", payload=experiment)
            reason = UNKNOWN_ARM
            index = exp.arm_index(arm)
            reason = BAD_VALUE
            return index, exp.check_reward(value)
        except RewardError as exc:
            if self.strict:
                raise
            self._log(reason, f"reward dropped: {exc}")
            return None

    def record(
        self,
        experiment: str,
        arm: str,
        value: object = 1.0,
        *,
        propensity: float | None = None,
        bucket: int | None = None,
    ) -> bool:
        """Add one reward to the counters; True if stored, False if dropped (non-strict mode)."""
        checked = self.check(experiment, arm, value)
        if checked is None:
            return False
        index, reward = checked
        self._counters[experiment].add_reward(index, reward, propensity, bucket)
        return True
