"""Test doubles for apps that use mabware (STYLE.md, "ship the test doubles").

::

    from mabware.testing import FakeClock, TEST_KEYS, make_engine

    clock = FakeClock()
    engine = make_engine([Experiment("headline", ["a", "b"])], clock=clock)
    visit = engine.begin(None)
    clock.advance(3600)

``TEST_KEYS`` are public and fixed: never use them outside tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mabware.engine import Engine
from mabware.experiment import Experiment

__all__ = ["TEST_KEYS", "FakeClock", "make_engine"]

#: Two fixed cookie keys (url-safe base64 of 32 bytes each), newest first.
TEST_KEYS: tuple[str, str] = (
    "dGVzdC1rZXktb25lLW1hYndhcmUtMDEyMzQ1Njc4OWFi",
    "dGVzdC1rZXktdHdvLW1hYndhcmUtMDEyMzQ1Njc4OWFi",
)


class FakeClock:
    """A wall clock that moves only when told to.

    Args:
        now: the starting time, unix seconds.
    """

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


def make_engine(experiments: Sequence[Experiment], **options: Any) -> Engine:
    """An ``Engine`` on the ``memory:`` store with ``TEST_KEYS``, strict, seeded.

    Any ``Engine`` setting can be overridden by keyword.
    """
    settings: dict[str, Any] = {
        "secret_keys": list(TEST_KEYS),
        "store": "memory:",
        "strict": True,
        "seed": 0,
        "recompute_interval": 0.0,
    }
    settings.update(options)
    return Engine(experiments, **settings)
